package dsw

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/snapstack/snapstack/internal/meta"
	"github.com/snapstack/snapstack/internal/oci"
)

// errGone stops a job whose snapshot record was deleted.
var errGone = errors.New("dsw: snapshot deleted")

// startJob runs a snapshot in the background, owned by the Service
// (Close cancels and waits for it).
func (s *Service) startJob(in *meta.DSWInstance, sn *meta.DSWSnapshot) {
	ctx, cancel := context.WithCancel(s.ctx)
	s.mu.Lock()
	s.jobs[sn.ID] = cancel
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() {
			s.mu.Lock()
			delete(s.jobs, sn.ID)
			s.mu.Unlock()
			cancel()
		}()
		s.run(ctx, in, sn)
	}()
}

// cancelJob stops the job of a snapshot, if one runs.
func (s *Service) cancelJob(id string) {
	s.mu.Lock()
	cancel := s.jobs[id]
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// run builds the layer (Saving), then pulls the base and pushes the image
// (Pushing), and records Available or Failed.
func (s *Service) run(ctx context.Context, in *meta.DSWInstance, sn *meta.DSWSnapshot) {
	work := filepath.Join(s.cfg.Dir, "work", sn.ID)
	defer os.RemoveAll(work)
	layer := filepath.Join(work, "layer.tar.gz")
	err := os.MkdirAll(work, 0o700)
	var st oci.LayerStats
	if err == nil {
		st, err = oci.WriteLayerFile(ctx, layer, in.UpperDir, sn.ExcludePaths)
	}
	if err != nil {
		s.fail(ctx, sn, ReasonLayer, "The instance filesystem could not be read.", err)
		return
	}
	if err := s.setStatus(ctx, sn, func(x *meta.DSWSnapshot) { x.Status = SnapshotPushing }); err != nil {
		return
	}
	spec := oci.Spec{Target: oci.Ref{Name: sn.ImageURL, Embedded: sn.Embedded}, LayerFile: layer,
		Labels: map[string]string{}, Annotations: map[string]string{}, Overwrite: sn.Overwrite, Created: sn.CreatedAt,
		CreatedBy: fmt.Sprintf("snapstack: PAI-DSW snapshot %s of instance %s", sn.ID, in.ID), Comment: sn.Description}
	for _, l := range sn.Labels {
		spec.Labels[l.Key] = l.Value
	}
	spec.Annotations["org.opencontainers.image.created"] = timeStr(sn.CreatedAt)
	spec.Annotations["io.snapstack.dsw.instance-id"] = in.ID
	spec.Annotations["io.snapstack.dsw.snapshot-id"] = sn.ID
	if sn.Description != "" {
		spec.Annotations["org.opencontainers.image.description"] = sn.Description
	}
	if in.ImageURL != "" {
		n, err := oci.ParseImageName(in.ImageURL, "latest", true)
		if err != nil {
			s.fail(ctx, sn, ReasonBaseImage, "The instance's ImageUrl is not a valid image reference.", err)
			return
		}
		spec.Base = &oci.Ref{Name: n.String(), Embedded: in.ImageEmbedded}
		spec.Annotations["org.opencontainers.image.base.name"] = n.String()
	}
	res, err := s.builder.Build(ctx, spec)
	if err != nil {
		code, msg := reasonOf(err)
		s.fail(ctx, sn, code, msg, err)
		return
	}
	s.log.Info("dsw snapshot pushed", "snapshot", sn.ID, "image", sn.ImageURL, "digest", res.Digest,
		"files", st.Files, "whiteouts", st.Whiteouts, "excluded", st.Excluded)
	s.setStatus(ctx, sn, func(x *meta.DSWSnapshot) { x.Status, x.ImageID = SnapshotAvailable, res.Digest })
}

// reasonOf maps a Build error to a ReasonCode and a message for the
// client: the registry's answer for registry errors, nothing internal
// otherwise.
func reasonOf(err error) (string, string) {
	for _, r := range []struct {
		err  error
		code string
	}{{oci.ErrTagExists, ReasonTagExists}, {oci.ErrDenied, ReasonDenied}, {oci.ErrPullBase, ReasonBaseImage},
		{oci.ErrPush, ReasonPush}, {oci.ErrUnreachable, ReasonPush}} {
		if errors.Is(err, r.err) {
			return r.code, capitalize(err.Error()) + "."
		}
	}
	return ReasonInternal, "The image could not be built."
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// fail records a failure (unless the job was cancelled: a deleted snapshot
// stays deleted, and Close leaves it to the next Resume).
func (s *Service) fail(ctx context.Context, sn *meta.DSWSnapshot, code, msg string, cause error) {
	if ctx.Err() != nil {
		return
	}
	s.log.Warn("dsw snapshot failed", "snapshot", sn.ID, "reason", code, "err", cause)
	s.setStatus(ctx, sn, func(x *meta.DSWSnapshot) {
		x.Status, x.ReasonCode, x.ReasonMessage = SnapshotFailed, code, msg
	})
}

// setStatus applies change to the stored snapshot; errGone when it was
// deleted. Store updates are serialised, so a deleted snapshot is never
// written back.
func (s *Service) setStatus(ctx context.Context, sn *meta.DSWSnapshot, change func(*meta.DSWSnapshot)) error {
	err := s.store.Update(context.WithoutCancel(ctx), func(tx meta.Tx) error {
		cur, err := tx.GetDSWSnapshot(sn.AccountID, sn.ID)
		if errors.Is(err, meta.ErrNotFound) {
			return errGone
		}
		if err != nil {
			return err
		}
		change(cur)
		cur.ModifiedAt = s.clock.Now()
		return tx.PutDSWSnapshot(cur)
	})
	if err != nil && !errors.Is(err, errGone) {
		s.log.Error("dsw snapshot status", "snapshot", sn.ID, "err", err)
	}
	return err
}
