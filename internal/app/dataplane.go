package app

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/snapstack/snapstack/internal/api"
	"github.com/snapstack/snapstack/internal/apierr"
	"github.com/snapstack/snapstack/internal/ecs"
	"github.com/snapstack/snapstack/internal/engine"
	"github.com/snapstack/snapstack/internal/meta"
	"github.com/snapstack/snapstack/internal/nbd"
	"github.com/snapstack/snapstack/internal/param"
	"github.com/snapstack/snapstack/internal/registry"
)

// exports serves a disk over NBD while it is In_use on a Running
// instance; the export name is the disk ID.
type exports struct {
	svc *ecs.Service
	eng *engine.Engine
}

func (x exports) Open(ctx context.Context, name string) (nbd.Device, bool, func(), error) {
	ok, err := x.svc.Exportable(ctx, name)
	if err != nil {
		return nil, false, nil, err
	}
	if !ok {
		return nil, false, nil, nbd.ErrUnknownExport
	}
	v, err := x.eng.Volume(name)
	if err != nil {
		return nil, false, nil, nbd.ErrUnknownExport
	}
	return v, false, func() {}, nil
}

func (x exports) List(ctx context.Context) []string {
	ids, _ := x.svc.ExportableDisks(ctx)
	return ids
}

// collectLoop removes unreferenced chunks, and the registry's
// unreferenced blobs, every interval.
func collectLoop(ctx context.Context, eng *engine.Engine, reg *registry.Registry, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := eng.Collect(ctx); err != nil && ctx.Err() == nil {
				log.Error("collect chunks", "err", err)
			} else if n > 0 {
				log.Info("collected chunks", "removed", n)
			}
			if reg == nil {
				continue
			}
			if c, err := reg.Collect(ctx); err != nil && ctx.Err() == nil {
				log.Error("collect registry blobs", "err", err)
			} else if c.Blobs > 0 {
				log.Info("collected registry blobs", "removed", c.Blobs, "bytes", c.Bytes)
			}
		}
	}
}

// VerifyResponse is the reply of the VerifySnapshot admin action.
type VerifyResponse struct {
	param.Response
	SnapshotId     string
	CheckedChunks  int // data chunks whose objects are all intact
	CheckedObjects int // distinct stored objects read intact
	DamagedChunks  int // data chunks with a damaged, missing or unreadable object
	Healthy        bool
	Problem        string // the first damaged chunk, without host details
}

// CollectResponse is the reply of the CollectGarbage admin action.
type CollectResponse struct {
	param.Response
	RemovedChunks        int
	RemovedRegistryBlobs int   // of the embedded registry
	RemovedRegistryBytes int64 // their size
}

// dataAdmin are the admin actions of the data plane; reg is the embedded
// registry (nil: none).
func dataAdmin(eng *engine.Engine, store meta.Store, reg *registry.Registry, log *slog.Logger) map[string]api.Handler {
	return map[string]api.Handler{
		"VerifySnapshot": func(ctx context.Context, c ecs.Caller, p param.Values) (any, error) {
			id, err := p.Required("SnapshotId")
			if err != nil {
				return nil, err
			}
			// A caller verifies its own account's snapshots only.
			err = store.View(ctx, func(tx meta.Tx) error {
				_, err := tx.GetSnapshot(c.AccountID, id)
				return err
			})
			if errors.Is(err, meta.ErrNotFound) {
				return nil, apierr.SnapshotNotFound
			} else if err != nil {
				return nil, apierr.Internal(err)
			}
			n, verr := eng.Verify(ctx, id)
			r := &VerifyResponse{SnapshotId: id, CheckedChunks: n.Chunks, CheckedObjects: n.Objects, DamagedChunks: n.Damaged, Healthy: verr == nil}
			var problem *engine.ChunkProblem
			switch {
			case verr == nil:
			case errors.Is(verr, engine.ErrNoSnapshotData):
				return nil, apierr.SnapshotNotFound.WithMessage("The snapshot has no stored data (not found, or not uploaded yet).")
			case errors.As(verr, &problem):
				r.Problem = problem.Public()
				log.Warn("verify: damaged snapshot", "snapshot", id, "damaged_chunks", n.Damaged, "first", verr)
			default:
				return nil, apierr.Internal(verr)
			}
			return r, nil
		},
		"CollectGarbage": func(ctx context.Context, c ecs.Caller, p param.Values) (any, error) {
			n, err := eng.Collect(ctx)
			if err != nil {
				return nil, apierr.Internal(err)
			}
			r := &CollectResponse{RemovedChunks: n}
			if reg != nil {
				c, err := reg.Collect(ctx)
				if err != nil {
					return nil, apierr.Internal(err)
				}
				r.RemovedRegistryBlobs, r.RemovedRegistryBytes = c.Blobs, c.Bytes
			}
			return r, nil
		},
	}
}
