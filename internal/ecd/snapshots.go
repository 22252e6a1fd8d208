package ecd

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/snapstack/snapstack/internal/apierr"
	"github.com/snapstack/snapstack/internal/ecs"
	"github.com/snapstack/snapstack/internal/meta"
	"github.com/snapstack/snapstack/internal/param"
)

// checkSnapshotName applies seed 000: 2 to 127 characters, starting with
// a letter (Chinese letters count), then letters, digits, '_' and '-';
// not starting with "auto" (automatic snapshots) or http(s)://.
func checkSnapshotName(n string) error {
	if c := utf8.RuneCountInString(n); c < 2 || c > 127 || strings.HasPrefix(n, "auto") || hasHTTP(n) {
		return errSnapshotName
	}
	for i, r := range n {
		switch {
		case unicode.IsLetter(r):
		case i > 0 && (unicode.IsDigit(r) || r == '_' || r == '-'):
		default:
			return errSnapshotName
		}
	}
	return nil
}

// CreateSnapshotResponse is the EDS CreateSnapshot reply.
type CreateSnapshotResponse struct {
	param.Response
	SnapshotId string
}

// CreateSnapshot snapshots the system or data disk of a desktop that is
// Running or Stopped (seed 000).
func (s *Service) CreateSnapshot(ctx context.Context, c ecs.Caller, p param.Values) (any, error) {
	if _, err := p.Required("RegionId"); err != nil {
		return nil, err
	}
	reg, err := s.core.Region(p)
	if err != nil {
		return nil, err
	}
	desktopID, err := p.Required("DesktopId")
	if err != nil {
		return nil, err
	}
	name, err := p.Required("SnapshotName")
	if err != nil {
		return nil, err
	}
	if err := checkSnapshotName(name); err != nil {
		return nil, err
	}
	desc := p.String("Description")
	if utf8.RuneCountInString(desc) > 128 || hasHTTP(desc) {
		return nil, errDescription
	}
	kind, err := p.Required("SourceDiskType")
	if err != nil {
		return nil, err
	}
	kind = strings.ToLower(kind)
	if kind != "system" && kind != "data" {
		return nil, errSourceDiskType
	}
	var snap *meta.Snapshot
	err = s.core.Store().Update(ctx, func(tx meta.Tx) error {
		d, err := s.loadDesktop(tx, c, reg.ID, desktopID)
		if err != nil {
			return err
		}
		if d.RegionID != reg.ID {
			return errDesktopNotFound
		}
		if d.Status != DesktopRunning && d.Status != DesktopStopped {
			return errDesktopStatus
		}
		sys, data, err := desktopDisks(tx, d)
		if err != nil {
			return err
		}
		disk := sys
		if kind == "data" {
			disk = data
		}
		if disk == nil {
			return errSourceDiskType.WithMessage("The desktop has no disk of this type.")
		}
		if err := s.core.CheckSnapshotSlot(tx, disk); err != nil {
			return err
		}
		now := s.core.Clock().Now()
		snap = &meta.Snapshot{ID: s.core.NewResourceID("s", reg), AccountID: c.AccountID, Product: Product, RegionID: reg.ID,
			Name: name, Description: desc, DiskID: disk.ID, DiskType: disk.Type, DiskCategory: disk.Category,
			DiskSizeGiB: disk.SizeGiB, InstanceID: d.ID, Status: ecs.SnapProgressing, Category: "standard", Type: "user",
			Usage: "none", ResourceGroupID: d.ResourceGroupID, CreatedAt: now, ModifiedAt: now,
			Tags: []meta.Tag{{Key: creatorTag, Value: c.AccessKeyID}}}
		return tx.PutSnapshot(snap)
	})
	if err != nil {
		return nil, wrap(err)
	}
	if err := s.core.StartSnapshot(ctx, snap); err != nil {
		return nil, err
	}
	return &CreateSnapshotResponse{SnapshotId: snap.ID}, nil
}

// SnapshotItem is one snapshot of the EDS DescribeSnapshots (statuses
// and kinds in upper case, unlike ECS).
type SnapshotItem struct {
	SnapshotId              string
	SnapshotName            string
	Description             string
	Status                  string
	Progress                string
	RemainTime              int
	CreationTime            string
	DeletionTime            string
	SnapshotType            string
	SourceDiskType          string
	SourceDiskSize          string
	DesktopId               string
	DesktopName             string
	DesktopStatus           string
	Creator                 string
	ProtocolType            string
	VolumeEncryptionEnabled bool
	VolumeEncryptionKey     string
}

// DescribeSnapshotsResponse is the EDS DescribeSnapshots reply: a flat
// list.
type DescribeSnapshotsResponse struct {
	param.Response
	NextToken string
	Snapshots []SnapshotItem
}

// DescribeSnapshots lists EDS snapshots.
func (s *Service) DescribeSnapshots(ctx context.Context, c ecs.Caller, p param.Values) (any, error) {
	reg, err := s.core.Region(p)
	if err != nil {
		return nil, err
	}
	f := meta.SnapshotFilter{AccountID: c.AccountID, Product: Product, RegionID: reg.ID, InstanceID: p.String("DesktopId"),
		Name: p.String("SnapshotName")}
	if id := p.String("SnapshotId"); id != "" {
		f.IDs = []string{id}
	}
	switch t := strings.ToLower(p.String("SourceDiskType")); t {
	case "":
	case "system", "data":
		f.DiskType = t
	default:
		return nil, errSourceDiskType
	}
	switch t := strings.ToLower(p.String("SnapshotType")); t {
	case "", "all":
	case "user", "auto":
		f.Type = t
	default:
		return nil, apierr.InvalidParameter("SnapshotType", "Valid values: all, auto, user.")
	}
	for _, b := range []struct {
		name string
		dst  *time.Time
	}{{"StartTime", &f.CreatedAfter}, {"EndTime", &f.CreatedBefore}} {
		if v := p.String(b.name); v != "" {
			t, err := time.Parse("2006-01-02T15:04:05Z", v)
			if err != nil {
				return nil, apierr.InvalidParameter(b.name, "Use the format yyyy-MM-ddTHH:mm:ssZ (UTC).")
			}
			*b.dst = t
		}
	}
	pg, err := ecs.ParseTokenPage(p, 100, 10)
	if err != nil {
		return nil, err
	}
	f.Page = pg.Page
	if creator := p.String("Creator"); creator != "" {
		f.Tags = append(f.Tags, meta.TagFilter{Key: creatorTag, Value: creator, HasValue: true})
	}
	resp := &DescribeSnapshotsResponse{Snapshots: []SnapshotItem{}}
	if os := p.String("OsType"); os != "" && !osTypeMatches(os) {
		return resp, nil
	}
	err = s.core.Store().View(ctx, func(tx meta.Tx) error {
		if name := p.String("DesktopName"); name != "" {
			// The snapshots of the desktops of that name (taken on them).
			desks, _, err := tx.ListInstances(meta.InstanceFilter{AccountID: c.AccountID, Product: Product, RegionID: reg.ID, Name: name})
			if err != nil {
				return err
			}
			f.InstanceIDs = []string{}
			for _, d := range desks {
				f.InstanceIDs = append(f.InstanceIDs, d.ID)
			}
		}
		list, total, err := tx.ListSnapshots(f)
		if err != nil {
			return err
		}
		resp.NextToken = pg.Next(len(list), total)
		for _, snap := range list {
			it := snapshotItem(snap)
			if d, err := tx.GetInstance(c.AccountID, snap.InstanceID); err == nil {
				ecs.SettleInstance(d, s.core.Clock().Now())
				it.DesktopName, it.DesktopStatus = d.Name, d.Status
			}
			resp.Snapshots = append(resp.Snapshots, it)
		}
		return nil
	})
	if err != nil {
		return nil, wrap(err)
	}
	return resp, nil
}

// creatorTag is the tag that records who created an EDS snapshot (the
// AccessKey ID of the CreateSnapshot call): DescribeSnapshots reports it
// as Creator and filters on it.
const creatorTag = "acs:ecd:creator"

func snapshotItem(snap *meta.Snapshot) SnapshotItem {
	it := SnapshotItem{SnapshotId: snap.ID, SnapshotName: snap.Name, Description: snap.Description,
		Status: strings.ToUpper(snap.Status), Progress: ecs.SnapshotProgress(snap), RemainTime: 0,
		CreationTime: ecs.TimeString(snap.CreatedAt), SnapshotType: strings.ToUpper(snap.Type),
		SourceDiskType: strings.ToUpper(snap.DiskType), SourceDiskSize: itoa(snap.DiskSizeGiB), DesktopId: snap.InstanceID,
		ProtocolType: "ASP"}
	if snap.Status == ecs.SnapProgressing {
		it.RemainTime = -1
	}
	for _, t := range snap.Tags {
		if t.Key == creatorTag {
			it.Creator = t.Value
		}
	}
	return it
}

// DeleteSnapshot deletes EDS snapshots (SnapshotId.N, 1-100); unknown IDs
// are ignored, as the document says.
func (s *Service) DeleteSnapshot(ctx context.Context, c ecs.Caller, p param.Values) (any, error) {
	ids := p.Strings("SnapshotId")
	if len(ids) == 0 {
		return nil, apierr.MissingParameter("SnapshotId.1")
	}
	if len(ids) > 100 {
		return nil, apierr.InvalidParameter("SnapshotId", "At most 100 snapshot IDs.")
	}
	var gone []string
	err := s.core.Store().Update(ctx, func(tx meta.Tx) error {
		gone = gone[:0]
		for _, id := range ids {
			snap, err := tx.GetSnapshot(c.AccountID, id)
			if errors.Is(err, meta.ErrNotFound) || (err == nil && snap.Product != Product) {
				continue
			}
			if err != nil {
				return err
			}
			if err := tx.DeleteSnapshot(c.AccountID, id); err != nil {
				return err
			}
			gone = append(gone, id)
		}
		return nil
	})
	if err != nil {
		return nil, wrap(err)
	}
	for _, id := range gone {
		if err := s.core.DataPlane().DeleteSnapshot(context.WithoutCancel(ctx), id); err != nil {
			s.log.Error("release snapshot data", "snapshot", id, "err", err)
		}
	}
	return &param.Response{}, nil
}

// ResetSnapshot restores the desktop disk a snapshot was taken from. The
// desktop must be Stopped; with StopDesktop=true a Running desktop is
// stopped first. Data written after the snapshot is lost.
func (s *Service) ResetSnapshot(ctx context.Context, c ecs.Caller, p param.Values) (any, error) {
	id, err := p.Required("SnapshotId")
	if err != nil {
		return nil, err
	}
	stop, _, err := ecs.BoolParam(p, "StopDesktop")
	if err != nil {
		return nil, err
	}
	var diskID string
	err = s.core.Store().Update(ctx, func(tx meta.Tx) error {
		snap, err := tx.GetSnapshot(c.AccountID, id)
		if errors.Is(err, meta.ErrNotFound) || (err == nil && snap.Product != Product) {
			return errSnapshotNotFound
		}
		if err != nil {
			return err
		}
		if snap.Status != ecs.SnapAccomplished {
			return errSnapshotNotReady
		}
		d, err := s.loadDesktop(tx, c, "", snap.InstanceID)
		if err != nil {
			return err
		}
		if d.Status == DesktopRunning && stop {
			d.Status, d.TargetStatus, d.SettleAt = DesktopStopped, "", time.Time{}
			if err := tx.PutInstance(d); err != nil {
				return err
			}
		}
		if d.Status != DesktopStopped {
			return errDesktopStatus
		}
		disk, err := tx.GetDisk(c.AccountID, snap.DiskID)
		if err != nil {
			return errSourceDiskMissing
		}
		// A snapshot of the disk still uploading would lose its local
		// data to the reset; a reset under way is not begun twice.
		if busy, err := ecs.SnapshotInProgress(tx, disk); err != nil {
			return err
		} else if busy {
			return errDiskBusy
		}
		ecs.SettleDisk(disk, s.core.Clock().Now())
		if disk.Status == ecs.DiskReIniting {
			return errDiskBusy
		}
		diskID = snap.DiskID
		return ecs.BeginReset(tx, disk)
	})
	if err != nil {
		return nil, wrap(err)
	}
	s.core.DataPlane().DiskOffline(diskID)
	if err := s.core.Restore(ctx, c.AccountID, diskID, id); err != nil {
		return nil, apierr.Internal(err)
	}
	return &param.Response{}, nil
}

func itoa(n int) string { return strconv.Itoa(n) }
