package dsw

import (
	"context"
	"os"

	"github.com/snapstack/snapstack/internal/meta"
)

// StartInstance implements PUT /api/v2/instances/{InstanceId}/start: a
// Stopped or Failed instance goes Starting -> Running.
func (s *Service) StartInstance(ctx context.Context, c *Call) (any, error) {
	return s.changeState(ctx, c, "StartInstance", []string{StatusStopped, StatusFailed}, StatusStarting, StatusRunning)
}

// StopInstance implements PUT /api/v2/instances/{InstanceId}/stop: a
// Running instance goes Stopping -> Stopped. SaveImage is accepted and
// ignored (no image is saved; use CreateInstanceSnapshot).
func (s *Service) StopInstance(ctx context.Context, c *Call) (any, error) {
	if v := c.Query.Get("SaveImage"); v != "" && v != "true" && v != "false" {
		return nil, invalid("SaveImage %q is not valid: true or false.", v)
	}
	return s.changeState(ctx, c, "StopInstance", []string{StatusRunning}, StatusStopping, StatusStopped)
}

func (s *Service) changeState(ctx context.Context, c *Call, action string, from []string, via, to string) (any, error) {
	err := s.store.Update(ctx, func(tx meta.Tx) error {
		in, err := s.loadInstance(tx, c)
		if err != nil {
			return err
		}
		ok := false
		for _, f := range from {
			ok = ok || in.Status == f
		}
		if !ok {
			return invalid("The instance is %s; %s needs it %s.", in.Status, action, orList(from))
		}
		s.transition(in, via, to, s.clock.Now())
		return tx.PutDSWInstance(in)
	})
	if err != nil {
		return nil, wrap(err)
	}
	return &IDReply{InstanceId: c.Path["InstanceId"]}, nil
}

func orList(ss []string) string {
	out := ""
	for i, s := range ss {
		switch {
		case i == 0:
		case i == len(ss)-1:
			out += " or "
		default:
			out += ", "
		}
		out += s
	}
	return out
}

// DeleteInstance implements DELETE /api/v2/instances/{InstanceId}: the
// instance and its snapshot records go (pushed images stay in their
// registries); a managed upper directory is removed, a host path is left
// alone. An instance with a snapshot under way cannot be deleted.
func (s *Service) DeleteInstance(ctx context.Context, c *Call) (any, error) {
	var in *meta.DSWInstance
	err := s.store.Update(ctx, func(tx meta.Tx) error {
		var err error
		if in, err = s.loadInstance(tx, c); err != nil {
			return err
		}
		busy, _, err := tx.ListDSWSnapshots(meta.DSWSnapshotFilter{AccountID: c.AccountID, InstanceID: in.ID,
			Statuses: []string{SnapshotSaving, SnapshotPushing}, Page: meta.Page{Limit: 1}})
		if err != nil {
			return err
		}
		if len(busy) > 0 {
			return invalid("The snapshot %s of the instance is under way; delete it or wait until it ends.", busy[0].ID)
		}
		snaps, _, err := tx.ListDSWSnapshots(meta.DSWSnapshotFilter{AccountID: c.AccountID, InstanceID: in.ID})
		if err != nil {
			return err
		}
		for _, sn := range snaps {
			if err := tx.DeleteDSWSnapshot(c.AccountID, sn.ID); err != nil {
				return err
			}
		}
		return tx.DeleteDSWInstance(c.AccountID, in.ID)
	})
	if err != nil {
		return nil, wrap(err)
	}
	if in.ManagedDir {
		if err := os.RemoveAll(s.managedDir(in.ID)); err != nil {
			s.log.Error("dsw: remove instance directory", "instance", in.ID, "err", err)
		}
	}
	return &IDReply{InstanceId: in.ID}, nil
}
