// Package ecd is the Elastic Desktop Service (EDS, product ecd,
// 2020-09-30) surface of seed 000: cloud computers (desktops) with a
// system and a data disk, and snapshots of those disks. An EDS snapshot
// is a disk snapshot reached through a desktop: disks, snapshots, the
// engine and the state machinery are those of the ECS core (package ecs);
// the rules, names and shapes here are EDS's own.
package ecd

import (
	"context"
	"errors"
	"log/slog"

	"github.com/snapstack/snapstack/internal/apierr"
	"github.com/snapstack/snapstack/internal/ecs"
	"github.com/snapstack/snapstack/internal/meta"
	"github.com/snapstack/snapstack/internal/param"
)

// Version is the API version of the EDS actions.
const Version = "2020-09-30"

// Product marks EDS records in the shared tables.
const Product = "ecd"

// Desktop states.
const (
	DesktopPending  = "Pending"
	DesktopStarting = "Starting"
	DesktopRunning  = "Running"
	DesktopStopping = "Stopping"
	DesktopStopped  = "Stopped"
)

// Errors of EDS. The EDS documents publish no per-action codes; these
// follow the ECS style and are listed in docs/compatibility.md.
var (
	errDesktopNotFound  = apierr.New("InvalidDesktopId.NotFound", 404, "The specified desktop does not exist.")
	errDesktopStatus    = apierr.New("IncorrectDesktopStatus", 403, "The current status of the desktop does not support this operation.")
	errSnapshotNotFound = apierr.New("InvalidSnapshotId.NotFound", 404, "The specified snapshot does not exist.")
	errSnapshotNotReady = apierr.New("InvalidSnapshotId.NotReady", 403, "The specified snapshot has not completed yet.")
	// errDiskBusy: the disk has a snapshot in progress, or is being reset
	// (ECS's code for the same conditions).
	errDiskBusy          = apierr.New("IncorrectDiskStatus", 403, "The disk has a snapshot in progress or is being reset.")
	errSnapshotName      = apierr.New("InvalidSnapshotName.Malformed", 400, "The specified SnapshotName is wrongly formed.")
	errDescription       = apierr.New("InvalidDescription.Malformed", 400, "The specified Description is wrongly formed.")
	errSourceDiskType    = apierr.New("InvalidSourceDiskType.ValueNotSupported", 400, "The specified SourceDiskType is not valid. Valid values: system, data.")
	errDesktopName       = apierr.New("InvalidDesktopName.Malformed", 400, "The specified DesktopName is wrongly formed.")
	errAmount            = apierr.New("InvalidAmount", 400, "The specified Amount is not valid.")
	errDiskSize          = apierr.New("InvalidDiskSize", 400, "The specified disk size is not valid.")
	errTooManyDesktopIDs = apierr.New("InvalidDesktopId.Malformed", 400, "At most 100 desktop IDs can be specified.")
	errEndUserID         = apierr.New("InvalidEndUserId.Malformed", 400, "The specified EndUserId is wrongly formed: at most 100 IDs of 1 to 64 characters, without commas.")
	errSourceDiskMissing = apierr.New("InvalidSnapshotId.DiskNotFound", 403, "The disk the snapshot was taken from no longer exists.")
)

// Service implements the EDS actions on the ECS core.
type Service struct {
	core *ecs.Service
	log  *slog.Logger
}

// New returns the EDS service.
func New(core *ecs.Service, log *slog.Logger) *Service { return &Service{core: core, log: log} }

// Handler is the shape of an action.
type Handler = func(ctx context.Context, c ecs.Caller, p param.Values) (any, error)

// Actions maps the EDS actions to the service.
func (s *Service) Actions() map[string]Handler {
	return map[string]Handler{
		"DescribeRegions":   s.DescribeRegions,
		"CreateDesktops":    s.CreateDesktops,
		"DescribeDesktops":  s.DescribeDesktops,
		"StartDesktops":     s.StartDesktops,
		"StopDesktops":      s.StopDesktops,
		"DeleteDesktops":    s.DeleteDesktops,
		"CreateSnapshot":    s.CreateSnapshot,
		"DescribeSnapshots": s.DescribeSnapshots,
		"DeleteSnapshot":    s.DeleteSnapshot,
		"ResetSnapshot":     s.ResetSnapshot,
	}
}

// RAMAction is the RAM action name of an EDS action (ecd:CreateSnapshot),
// for the authorization layer.
func RAMAction(action string) string { return "ecd:" + action }

// loadDesktop reads a desktop of the caller in region regionID ("": in
// any), settled as of now; one in another region is not found.
func (s *Service) loadDesktop(tx meta.Tx, c ecs.Caller, regionID, id string) (*meta.Instance, error) {
	d, err := tx.GetInstance(c.AccountID, id)
	if errors.Is(err, meta.ErrNotFound) || (err == nil && (d.Product != Product || (regionID != "" && d.RegionID != regionID))) {
		return nil, errDesktopNotFound
	}
	if err != nil {
		return nil, err
	}
	ecs.SettleInstance(d, s.core.Clock().Now())
	return d, nil
}

// desktopDisks returns the system and data disk of a desktop.
func desktopDisks(tx meta.Tx, d *meta.Instance) (sys, data *meta.Disk, err error) {
	disks, _, err := tx.ListDisks(meta.DiskFilter{AccountID: d.AccountID, Product: Product, InstanceID: d.ID})
	if err != nil {
		return nil, nil, err
	}
	for _, disk := range disks {
		if disk.Type == "system" {
			sys = disk
		} else {
			data = disk
		}
	}
	return sys, data, nil
}

func wrap(err error) error {
	if err == nil || apierr.As(err) != nil {
		return err
	}
	return apierr.Internal(err)
}

// RegionItem is a region of DescribeRegions (EDS: a flat list).
type RegionItem struct {
	RegionId       string
	RegionEndpoint string
	LocalName      string
}

// DescribeRegionsResponse is the EDS DescribeRegions reply.
type DescribeRegionsResponse struct {
	param.Response
	Regions []RegionItem
}

// DescribeRegions lists the regions.
func (s *Service) DescribeRegions(ctx context.Context, c ecs.Caller, p param.Values) (any, error) {
	resp := &DescribeRegionsResponse{Regions: []RegionItem{}}
	if _, err := s.core.Region(p); err != nil {
		return nil, err
	}
	for _, reg := range s.core.Regions() {
		resp.Regions = append(resp.Regions, RegionItem{RegionId: reg.ID, RegionEndpoint: "ecd." + reg.ID + ".aliyuncs.com", LocalName: reg.LocalName})
	}
	return resp, nil
}
