package ecs

import (
	"context"
	"errors"
	"time"

	"github.com/snapstack/snapstack/internal/apierr"
	"github.com/snapstack/snapstack/internal/meta"
)

// Instance and disk states.
const (
	InstancePending  = "Pending"
	InstanceStarting = "Starting"
	InstanceRunning  = "Running"
	InstanceStopping = "Stopping"
	InstanceStopped  = "Stopped"

	DiskCreating  = "Creating"
	DiskAvailable = "Available"
	DiskAttaching = "Attaching"
	DiskInUse     = "In_use"
	DiskDetaching = "Detaching"
	DiskReIniting = "ReIniting"

	SnapProgressing  = "progressing"
	SnapAccomplished = "accomplished"
	SnapFailed       = "failed"
)

// Transitions are stored as (Status, TargetStatus, SettleAt) and settled
// lazily by whoever reads the record: crash-safe, and exact under a fake
// clock.

func (s *Service) transition(now time.Time) time.Time { return now.Add(s.cfg.TransitionDelay) }

// settleInstance moves inst to its target state when due and reports
// whether it changed.
func settleInstance(inst *meta.Instance, now time.Time) bool {
	if inst.TargetStatus == "" || inst.SettleAt.After(now) {
		return false
	}
	inst.Status = inst.TargetStatus
	if inst.Status == InstanceRunning {
		inst.EverStarted = true
		inst.StartedAt = inst.SettleAt
	}
	inst.TargetStatus, inst.SettleAt = "", time.Time{}
	return true
}

func settleDisk(d *meta.Disk, now time.Time) bool {
	if d.TargetStatus == "" || d.SettleAt.After(now) {
		return false
	}
	d.Status = d.TargetStatus
	d.TargetStatus, d.SettleAt = "", time.Time{}
	return true
}

// ecsProduct is the Product of ECS records. The products share one ID
// space, not their resources: an ECS action given the ID of an EDS
// desktop, or of its disks or snapshots, answers NotFound, as Alibaba
// Cloud does.
const ecsProduct = ""

// loadInstance reads an instance of product (meta.AnyProduct: of any),
// settled as of now. In a write transaction the settled state is stored,
// and disks attached to an instance that reached Running are marked used.
func (s *Service) loadInstance(tx meta.Tx, product, accountID, id string, write bool) (*meta.Instance, error) {
	inst, err := tx.GetInstance(accountID, id)
	if errors.Is(err, meta.ErrNotFound) || (err == nil && !ofProduct(inst.Product, product)) {
		return nil, apierr.InstanceNotFound
	}
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	if settleInstance(inst, now) && write {
		if err := tx.PutInstance(inst); err != nil {
			return nil, err
		}
		if inst.Status == InstanceRunning {
			if err := s.markDisksUsed(tx, inst); err != nil {
				return nil, err
			}
		}
	}
	return inst, nil
}

func (s *Service) markDisksUsed(tx meta.Tx, inst *meta.Instance) error {
	disks, _, err := tx.ListDisks(meta.DiskFilter{AccountID: inst.AccountID, Product: inst.Product, InstanceID: inst.ID})
	if err != nil {
		return err
	}
	for _, d := range disks {
		settleDisk(d, s.clock.Now())
		if !d.Used {
			d.Used = true
			if err := tx.PutDisk(d); err != nil {
				return err
			}
		}
	}
	return nil
}

// loadDisk reads a disk of product (meta.AnyProduct: of any) settled as
// of now (stored when write).
func (s *Service) loadDisk(tx meta.Tx, product, accountID, id string, write bool) (*meta.Disk, error) {
	d, err := tx.GetDisk(accountID, id)
	if errors.Is(err, meta.ErrNotFound) || (err == nil && !ofProduct(d.Product, product)) {
		return nil, apierr.DiskNotFound
	}
	if err != nil {
		return nil, err
	}
	if settleDisk(d, s.clock.Now()) && write {
		if err := tx.PutDisk(d); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// ofProduct reports whether a record of product have is one of want.
func ofProduct(have, want string) bool { return want == meta.AnyProduct || have == want }

// diskUsed reports whether a disk has been used: attached to an instance
// while that instance ran. The instance may have reached Running since the
// disk record was last written, so it is checked too.
func diskUsed(d *meta.Disk, inst *meta.Instance) bool {
	if d.Used {
		return true
	}
	return inst != nil && d.InstanceID == inst.ID && inst.Status == InstanceRunning && d.Status == DiskInUse
}

// Exportable reports whether a disk may be served over NBD now: it is
// In_use on an instance that is Running. NBD carries no credentials; the
// data plane listens on a trusted network (loopback by default).
func (s *Service) Exportable(ctx context.Context, diskID string) (bool, error) {
	ok := false
	err := s.store.View(ctx, func(tx meta.Tx) error {
		d, err := tx.FindDisk(diskID)
		if errors.Is(err, meta.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		now := s.clock.Now()
		settleDisk(d, now)
		if d.InstanceID == "" || d.Status != DiskInUse {
			return nil
		}
		inst, err := tx.GetInstance(d.AccountID, d.InstanceID)
		if err != nil {
			return err
		}
		settleInstance(inst, now)
		ok = inst.Status == InstanceRunning
		return nil
	})
	return ok, err
}

// ExportableDisks lists the disks Exportable would accept (NBD_OPT_LIST).
func (s *Service) ExportableDisks(ctx context.Context) ([]string, error) {
	var out []string
	err := s.store.View(ctx, func(tx meta.Tx) error {
		accs, err := tx.ListAccounts()
		if err != nil {
			return err
		}
		now := s.clock.Now()
		for _, a := range accs {
			insts, _, err := tx.ListInstances(meta.InstanceFilter{AccountID: a.ID, Product: meta.AnyProduct, Status: InstanceRunning, Now: now})
			if err != nil {
				return err
			}
			for _, inst := range insts {
				disks, _, err := tx.ListDisks(meta.DiskFilter{AccountID: a.ID, Product: meta.AnyProduct, InstanceID: inst.ID, Status: DiskInUse, Now: now})
				if err != nil {
					return err
				}
				for _, d := range disks {
					out = append(out, d.ID)
				}
			}
		}
		return nil
	})
	return out, err
}
