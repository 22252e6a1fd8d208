package ecd

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/snapstack/snapstack/internal/apierr"
	"github.com/snapstack/snapstack/internal/ecs"
	"github.com/snapstack/snapstack/internal/meta"
	"github.com/snapstack/snapstack/internal/param"
)

// validDesktopName: at most 64 characters, starting with a letter
// (Chinese letters count), then letters, digits, ':', '_', '.', '-'; not
// starting with http(s)://.
func validDesktopName(n string) bool {
	if n == "" || utf8.RuneCountInString(n) > 64 || hasHTTP(n) {
		return false
	}
	for i, r := range n {
		switch {
		case unicode.IsLetter(r):
		case i > 0 && (unicode.IsDigit(r) || strings.ContainsRune(":_.-", r)):
		default:
			return false
		}
	}
	return true
}

func hasHTTP(s string) bool {
	l := strings.ToLower(s)
	return strings.HasPrefix(l, "http://") || strings.HasPrefix(l, "https://")
}

// sizeParam reads a disk size in GiB (1..2048), def when absent.
func sizeParam(p param.Values, name string, def int) (int, error) {
	n, ok, err := p.Int(name, errDiskSize)
	if err != nil {
		return 0, err
	}
	if !ok {
		return def, nil
	}
	if n < 1 || n > 2048 {
		return 0, errDiskSize
	}
	return int(n), nil
}

// CreateDesktopsResponse is the CreateDesktops reply.
type CreateDesktopsResponse struct {
	param.Response
	OrderId   string
	DesktopId []string
}

// CreateDesktops creates Amount desktops, each with a system and a data
// disk, and starts them. Disk sizes come from SystemDiskSize and
// DataDiskSize (GiB; snapstack's stand-in for the bundle's sizes,
// defaults 80 and 40).
func (s *Service) CreateDesktops(ctx context.Context, c ecs.Caller, p param.Values) (any, error) {
	if _, err := p.Required("RegionId"); err != nil {
		return nil, err
	}
	reg, err := s.core.Region(p)
	if err != nil {
		return nil, err
	}
	for _, name := range []string{"OfficeSiteId", "BundleId"} {
		if _, err := p.Required(name); err != nil {
			return nil, err
		}
	}
	name := p.String("DesktopName")
	if name != "" && !validDesktopName(name) {
		return nil, errDesktopName
	}
	amount := int64(1)
	if n, ok, err := p.Int("Amount", errAmount); err != nil {
		return nil, err
	} else if ok {
		if n < 1 || n > 300 {
			return nil, errAmount
		}
		amount = n
	}
	sysSize, err := sizeParam(p, "SystemDiskSize", 80)
	if err != nil {
		return nil, err
	}
	dataSize, err := sizeParam(p, "DataDiskSize", 40)
	if err != nil {
		return nil, err
	}
	users, err := endUserIDs(p, "EndUserId")
	if err != nil {
		return nil, err
	}
	var tags []meta.Tag
	for _, e := range p.List("Tag") {
		if k, ok := e.Get("Key"); ok && k != "" {
			v, _ := e.Get("Value")
			tags = append(tags, meta.Tag{Key: k, Value: v})
		}
	}
	type plan struct{ id, sys, data string }
	plans := make([]plan, amount)
	var made []string
	eng := s.core.DataPlane()
	for i := range plans {
		plans[i] = plan{id: s.core.NewResourceID("ecd", reg), sys: s.core.NewResourceID("d", reg), data: s.core.NewResourceID("d", reg)}
		for _, d := range []struct {
			id   string
			size int
		}{{plans[i].sys, sysSize}, {plans[i].data, dataSize}} {
			if err := eng.CreateDisk(ctx, d.id, int64(d.size)<<30, ""); err != nil {
				s.core.ReleaseDisks(ctx, made)
				return nil, apierr.Internal(err)
			}
			made = append(made, d.id)
		}
	}
	resp := &CreateDesktopsResponse{DesktopId: []string{}}
	err = s.core.Store().Update(ctx, func(tx meta.Tx) error {
		resp.DesktopId = resp.DesktopId[:0]
		rg, err := s.core.DefaultResourceGroup(tx, c)
		if err != nil {
			return err
		}
		now := s.core.Clock().Now()
		zone := reg.Zones[0]
		for _, pl := range plans {
			dname := name
			if dname == "" {
				dname = pl.id
			}
			desk := &meta.Instance{ID: pl.id, AccountID: c.AccountID, Product: Product, RegionID: reg.ID, ZoneID: zone, Name: dname,
				ImageID: p.String("ImageId"), InstanceType: "eds.general.2c4g", ResourceGroupID: rg, Status: DesktopPending,
				TargetStatus: DesktopRunning, SettleAt: s.core.Deadline(now), CreatedAt: now, Tags: tags,
				Attrs: map[string]string{"OfficeSiteId": p.String("OfficeSiteId"), "BundleId": p.String("BundleId"),
					"PolicyGroupId": p.String("PolicyGroupId"), "ChargeType": chargeType(p), attrEndUsers: meta.JoinList(users),
					"SnapshotPolicyId": p.String("SnapshotPolicyId")}}
			if err := tx.PutInstance(desk); err != nil {
				return err
			}
			for _, d := range []struct {
				id, typ string
				size    int
			}{{pl.sys, "system", sysSize}, {pl.data, "data", dataSize}} {
				disk := &meta.Disk{ID: d.id, AccountID: c.AccountID, Product: Product, RegionID: reg.ID, ZoneID: zone,
					Category: "cloud_auto", Type: d.typ, SizeGiB: d.size, ResourceGroupID: rg, Status: ecs.DiskInUse,
					InstanceID: pl.id, EverAttached: true, DeleteWithInstance: true, CreatedAt: now, AttachedAt: now}
				if err := tx.PutDisk(disk); err != nil {
					return err
				}
			}
			resp.DesktopId = append(resp.DesktopId, pl.id)
		}
		return nil
	})
	if err != nil {
		s.core.ReleaseDisks(ctx, made)
		return nil, wrap(err)
	}
	return resp, nil
}

func chargeType(p param.Values) string {
	if p.String("ChargeType") == "PrePaid" {
		return "PrePaid"
	}
	return "PostPaid"
}

// attrEndUsers is the desktop attribute listing its end users
// (meta.JoinList).
const attrEndUsers = "EndUserIds"

// endUserIDs returns the end-user IDs of list parameter name (EndUserId.N
// or ExcludedEndUserId.N), without repeats.
func endUserIDs(p param.Values, name string) ([]string, error) {
	var ids []string
	for _, id := range p.Strings(name) {
		if id == "" || len(id) > 64 || strings.Contains(id, ",") {
			return nil, errEndUserID
		}
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	if len(ids) > 100 {
		return nil, errEndUserID
	}
	return ids, nil
}

// desktopIDs reads DesktopId.N (1..100).
func desktopIDs(p param.Values, required bool) ([]string, error) {
	ids := p.Strings("DesktopId")
	if len(ids) > 100 {
		return nil, errTooManyDesktopIDs
	}
	if required && len(ids) == 0 {
		return nil, apierr.MissingParameter("DesktopId.1")
	}
	return ids, nil
}

// changeDesktops applies change to each named desktop in one transaction;
// offline disks stop being served once it commits.
func (s *Service) changeDesktops(ctx context.Context, c ecs.Caller, p param.Values, offline bool, change func(tx meta.Tx, d *meta.Instance) error) (any, error) {
	if _, err := p.Required("RegionId"); err != nil {
		return nil, err
	}
	reg, err := s.core.Region(p)
	if err != nil {
		return nil, err
	}
	ids, err := desktopIDs(p, true)
	if err != nil {
		return nil, err
	}
	var disks []string
	err = s.core.Store().Update(ctx, func(tx meta.Tx) error {
		disks = disks[:0]
		for _, id := range ids {
			d, err := s.loadDesktop(tx, c, reg.ID, id)
			if err != nil {
				return err
			}
			if err := change(tx, d); err != nil {
				return err
			}
			sys, data, err := desktopDisks(tx, d)
			if err != nil {
				return err
			}
			for _, disk := range []*meta.Disk{sys, data} {
				if disk != nil {
					disks = append(disks, disk.ID)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, wrap(err)
	}
	if offline {
		for _, id := range disks {
			s.core.DataPlane().DiskOffline(id)
		}
	}
	return &param.Response{}, nil
}

// StartDesktops starts Stopped desktops.
func (s *Service) StartDesktops(ctx context.Context, c ecs.Caller, p param.Values) (any, error) {
	return s.changeDesktops(ctx, c, p, false, func(tx meta.Tx, d *meta.Instance) error {
		if d.Status != DesktopStopped {
			return errDesktopStatus
		}
		if busy, err := ecs.ResetUnderWay(tx, c.AccountID, d.ID, s.core.Clock().Now()); err != nil {
			return err
		} else if busy {
			return errDiskBusy
		}
		d.Status, d.TargetStatus, d.SettleAt = DesktopStarting, DesktopRunning, s.core.Deadline(s.core.Clock().Now())
		return tx.PutInstance(d)
	})
}

// StopDesktops stops Running desktops (their disks stop being served).
func (s *Service) StopDesktops(ctx context.Context, c ecs.Caller, p param.Values) (any, error) {
	return s.changeDesktops(ctx, c, p, true, func(tx meta.Tx, d *meta.Instance) error {
		if d.Status != DesktopRunning {
			return errDesktopStatus
		}
		d.Status, d.TargetStatus, d.SettleAt = DesktopStopping, DesktopStopped, s.core.Deadline(s.core.Clock().Now())
		return tx.PutInstance(d)
	})
}

// DeleteDesktops releases desktops and their disks; their snapshots stay.
func (s *Service) DeleteDesktops(ctx context.Context, c ecs.Caller, p param.Values) (any, error) {
	var released []string
	resp, err := s.changeDesktops(ctx, c, p, true, func(tx meta.Tx, d *meta.Instance) error {
		switch d.Status {
		case DesktopPending, DesktopStarting, DesktopStopping:
			return errDesktopStatus
		}
		if busy, err := ecs.ResetUnderWay(tx, c.AccountID, d.ID, s.core.Clock().Now()); err != nil {
			return err
		} else if busy {
			return errDiskBusy
		}
		sys, data, err := desktopDisks(tx, d)
		if err != nil {
			return err
		}
		for _, disk := range []*meta.Disk{sys, data} {
			if disk == nil {
				continue
			}
			if err := s.core.FailSnapshotsOf(tx, disk, "the desktop was deleted"); err != nil {
				return err
			}
			if err := tx.DeleteDisk(c.AccountID, disk.ID); err != nil {
				return err
			}
			released = append(released, disk.ID)
		}
		return tx.DeleteInstance(c.AccountID, d.ID)
	})
	if err == nil {
		s.core.ReleaseDisks(ctx, released)
	}
	return resp, err
}

// DesktopItem is one desktop of DescribeDesktops.
type DesktopItem struct {
	DesktopId          string
	DesktopName        string
	DesktopStatus      string
	DesktopType        string
	Cpu                int
	Memory             int64
	OsType             string
	ImageId            string
	BundleId           string
	OfficeSiteId       string
	OfficeSiteName     string
	DirectoryId        string
	PolicyGroupId      string
	SnapshotPolicyId   string
	ChargeType         string
	CreationTime       string
	StartTime          string
	ExpiredTime        string
	ConnectionStatus   string
	ProtocolType       string
	SystemDiskSize     int
	DataDiskSize       string
	SystemDiskCategory string
	DataDiskCategory   string
	ManagementFlag     string
	ManagementFlags    []string
	EndUserIds         []string
	Disks              []DiskItem
	Tags               []TagItem
}

// DiskItem is a disk of a desktop.
type DiskItem struct {
	DiskId           string
	DiskType         string
	DiskSize         int
	PerformanceLevel string
}

// TagItem is an EDS tag (Key/Value, unlike ECS).
type TagItem struct {
	Key   string
	Value string
}

// DescribeDesktopsResponse is the DescribeDesktops reply.
type DescribeDesktopsResponse struct {
	param.Response
	NextToken  string
	TotalCount int
	Desktops   []DesktopItem
}

// DescribeDesktops lists desktops.
func (s *Service) DescribeDesktops(ctx context.Context, c ecs.Caller, p param.Values) (any, error) {
	reg, err := s.core.Region(p)
	if err != nil {
		return nil, err
	}
	ids, err := desktopIDs(p, false)
	if err != nil {
		return nil, err
	}
	pg, err := ecs.ParsePage(p, 100, 10)
	if err != nil {
		return nil, err
	}
	tags, err := ecs.TagFilters(p)
	if err != nil {
		return nil, err
	}
	f := meta.InstanceFilter{AccountID: c.AccountID, Product: Product, RegionID: reg.ID, Name: p.String("DesktopName"),
		Status: p.String("DesktopStatus"), Statuses: p.Strings("DesktopStatusList"), ImageIDs: p.Strings("ImageId"),
		InstanceType: p.String("DesktopType"), ResourceGroupID: p.String("ResourceGroupId"), Now: s.core.Clock().Now(),
		Tags: tags, Page: pg.Page}
	if ids != nil {
		f.IDs = ids
	}
	f.Attrs = map[string]string{}
	for _, a := range []string{"OfficeSiteId", "PolicyGroupId", "ChargeType", "SnapshotPolicyId"} {
		if v := p.String(a); v != "" {
			f.Attrs[a] = v
		}
	}
	users, err := endUserIDs(p, "EndUserId")
	if err != nil {
		return nil, err
	}
	excluded, err := endUserIDs(p, "ExcludedEndUserId")
	if err != nil {
		return nil, err
	}
	f.AttrAny = map[string][]string{attrEndUsers: users}
	f.AttrNone = map[string][]string{attrEndUsers: excluded}
	resp := &DescribeDesktopsResponse{Desktops: []DesktopItem{}}
	onlyGroups, _, err := ecs.BoolParam(p, "OnlyDesktopGroup")
	if err != nil {
		return nil, err
	}
	if !osTypeMatches(p.Strings("OsTypes")...) || !oneOf(p.String("ProtocolType"), desktopProtocol) ||
		!oneOf(p.String("ManagementFlag"), desktopFlag) || !sameSite(f.Attrs["OfficeSiteId"], p.String("DirectoryId")) ||
		onlyGroups || unmodelled(p, "OfficeSiteName", "GroupId", "DesktopGroupId") {
		return resp, nil
	}
	if dir := p.String("DirectoryId"); dir != "" {
		f.Attrs["OfficeSiteId"] = dir
	}
	err = s.core.Store().View(ctx, func(tx meta.Tx) error {
		list, total, err := tx.ListInstances(f)
		if err != nil {
			return err
		}
		resp.TotalCount, resp.NextToken = total, pg.Next(len(list), total)
		now := s.core.Clock().Now()
		for _, d := range list {
			ecs.SettleInstance(d, now)
			sys, data, err := desktopDisks(tx, d)
			if err != nil {
				return err
			}
			resp.Desktops = append(resp.Desktops, desktopItem(d, sys, data))
		}
		return nil
	})
	if err != nil {
		return nil, wrap(err)
	}
	return resp, nil
}

// The OsType, ProtocolType and ManagementFlag of every desktop.
const (
	desktopOS       = "Windows"
	desktopProtocol = "ASP"
	desktopFlag     = "NoFlag"
)

// sameSite reports whether the OfficeSiteId and DirectoryId filters can
// both hold: a desktop's DirectoryId is its OfficeSiteId (the older name
// of the same thing), so two different values select none.
func sameSite(site, dir string) bool {
	return site == "" || dir == "" || site == dir
}

// unmodelled reports whether one of the filters on things no desktop of
// snapstack has (an office site name, a desktop group) is given: such a
// filter selects none.
func unmodelled(p param.Values, names ...string) bool {
	for _, n := range names {
		if p.String(n) != "" {
			return true
		}
	}
	return false
}

// oneOf reports whether a filter value matches a desktop's value (any
// case); "" matches every desktop.
func oneOf(want, have string) bool {
	return want == "" || strings.EqualFold(want, have)
}

// osTypeMatches reports whether a desktop's OsType is among want (any
// case); no value matches every desktop.
func osTypeMatches(want ...string) bool {
	if len(want) == 0 {
		return true
	}
	for _, w := range want {
		if strings.EqualFold(w, desktopOS) {
			return true
		}
	}
	return false
}

func desktopItem(d *meta.Instance, sys, data *meta.Disk) DesktopItem {
	it := DesktopItem{DesktopId: d.ID, DesktopName: d.Name, DesktopStatus: d.Status, DesktopType: d.InstanceType, Cpu: 2, Memory: 4096,
		OsType: desktopOS, ImageId: d.ImageID, BundleId: d.Attrs["BundleId"], OfficeSiteId: d.Attrs["OfficeSiteId"],
		PolicyGroupId: d.Attrs["PolicyGroupId"], ChargeType: d.Attrs["ChargeType"], CreationTime: ecs.MinuteString(d.CreatedAt),
		StartTime: ecs.MinuteString(d.StartedAt), ConnectionStatus: "Disconnected", ProtocolType: desktopProtocol,
		ManagementFlag: desktopFlag, ManagementFlags: []string{desktopFlag}, EndUserIds: meta.SplitList(d.Attrs[attrEndUsers]),
		DirectoryId: d.Attrs["OfficeSiteId"], SnapshotPolicyId: d.Attrs["SnapshotPolicyId"], Disks: []DiskItem{}, Tags: []TagItem{}}
	if sys != nil {
		it.SystemDiskSize, it.SystemDiskCategory = sys.SizeGiB, sys.Category
		it.Disks = append(it.Disks, DiskItem{DiskId: sys.ID, DiskType: "SYSTEM", DiskSize: sys.SizeGiB, PerformanceLevel: "PL0"})
	}
	if data != nil {
		it.DataDiskSize, it.DataDiskCategory = strconv.Itoa(data.SizeGiB), data.Category
		it.Disks = append(it.Disks, DiskItem{DiskId: data.ID, DiskType: "DATA", DiskSize: data.SizeGiB, PerformanceLevel: "PL0"})
	}
	for _, t := range d.Tags {
		it.Tags = append(it.Tags, TagItem{Key: t.Key, Value: t.Value})
	}
	return it
}
