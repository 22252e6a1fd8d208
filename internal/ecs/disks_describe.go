package ecs

import (
	"context"
	"strings"

	"github.com/snapstack/snapstack/internal/apierr"
	"github.com/snapstack/snapstack/internal/meta"
	"github.com/snapstack/snapstack/internal/param"
)

// DiskItem is one disk of DescribeDisks.
type DiskItem struct {
	DiskId                        string
	DiskName                      string
	Description                   string
	RegionId                      string
	ZoneId                        string
	Status                        string
	Type                          string
	Category                      string
	PerformanceLevel              string
	Size                          int
	InstanceId                    string
	Device                        string
	ImageId                       string
	SourceSnapshotId              string
	Portable                      bool
	DeleteWithInstance            bool
	DeleteAutoSnapshot            bool
	EnableAutoSnapshot            bool
	EnableAutomatedSnapshotPolicy bool
	AutoSnapshotPolicyId          string
	DiskChargeType                string
	CreationTime                  string
	AttachedTime                  string
	DetachedTime                  string
	ExpiredTime                   string
	Encrypted                     bool
	KMSKeyId                      string
	ResourceGroupId               string
	SerialNumber                  string
	MultiAttach                   string
	IOPS                          int
	OperationLocks                struct{ OperationLock []LockReason }
	Attachments                   struct{ Attachment []Attachment }
	Tags                          TagSet
}

// Attachment is where a disk is attached.
type Attachment struct {
	InstanceId   string
	Device       string
	AttachedTime string
}

// DescribeDisksResponse is the DescribeDisks reply.
type DescribeDisksResponse struct {
	param.Response
	TotalCount int
	PageNumber int
	PageSize   int
	NextToken  string
	Disks      struct{ Disk []DiskItem }
}

// DescribeDisks lists disks with filters and pagination.
func (s *Service) DescribeDisks(ctx context.Context, c Caller, p param.Values) (any, error) {
	reg, err := s.region(p, "")
	if err != nil {
		return nil, err
	}
	pg, err := parsePaging(p, pagingLimits{min: 10, max: 500, def: 10, clamp: true})
	if err != nil {
		return nil, err
	}
	ids, _, err := p.JSONList("DiskIds", apierr.New("InvalidParameter.DiskIds", 400, "The specified parameter DiskIds is not valid."))
	if err != nil {
		return nil, err
	}
	if len(ids) > 100 {
		return nil, apierr.New("InvalidDiskIds.Malformed", 403, "The amount of specified disk Ids exceeds the limit.")
	}
	typ := strings.ToLower(p.String("DiskType"))
	switch typ {
	case "", "all":
		typ = ""
	case "system", "data":
	default:
		return nil, apierr.New("InvalidDiskType.ValueNotSupported", 400, "The specified parameter DiskType is not valid.")
	}
	cat := p.String("Category")
	if cat == "all" {
		cat = ""
	}
	if _, ok := cloudCategories[cat]; cat != "" && !ok {
		return nil, apierr.New("InvalidCategory.ValueNotSupported", 400, "The specified parameter Category is not valid.")
	}
	status := p.String("Status")
	if status == "All" {
		status = ""
	}
	if status != "" && !contains([]string{DiskInUse, DiskAvailable, DiskAttaching, DiskDetaching, DiskCreating, DiskReIniting}, status) {
		return nil, apierr.New("InvalidStatus.ValueNotSupported", 400, "The specified parameter Status is not valid.")
	}
	tags, err := tagFilters(p)
	if err != nil {
		return nil, err
	}
	f := meta.DiskFilter{AccountID: c.AccountID, RegionID: reg.ID, IDs: ids, ZoneID: p.String("ZoneId"), InstanceID: p.String("InstanceId"),
		Type: typ, Category: cat, Status: status, Now: s.clock.Now(), Name: p.String("DiskName"), SnapshotID: p.String("SnapshotId"),
		ResourceGroupID: p.String("ResourceGroupId"), Tags: tags, KMSKeyID: p.String("KMSKeyId"), Page: pg.Page}
	none, err := diskFlagFilters(p, &f)
	if err != nil {
		return nil, err
	}
	if err := dryRun(p); err != nil {
		return nil, err
	}
	resp := &DescribeDisksResponse{PageNumber: pg.Number, PageSize: pg.Size}
	resp.Disks.Disk = []DiskItem{}
	if none {
		return resp, nil
	}
	err = s.store.View(ctx, func(tx meta.Tx) error {
		list, total, err := tx.ListDisks(f)
		if err != nil {
			return err
		}
		resp.TotalCount, resp.NextToken = total, pg.next(len(list), total)
		for _, d := range list {
			settleDisk(d, s.clock.Now())
			resp.Disks.Disk = append(resp.Disks.Disk, diskItem(d))
		}
		return nil
	})
	if err != nil {
		return nil, wrap(err)
	}
	return resp, nil
}

// diskFlagFilters decodes the DescribeDisks filters on a disk's flags,
// charge type, lock and creation time into f. none reports a filter no
// snapstack disk can match (DiskChargeType PrePaid: every disk is
// pay-as-you-go; a LockReason other than financial, the only lock a disk
// gets, by the admin InArrears state).
func diskFlagFilters(p param.Values, f *meta.DiskFilter) (none bool, err error) {
	for _, b := range []struct {
		name string
		dst  **bool
	}{{"Portable", &f.Portable}, {"DeleteWithInstance", &f.DeleteWithInstance}, {"DeleteAutoSnapshot", &f.DeleteAutoSnapshot}, {"Encrypted", &f.Encrypted}} {
		v, ok, err := BoolParam(p, b.name)
		if err != nil {
			return false, err
		}
		if ok {
			*b.dst = &v
		}
	}
	switch m := p.String("MultiAttach"); m {
	case "":
	case "Enabled", "Disabled":
		v := m == "Enabled"
		f.MultiAttach = &v
	case "LegacyShared":
		none = true
	default:
		return false, apierr.InvalidParameter("MultiAttach", "Valid values: Disabled, Enabled, LegacyShared.")
	}
	switch p.String("DiskChargeType") {
	case "", "PostPaid":
	case "PrePaid":
		none = true
	default:
		return false, apierr.New("InvalidDiskChargeType.NotFound", 404, "The specified DiskChargeType is not valid.")
	}
	switch p.String("LockReason") {
	case "":
	case "financial":
		v := true
		f.InArrears = &v
	case "security", "recycling", "dedicatedhostfinancial":
		none = true
	default:
		return false, apierr.InvalidOperationLock
	}
	f.CreatedAfter, f.CreatedBefore, err = creationFilters(p)
	return none, err
}

func diskItem(d *meta.Disk) DiskItem {
	it := DiskItem{DiskId: d.ID, DiskName: d.Name, Description: d.Description, RegionId: d.RegionID, ZoneId: d.ZoneID,
		Status: d.Status, Type: d.Type, Category: d.Category, PerformanceLevel: d.PerformanceLevel, Size: d.SizeGiB,
		InstanceId: d.InstanceID, ImageId: d.ImageID, SourceSnapshotId: d.SourceSnapshotID, Portable: d.Portable,
		DeleteWithInstance: d.DeleteWithInstance, DeleteAutoSnapshot: d.DeleteAutoSnapshot, DiskChargeType: "PostPaid",
		CreationTime: timeStr(d.CreatedAt), AttachedTime: timeStr(d.AttachedAt), DetachedTime: timeStr(d.DetachedAt),
		ExpiredTime: "2999-09-08T16:00Z", Encrypted: d.Encrypted, KMSKeyId: d.KMSKeyID, ResourceGroupId: d.ResourceGroupID,
		SerialNumber: d.ID[2:], MultiAttach: "Disabled", IOPS: 1800 + 50*d.SizeGiB, Tags: tagSet(d.Tags)}
	if d.MultiAttach {
		it.MultiAttach = "Enabled"
	}
	if d.Status == DiskInUse || d.Status == DiskDetaching {
		it.Device = d.Device
	}
	it.OperationLocks.OperationLock = []LockReason{}
	if d.InArrears {
		it.OperationLocks.OperationLock = append(it.OperationLocks.OperationLock, LockReason{LockReason: "financial"})
	}
	it.Attachments.Attachment = []Attachment{}
	if d.InstanceID != "" {
		it.Attachments.Attachment = append(it.Attachments.Attachment, Attachment{InstanceId: d.InstanceID, Device: d.Device, AttachedTime: timeStr(d.AttachedAt)})
	}
	return it
}
