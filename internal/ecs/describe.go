package ecs

import (
	"context"
	"strings"
	"time"

	"github.com/snapstack/snapstack/internal/apierr"
	"github.com/snapstack/snapstack/internal/meta"
	"github.com/snapstack/snapstack/internal/param"
)

// TagSet is the ECS wrapping of a tag list: {"Tag":[{"TagKey","TagValue"}]}.
type TagSet struct {
	Tag []TagItem
}

// TagItem is one tag in ECS Describe* responses.
type TagItem struct {
	TagKey   string
	TagValue string
}

func tagSet(tags []meta.Tag) TagSet {
	out := TagSet{Tag: []TagItem{}}
	for _, t := range tags {
		out.Tag = append(out.Tag, TagItem{TagKey: t.Key, TagValue: t.Value})
	}
	return out
}

// RegionItem is one region of DescribeRegions.
type RegionItem struct {
	RegionId       string
	LocalName      string
	RegionEndpoint string
	Status         string
}

// DescribeRegionsResponse is the DescribeRegions reply.
type DescribeRegionsResponse struct {
	param.Response
	Regions struct{ Region []RegionItem }
}

// DescribeRegions lists the configured regions.
func (s *Service) DescribeRegions(ctx context.Context, c Caller, p param.Values) (any, error) {
	resp := &DescribeRegionsResponse{}
	resp.Regions.Region = []RegionItem{}
	for _, r := range s.cfg.Regions {
		resp.Regions.Region = append(resp.Regions.Region, RegionItem{
			RegionId: r.ID, LocalName: r.LocalName, RegionEndpoint: "ecs." + r.ID + ".aliyuncs.com", Status: "available"})
	}
	return resp, nil
}

// ZoneItem is one zone of DescribeZones.
type ZoneItem struct {
	ZoneId                    string
	LocalName                 string
	ZoneType                  string
	AvailableResourceCreation struct{ ResourceTypes []string }
	AvailableDiskCategories   struct{ DiskCategories []string }
	AvailableInstanceTypes    struct{ InstanceTypes []string }
}

// DescribeZonesResponse is the DescribeZones reply.
type DescribeZonesResponse struct {
	param.Response
	Zones struct{ Zone []ZoneItem }
}

// DescribeZones lists the zones of a region.
func (s *Service) DescribeZones(ctx context.Context, c Caller, p param.Values) (any, error) {
	reg, err := s.region(p, "")
	if err != nil {
		return nil, err
	}
	resp := &DescribeZonesResponse{}
	resp.Zones.Zone = []ZoneItem{}
	for _, z := range reg.Zones {
		zi := ZoneItem{ZoneId: z, LocalName: z, ZoneType: "AvailabilityZone"}
		zi.AvailableResourceCreation.ResourceTypes = []string{"Instance", "Disk"}
		zi.AvailableDiskCategories.DiskCategories = []string{"cloud", "cloud_efficiency", "cloud_ssd", "cloud_essd", "cloud_auto", "cloud_essd_entry", "ephemeral_ssd"}
		zi.AvailableInstanceTypes.InstanceTypes = []string{"ecs.g7.large", "ecs.g7.xlarge", "ecs.c7.large", "ecs.t6-c1m1.large"}
		resp.Zones.Zone = append(resp.Zones.Zone, zi)
	}
	return resp, nil
}

// LockReason is one operation lock.
type LockReason struct {
	LockReason string
	LockMsg    string
}

// InstanceItem is one instance of DescribeInstances.
type InstanceItem struct {
	InstanceId          string
	InstanceName        string
	Description         string
	HostName            string
	RegionId            string
	ZoneId              string
	Status              string
	InstanceType        string
	InstanceTypeFamily  string
	ImageId             string
	OSType              string
	OSName              string
	Cpu                 int
	Memory              int
	InstanceChargeType  string
	InternetChargeType  string
	InstanceNetworkType string
	StoppedMode         string
	CreationTime        string
	StartTime           string
	ExpiredTime         string
	DeletionProtection  bool
	ResourceGroupId     string
	SerialNumber        string
	OperationLocks      struct{ LockReason []LockReason }
	Tags                TagSet
}

// DescribeInstancesResponse is the DescribeInstances reply.
type DescribeInstancesResponse struct {
	param.Response
	TotalCount int
	PageNumber int
	PageSize   int
	NextToken  string
	Instances  struct{ Instance []InstanceItem }
}

// DescribeInstances lists instances with filters and pagination.
func (s *Service) DescribeInstances(ctx context.Context, c Caller, p param.Values) (any, error) {
	reg, err := s.region(p, "")
	if err != nil {
		return nil, err
	}
	pg, err := parsePaging(p, pagingLimits{min: 10, max: 100, def: 10, clamp: true})
	if err != nil {
		return nil, err
	}
	ids, _, err := p.JSONList("InstanceIds", apierr.InvalidParameter("InstanceIds", "It must be a JSON array of at most 100 IDs."))
	if err != nil {
		return nil, err
	}
	if len(ids) > 100 {
		return nil, apierr.InvalidParameter("InstanceIds", "At most 100 IDs.")
	}
	status := p.String("Status")
	if status != "" && !contains([]string{InstancePending, InstanceRunning, InstanceStarting, InstanceStopping, InstanceStopped}, status) {
		return nil, apierr.InvalidStatusFilter
	}
	tags, err := tagFilters(p)
	if err != nil {
		return nil, err
	}
	f := meta.InstanceFilter{AccountID: c.AccountID, RegionID: reg.ID, IDs: ids, ZoneID: p.String("ZoneId"), Status: status,
		Now: s.clock.Now(), ResourceGroupID: p.String("ResourceGroupId"), Tags: tags, Page: pg.Page}
	none, err := instanceAttributeFilters(p, &f)
	if err != nil {
		return nil, err
	}
	if err := dryRun(p); err != nil {
		return nil, err
	}
	resp := &DescribeInstancesResponse{PageNumber: pg.Number, PageSize: pg.Size}
	resp.Instances.Instance = []InstanceItem{}
	if none {
		return resp, nil
	}
	err = s.store.View(ctx, func(tx meta.Tx) error {
		list, total, err := tx.ListInstances(f)
		if err != nil {
			return err
		}
		resp.TotalCount = total
		resp.NextToken = pg.next(len(list), total)
		now := s.clock.Now()
		for _, inst := range list {
			settleInstance(inst, now)
			resp.Instances.Instance = append(resp.Instances.Instance, instanceItem(inst))
		}
		return nil
	})
	if err != nil {
		return nil, wrap(err)
	}
	return resp, nil
}

// instanceExpiry is the ExpiredTime of every instance: they are all
// pay-as-you-go and never expire.
var instanceExpiry = time.Date(2099, 12, 31, 15, 59, 0, 0, time.UTC)

// instanceAttributeFilters decodes the DescribeInstances filters on an
// instance's name, image, type, lock, charge type, network type and
// creation or expiry time into f. none reports a filter no snapstack
// instance can match (InstanceChargeType PrePaid, InstanceNetworkType
// classic, a LockReason other than security, an expiry outside the
// range).
func instanceAttributeFilters(p param.Values, f *meta.InstanceFilter) (none bool, err error) {
	f.NameGlob = p.String("InstanceName")
	f.ImageID = p.String("ImageId")
	f.InstanceType = p.String("InstanceType")
	switch p.String("LockReason") {
	case "":
	case "security":
		v := true
		f.SecurityLocked = &v
	case "financial", "recycling", "dedicatedhostfinancial", "refunded":
		none = true
	default:
		return false, apierr.InvalidOperationLock
	}
	switch p.String("InstanceChargeType") {
	case "", "PostPaid":
	case "PrePaid":
		none = true
	default:
		return false, apierr.New("InvalidInstanceChargeType.NotFound", 404, "The specified InstanceChargeType is not valid.")
	}
	switch p.String("InstanceNetworkType") {
	case "", "vpc":
	case "classic":
		none = true
	default:
		return false, apierr.New("InvalidNetworkType.NotFound", 404, "The specified InstanceNetworkType is not valid.")
	}
	t, err := timeFilters(p, "CreationStartTime", "CreationEndTime", "ExpiredStartTime", "ExpiredEndTime")
	if err != nil {
		return false, err
	}
	f.CreatedAfter, f.CreatedBefore = t["CreationStartTime"], t["CreationEndTime"]
	if from, until := t["ExpiredStartTime"], t["ExpiredEndTime"]; instanceExpiry.Before(from) || (!until.IsZero() && instanceExpiry.After(until)) {
		none = true
	}
	return none, nil
}

func instanceItem(inst *meta.Instance) InstanceItem {
	family := inst.InstanceType
	if i := strings.LastIndex(family, "."); i > 0 {
		family = family[:i]
	}
	it := InstanceItem{InstanceId: inst.ID, InstanceName: inst.Name, Description: inst.Description, HostName: inst.HostName,
		RegionId: inst.RegionID, ZoneId: inst.ZoneID, Status: inst.Status, InstanceType: inst.InstanceType,
		InstanceTypeFamily: family, ImageId: inst.ImageID, OSType: "linux", OSName: "Linux", Cpu: 2, Memory: 8192,
		InstanceChargeType: "PostPaid", InternetChargeType: "PayByTraffic", InstanceNetworkType: "vpc",
		StoppedMode: "Not-applicable", CreationTime: minuteStr(inst.CreatedAt), StartTime: minuteStr(inst.StartedAt),
		ExpiredTime: minuteStr(instanceExpiry), ResourceGroupId: inst.ResourceGroupID, SerialNumber: inst.ID, Tags: tagSet(inst.Tags)}
	if inst.Status == InstanceStopped && inst.StoppedMode != "" {
		it.StoppedMode = inst.StoppedMode
	}
	it.OperationLocks.LockReason = []LockReason{}
	if inst.SecurityLocked {
		it.OperationLocks.LockReason = append(it.OperationLocks.LockReason, LockReason{LockReason: "security", LockMsg: "The instance is locked for security reasons."})
	}
	return it
}
