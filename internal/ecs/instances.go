package ecs

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/snapstack/snapstack/internal/apierr"
	"github.com/snapstack/snapstack/internal/meta"
	"github.com/snapstack/snapstack/internal/param"
)

const maxDataDisks = 16

// RunInstancesResponse is the RunInstances reply.
type RunInstancesResponse struct {
	param.Response
	OrderId        string
	TradePrice     float64
	InstanceIdSets struct {
		InstanceIdSet []string
	}
}

type diskSpec struct {
	category, name, description, perfLevel string
	size                                   int
	deleteWithInstance                     bool
	snapshotID                             string // restore from this snapshot
}

func diskSizeOK(category string, size int) bool {
	r, ok := cloudCategories[category]
	return ok && size >= r[0] && size <= r[1]
}

// RunInstances creates Amount instances, each with a system disk and the
// requested data disks, and starts them (Pending -> Running).
func (s *Service) RunInstances(ctx context.Context, c Caller, p param.Values) (any, error) {
	reg, err := s.region(p, "")
	if err != nil {
		return nil, err
	}
	zone := p.String("ZoneId")
	if zone == "" {
		zone = reg.Zones[0]
	} else if !contains(reg.Zones, zone) {
		return nil, apierr.InvalidZoneNotFound
	}
	imageID, err := p.Required("ImageId")
	if err != nil {
		return nil, err
	}
	itype, err := p.Required("InstanceType")
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(itype, "ecs.") {
		return nil, apierr.InvalidInstanceType
	}
	name := p.String("InstanceName")
	if name != "" && !validName(name, true) {
		return nil, apierr.InvalidInstanceName
	}
	desc := p.String("Description")
	if !validDescription(desc) {
		return nil, apierr.InvalidResourceDescription
	}
	amount := int64(1)
	if n, ok, err := p.Int("Amount", apierr.InvalidAmount); err != nil {
		return nil, err
	} else if ok {
		if n < 1 || n > 100 {
			return nil, apierr.InvalidAmount
		}
		amount = n
	}
	sys := diskSpec{category: p.First("SystemDisk.Category"), size: 40, deleteWithInstance: true,
		name: p.String("SystemDisk.DiskName"), description: p.String("SystemDisk.Description"), perfLevel: p.String("SystemDisk.PerformanceLevel")}
	if sys.category == "" {
		sys.category = "cloud_essd"
	}
	if n, ok, err := p.Int("SystemDisk.Size", apierr.InvalidSystemDiskSize); err != nil {
		return nil, err
	} else if ok {
		sys.size = int(n)
	}
	if _, ok := cloudCategories[sys.category]; !ok || localCategories[sys.category] || ephemeralCategories[sys.category] {
		return nil, apierr.InvalidSystemDiskCat
	}
	if sys.size < 20 || sys.size > 2048 || !diskSizeOK(sys.category, sys.size) {
		return nil, apierr.InvalidSystemDiskSize
	}
	if sys.name != "" && !validName(sys.name, true) {
		return nil, apierr.InvalidDiskName
	}
	if !validDescription(sys.description) {
		return nil, apierr.InvalidDiskDescription
	}
	var data []diskSpec
	for _, e := range p.List("DataDisk") {
		if e.N > maxDataDisks {
			return nil, apierr.InvalidParameter("DataDisk.N", "At most 16 data disks.")
		}
		d := diskSpec{category: e.Fields["Category"], deleteWithInstance: true, name: e.Fields["DiskName"],
			description: e.Fields["Description"], perfLevel: e.Fields["PerformanceLevel"]}
		if d.category == "" {
			d.category = "cloud_efficiency"
		}
		if _, ok := cloudCategories[d.category]; !ok {
			return nil, apierr.InvalidDataDiskCat
		}
		if v, ok, err := e.Bool("DeleteWithInstance", invalidBool(fmt.Sprintf("DataDisk.%d.DeleteWithInstance", e.N))); err != nil {
			return nil, err
		} else if ok {
			d.deleteWithInstance = v
		}
		// With SnapshotId, Size may be left out: the disk takes the
		// snapshot's size (or Size, when larger; checked below).
		d.snapshotID = e.Fields["SnapshotId"]
		var n int
		if size, ok := e.Get("Size"); ok || d.snapshotID == "" {
			var err error
			if n, err = strconv.Atoi(size); err != nil || !diskSizeOK(d.category, n) {
				return nil, apierr.InvalidDataDiskSize
			}
		}
		d.size = n
		if d.name != "" && !validName(d.name, true) {
			return nil, apierr.InvalidDiskName
		}
		if !validDescription(d.description) {
			return nil, apierr.InvalidDiskDescription
		}
		data = append(data, d)
	}
	tags, err := parseTags(p)
	if err != nil {
		return nil, err
	}
	if p.String("ImageId") != "" && !strings.Contains(imageID, "_") && !strings.HasPrefix(imageID, "m-") {
		return nil, apierr.InvalidImageID
	}
	if err := s.dataDiskSnapshots(ctx, c, reg, data); err != nil {
		return nil, err
	}
	if err := dryRun(p); err != nil {
		return nil, err
	}
	// IDs are chosen and the disks' data made before the commit, so that
	// a committed disk always has its data; a failed commit releases it.
	type planned struct {
		id    string
		disks []string
	}
	specs := append([]diskSpec{sys}, data...)
	plan := make([]planned, amount)
	var made []string
	release := func() {
		for _, id := range made {
			s.engine.DeleteDisk(context.WithoutCancel(ctx), id)
		}
	}
	for i := range plan {
		plan[i].id = newID("i", reg.IDCode)
		for _, spec := range specs {
			did := newID("d", reg.IDCode)
			if err := s.engine.CreateDisk(ctx, did, int64(spec.size)<<30, spec.snapshotID); err != nil {
				release()
				return nil, apierr.Internal(err)
			}
			made = append(made, did)
			plan[i].disks = append(plan[i].disks, did)
		}
	}
	resp := &RunInstancesResponse{}
	resp.InstanceIdSets.InstanceIdSet = []string{}
	err = s.store.Update(ctx, func(tx meta.Tx) error {
		resp.InstanceIdSets.InstanceIdSet = resp.InstanceIdSets.InstanceIdSet[:0]
		rg, err := s.resourceGroup(tx, c, p.String("ResourceGroupId"))
		if err != nil {
			return err
		}
		now := s.clock.Now()
		for _, pl := range plan {
			id := pl.id
			iname := name
			if iname == "" {
				iname = id
			}
			inst := &meta.Instance{ID: id, AccountID: c.AccountID, RegionID: reg.ID, ZoneID: zone, Name: iname, Description: desc,
				HostName: "iZ" + id[2:] + "Z", ImageID: imageID, InstanceType: itype, ResourceGroupID: rg,
				Status: InstancePending, TargetStatus: InstanceRunning, SettleAt: s.transition(now), CreatedAt: now, Tags: tags}
			if err := tx.PutInstance(inst); err != nil {
				return err
			}
			for j, spec := range specs {
				typ := "data"
				if j == 0 {
					typ = "system"
				}
				d := &meta.Disk{ID: pl.disks[j], AccountID: c.AccountID, RegionID: reg.ID, ZoneID: zone,
					Name: spec.name, Description: spec.description, Category: spec.category, PerformanceLevel: perfLevel(spec),
					Type: typ, SizeGiB: spec.size, ResourceGroupID: rg, Status: DiskInUse, InstanceID: id, Device: deviceName(j),
					Portable: typ == "data", DeleteWithInstance: spec.deleteWithInstance, DeleteAutoSnapshot: true,
					EverAttached: true, ImageID: imageIfSystem(typ, imageID), CreatedAt: now, AttachedAt: now, Tags: tags}
				if spec.snapshotID != "" {
					if err := useSnapshotForDisk(tx, c.AccountID, spec.snapshotID, apierr.DataDiskSnapshotNotFound); err != nil {
						return err
					}
					d.SourceSnapshotID = spec.snapshotID
				}
				if err := tx.PutDisk(d); err != nil {
					return err
				}
			}
			resp.InstanceIdSets.InstanceIdSet = append(resp.InstanceIdSets.InstanceIdSet, id)
		}
		return nil
	})
	if err != nil {
		release()
		return nil, wrap(err)
	}
	return resp, nil
}

// dataDiskSnapshots checks the snapshots that data disks restore from
// (as CreateDisk does: the account's, in the region, ready) and sizes
// those disks: the snapshot's size, or the requested one when larger,
// within the category's range.
func (s *Service) dataDiskSnapshots(ctx context.Context, c Caller, reg Region, data []diskSpec) error {
	err := s.store.View(ctx, func(tx meta.Tx) error {
		for i := range data {
			d := &data[i]
			if d.snapshotID == "" {
				continue
			}
			snap, err := s.restorableSnapshot(tx, c.AccountID, reg.ID, d.snapshotID, apierr.DataDiskSnapshotNotFound)
			if err != nil {
				return err
			}
			d.size = max(d.size, snap.DiskSizeGiB)
			if !diskSizeOK(d.category, d.size) {
				return apierr.InvalidDataDiskSize
			}
		}
		return nil
	})
	return wrap(err)
}

func perfLevel(d diskSpec) string {
	if d.perfLevel != "" {
		return d.perfLevel
	}
	if d.category == "cloud_essd" {
		return "PL1"
	}
	return ""
}

func imageIfSystem(typ, image string) string {
	if typ == "system" {
		return image
	}
	return ""
}

// deviceName is the device path of the n-th disk of an instance
// (0: system disk /dev/xvda).
func deviceName(n int) string { return "/dev/xvd" + string(rune('a'+n)) }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// resourceGroup returns the requested group (must exist) or the account's
// default group.
func (s *Service) resourceGroup(tx meta.Tx, c Caller, id string) (string, error) {
	if id != "" {
		if _, err := tx.GetResourceGroup(c.AccountID, id); err != nil {
			return "", apierr.ResourceGroupNotFound
		}
		return id, nil
	}
	g, err := tx.DefaultResourceGroup(c.AccountID)
	if err != nil {
		return "", err
	}
	return g.ID, nil
}

// instanceAction loads an instance for a state change. The instance's
// region must match an explicit RegionId.
func (s *Service) instanceAction(tx meta.Tx, c Caller, p param.Values) (*meta.Instance, error) {
	id, err := p.Required("InstanceId")
	if err != nil {
		return nil, err
	}
	inst, err := s.loadInstance(tx, ecsProduct, c.AccountID, id, true)
	if err != nil {
		return nil, err
	}
	if !sameRegion(p, inst.RegionID) {
		return nil, apierr.InstanceNotFound
	}
	return inst, nil
}

func dryRun(p param.Values) error {
	dry, _, err := BoolParam(p, "DryRun")
	if err != nil {
		return err
	}
	if dry {
		return apierr.DryRunOperation
	}
	return nil
}

// StartInstance starts a Stopped instance.
func (s *Service) StartInstance(ctx context.Context, c Caller, p param.Values) (any, error) {
	return s.instanceStateChange(ctx, c, p, func(tx meta.Tx, inst *meta.Instance) error {
		if inst.Status != InstanceStopped {
			return apierr.InstanceIncorrectStatus
		}
		// Not while ResetDisk restores one of its disks.
		if busy, err := ResetUnderWay(tx, c.AccountID, inst.ID, s.clock.Now()); err != nil {
			return err
		} else if busy {
			return apierr.IncorrectDiskStatus
		}
		inst.Status, inst.TargetStatus, inst.SettleAt = InstanceStarting, InstanceRunning, s.transition(s.clock.Now())
		inst.StoppedMode = ""
		return s.clearDeviceInvalid(tx, inst)
	}, false)
}

// StopInstance stops a Running instance.
func (s *Service) StopInstance(ctx context.Context, c Caller, p param.Values) (any, error) {
	mode := p.String("StoppedMode")
	if mode != "" && mode != "KeepCharging" && mode != "StopCharging" {
		return nil, apierr.InvalidParameter("StoppedMode", "Valid values: KeepCharging, StopCharging.")
	}
	return s.instanceStateChange(ctx, c, p, func(tx meta.Tx, inst *meta.Instance) error {
		if inst.Status != InstanceRunning {
			return apierr.InstanceIncorrectStatus
		}
		if mode == "" {
			mode = "KeepCharging"
		}
		inst.Status, inst.TargetStatus, inst.SettleAt = InstanceStopping, InstanceStopped, s.transition(s.clock.Now())
		inst.StoppedMode = mode
		return nil
	}, true)
}

// clearDeviceInvalid: "restart instance and try again" clears the invalid
// device state of its disks.
func (s *Service) clearDeviceInvalid(tx meta.Tx, inst *meta.Instance) error {
	disks, _, err := tx.ListDisks(meta.DiskFilter{AccountID: inst.AccountID, InstanceID: inst.ID})
	if err != nil {
		return err
	}
	for _, d := range disks {
		if d.DeviceInvalid {
			d.DeviceInvalid = false
			if err := tx.PutDisk(d); err != nil {
				return err
			}
		}
	}
	return nil
}

// instanceStateChange applies change to the instance named by the
// request; with offline, its disks stop being served once committed.
func (s *Service) instanceStateChange(ctx context.Context, c Caller, p param.Values, change func(meta.Tx, *meta.Instance) error, offline bool) (any, error) {
	if err := dryRun(p); err != nil {
		return nil, err
	}
	var disks []*meta.Disk
	err := s.store.Update(ctx, func(tx meta.Tx) error {
		inst, err := s.instanceAction(tx, c, p)
		if err != nil {
			return err
		}
		if inst.SecurityLocked {
			return apierr.InstanceLockedForSecurity
		}
		if err := change(tx, inst); err != nil {
			return err
		}
		if disks, _, err = tx.ListDisks(meta.DiskFilter{AccountID: c.AccountID, InstanceID: inst.ID}); err != nil {
			return err
		}
		return tx.PutInstance(inst)
	})
	if err != nil {
		return nil, wrap(err)
	}
	if offline {
		for _, d := range disks {
			s.engine.DiskOffline(d.ID)
		}
	}
	return &param.Response{}, nil
}

// DeleteInstance releases a Stopped instance (or a Running one with
// Force=true). Disks with DeleteWithInstance go with it; the others are
// detached. Snapshots are kept.
func (s *Service) DeleteInstance(ctx context.Context, c Caller, p param.Values) (any, error) {
	force, _, err := BoolParam(p, "Force")
	if err != nil {
		return nil, err
	}
	if err := dryRun(p); err != nil {
		return nil, err
	}
	var released, detached []string
	err = s.store.Update(ctx, func(tx meta.Tx) error {
		released, detached = released[:0], detached[:0]
		inst, err := s.instanceAction(tx, c, p)
		if err != nil {
			return err
		}
		if inst.SecurityLocked {
			return apierr.InstanceLockedForSecurity
		}
		if inst.Status != InstanceStopped && !(force && inst.Status == InstanceRunning) {
			return apierr.InstanceIncorrectStatus
		}
		disks, _, err := tx.ListDisks(meta.DiskFilter{AccountID: c.AccountID, InstanceID: inst.ID})
		if err != nil {
			return err
		}
		now := s.clock.Now()
		if busy, err := ResetUnderWay(tx, c.AccountID, inst.ID, now); err != nil {
			return err
		} else if busy {
			return apierr.IncorrectDiskStatus // ResetDisk is restoring a disk
		}
		for _, d := range disks {
			if d.DeleteWithInstance {
				if err := s.failSnapshotsOf(tx, d, "the source disk was released"); err != nil {
					return err
				}
				if err := tx.DeleteDisk(c.AccountID, d.ID); err != nil {
					return err
				}
				released = append(released, d.ID)
				continue
			}
			detached = append(detached, d.ID)
			d.InstanceID, d.Device, d.Status, d.TargetStatus, d.SettleAt = "", "", DiskAvailable, "", now
			d.DetachedAt, d.Portable = now, true
			if d.Type == "system" {
				d.Type = "data"
			}
			if err := tx.PutDisk(d); err != nil {
				return err
			}
		}
		return tx.DeleteInstance(c.AccountID, inst.ID)
	})
	if err != nil {
		return nil, wrap(err)
	}
	for _, id := range detached {
		s.engine.DiskOffline(id)
	}
	s.releaseDisks(ctx, released)
	return &param.Response{}, nil
}

// failSnapshotsOf ends the snapshots of d still in progress as failed.
func (s *Service) failSnapshotsOf(tx meta.Tx, d *meta.Disk, reason string) error {
	list, _, err := tx.ListSnapshots(meta.SnapshotFilter{AccountID: d.AccountID, Product: d.Product, DiskID: d.ID, Status: SnapProgressing})
	if err != nil {
		return err
	}
	for _, snap := range list {
		snap.Status, snap.FailReason, snap.ModifiedAt = SnapFailed, reason, s.clock.Now()
		if err := tx.PutSnapshot(snap); err != nil {
			return err
		}
	}
	return nil
}

// releaseDisks deletes the data of disks whose records are gone.
func (s *Service) releaseDisks(ctx context.Context, ids []string) {
	for _, id := range ids {
		if err := s.engine.DeleteDisk(context.WithoutCancel(ctx), id); err != nil {
			s.log.Error("release disk data", "disk", id, "err", err)
		}
	}
}
