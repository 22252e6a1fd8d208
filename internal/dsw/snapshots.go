package dsw

import (
	"context"

	"github.com/snapstack/snapstack/internal/meta"
	"github.com/snapstack/snapstack/internal/oci"
)

// createSnapshotBody is the JSON body of CreateInstanceSnapshot (seed 003).
type createSnapshotBody struct {
	SnapshotName        string
	SnapshotDescription string
	ImageUrl            string
	Labels              []label
	ExcludePaths        []string
	Overwrite           bool
}

// CreateInstanceSnapshot implements POST
// /api/v2/instances/{InstanceId}/snapshots. Every check runs before
// anything is written or pushed: the body, the parameters, the instance
// (it must exist and be Running or Stopped, with no other snapshot under
// way) and, when Overwrite is false, the target tag (it must not exist).
// The snapshot then proceeds in the background (Saving, Pushing,
// Available or Failed).
func (s *Service) CreateInstanceSnapshot(ctx context.Context, c *Call) (any, error) {
	var b createSnapshotBody
	if err := decode(c.Body, &b); err != nil {
		return nil, err
	}
	if err := checkSnapshotName(b.SnapshotName); err != nil {
		return nil, err
	}
	if err := checkDescription(b.SnapshotDescription); err != nil {
		return nil, err
	}
	img, err := parseImage("ImageUrl", b.ImageUrl, b.SnapshotName, false)
	if err != nil {
		return nil, err
	}
	lbls, err := checkLabels("Labels", b.Labels)
	if err != nil {
		return nil, err
	}
	exclude, err := cleanExcludePaths(b.ExcludePaths)
	if err != nil {
		return nil, err
	}
	target := oci.Ref{Name: img.String(), Embedded: s.embedded(img.Registry, c.Host)}
	check := func(tx meta.Tx) (*meta.DSWInstance, error) {
		in, err := s.loadInstance(tx, c)
		if err != nil {
			return nil, err
		}
		if in.Status != StatusRunning && in.Status != StatusStopped {
			return nil, invalid("The instance is %s; a snapshot needs it Running or Stopped.", in.Status)
		}
		busy, _, err := tx.ListDSWSnapshots(meta.DSWSnapshotFilter{AccountID: c.AccountID, InstanceID: in.ID,
			Statuses: []string{SnapshotSaving, SnapshotPushing}, Page: meta.Page{Limit: 1}})
		if err != nil {
			return nil, err
		}
		if len(busy) > 0 {
			return nil, invalid("The snapshot %s of the instance is still under way.", busy[0].ID)
		}
		return in, nil
	}
	if err := s.store.View(ctx, func(tx meta.Tx) error { _, err := check(tx); return err }); err != nil {
		return nil, wrap(err)
	}
	if !b.Overwrite {
		cctx, cancel := context.WithTimeout(ctx, s.cfg.CheckTimeout)
		exists, err := s.builder.Exists(cctx, target)
		cancel()
		if err == nil && exists {
			return nil, invalid("The image %s already exists; set Overwrite to true to replace it.", target.Name)
		}
		// A registry that cannot be asked now is asked again before the
		// push; the snapshot then fails with a reason.
	}
	now := s.clock.Now()
	sn := &meta.DSWSnapshot{ID: newID("snp"), AccountID: c.AccountID, Name: b.SnapshotName, Description: b.SnapshotDescription,
		ImageURL: target.Name, Embedded: target.Embedded, Labels: lbls, ExcludePaths: exclude, Overwrite: b.Overwrite,
		Status: SnapshotSaving, CreatedAt: now, ModifiedAt: now}
	var in *meta.DSWInstance
	err = s.store.Update(ctx, func(tx meta.Tx) error {
		var err error
		if in, err = check(tx); err != nil {
			return err
		}
		sn.InstanceID = in.ID
		return tx.PutDSWSnapshot(sn)
	})
	if err != nil {
		return nil, wrap(err)
	}
	s.startJob(in, sn)
	return &SnapshotIDReply{InstanceId: in.ID, SnapshotId: sn.ID}, nil
}

// loadSnapshot reads a snapshot of the instance named in the path.
func loadSnapshot(tx meta.Tx, c *Call) (*meta.DSWSnapshot, error) {
	inst, id := c.Path["InstanceId"], c.Path["SnapshotId"]
	if _, err := tx.GetDSWInstance(c.AccountID, inst); err != nil {
		return nil, notFound(err, instanceNotFound(inst))
	}
	sn, err := tx.GetDSWSnapshot(c.AccountID, id)
	if err == nil && sn.InstanceID != inst {
		return nil, snapshotNotFound(inst, id)
	}
	return sn, notFound(err, snapshotNotFound(inst, id))
}

// GetInstanceSnapshot implements GET
// /api/v2/instances/{InstanceId}/snapshots/{SnapshotId}.
func (s *Service) GetInstanceSnapshot(ctx context.Context, c *Call) (any, error) {
	var reply *SnapshotReply
	err := s.store.View(ctx, func(tx meta.Tx) error {
		sn, err := loadSnapshot(tx, c)
		if err == nil {
			reply = &SnapshotReply{Snapshot: snapshotView(sn)}
		}
		return err
	})
	return reply, wrap(err)
}

// ListInstanceSnapshot implements GET
// /api/v2/instances/{InstanceId}/snapshots: PageNumber, PageSize, SortBy
// (gmtCreate, the default, or gmtModified) and Order (DESC default, ASC).
func (s *Service) ListInstanceSnapshot(ctx context.Context, c *Call) (any, error) {
	page, err := paging(c.Query)
	if err != nil {
		return nil, err
	}
	asc, err := order(c.Query)
	if err != nil {
		return nil, err
	}
	f := meta.DSWSnapshotFilter{AccountID: c.AccountID, InstanceID: c.Path["InstanceId"], Ascending: asc, Page: page}
	switch c.Query.Get("SortBy") {
	case "", "gmtCreate", "GmtCreateTime":
		f.SortBy = meta.DSWSortCreated
	case "gmtModified", "GmtModifiedTime":
		f.SortBy = meta.DSWSortModified
	default:
		return nil, invalid("SortBy %q is not valid: gmtCreate or gmtModified.", c.Query.Get("SortBy"))
	}
	reply := &SnapshotList{Snapshots: []Snapshot{}}
	err = s.store.View(ctx, func(tx meta.Tx) error {
		if _, err := s.loadInstance(tx, c); err != nil {
			return err
		}
		snaps, n, err := tx.ListDSWSnapshots(f)
		for _, sn := range snaps {
			reply.Snapshots = append(reply.Snapshots, snapshotView(sn))
		}
		reply.TotalCount = int64(n)
		return err
	})
	return reply, wrap(err)
}

// DeleteInstanceSnapshot implements DELETE
// /api/v2/instances/{InstanceId}/snapshots/{SnapshotId}: the record goes
// and a snapshot under way is cancelled; an image already pushed stays in
// its registry.
func (s *Service) DeleteInstanceSnapshot(ctx context.Context, c *Call) (any, error) {
	var id string
	err := s.store.Update(ctx, func(tx meta.Tx) error {
		sn, err := loadSnapshot(tx, c)
		if err != nil {
			return err
		}
		id = sn.ID
		return tx.DeleteDSWSnapshot(c.AccountID, sn.ID)
	})
	if err != nil {
		return nil, wrap(err)
	}
	s.cancelJob(id)
	return &SnapshotIDReply{InstanceId: c.Path["InstanceId"], SnapshotId: id}, nil
}
