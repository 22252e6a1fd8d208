package ecs

import (
	"context"
	"time"

	"github.com/snapstack/snapstack/internal/apierr"
	"github.com/snapstack/snapstack/internal/clock"
	"github.com/snapstack/snapstack/internal/meta"
	"github.com/snapstack/snapstack/internal/param"
)

// The snapshot core, shared by the products built on ECS disks (EDS cloud
// computers reach the same disks and snapshots through a desktop). These
// functions carry the mechanics; each product keeps its own rules.

// Store returns the metadata store.
func (s *Service) Store() meta.Store { return s.store }

// Clock returns the service clock.
func (s *Service) Clock() clock.Clock { return s.clock }

// DataPlane returns the engine.
func (s *Service) DataPlane() Engine { return s.engine }

// Region resolves a request's region like the ECS actions do.
func (s *Service) Region(p param.Values) (Region, error) { return s.region(p, "") }

// RegionByID returns a configured region.
func (s *Service) RegionByID(id string) (Region, bool) {
	r, ok := s.regions[id]
	return r, ok
}

// NewResourceID returns a new ID of the given prefix in a region.
func (s *Service) NewResourceID(prefix string, r Region) string { return newID(prefix, r.IDCode) }

// Deadline is when a transition started now ends.
func (s *Service) Deadline(now time.Time) time.Time { return s.transition(now) }

// SettleInstance moves an instance to its target state when due.
func SettleInstance(inst *meta.Instance, now time.Time) bool { return settleInstance(inst, now) }

// SettleDisk moves a disk to its target state when due.
func SettleDisk(d *meta.Disk, now time.Time) bool { return settleDisk(d, now) }

// DefaultResourceGroup returns the caller's default resource group.
func (s *Service) DefaultResourceGroup(tx meta.Tx, c Caller) (string, error) {
	return s.resourceGroup(tx, c, "")
}

// SnapshotInProgress reports whether disk d has a snapshot in progress.
func SnapshotInProgress(tx meta.Tx, d *meta.Disk) (bool, error) {
	_, n, err := tx.ListSnapshots(meta.SnapshotFilter{AccountID: d.AccountID, Product: d.Product, DiskID: d.ID, Status: SnapProgressing})
	return n > 0, err
}

// ResetUnderWay reports whether a disk attached to an instance (of any
// product) is being reset (BeginReset) as of now.
func ResetUnderWay(tx meta.Tx, accountID, instanceID string, now time.Time) (bool, error) {
	_, n, err := tx.ListDisks(meta.DiskFilter{AccountID: accountID, Product: meta.AnyProduct, InstanceID: instanceID, Status: DiskReIniting, Now: now})
	return n > 0, err
}

// CheckSnapshotSlot applies the shared per-disk rules of a new manual
// snapshot: no other snapshot of the disk in progress, and the quota.
func (s *Service) CheckSnapshotSlot(tx meta.Tx, d *meta.Disk) error {
	if busy, err := SnapshotInProgress(tx, d); err != nil {
		return err
	} else if busy {
		return apierr.DiskCreatingSnapshot
	}
	if _, n, err := tx.ListSnapshots(meta.SnapshotFilter{AccountID: d.AccountID, Product: d.Product, DiskID: d.ID, Type: "user"}); err != nil {
		return err
	} else if n >= s.cfg.SnapshotQuotaPerDisk {
		return apierr.QuotaExceedSnapshot.WithMessagef("The snapshot quota exceeds: a disk can have at most %d manual snapshots.", s.cfg.SnapshotQuotaPerDisk)
	}
	return nil
}

// StartSnapshot hands a committed, progressing snapshot to the engine,
// which fixes its point in time and uploads it; progress and the end are
// recorded on the snapshot. On failure the snapshot record is removed and
// CreateSnapshot.Failed returned.
func (s *Service) StartSnapshot(ctx context.Context, snap *meta.Snapshot) error {
	return s.startSnapshot(ctx, snap, "")
}

// startSnapshot is StartSnapshot; on failure it also frees the request's
// ClientToken (if any) for a retry.
func (s *Service) startSnapshot(ctx context.Context, snap *meta.Snapshot, token string) error {
	if err := s.engine.StartSnapshot(ctx, snapshotJob(snap), s.reporter(snap.AccountID, snap.ID)); err != nil {
		s.abandon(snap.AccountID, snap.ID, token, err)
		return apierr.CreateSnapshotFailed.WithCause(err)
	}
	return nil
}

func snapshotJob(snap *meta.Snapshot) SnapshotJob {
	return SnapshotJob{SnapshotID: snap.ID, DiskID: snap.DiskID, SizeBytes: int64(snap.DiskSizeGiB) << 30}
}

// SnapshotProgress renders a snapshot's Progress ("37%").
func SnapshotProgress(snap *meta.Snapshot) string { return progressString(snap) }

// TimeString renders a time as the APIs do (yyyy-MM-ddTHH:mm:ssZ).
func TimeString(t time.Time) string { return timeStr(t) }

// MinuteString renders a time with minute precision (yyyy-MM-ddTHH:mmZ).
func MinuteString(t time.Time) string { return minuteStr(t) }

// ReleaseDisks deletes the data of disks whose records are gone.
func (s *Service) ReleaseDisks(ctx context.Context, ids []string) { s.releaseDisks(ctx, ids) }

// FailSnapshotsOf ends a disk's snapshots in progress as failed.
func (s *Service) FailSnapshotsOf(tx meta.Tx, d *meta.Disk, reason string) error {
	return s.failSnapshotsOf(tx, d, reason)
}

// Regions returns the configured regions.
func (s *Service) Regions() []Region { return s.cfg.Regions }

// TokenPage is a NextToken/MaxResults page (the token format of the ECS
// actions).
type TokenPage struct {
	meta.Page
	pg paging
}

// ParseTokenPage reads NextToken and MaxResults (1..max, default def);
// PageNumber and PageSize are not read.
func ParseTokenPage(p param.Values, max, def int) (TokenPage, error) {
	return parseTokenPage(p, max, def, false)
}

// ParsePage reads NextToken and MaxResults (1..max, default def), or,
// when neither is given, PageNumber and PageSize (spec 0.2, "Both").
func ParsePage(p param.Values, max, def int) (TokenPage, error) {
	return parseTokenPage(p, max, def, true)
}

func parseTokenPage(p param.Values, max, def int, pageParams bool) (TokenPage, error) {
	pg, err := parsePaging(p, pagingLimits{min: 1, max: max, def: def})
	if err != nil {
		return TokenPage{}, err
	}
	if !pg.token && !pageParams {
		pg.Offset, pg.Limit, pg.Size = 0, def, def
	}
	return TokenPage{Page: pg.Page, pg: pg}, nil
}

// TagFilters decodes Tag.N.Key/Value filters as the ECS listings do.
func TagFilters(p param.Values) ([]meta.TagFilter, error) { return tagFilters(p) }

// Next returns the NextToken after a page of n items out of total.
func (t TokenPage) Next(n, total int) string { return t.pg.next(n, total) }
