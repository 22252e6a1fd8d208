package ecs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/snapstack/snapstack/internal/apierr"
	"github.com/snapstack/snapstack/internal/meta"
	"github.com/snapstack/snapstack/internal/param"
)

// CreateSnapshotResponse is the CreateSnapshot reply.
type CreateSnapshotResponse struct {
	param.Response
	SnapshotId string
}

// snapshotRequest is a decoded, validated CreateSnapshot request.
type snapshotRequest struct {
	diskID, name, description, category, resourceGroup, clientToken string
	retention, iaRetention                                          int
	instantAccess, hasCategory, hasInstantAccess                    bool
	tags                                                            []meta.Tag
}

// staleToken is how long a ClientToken may stay "processing" before a
// retry may take it over (the request that held it died).
const staleToken = time.Minute

// parseCreateSnapshot applies the parameter rules of seed 004.
func parseCreateSnapshot(p param.Values) (*snapshotRequest, error) {
	r := &snapshotRequest{}
	var err error
	if r.diskID, err = p.Required("DiskId"); err != nil {
		return nil, err
	}
	// Seed 002 prints the parameter as "SnapshopName"; real SDKs send
	// SnapshotName. Both are accepted.
	r.name = p.First("SnapshotName", "SnapshopName")
	if err := checkSnapshotName(r.name); err != nil {
		return nil, err
	}
	r.description = p.String("Description")
	if !validDescription(r.description) {
		return nil, apierr.InvalidDescription
	}
	if r.retention, err = retentionDays(p); err != nil {
		return nil, err
	}
	if c := p.String("Category"); c != "" {
		switch strings.ToLower(c) {
		case "standard", "flash":
			r.category, r.hasCategory = strings.ToLower(c), true
		default:
			return nil, apierr.InvalidSnapshotCategory
		}
	}
	ia, hasIA, err := BoolParam(p, "InstantAccess")
	if err != nil {
		return nil, err
	}
	r.instantAccess, r.hasInstantAccess = ia, hasIA
	if r.hasCategory && r.hasInstantAccess {
		return nil, apierr.InvalidCategoryAndInstant
	}
	n, hasIAR, err := p.Int("InstantAccessRetentionDays", apierr.InvalidInstantAccessRetention)
	if err != nil {
		return nil, err
	}
	if hasIAR && (n < 1 || n > maxIARetention) {
		return nil, apierr.InvalidInstantAccessRetention
	}
	if r.instantAccess {
		r.iaRetention = int(n)
		if !hasIAR {
			r.iaRetention = r.retention
		}
	}
	r.clientToken = p.String("ClientToken")
	if err := checkClientToken(r.clientToken); err != nil {
		return nil, err
	}
	if r.tags, err = parseTags(p); err != nil {
		return nil, err
	}
	r.resourceGroup = p.String("ResourceGroupId")
	return r, nil
}

// hash identifies the request for ClientToken comparison.
func (r *snapshotRequest) hash() string {
	tags := make([]string, len(r.tags))
	for i, t := range r.tags {
		tags[i] = t.Key + "=" + t.Value
	}
	sort.Strings(tags)
	h := sha256.Sum256([]byte(fmt.Sprintf("%q|%q|%q|%q|%q|%d|%d|%t|%t|%q",
		r.diskID, r.name, r.description, r.category, r.resourceGroup, r.retention, r.iaRetention, r.instantAccess, r.hasInstantAccess, tags)))
	return hex.EncodeToString(h[:])
}

// CreateSnapshot takes a snapshot of a disk: every rule and error code of
// seeds 004 and 002 (docs/compatibility.md lists them), then the engine
// fixes the point in time and uploads in the background.
func (s *Service) CreateSnapshot(ctx context.Context, c Caller, p param.Values) (any, error) {
	req, err := parseCreateSnapshot(p)
	if err != nil {
		return nil, err
	}
	var snap *meta.Snapshot
	var existing string
	var stall bool
	err = s.store.Update(ctx, func(tx meta.Tx) error {
		snap, existing, stall = nil, "", false
		if req.clientToken != "" {
			var err error
			if existing, err = s.claimToken(tx, c.AccountID, "CreateSnapshot", req.clientToken, req.hash()); err != nil || existing != "" {
				return err
			}
		}
		d, err := s.checkSnapshotAllowed(tx, c, p, req)
		if err != nil {
			return err
		}
		now := s.clock.Now()
		rg := req.resourceGroup
		if rg == "" {
			rg = d.ResourceGroupID
		} else if _, err := tx.GetResourceGroup(c.AccountID, rg); err != nil {
			return apierr.ResourceGroupNotFound
		}
		cat := "standard"
		if req.category == "flash" {
			cat = "flash"
		}
		snap = &meta.Snapshot{ID: newID("s", s.regions[d.RegionID].IDCode), AccountID: c.AccountID, RegionID: d.RegionID,
			Name: req.name, Description: req.description, DiskID: d.ID, DiskType: d.Type, DiskCategory: d.Category,
			DiskSizeGiB: d.SizeGiB, InstanceID: d.InstanceID, Status: SnapProgressing, RetentionDays: req.retention,
			InstantAccess: req.instantAccess || cat == "flash", InstantAccessRetentionDays: req.iaRetention, Category: cat,
			Type: "user", Usage: "none", ResourceGroupID: rg, Encrypted: d.Encrypted, KMSKeyID: d.KMSKeyID,
			CreatedAt: now, ModifiedAt: now, Tags: req.tags}
		if req.retention > 0 {
			snap.ExpiresAt = now.Add(time.Duration(req.retention) * 24 * time.Hour)
		}
		if snap.InstantAccess && req.iaRetention > 0 {
			snap.InstantAccessExpiresAt = now.Add(time.Duration(req.iaRetention) * 24 * time.Hour)
		}
		stall = d.SnapshotStall
		return tx.PutSnapshot(snap)
	})
	if err != nil {
		return nil, wrap(err)
	}
	if existing != "" {
		return &CreateSnapshotResponse{SnapshotId: existing}, nil
	}
	if stall {
		if err := s.waitStall(ctx, c.AccountID, snap.DiskID); err != nil {
			s.abandon(c.AccountID, snap.ID, req.clientToken, err)
			return nil, apierr.CreateSnapshotFailed.WithCause(err)
		}
	}
	if err := s.startSnapshot(ctx, snap, req.clientToken); err != nil {
		return nil, err
	}
	if req.clientToken != "" {
		err := s.store.Update(context.WithoutCancel(ctx), func(tx meta.Tx) error {
			return settleToken(tx, c.AccountID, "CreateSnapshot", req.clientToken, snap.ID)
		})
		if err != nil {
			return nil, wrap(err)
		}
	}
	return &CreateSnapshotResponse{SnapshotId: snap.ID}, nil
}

// checkSnapshotAllowed applies the state rules of seeds 004 and 002 to
// the disk, its instance and the account, in the order a user would fix
// them: account, disk identity and kind, disk state, instance, then the
// per-disk limits.
func (s *Service) checkSnapshotAllowed(tx meta.Tx, c Caller, p param.Values, req *snapshotRequest) (*meta.Disk, error) {
	acc, err := tx.GetAccount(c.AccountID)
	if err != nil {
		return nil, err
	}
	if acc.SnapshotServiceUnavailable {
		return nil, apierr.SnapshotServiceUnavailable
	}
	if acc.NotEnoughBalance {
		return nil, apierr.NotEnoughBalance
	}
	d, err := s.loadDisk(tx, ecsProduct, c.AccountID, req.diskID, true)
	if err != nil {
		return nil, err
	}
	if !sameRegion(p, d.RegionID) {
		return nil, apierr.DiskNotFound
	}
	switch {
	case d.VolumeMissing:
		return nil, apierr.VolumeNotFound
	case d.MultiAttach:
		return nil, apierr.DiskIDValueNotSupported
	case localCategories[d.Category]:
		return nil, apierr.DiskCategoryNotSupported
	case ephemeralCategories[d.Category]:
		return nil, apierr.DiskTypeNotSupport
	case req.instantAccess && !essd(d.Category):
		return nil, apierr.DiskCategoryNotSupported.WithMessage("The instant access feature is available only for ESSDs.")
	case req.category == "flash" && !essd(d.Category):
		return nil, apierr.DiskCategoryNotSupported.WithMessage("Local (Flash) snapshots are available only for ESSDs.")
	}
	if d.InArrears {
		return nil, apierr.DiskInArrears
	}
	if d.VolumeUnavailable {
		return nil, apierr.IncorrectVolumeStatus
	}
	if d.Transferring {
		return nil, apierr.DiskTransferring
	}
	if d.DeviceInvalid {
		return nil, apierr.DiskStatusInvalid
	}
	if d.Encrypted && acc.KMSUnauthorized {
		return nil, apierr.KMSUnauthorized
	}
	switch d.Status {
	case DiskInUse, DiskAvailable:
	default:
		return nil, apierr.IncorrectDiskStatus
	}
	if s.cfg.RequireInUseDisk && d.Status != DiskInUse {
		return nil, apierr.IncorrectDiskStatus
	}
	if !d.EverAttached {
		return nil, apierr.DiskNeverAttached
	}
	var inst *meta.Instance
	if d.InstanceLost {
		return nil, apierr.InstanceNotFound
	}
	if d.InstanceID != "" {
		inst, err = s.loadInstance(tx, ecsProduct, c.AccountID, d.InstanceID, true)
		if err != nil {
			return nil, err
		}
		if inst.SecurityLocked {
			return nil, apierr.InstanceLockedForSecurity
		}
	}
	// The instance's state comes first: the disks of a Pending instance
	// have not been used yet, and the table gives Pending as a way to
	// IncorrectInstanceStatus.
	if inst != nil && inst.Status != InstanceRunning && inst.Status != InstanceStopped {
		return nil, apierr.IncorrectInstanceStatus
	}
	if !diskUsed(d, inst) {
		return nil, apierr.DiskNeverUsed
	}
	if err := s.CheckSnapshotSlot(tx, d); err != nil {
		return nil, err
	}
	if d.SnapshotFail {
		return nil, apierr.CreateSnapshotFailed
	}
	return d, nil
}

// waitStall waits while the disk's SnapshotStall admin state is set.
func (s *Service) waitStall(ctx context.Context, accountID, diskID string) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		var stalled bool
		err := s.store.View(ctx, func(tx meta.Tx) error {
			d, err := tx.GetDisk(accountID, diskID)
			if err != nil {
				return err
			}
			stalled = d.SnapshotStall
			return nil
		})
		if err != nil || !stalled {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// abandon removes a snapshot whose seal failed, and frees its ClientToken.
func (s *Service) abandon(accountID, snapID, token string, cause error) {
	s.log.Error("snapshot seal failed", "snapshot", snapID, "err", cause)
	err := s.store.Update(context.Background(), func(tx meta.Tx) error {
		if err := tx.DeleteSnapshot(accountID, snapID); err != nil && !errors.Is(err, meta.ErrNotFound) {
			return err
		}
		if token != "" {
			return freeToken(tx, accountID, "CreateSnapshot", token)
		}
		return nil
	})
	if err != nil {
		s.log.Error("abandon snapshot", "snapshot", snapID, "err", err)
	}
}

// reporter returns the progress callback the engine calls for a snapshot.
func (s *Service) reporter(accountID, snapID string) func(Progress) {
	return func(pr Progress) {
		gone := false
		err := s.store.Update(context.Background(), func(tx meta.Tx) error {
			snap, err := tx.GetSnapshot(accountID, snapID)
			if errors.Is(err, meta.ErrNotFound) {
				gone = true // deleted meanwhile
				return nil
			}
			if err != nil {
				return err
			}
			if snap.Status != SnapProgressing {
				return nil
			}
			snap.ProgressDone, snap.ProgressTotal = pr.Done, pr.Total
			if pr.Finished {
				if pr.Err != nil {
					snap.Status, snap.FailReason = SnapFailed, "upload failed"
					s.log.Error("snapshot failed", "snapshot", snapID, "err", pr.Err)
				} else {
					snap.EngineDone = true
					held := false
					if d, err := tx.GetDisk(accountID, snap.DiskID); err == nil {
						held = d.SnapshotHold
					}
					if !held {
						snap.Status = SnapAccomplished
					}
				}
				snap.ModifiedAt = s.clock.Now()
			}
			return tx.PutSnapshot(snap)
		})
		if err != nil {
			s.log.Error("record snapshot progress", "snapshot", snapID, "err", err)
		}
		if gone && pr.Finished {
			// DeleteSnapshot released the data before the upload ended
			// (it may have stored its manifest since, or started only
			// after the delete): release what it left.
			if err := s.engine.DeleteSnapshot(context.Background(), snapID); err != nil {
				s.log.Error("release deleted snapshot's data", "snapshot", snapID, "err", err)
			}
		}
	}
}

// allSnapshots returns the snapshot records of every account and product
// with the given status ("" for any).
func (s *Service) allSnapshots(ctx context.Context, status string) ([]*meta.Snapshot, error) {
	var out []*meta.Snapshot
	err := s.store.View(ctx, func(tx meta.Tx) error {
		accs, err := tx.ListAccounts()
		if err != nil {
			return err
		}
		for _, a := range accs {
			list, _, err := tx.ListSnapshots(meta.SnapshotFilter{AccountID: a.ID, Product: meta.AnyProduct, Status: status})
			if err != nil {
				return err
			}
			out = append(out, list...)
		}
		return nil
	})
	return out, err
}

// Resume ends the disk resets a crash interrupted and restarts the engine
// on every snapshot still in progress; call it once at start.
func (s *Service) Resume(ctx context.Context) error {
	if err := s.endInterruptedResets(ctx); err != nil {
		return err
	}
	todo, err := s.allSnapshots(ctx, SnapProgressing)
	if err != nil {
		return err
	}
	for _, snap := range todo {
		if snap.EngineDone {
			continue // held by the admin; completes when released
		}
		if err := s.engine.StartSnapshot(ctx, snapshotJob(snap), s.reporter(snap.AccountID, snap.ID)); err != nil {
			s.reporter(snap.AccountID, snap.ID)(Progress{Finished: true, Err: err})
		}
	}
	return nil
}

// ReleaseOrphanDisks removes the volumes of disks that have no record:
// CreateDisk makes the volume before it commits the record, DeleteDisk
// commits before it removes the volume, and a crash in between leaves a
// volume nothing names (host space, and chunks its local manifests keep).
// Call it at start, before any action runs. It returns the number
// removed.
func (s *Service) ReleaseOrphanDisks(ctx context.Context) (int, error) {
	stored, err := s.engine.StoredDisks(ctx)
	if err != nil || len(stored) == 0 {
		return 0, err
	}
	var orphans []string
	err = s.store.View(ctx, func(tx meta.Tx) error {
		orphans = orphans[:0]
		for _, id := range stored {
			if _, err := tx.FindDisk(id); errors.Is(err, meta.ErrNotFound) {
				orphans = append(orphans, id)
			} else if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for i, id := range orphans {
		if err := s.engine.DeleteDisk(ctx, id); err != nil {
			return i, err
		}
		s.log.Info("removed the volume of a disk without a record", "disk", id)
	}
	return len(orphans), nil
}

// ReleaseOrphans releases the stored data of snapshots that have no
// record: DeleteSnapshot removes the record, then the data, and a crash
// in between leaves data that nothing would ever release (its chunks
// kept by the collector forever). The data is listed before the records
// are read, and a record is committed before its snapshot's data exists,
// so a snapshot being created is never taken for an orphan. It returns
// the number released.
func (s *Service) ReleaseOrphans(ctx context.Context) (int, error) {
	stored, err := s.engine.StoredSnapshots(ctx)
	if err != nil || len(stored) == 0 {
		return 0, err
	}
	all, err := s.allSnapshots(ctx, "")
	if err != nil {
		return 0, err
	}
	known := map[string]bool{}
	for _, snap := range all {
		known[snap.ID] = true
	}
	n := 0
	for _, id := range stored {
		if known[id] {
			continue
		}
		if err := s.engine.DeleteSnapshot(ctx, id); err != nil {
			return n, err
		}
		s.log.Info("released the data of a deleted snapshot", "snapshot", id)
		n++
	}
	return n, nil
}

// instantAccess reports whether a snapshot's instant access is still on:
// InstantAccessRetentionDays end it (the snapshot itself stays until its
// own retention ends).
func instantAccess(snap *meta.Snapshot, now time.Time) bool {
	return snap.InstantAccess && (snap.InstantAccessExpiresAt.IsZero() || now.Before(snap.InstantAccessExpiresAt))
}

// progressString renders Progress as the API does ("37%").
func progressString(snap *meta.Snapshot) string {
	switch {
	case snap.Status == SnapAccomplished:
		return "100%"
	case snap.ProgressTotal <= 0:
		return "0%"
	}
	pct := snap.ProgressDone * 100 / snap.ProgressTotal
	if pct > 99 {
		pct = 99
	}
	return strconv.FormatInt(pct, 10) + "%"
}
