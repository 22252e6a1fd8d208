package ecs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/snapstack/snapstack/internal/apierr"
	"github.com/snapstack/snapstack/internal/meta"
	"github.com/snapstack/snapstack/internal/param"
)

// SnapshotItem is one snapshot of DescribeSnapshots. Types follow the tea
// SDK models exactly: Progress and SourceDiskSize are strings.
type SnapshotItem struct {
	SnapshotId                 string
	SnapshotName               string
	Description                string
	Status                     string
	Progress                   string
	RemainTime                 int
	CreationTime               string
	LastModifiedTime           string
	SourceDiskId               string
	SourceDiskSize             string
	SourceDiskType             string
	SourceStorageType          string
	SnapshotType               string
	Usage                      string
	RetentionDays              int
	Available                  bool
	InstantAccess              bool
	InstantAccessRetentionDays int
	Category                   string
	Encrypted                  bool
	KMSKeyId                   string
	RegionId                   string
	ResourceGroupId            string
	SnapshotSN                 string
	SnapshotLinkId             string
	ProductCode                string
	SourceSnapshotId           string
	SourceRegionId             string
	Tags                       TagSet
}

// DescribeSnapshotsResponse is the DescribeSnapshots reply.
type DescribeSnapshotsResponse struct {
	param.Response
	TotalCount int
	PageNumber int
	PageSize   int
	NextToken  string
	Snapshots  struct{ Snapshot []SnapshotItem }
}

// DescribeSnapshots lists snapshots with the filters of spec/actions.md 1.2.
func (s *Service) DescribeSnapshots(ctx context.Context, c Caller, p param.Values) (any, error) {
	reg, err := s.region(p, "")
	if err != nil {
		return nil, err
	}
	f := meta.SnapshotFilter{AccountID: c.AccountID, RegionID: reg.ID, DiskID: p.String("DiskId"), InstanceID: p.String("InstanceId"),
		Name: p.String("SnapshotName"), ResourceGroupID: p.String("ResourceGroupId"), KMSKeyID: p.String("KMSKeyId")}
	link := p.String("SnapshotLinkId")
	ids, _, err := p.JSONList("SnapshotIds", apierr.InvalidSnapshotIDs)
	if err != nil {
		return nil, err
	}
	if len(ids) > 100 {
		return nil, apierr.InvalidSnapshotIDs
	}
	f.IDs = ids
	switch st := strings.ToLower(p.String("Status")); st {
	case "", "all":
	case SnapProgressing, SnapAccomplished, SnapFailed:
		f.Status = st
	default:
		return nil, apierr.InvalidStatusFilter
	}
	switch t := strings.ToLower(p.String("SnapshotType")); t {
	case "", "all":
	case "auto", "user":
		f.Type = t
	default:
		return nil, apierr.InvalidSnapshotTypeFilter
	}
	switch t := strings.ToLower(p.String("SourceDiskType")); t {
	case "":
	case "system", "data":
		f.DiskType = t
	default:
		return nil, apierr.InvalidSourceDiskType
	}
	switch u := p.String("Usage"); u {
	case "":
	case "image", "disk", "image_disk", "none":
		f.Usage = u
	default:
		return nil, apierr.InvalidUsage
	}
	switch cat := strings.ToLower(p.String("Category")); cat {
	case "":
	case "standard", "flash":
		f.Category = cat
	default:
		return nil, apierr.InvalidSnapshotCategory
	}
	if enc, ok, err := BoolParam(p, "Encrypted"); err != nil {
		return nil, err
	} else if ok {
		f.Encrypted = &enc
	}
	if f.CreatedAfter, f.CreatedBefore, err = creationFilters(p); err != nil {
		return nil, err
	}
	if f.Tags, err = tagFilters(p); err != nil {
		return nil, err
	}
	pg, err := parsePaging(p, pagingLimits{min: 1, max: 100, def: 10})
	if err != nil {
		return nil, err
	}
	f.Page = pg.Page
	if err := dryRun(p); err != nil {
		return nil, err
	}
	resp := &DescribeSnapshotsResponse{PageNumber: pg.Number, PageSize: pg.Size}
	resp.Snapshots.Snapshot = []SnapshotItem{}
	err = s.store.View(ctx, func(tx meta.Tx) error {
		if link != "" {
			// A snapshot link is the chain of one disk's snapshots; its
			// ID is derived from the disk's, so the disks are searched.
			disks, err := tx.SnapshotDiskIDs(c.AccountID, f.Product, reg.ID)
			if err != nil {
				return err
			}
			f.DiskIDs = []string{}
			for _, d := range disks {
				if snapshotLinkID(reg, d) == link {
					f.DiskIDs = append(f.DiskIDs, d)
				}
			}
			if len(f.DiskIDs) == 0 {
				return apierr.SnapshotLinkNotFound
			}
		}
		list, total, err := tx.ListSnapshots(f)
		if err != nil {
			return err
		}
		resp.TotalCount, resp.NextToken = total, pg.next(len(list), total)
		for _, snap := range list {
			resp.Snapshots.Snapshot = append(resp.Snapshots.Snapshot, s.snapshotItem(snap))
		}
		return nil
	})
	if err != nil {
		return nil, wrap(err)
	}
	return resp, nil
}

func parseFilterTime(v string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02T15:04Z", "2006-01-02T15:04:05Z"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Parse(time.RFC3339, v)
}

func (s *Service) snapshotItem(snap *meta.Snapshot) SnapshotItem {
	ia := instantAccess(snap, s.clock.Now())
	sn := sha256.Sum256([]byte(snap.ID))
	it := SnapshotItem{SnapshotId: snap.ID, SnapshotName: snap.Name, Description: snap.Description, Status: snap.Status,
		Progress: progressString(snap), CreationTime: timeStr(snap.CreatedAt), LastModifiedTime: timeStr(snap.ModifiedAt),
		SourceDiskId: snap.DiskID, SourceDiskSize: itoa(snap.DiskSizeGiB), SourceDiskType: snap.DiskType,
		SourceStorageType: "disk", SnapshotType: snap.Type, Usage: snap.Usage, RetentionDays: snap.RetentionDays,
		Available:     snap.Status == SnapAccomplished || (ia && snap.Status == SnapProgressing),
		InstantAccess: ia, InstantAccessRetentionDays: snap.InstantAccessRetentionDays,
		Category: snap.Category, Encrypted: snap.Encrypted, KMSKeyId: snap.KMSKeyID, RegionId: snap.RegionID,
		ResourceGroupId: snap.ResourceGroupID, SnapshotSN: "64" + hex.EncodeToString(sn[:6]),
		SnapshotLinkId: snapshotLinkID(s.regions[snap.RegionID], snap.DiskID), Tags: tagSet(snap.Tags)}
	if snap.Status == SnapProgressing && snap.ProgressDone > 0 && snap.ProgressTotal > snap.ProgressDone {
		elapsed := s.clock.Now().Sub(snap.CreatedAt).Seconds()
		it.RemainTime = int(elapsed * float64(snap.ProgressTotal-snap.ProgressDone) / float64(snap.ProgressDone))
	}
	return it
}

// snapshotLinkID is the ID of the snapshot link (chain) of a disk.
func snapshotLinkID(reg Region, diskID string) string {
	h := sha256.Sum256([]byte(diskID))
	return "sl-" + reg.IDCode + hex.EncodeToString(h[:9])
}

func itoa(n int) string { return strconv.Itoa(n) }
