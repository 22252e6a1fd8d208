package ecs

import (
	"context"
	"errors"

	"github.com/snapstack/snapstack/internal/apierr"
	"github.com/snapstack/snapstack/internal/meta"
	"github.com/snapstack/snapstack/internal/param"
)

// CreateDiskResponse is the CreateDisk reply.
type CreateDiskResponse struct {
	param.Response
	DiskId  string
	OrderId string
}

// CreateDisk creates a pay-as-you-go data disk in a zone, empty or from
// a snapshot (the disk is then at least as large as the snapshot).
func (s *Service) CreateDisk(ctx context.Context, c Caller, p param.Values) (any, error) {
	reg, err := s.region(p, "")
	if err != nil {
		return nil, err
	}
	zone := p.String("ZoneId")
	if p.String("InstanceId") != "" {
		if zone != "" {
			return nil, apierr.ZoneIDInstanceConflict
		}
		return nil, apierr.InvalidParameter("InstanceId", "Subscription disks attached at creation are not supported; create the disk in a zone and call AttachDisk.")
	}
	if zone == "" {
		return nil, apierr.MissingParameter("ZoneId")
	}
	if !contains(reg.Zones, zone) {
		return nil, apierr.InvalidZoneNotFound
	}
	category := p.First("DiskCategory")
	if category == "" {
		category = "cloud"
	}
	if _, ok := cloudCategories[category]; !ok || localCategories[category] {
		return nil, apierr.InvalidDiskCategory
	}
	name, desc := p.String("DiskName"), p.String("Description")
	if name != "" && !validName(name, true) {
		return nil, apierr.InvalidDiskName
	}
	if !validDescription(desc) {
		return nil, apierr.InvalidResourceDescription
	}
	size, hasSize, err := p.Int("Size", apierr.InvalidDiskSize)
	if err != nil {
		return nil, err
	}
	snapID := p.String("SnapshotId")
	if !hasSize && snapID == "" {
		return nil, apierr.MissingParameter("Size")
	}
	if hasSize && !diskSizeOK(category, int(size)) {
		return nil, apierr.InvalidDiskSize
	}
	multi := false
	switch p.String("MultiAttach") {
	case "", "Disabled":
	case "Enabled":
		if !essd(category) {
			return nil, apierr.InvalidMultiAttach
		}
		multi = true
	default:
		return nil, apierr.InvalidParameter("MultiAttach", "Valid values: Enabled, Disabled.")
	}
	tags, err := parseTags(p)
	if err != nil {
		return nil, err
	}
	encrypted, _, err := BoolParam(p, "Encrypted")
	if err != nil {
		return nil, err
	}
	token := p.String("ClientToken")
	if err := checkClientToken(token); err != nil {
		return nil, err
	}
	if err := dryRun(p); err != nil {
		return nil, err
	}
	r := &diskRequest{reg: reg, zone: zone, category: category, size: size, snapID: snapID, name: name, desc: desc,
		multi: multi, tags: tags, encrypted: encrypted, kmsKeyID: p.String("KMSKeyId"), token: token}
	if token != "" {
		hash := paramsHash(reg.ID, zone, category, size, hasSize, snapID, name, desc, multi, tags,
			p.String("ResourceGroupId"), p.String("PerformanceLevel"), encrypted, r.kmsKeyID)
		var existing string
		err := s.store.Update(ctx, func(tx meta.Tx) (err error) {
			existing, err = s.claimToken(tx, c.AccountID, "CreateDisk", token, hash)
			return err
		})
		if err != nil {
			return nil, wrap(err)
		}
		if existing != "" {
			return &CreateDiskResponse{DiskId: existing}, nil
		}
	}
	resp, err := s.createDisk(ctx, c, p, r)
	if err != nil && token != "" {
		s.releaseToken(c.AccountID, "CreateDisk", token)
	}
	return resp, err
}

// diskRequest is a valid CreateDisk request.
type diskRequest struct {
	reg                    Region
	zone, category, snapID string
	size                   int64 // GiB
	name, desc             string
	multi                  bool
	tags                   []meta.Tag
	encrypted              bool
	kmsKeyID, token        string
}

// createDisk is CreateDisk once the request is valid (and its ClientToken,
// if any, claimed): it settles the token in the disk's commit.
func (s *Service) createDisk(ctx context.Context, c Caller, p param.Values, r *diskRequest) (*CreateDiskResponse, error) {
	reg, zone, category, size, snapID := r.reg, r.zone, r.category, r.size, r.snapID
	// The disk's data is made before its record is committed (restored
	// from the snapshot when one is given); a failed commit releases it.
	id := newID("d", reg.IDCode)
	if snapID != "" {
		err := s.store.View(ctx, func(tx meta.Tx) error {
			snap, err := s.restorableSnapshot(tx, c.AccountID, reg.ID, snapID, apierr.SnapshotNotFound)
			if err != nil {
				return err
			}
			// A disk made from an encrypted snapshot is encrypted with
			// the snapshot's key.
			if snap.Encrypted {
				if r.kmsKeyID != "" && r.kmsKeyID != snap.KMSKeyID {
					return apierr.KMSKeyNotMatchSnapshot
				}
				r.encrypted, r.kmsKeyID = true, snap.KMSKeyID
			}
			if int(size) < snap.DiskSizeGiB {
				size = int64(snap.DiskSizeGiB)
				if !diskSizeOK(category, int(size)) {
					return apierr.SnapshotTooLarge
				}
			}
			return nil
		})
		if err != nil {
			return nil, wrap(err)
		}
	}
	if err := s.engine.CreateDisk(ctx, id, size<<30, snapID); err != nil {
		return nil, apierr.Internal(err)
	}
	resp := &CreateDiskResponse{DiskId: id}
	err := s.store.Update(ctx, func(tx meta.Tx) error {
		rg, err := s.resourceGroup(tx, c, p.String("ResourceGroupId"))
		if err != nil {
			return err
		}
		now := s.clock.Now()
		d := &meta.Disk{ID: id, AccountID: c.AccountID, RegionID: reg.ID, ZoneID: zone, Name: r.name,
			Description: r.desc, Category: category, PerformanceLevel: perfLevel(diskSpec{category: category, perfLevel: p.String("PerformanceLevel")}),
			Type: "data", SizeGiB: int(size), ResourceGroupID: rg, Status: DiskCreating, TargetStatus: DiskAvailable,
			SettleAt: s.transition(now), Portable: true, DeleteAutoSnapshot: true, MultiAttach: r.multi, CreatedAt: now, Tags: r.tags}
		if r.encrypted {
			d.Encrypted, d.KMSKeyID = true, r.kmsKeyID
		}
		if snapID != "" {
			if err := useSnapshotForDisk(tx, c.AccountID, snapID, apierr.SnapshotNotFound); err != nil {
				return err
			}
			d.SourceSnapshotID = snapID
		}
		if r.token != "" {
			if err := settleToken(tx, c.AccountID, "CreateDisk", r.token, id); err != nil {
				return err
			}
		}
		return tx.PutDisk(d)
	})
	if err != nil {
		s.releaseDisks(ctx, []string{id})
		return nil, wrap(err)
	}
	return resp, nil
}

// restorableSnapshot returns the account's ECS snapshot id in region that
// a new disk may be made from: notFound when there is none (or it is in
// another region, or another product's), InvalidSnapshotId.NotReady unless it is accomplished
// or its instant access makes it usable before its upload is done (its
// data is still local).
func (s *Service) restorableSnapshot(tx meta.Tx, accountID, regionID, id string, notFound *apierr.Error) (*meta.Snapshot, error) {
	snap, err := tx.GetSnapshot(accountID, id)
	if errors.Is(err, meta.ErrNotFound) || (err == nil && (snap.RegionID != regionID || snap.Product != ecsProduct)) {
		return nil, notFound
	}
	if err != nil {
		return nil, err
	}
	if snap.Status != SnapAccomplished && !(snap.Status == SnapProgressing && instantAccess(snap, s.clock.Now())) {
		return nil, apierr.SnapshotNotReady
	}
	return snap, nil
}

// useSnapshotForDisk records in tx that a disk was made from snapshot id
// (Usage none -> disk, image -> image_disk); gone is the error when the
// snapshot was deleted meanwhile.
func useSnapshotForDisk(tx meta.Tx, accountID, id string, gone *apierr.Error) error {
	snap, err := tx.GetSnapshot(accountID, id)
	if errors.Is(err, meta.ErrNotFound) {
		return gone
	}
	if err != nil {
		return err
	}
	switch snap.Usage {
	case "image":
		snap.Usage = "image_disk"
	case "", "none":
		snap.Usage = "disk"
	}
	return tx.PutSnapshot(snap)
}

// AttachDisk attaches an Available data disk to an instance in its zone.
func (s *Service) AttachDisk(ctx context.Context, c Caller, p param.Values) (any, error) {
	diskID, err := p.Required("DiskId")
	if err != nil {
		return nil, err
	}
	if _, err := p.Required("InstanceId"); err != nil {
		return nil, err
	}
	dwi, hasDWI, err := BoolParam(p, "DeleteWithInstance")
	if err != nil {
		return nil, err
	}
	err = s.store.Update(ctx, func(tx meta.Tx) error {
		inst, err := s.instanceAction(tx, c, p)
		if err != nil {
			return err
		}
		d, err := s.loadDisk(tx, ecsProduct, c.AccountID, diskID, true)
		if err != nil {
			return err
		}
		if d.RegionID != inst.RegionID {
			return apierr.DiskNotFound
		}
		if inst.SecurityLocked {
			return apierr.InstanceLockedForSecurity
		}
		if d.InArrears {
			return apierr.DiskInArrears
		}
		if d.InstanceID != "" {
			return apierr.New("InvalidDisk.InUse", 404, "The specified disk is in use.")
		}
		if d.Status != DiskAvailable {
			return apierr.IncorrectDiskStatus
		}
		if d.ZoneID != inst.ZoneID {
			return apierr.ResourcesNotInSameZone
		}
		if inst.Status != InstanceRunning && inst.Status != InstanceStopped {
			return apierr.IncorrectInstanceStatus
		}
		attached, n, err := tx.ListDisks(meta.DiskFilter{AccountID: c.AccountID, InstanceID: inst.ID})
		if err != nil {
			return err
		}
		if n > maxDataDisks {
			return apierr.InstanceDiskLimit
		}
		used := map[string]bool{}
		for _, a := range attached {
			used[a.Device] = true
		}
		dev := ""
		for i := 1; i <= maxDataDisks+1; i++ {
			if !used[deviceName(i)] {
				dev = deviceName(i)
				break
			}
		}
		now := s.clock.Now()
		d.InstanceID, d.Device, d.EverAttached, d.AttachedAt = inst.ID, dev, true, now
		d.Status, d.TargetStatus, d.SettleAt = DiskAttaching, DiskInUse, s.transition(now)
		if hasDWI {
			d.DeleteWithInstance = dwi
		}
		if inst.Status == InstanceRunning {
			d.Used = true
		}
		return tx.PutDisk(d)
	})
	if err != nil {
		return nil, wrap(err)
	}
	return &param.Response{}, nil
}

// DetachDisk detaches a disk from the instance it is attached to.
func (s *Service) DetachDisk(ctx context.Context, c Caller, p param.Values) (any, error) {
	diskID, err := p.Required("DiskId")
	if err != nil {
		return nil, err
	}
	err = s.store.Update(ctx, func(tx meta.Tx) error {
		inst, err := s.instanceAction(tx, c, p)
		if err != nil {
			return err
		}
		d, err := s.loadDisk(tx, ecsProduct, c.AccountID, diskID, true)
		if err != nil {
			return err
		}
		if inst.SecurityLocked {
			return apierr.InstanceLockedForSecurity
		}
		if d.InstanceID == "" {
			return apierr.DiskAlreadyDetached
		}
		if d.InstanceID != inst.ID {
			return apierr.DependencyViolation
		}
		if d.Status != DiskInUse {
			return apierr.IncorrectDiskStatus
		}
		if d.Type == "system" && inst.Status != InstanceStopped {
			return apierr.InstanceIncorrectStatus
		}
		if inst.Status != InstanceRunning && inst.Status != InstanceStopped {
			return apierr.InstanceIncorrectStatus
		}
		now := s.clock.Now()
		d.InstanceID, d.Device, d.DetachedAt = "", "", now
		d.Status, d.TargetStatus, d.SettleAt = DiskDetaching, DiskAvailable, s.transition(now)
		if d.Type == "system" {
			d.Portable = true
		}
		return tx.PutDisk(d)
	})
	if err != nil {
		return nil, wrap(err)
	}
	s.engine.DiskOffline(diskID)
	return &param.Response{}, nil
}

// DeleteDisk releases an Available disk. Its manual snapshots are kept.
func (s *Service) DeleteDisk(ctx context.Context, c Caller, p param.Values) (any, error) {
	diskID, err := p.Required("DiskId")
	if err != nil {
		return nil, err
	}
	err = s.store.Update(ctx, func(tx meta.Tx) error {
		d, err := s.loadDisk(tx, ecsProduct, c.AccountID, diskID, true)
		if err != nil {
			return err
		}
		if !sameRegion(p, d.RegionID) {
			return apierr.DiskNotFound
		}
		if d.InstanceID != "" {
			return apierr.DiskStillAttached
		}
		if d.Status != DiskAvailable {
			return apierr.IncorrectDiskStatus
		}
		if busy, err := SnapshotInProgress(tx, d); err != nil {
			return err
		} else if busy {
			return apierr.DiskDeletingCreatingSnap
		}
		return tx.DeleteDisk(c.AccountID, d.ID)
	})
	if err != nil {
		return nil, wrap(err)
	}
	s.releaseDisks(ctx, []string{diskID})
	return &param.Response{}, nil
}
