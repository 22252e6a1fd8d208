package ecs

import (
	"context"
	"errors"
	"time"

	"github.com/snapstack/snapstack/internal/apierr"
	"github.com/snapstack/snapstack/internal/meta"
	"github.com/snapstack/snapstack/internal/param"
)

// loadSnapshot reads an ECS snapshot of the caller; NotFound when
// missing, another product's (see ecsProduct) or in another region than
// an explicit RegionId.
func loadSnapshot(tx meta.Tx, c Caller, p param.Values, id string) (*meta.Snapshot, error) {
	snap, err := tx.GetSnapshot(c.AccountID, id)
	if errors.Is(err, meta.ErrNotFound) || (err == nil && (snap.Product != ecsProduct || !sameRegion(p, snap.RegionID))) {
		return nil, apierr.SnapshotNotFound
	}
	return snap, err
}

// DeleteSnapshot deletes a snapshot (cancelling it when in progress).
// A snapshot that created disks needs Force=true.
func (s *Service) DeleteSnapshot(ctx context.Context, c Caller, p param.Values) (any, error) {
	id, err := p.Required("SnapshotId")
	if err != nil {
		return nil, err
	}
	force, _, err := BoolParam(p, "Force")
	if err != nil {
		return nil, err
	}
	err = s.store.Update(ctx, func(tx meta.Tx) error {
		snap, err := loadSnapshot(tx, c, p, id)
		if err != nil {
			return err
		}
		switch snap.Usage {
		case "image", "image_disk":
			return apierr.SnapshotCreatedImage
		case "disk":
			if !force {
				return apierr.SnapshotCreatedDisk
			}
		}
		return tx.DeleteSnapshot(c.AccountID, id)
	})
	if err != nil {
		return nil, wrap(err)
	}
	// The record is gone: release the data even if the caller hangs up
	// now (the request's context would stop the release half-way).
	if err := s.engine.DeleteSnapshot(context.WithoutCancel(ctx), id); err != nil {
		s.log.Error("release snapshot data", "snapshot", id, "err", err)
	}
	return &param.Response{}, nil
}

// ModifySnapshotAttribute changes name, description or retention.
func (s *Service) ModifySnapshotAttribute(ctx context.Context, c Caller, p param.Values) (any, error) {
	id, err := p.Required("SnapshotId")
	if err != nil {
		return nil, err
	}
	name, hasName := p.String("SnapshotName"), p.Has("SnapshotName") && p.String("SnapshotName") != ""
	if err := checkSnapshotName(name); err != nil {
		return nil, err
	}
	desc, hasDesc := p.String("Description"), p.Has("Description")
	if !validModifiedDescription(desc) {
		return nil, apierr.InvalidDescription
	}
	days, err := retentionDays(p)
	if err != nil {
		return nil, err
	}
	disableIA, hasDisableIA, err := p.Bool("DisableInstantAccess", apierr.New("InvalidSnapshotDisableInstantAccess.Malformed", 404, "The specified parameter DisableInstantAccess is not valid."))
	if err != nil {
		return nil, err
	}
	if !hasName && !hasDesc && days == 0 && !hasDisableIA {
		return nil, apierr.NoAttributeToModify
	}
	err = s.store.Update(ctx, func(tx meta.Tx) error {
		snap, err := loadSnapshot(tx, c, p, id)
		if err != nil {
			return err
		}
		if hasName {
			snap.Name = name
		}
		if hasDesc {
			snap.Description = desc
		}
		if days > 0 {
			if snap.RetentionDays == 0 || days < snap.RetentionDays {
				return apierr.DecreaseRetentionDays
			}
			snap.RetentionDays = days
			snap.ExpiresAt = snap.CreatedAt.Add(time.Duration(days) * 24 * time.Hour)
		}
		if hasDisableIA && disableIA {
			snap.InstantAccess, snap.InstantAccessRetentionDays = false, 0
		}
		snap.ModifiedAt = s.clock.Now()
		return tx.PutSnapshot(snap)
	})
	if err != nil {
		return nil, wrap(err)
	}
	return &param.Response{}, nil
}

// ResetDisk rolls a disk back to one of its own accomplished snapshots.
func (s *Service) ResetDisk(ctx context.Context, c Caller, p param.Values) (any, error) {
	diskID, err := p.Required("DiskId")
	if err != nil {
		return nil, err
	}
	snapID, err := p.Required("SnapshotId")
	if err != nil {
		return nil, err
	}
	dry, _, err := BoolParam(p, "DryRun")
	if err != nil {
		return nil, err
	}
	err = s.store.Update(ctx, func(tx meta.Tx) error {
		acc, err := tx.GetAccount(c.AccountID)
		if err != nil {
			return err
		}
		if acc.SnapshotServiceUnavailable {
			return apierr.SnapshotServiceUnavailable
		}
		if acc.NotEnoughBalance {
			return apierr.NotEnoughBalance
		}
		d, err := s.loadDisk(tx, ecsProduct, c.AccountID, diskID, true)
		if err != nil {
			return err
		}
		if !sameRegion(p, d.RegionID) {
			return apierr.DiskNotFound
		}
		snap, err := loadSnapshot(tx, c, p, snapID)
		if err != nil {
			return err
		}
		if snap.DiskID != d.ID {
			return apierr.SnapshotParamMismatch
		}
		if localCategories[d.Category] {
			return apierr.DiskCategoryNotSupported
		}
		if d.Status != DiskInUse && d.Status != DiskAvailable {
			return apierr.IncorrectDiskStatus
		}
		if d.InstanceID != "" {
			inst, err := s.loadInstance(tx, ecsProduct, c.AccountID, d.InstanceID, true)
			if err != nil {
				return err
			}
			if inst.SecurityLocked {
				return apierr.InstanceLockedForSecurity
			}
			if inst.Status != InstanceStopped {
				return apierr.InstanceIncorrectStatus
			}
		}
		if busy, err := SnapshotInProgress(tx, d); err != nil {
			return err
		} else if busy {
			return apierr.DiskHasUnfinishedSnapshot
		}
		if snap.Status != SnapAccomplished {
			return apierr.SnapshotNotReady
		}
		if dry {
			return apierr.DryRunOperation
		}
		return BeginReset(tx, d)
	})
	if err != nil {
		return nil, wrap(err)
	}
	if err := s.Restore(ctx, c.AccountID, diskID, snapID); err != nil {
		return nil, apierr.Internal(err)
	}
	return &param.Response{}, nil
}

// BeginReset marks a disk ReIniting until the restore of a snapshot onto
// it ends (Restore): meanwhile it is not exported over NBD, its instance
// does not start, and nothing else changes it. Called in the transaction
// that checked the reset is allowed.
func BeginReset(tx meta.Tx, d *meta.Disk) error {
	// No target status: the mark lasts until Restore ends it.
	d.TargetStatus, d.SettleAt, d.Status = "", time.Time{}, DiskReIniting
	return tx.PutDisk(d)
}

// restingStatus is the status a disk returns to after a reset.
func restingStatus(d *meta.Disk) string {
	if d.InstanceID != "" {
		return DiskInUse
	}
	return DiskAvailable
}

// Restore restores snapshot snapID onto a disk marked by BeginReset and
// ends the mark: after a restore the disk stays ReIniting for the usual
// transition, after a failed one it returns to its status at once. A
// crash between the two leaves the mark to Resume.
func (s *Service) Restore(ctx context.Context, accountID, diskID, snapID string) error {
	rerr := s.engine.RestoreDisk(ctx, diskID, snapID)
	err := s.store.Update(context.WithoutCancel(ctx), func(tx meta.Tx) error {
		d, err := tx.GetDisk(accountID, diskID)
		if errors.Is(err, meta.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if d.Status != DiskReIniting || d.TargetStatus != "" {
			return nil
		}
		if rerr == nil {
			d.TargetStatus, d.SettleAt = restingStatus(d), s.transition(s.clock.Now())
		} else {
			d.Status = restingStatus(d)
		}
		return tx.PutDisk(d)
	})
	if rerr != nil {
		return rerr
	}
	return err
}

// endInterruptedResets ends the ReIniting marks a crash left (see
// Restore): the restore either happened or not, atomically, and the
// reset was never acknowledged.
func (s *Service) endInterruptedResets(ctx context.Context) error {
	return s.store.Update(ctx, func(tx meta.Tx) error {
		accs, err := tx.ListAccounts()
		if err != nil {
			return err
		}
		for _, a := range accs {
			list, _, err := tx.ListDisks(meta.DiskFilter{AccountID: a.ID, Product: meta.AnyProduct, Status: DiskReIniting, Now: s.clock.Now()})
			if err != nil {
				return err
			}
			for _, d := range list {
				if d.TargetStatus != "" {
					continue
				}
				s.log.Warn("a disk reset was interrupted; the disk is back in service", "disk", d.ID)
				d.Status = restingStatus(d)
				if err := tx.PutDisk(d); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// ExpireSnapshots releases every snapshot whose RetentionDays have passed
// and returns how many it released.
func (s *Service) ExpireSnapshots(ctx context.Context) (int, error) {
	released := 0
	for {
		var batch []*meta.Snapshot
		err := s.store.Update(ctx, func(tx meta.Tx) error {
			list, err := tx.ExpiredSnapshots(s.clock.Now(), 100)
			if err != nil {
				return err
			}
			for _, snap := range list {
				if err := tx.DeleteSnapshot(snap.AccountID, snap.ID); err != nil {
					return err
				}
			}
			batch = list
			return nil
		})
		if err != nil {
			return released, err
		}
		for _, snap := range batch {
			s.log.Info("snapshot retention ended", "snapshot", snap.ID)
			if err := s.engine.DeleteSnapshot(context.WithoutCancel(ctx), snap.ID); err != nil {
				s.log.Error("release snapshot data", "snapshot", snap.ID, "err", err)
			}
		}
		released += len(batch)
		if len(batch) < 100 {
			return released, nil
		}
	}
}

// RunRetention calls ExpireSnapshots every interval until ctx ends.
func (s *Service) RunRetention(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := s.ExpireSnapshots(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("retention", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
