package e2e

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	ecs4 "github.com/alibabacloud-go/ecs-20140526/v4/client"
	"github.com/alibabacloud-go/tea/tea"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	legacy "github.com/aliyun/alibaba-cloud-sdk-go/services/ecs"

	"github.com/snapstack/snapstack/internal/clock"
)

// errFx is one server with one running instance (a system disk and a data
// disk), for one error case.
type errFx struct {
	*env
	t               *testing.T
	tea             *ecs4.Client
	leg             *legacy.Client
	inst, sys, data string
}

func newErrFx(t *testing.T, opts ...option) *errFx {
	t.Helper()
	e := start(t, "", opts...)
	f := &errFx{env: e, t: t, tea: e.teaClient(""), leg: e.legacyClient()}
	f.inst, f.sys, f.data = e.runInstance()
	return f
}

// snap calls CreateSnapshot through the tea SDK (ACS3-HMAC-SHA256).
func (f *errFx) snap(req *ecs4.CreateSnapshotRequest) (string, error) {
	resp, err := f.tea.CreateSnapshot(req)
	if err != nil {
		return "", err
	}
	return tea.StringValue(resp.Body.SnapshotId), nil
}

// snapDisk is snap with only a DiskId.
func (f *errFx) snapDisk(disk string) (string, error) {
	return f.snap(&ecs4.CreateSnapshotRequest{DiskId: tea.String(disk)})
}

// legacySnap calls CreateSnapshot through the legacy SDK (RPC HMAC-SHA1).
func (f *errFx) legacySnap(set func(*legacy.CreateSnapshotRequest)) (string, error) {
	req := legacy.CreateCreateSnapshotRequest()
	f.point(req)
	set(req)
	resp, err := f.leg.CreateSnapshot(req)
	if err != nil {
		return "", err
	}
	return resp.SnapshotId, nil
}

// mustSnap takes a snapshot of disk and waits until it is accomplished.
func (f *errFx) mustSnap(disk string) string {
	f.t.Helper()
	id, err := f.snapDisk(disk)
	if err != nil {
		f.t.Fatalf("CreateSnapshot %s: %v", disk, err)
	}
	f.waitAccomplished(id)
	return id
}

// snapStatus is the Status DescribeSnapshots shows for id, "" when absent.
func (f *errFx) snapStatus(id string) string {
	f.t.Helper()
	d, err := f.tea.DescribeSnapshots(&ecs4.DescribeSnapshotsRequest{RegionId: tea.String("cn-hangzhou"), SnapshotIds: tea.String(`["` + id + `"]`)})
	if err != nil {
		f.t.Fatalf("DescribeSnapshots: %v", err)
	}
	if len(d.Body.Snapshots.Snapshot) == 0 {
		return ""
	}
	return tea.StringValue(d.Body.Snapshots.Snapshot[0].Status)
}

// diskSnapshots lists the snapshot IDs of a disk.
func (f *errFx) diskSnapshots(disk string) []string {
	f.t.Helper()
	d, err := f.tea.DescribeSnapshots(&ecs4.DescribeSnapshotsRequest{RegionId: tea.String("cn-hangzhou"), DiskId: tea.String(disk)})
	if err != nil {
		f.t.Fatalf("DescribeSnapshots: %v", err)
	}
	var ids []string
	for _, s := range d.Body.Snapshots.Snapshot {
		ids = append(ids, tea.StringValue(s.SnapshotId))
	}
	return ids
}

// createDisk makes a pay-as-you-go data disk in cn-hangzhou-i.
func (f *errFx) createDisk(category string, size int) string {
	f.t.Helper()
	req := legacy.CreateCreateDiskRequest()
	f.point(req)
	req.ZoneId = "cn-hangzhou-i"
	req.Size = requests.NewInteger(size)
	req.DiskCategory = category
	resp, err := f.leg.CreateDisk(req)
	if err != nil {
		f.t.Fatalf("CreateDisk %s: %v", category, err)
	}
	return resp.DiskId
}

func (f *errFx) attachDisk(disk, inst string) {
	f.t.Helper()
	req := legacy.CreateAttachDiskRequest()
	f.point(req)
	req.DiskId, req.InstanceId = disk, inst
	if _, err := f.leg.AttachDisk(req); err != nil {
		f.t.Fatalf("AttachDisk %s %s: %v", disk, inst, err)
	}
}

func (f *errFx) stopInstance(inst string) {
	f.t.Helper()
	req := legacy.CreateStopInstanceRequest()
	f.point(req)
	req.InstanceId = inst
	if _, err := f.leg.StopInstance(req); err != nil {
		f.t.Fatalf("StopInstance %s: %v", inst, err)
	}
}

func (f *errFx) startInstance(inst string) {
	f.t.Helper()
	req := legacy.CreateStartInstanceRequest()
	f.point(req)
	req.InstanceId = inst
	if _, err := f.leg.StartInstance(req); err != nil {
		f.t.Fatalf("StartInstance %s: %v", inst, err)
	}
}

func (f *errFx) resetDisk(disk, snap string) error {
	req := legacy.CreateResetDiskRequest()
	f.point(req)
	req.DiskId, req.SnapshotId = disk, snap
	_, err := f.leg.ResetDisk(req)
	return err
}

// errCase reaches one error code of CreateSnapshot. call starts its own
// server and returns the error of the call under test, made with sdk.
type errCase struct {
	status int
	code   string
	how    string
	sdk    string // "tea" or "legacy"
	call   func(t *testing.T) error
}

const (
	sdkTea    = "tea"
	sdkLegacy = "legacy"
)

func createSnapshotErrorCases() []errCase {
	tags := func(n int) []*ecs4.CreateSnapshotRequestTag {
		var out []*ecs4.CreateSnapshotRequestTag
		for i := 1; i <= n; i++ {
			out = append(out, &ecs4.CreateSnapshotRequestTag{Key: tea.String("k" + strconv.Itoa(i)), Value: tea.String("v")})
		}
		return out
	}
	return []errCase{
		{400, "MissingParameter", "no DiskId", sdkLegacy, func(t *testing.T) error {
			f := newErrFx(t)
			_, err := f.legacySnap(func(r *legacy.CreateSnapshotRequest) { r.SnapshotName = "no-disk" })
			return err
		}},
		{400, "InvalidSnapshotName.Malformed", "name starting with a digit", sdkTea, func(t *testing.T) error {
			f := newErrFx(t)
			_, err := f.snap(&ecs4.CreateSnapshotRequest{DiskId: tea.String(f.data), SnapshotName: tea.String("1nightly")})
			return err
		}},
		{400, "InvalidSnapshotName.Malformed", "name with a dot", sdkLegacy, func(t *testing.T) error {
			f := newErrFx(t)
			_, err := f.legacySnap(func(r *legacy.CreateSnapshotRequest) { r.DiskId, r.SnapshotName = f.data, "nightly.1" })
			return err
		}},
		{404, "InvalidDescription.Malformed", "description starting with https://", sdkLegacy, func(t *testing.T) error {
			f := newErrFx(t)
			_, err := f.legacySnap(func(r *legacy.CreateSnapshotRequest) { r.DiskId, r.Description = f.data, "https://example.com" })
			return err
		}},
		{400, "InvalidRetentionDays.Malformed", "RetentionDays 65537", sdkTea, func(t *testing.T) error {
			f := newErrFx(t)
			_, err := f.snap(&ecs4.CreateSnapshotRequest{DiskId: tea.String(f.data), RetentionDays: tea.Int32(65537)})
			return err
		}},
		{403, "InvalidSnapshotCategory.Malformed", "Category Archive", sdkTea, func(t *testing.T) error {
			f := newErrFx(t)
			_, err := f.snap(&ecs4.CreateSnapshotRequest{DiskId: tea.String(f.data), Category: tea.String("Archive")})
			return err
		}},
		{403, "InvalidCategoryAndInstantAccess.Malformed", "Category and InstantAccess both sent", sdkTea, func(t *testing.T) error {
			f := newErrFx(t)
			_, err := f.snap(&ecs4.CreateSnapshotRequest{DiskId: tea.String(f.data), Category: tea.String("Standard"), InstantAccess: tea.Bool(true)})
			return err
		}},
		{403, "InvalidInstantAccessRetentionDays.Malformed", "InstantAccessRetentionDays 65536", sdkLegacy, func(t *testing.T) error {
			f := newErrFx(t)
			_, err := f.legacySnap(func(r *legacy.CreateSnapshotRequest) {
				r.DiskId, r.InstantAccess, r.InstantAccessRetentionDays = f.data, requests.NewBoolean(true), requests.NewInteger(65536)
			})
			return err
		}},
		{400, "InvalidClientToken.Malformed", "ClientToken of 65 characters", sdkTea, func(t *testing.T) error {
			f := newErrFx(t)
			_, err := f.snap(&ecs4.CreateSnapshotRequest{DiskId: tea.String(f.data), ClientToken: tea.String(strings.Repeat("x", 65))})
			return err
		}},
		{400, "InvalidTagKey.Malformed", "Tag.1.Key starting with acs:", sdkTea, func(t *testing.T) error {
			f := newErrFx(t)
			_, err := f.snap(&ecs4.CreateSnapshotRequest{DiskId: tea.String(f.data),
				Tag: []*ecs4.CreateSnapshotRequestTag{{Key: tea.String("acs:owner"), Value: tea.String("me")}}})
			return err
		}},
		{400, "InvalidTagKey.Malformed", "Tag.1.Value without a Key", sdkTea, func(t *testing.T) error {
			f := newErrFx(t)
			_, err := f.snap(&ecs4.CreateSnapshotRequest{DiskId: tea.String(f.data),
				Tag: []*ecs4.CreateSnapshotRequestTag{{Value: tea.String("orphan")}}})
			return err
		}},
		{400, "InvalidTagValue.Malformed", "Tag.1.Value containing http://", sdkTea, func(t *testing.T) error {
			f := newErrFx(t)
			_, err := f.snap(&ecs4.CreateSnapshotRequest{DiskId: tea.String(f.data),
				Tag: []*ecs4.CreateSnapshotRequestTag{{Key: tea.String("site"), Value: tea.String("see http://example.com")}}})
			return err
		}},
		{400, "Duplicate.TagKey", "the same key twice", sdkLegacy, func(t *testing.T) error {
			f := newErrFx(t)
			_, err := f.legacySnap(func(r *legacy.CreateSnapshotRequest) {
				r.DiskId, r.Tag = f.data, &[]legacy.CreateSnapshotTag{{Key: "env", Value: "a"}, {Key: "env", Value: "b"}}
			})
			return err
		}},
		{403, "QuotaExceed.Tags", "21 tags", sdkTea, func(t *testing.T) error {
			f := newErrFx(t)
			_, err := f.snap(&ecs4.CreateSnapshotRequest{DiskId: tea.String(f.data), Tag: tags(21)})
			return err
		}},
		{403, "InvalidAccountStatus.SnapshotServiceUnavailable", "admin account SnapshotServiceUnavailable", sdkTea, func(t *testing.T) error {
			f := newErrFx(t)
			f.setState("account", "", "SnapshotServiceUnavailable", true)
			_, err := f.snapDisk(f.data)
			f.setState("account", "", "SnapshotServiceUnavailable", false)
			f.mustSnap(f.data)
			return err
		}},
		{403, "InvalidAccountStatus.NotEnoughBalance", "admin account NotEnoughBalance", sdkLegacy, func(t *testing.T) error {
			f := newErrFx(t)
			f.setState("account", "", "NotEnoughBalance", true)
			_, err := f.legacySnap(func(r *legacy.CreateSnapshotRequest) { r.DiskId = f.data })
			return err
		}},
		{404, "InvalidDiskId.NotFound", "unknown disk", sdkLegacy, func(t *testing.T) error {
			f := newErrFx(t)
			_, err := f.legacySnap(func(r *legacy.CreateSnapshotRequest) { r.DiskId = "d-bp1doesnotexist0000" })
			return err
		}},
		{400, "DiskCategory.OperationNotSupported", "a local disk (ephemeral_ssd)", sdkTea, func(t *testing.T) error {
			f := newErrFx(t)
			req := legacy.CreateRunInstancesRequest()
			f.point(req)
			req.ImageId, req.InstanceType, req.ZoneId = "ubuntu_22_04_x64_20G_alibase_20240101.vhd", "ecs.i2.xlarge", "cn-hangzhou-i"
			req.DataDisk = &[]legacy.RunInstancesDataDisk{{Size: "100", Category: "ephemeral_ssd"}}
			resp, err := f.leg.RunInstances(req)
			if err != nil {
				t.Fatalf("RunInstances with a local disk: %v", err)
			}
			dreq := legacy.CreateDescribeDisksRequest()
			f.point(dreq)
			dreq.InstanceId = resp.InstanceIdSets.InstanceIdSet[0]
			dresp, err := f.leg.DescribeDisks(dreq)
			if err != nil {
				t.Fatalf("DescribeDisks: %v", err)
			}
			local := ""
			for _, d := range dresp.Disks.Disk {
				if d.Category == "ephemeral_ssd" {
					local = d.DiskId
				}
			}
			if local == "" {
				t.Fatalf("no ephemeral_ssd disk in %+v", dresp.Disks.Disk)
			}
			_, err = f.snapDisk(local)
			return err
		}},
		{400, "DiskCategory.OperationNotSupported", "InstantAccess=true on a cloud_ssd disk", sdkLegacy, func(t *testing.T) error {
			f := newErrFx(t)
			d := f.createDisk("cloud_ssd", 20)
			_, err := f.legacySnap(func(r *legacy.CreateSnapshotRequest) { r.DiskId, r.InstantAccess = d, requests.NewBoolean(true) })
			return err
		}},
		{403, "IncorrectDiskType.NotSupport", "an elastic ephemeral disk", sdkTea, func(t *testing.T) error {
			f := newErrFx(t)
			_, err := f.snapDisk(f.createDisk("elastic_ephemeral_disk_standard", 64))
			return err
		}},
		{403, "DiskInArrears", "admin disk InArrears", sdkLegacy, func(t *testing.T) error {
			f := newErrFx(t)
			f.setState("disk", f.data, "InArrears", true)
			_, err := f.legacySnap(func(r *legacy.CreateSnapshotRequest) { r.DiskId = f.data })
			return err
		}},
		{403, "IncorrectVolumeStatus", "admin disk VolumeUnavailable", sdkTea, func(t *testing.T) error {
			f := newErrFx(t)
			f.setState("disk", f.data, "VolumeUnavailable", true)
			_, err := f.snapDisk(f.data)
			return err
		}},
		{404, "InvalidVolumeId.NotFound", "admin disk VolumeMissing", sdkLegacy, func(t *testing.T) error {
			f := newErrFx(t)
			f.setState("disk", f.data, "VolumeMissing", true)
			_, err := f.legacySnap(func(r *legacy.CreateSnapshotRequest) { r.DiskId = f.data })
			return err
		}},
		{404, "InvalidInstanceId.NotFound", "admin disk InstanceLost", sdkTea, func(t *testing.T) error {
			f := newErrFx(t)
			f.setState("disk", f.sys, "InstanceLost", true)
			_, err := f.snapDisk(f.sys)
			return err
		}},
		{403, "DiskId.ValueNotSupported", "a multi-attach disk (CreateDisk MultiAttach=Enabled)", sdkTea, func(t *testing.T) error {
			f := newErrFx(t)
			resp, err := f.tea.CreateDisk(&ecs4.CreateDiskRequest{RegionId: tea.String("cn-hangzhou"), ZoneId: tea.String("cn-hangzhou-i"),
				Size: tea.Int32(20), DiskCategory: tea.String("cloud_essd"), MultiAttach: tea.String("Enabled")})
			if err != nil {
				t.Fatal(err)
			}
			_, err = f.snapDisk(tea.StringValue(resp.Body.DiskId))
			return err
		}},
		{403, "IncorrectDiskStatus.Transferring", "admin disk Transferring", sdkTea, func(t *testing.T) error {
			f := newErrFx(t)
			f.setState("disk", f.data, "Transferring", true)
			_, err := f.snapDisk(f.data)
			return err
		}},
		{403, "IncorrectDiskStatus.Invalid", "admin disk DeviceInvalid, cleared by StartInstance", sdkTea, func(t *testing.T) error {
			f := newErrFx(t)
			f.setState("disk", f.data, "DeviceInvalid", true)
			_, err := f.snapDisk(f.data)
			f.stopInstance(f.inst)
			f.startInstance(f.inst)
			f.mustSnap(f.data)
			return err
		}},
		{403, "InvalidParameter.KMSKeyId.KMSUnauthorized", "encrypted disk, account KMSUnauthorized", sdkTea, func(t *testing.T) error {
			f := newErrFx(t)
			f.setState("disk", f.data, "Encrypted", true)
			f.setState("account", "", "KMSUnauthorized", true)
			_, err := f.snapDisk(f.data)
			return err
		}},
		{403, "IncorrectDiskStatus", "disk Creating", sdkTea, func(t *testing.T) error {
			fake := clock.NewFake(time.Now())
			f := newErrFx(t, withClock(fake), withDelay(time.Minute))
			_, err := f.snapDisk(f.createDisk("cloud_essd", 20))
			return err
		}},
		{403, "IncorrectDiskStatus", "disk Attaching", sdkLegacy, func(t *testing.T) error {
			fake := clock.NewFake(time.Now())
			f := newErrFx(t, withClock(fake), withDelay(time.Minute))
			d := f.createDisk("cloud_essd", 20)
			fake.Advance(2 * time.Minute) // instance Running, disk Available
			f.attachDisk(d, f.inst)
			_, err := f.legacySnap(func(r *legacy.CreateSnapshotRequest) { r.DiskId = d })
			fake.Advance(2 * time.Minute) // In_use, attached while Running
			f.mustSnap(d)
			return err
		}},
		{403, "IncorrectDiskStatus.NeverAttached", "a disk made by CreateDisk", sdkLegacy, func(t *testing.T) error {
			f := newErrFx(t)
			d := f.createDisk("cloud_essd", 20)
			_, err := f.legacySnap(func(r *legacy.CreateSnapshotRequest) { r.DiskId = d })
			return err
		}},
		{403, "IncorrectDiskStatus.NeverUsed", "a disk attached only while its instance was Stopped", sdkTea, func(t *testing.T) error {
			f := newErrFx(t)
			f.stopInstance(f.inst)
			d := f.createDisk("cloud_essd", 20)
			f.attachDisk(d, f.inst)
			_, err := f.snapDisk(d)
			// The disks that ran with the instance can still be snapshotted.
			f.mustSnap(f.data)
			return err
		}},
		{403, "InstanceLockedForSecurity", "admin instance SecurityLock", sdkTea, func(t *testing.T) error {
			f := newErrFx(t)
			f.setState("instance", f.inst, "SecurityLock", true)
			_, err := f.snapDisk(f.sys)
			return err
		}},
		{400, "IncorrectInstanceStatus", "instance Pending", sdkTea, func(t *testing.T) error {
			fake := clock.NewFake(time.Now())
			f := newErrFx(t, withClock(fake), withDelay(time.Minute))
			_, err := f.snapDisk(f.data)
			fake.Advance(2 * time.Minute)
			f.mustSnap(f.data)
			return err
		}},
		{400, "IncorrectInstanceStatus", "instance Stopping", sdkLegacy, func(t *testing.T) error {
			fake := clock.NewFake(time.Now())
			f := newErrFx(t, withClock(fake), withDelay(time.Minute))
			fake.Advance(2 * time.Minute)
			f.stopInstance(f.inst)
			_, err := f.legacySnap(func(r *legacy.CreateSnapshotRequest) { r.DiskId = f.data })
			fake.Advance(2 * time.Minute) // Stopped: allowed again
			f.mustSnap(f.data)
			return err
		}},
		{403, "IncorrectDiskStatus.CreatingSnapshot", "a snapshot of the disk held progressing", sdkLegacy, func(t *testing.T) error {
			f := newErrFx(t)
			f.setState("disk", f.data, "SnapshotHold", true)
			first, err := f.snapDisk(f.data)
			if err != nil {
				t.Fatalf("first CreateSnapshot: %v", err)
			}
			if st := f.snapStatus(first); st != "progressing" {
				t.Errorf("held snapshot is %q, want progressing", st)
			}
			_, err = f.legacySnap(func(r *legacy.CreateSnapshotRequest) { r.DiskId = f.data })
			f.setState("disk", f.data, "SnapshotHold", false)
			f.waitAccomplished(first)
			return err
		}},
		{403, "QuotaExceed.Snapshot", "a third snapshot with a quota of 2", sdkLegacy, func(t *testing.T) error {
			f := newErrFx(t, withQuota(2))
			f.mustSnap(f.data)
			f.mustSnap(f.data)
			_, err := f.legacySnap(func(r *legacy.CreateSnapshotRequest) { r.DiskId = f.data })
			// The quota is per disk.
			f.mustSnap(f.sys)
			return err
		}},
		{403, "CreateSnapshot.Failed", "admin disk SnapshotFail", sdkTea, func(t *testing.T) error {
			f := newErrFx(t)
			f.setState("disk", f.data, "SnapshotFail", true)
			_, err := f.snapDisk(f.data)
			if ids := f.diskSnapshots(f.data); len(ids) != 0 {
				t.Errorf("failed CreateSnapshot left snapshots %v", ids)
			}
			return err
		}},
		{403, "IdempotentParameterMismatch", "the same ClientToken with another SnapshotName", sdkLegacy, func(t *testing.T) error {
			f := newErrFx(t)
			first, err := f.legacySnap(func(r *legacy.CreateSnapshotRequest) {
				r.DiskId, r.ClientToken, r.SnapshotName = f.data, "tok-1", "first"
			})
			if err != nil {
				t.Fatalf("first CreateSnapshot: %v", err)
			}
			f.waitAccomplished(first)
			again, err := f.legacySnap(func(r *legacy.CreateSnapshotRequest) {
				r.DiskId, r.ClientToken, r.SnapshotName = f.data, "tok-1", "first"
			})
			if err != nil || again != first {
				t.Errorf("same token, same parameters: %v, %s want %s", err, again, first)
			}
			_, err = f.legacySnap(func(r *legacy.CreateSnapshotRequest) {
				r.DiskId, r.ClientToken, r.SnapshotName = f.data, "tok-1", "second"
			})
			return err
		}},
		{403, "IdempotentProcessing", "the same ClientToken while the first request is stalled", sdkTea, func(t *testing.T) error {
			f := newErrFx(t)
			f.setState("disk", f.data, "SnapshotStall", true)
			req := &ecs4.CreateSnapshotRequest{DiskId: tea.String(f.data), ClientToken: tea.String("stall-token"), SnapshotName: tea.String("stalled")}
			type result struct {
				id  string
				err error
			}
			done := make(chan result, 1)
			go func() {
				// The legacy SDK for the stalled call: the tea SDK shares
				// one HTTP client across its instances without locking
				// (a data race inside dara.DoRequest under -race).
				id, err := f.legacySnap(func(r *legacy.CreateSnapshotRequest) {
					r.DiskId, r.ClientToken, r.SnapshotName = f.data, "stall-token", "stalled"
				})
				done <- result{id, err}
			}()
			// The first request has taken the token once its snapshot is
			// visible (same transaction); only then is the second sent, so
			// that it cannot be the one that takes the token.
			deadline := time.Now().Add(5 * time.Second)
			for len(f.diskSnapshots(f.data)) == 0 {
				if time.Now().After(deadline) {
					t.Fatal("the stalled CreateSnapshot never recorded its snapshot")
				}
				time.Sleep(10 * time.Millisecond)
			}
			_, processing := f.snap(req)
			select {
			case r := <-done:
				t.Fatalf("CreateSnapshot returned while stalled: %q %v", r.id, r.err)
			default:
			}
			f.setState("disk", f.data, "SnapshotStall", false)
			var first result
			select {
			case first = <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("CreateSnapshot still blocked after the stall was cleared")
			}
			if first.err != nil || first.id == "" {
				t.Fatalf("stalled CreateSnapshot: %q %v", first.id, first.err)
			}
			f.waitAccomplished(first.id)
			if again, err := f.snap(req); err != nil || again != first.id {
				t.Errorf("same token after the stall: %q %v, want %s", again, err, first.id)
			}
			_, err := f.snap(&ecs4.CreateSnapshotRequest{DiskId: tea.String(f.data), ClientToken: tea.String("stall-token"), SnapshotName: tea.String("other")})
			wantTeaError(t, err, 403, "IdempotentParameterMismatch")
			return processing
		}},
		{404, "InvalidResourceGroup.NotFound", "ResourceGroupId of no group", sdkTea, func(t *testing.T) error {
			f := newErrFx(t)
			_, err := f.snap(&ecs4.CreateSnapshotRequest{DiskId: tea.String(f.data), ResourceGroupId: tea.String("rg-acfmnosuchgroup")})
			return err
		}},
		{500, "InternalError", "the disk record is unreadable", sdkTea, func(t *testing.T) error {
			f := newErrFx(t)
			// Break the stored record behind the service's back: the
			// decode fails inside CreateSnapshot.
			db, err := sql.Open("sqlite", "file:"+filepath.Join(f.dir, "meta.db")+"?_pragma=busy_timeout(10000)")
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Exec(`UPDATE disks SET data = '{not json' WHERE id = ?`, f.data); err != nil {
				t.Fatal(err)
			}
			_, err = f.snapDisk(f.data)
			var se *tea.SDKError
			if errors.As(err, &se) && strings.Contains(strings.ToLower(tea.StringValue(se.Message)), "json") {
				t.Errorf("InternalError leaks its cause: %s", tea.StringValue(se.Message))
			}
			return err
		}},
	}
}

// docErrorRow matches a row of the CreateSnapshot error table.
var docErrorRow = regexp.MustCompile("^\\| (\\d{3}) \\| ([A-Za-z0-9.]+) \\|")

// docCreateSnapshotCodes reads the CreateSnapshot error table of
// docs/compatibility.md: code -> HTTP status.
func docCreateSnapshotCodes(t *testing.T) map[string]int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "compatibility.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	i := strings.Index(text, "## CreateSnapshot error codes")
	if i < 0 {
		t.Fatal("docs/compatibility.md has no CreateSnapshot error table")
	}
	text = text[i+2:]
	if j := strings.Index(text, "\n## "); j >= 0 {
		text = text[:j] // this section only
	}
	codes := map[string]int{}
	for _, line := range strings.Split(text, "\n") {
		if m := docErrorRow.FindStringSubmatch(line); m != nil {
			codes[m[2]], _ = strconv.Atoi(m[1])
		}
	}
	if len(codes) < 30 {
		t.Fatalf("read only %d codes from docs/compatibility.md", len(codes))
	}
	return codes
}

// TestCreateSnapshotErrors reaches every CreateSnapshot error code that
// docs/compatibility.md lists as reachable, with the status it gives.
func TestCreateSnapshotErrors(t *testing.T) {
	cases := createSnapshotErrorCases()
	doc := docCreateSnapshotCodes(t)
	covered := map[string]bool{}
	for _, c := range cases {
		covered[c.code] = true
		if st, ok := doc[c.code]; !ok {
			t.Errorf("%s is not in the table of docs/compatibility.md", c.code)
		} else if st != c.status {
			t.Errorf("%s: the table says %d, the case %d", c.code, st, c.status)
		}
	}
	for code := range doc {
		if !covered[code] {
			t.Errorf("no case reaches %s", code)
		}
	}
	sdks := map[string]bool{}
	for _, c := range cases {
		sdks[c.sdk] = true
		t.Run(c.code+"/"+c.how, func(t *testing.T) {
			err := c.call(t)
			switch c.sdk {
			case sdkLegacy:
				wantLegacyError(t, err, c.status, c.code)
			default:
				wantTeaError(t, err, c.status, c.code)
			}
		})
	}
	if !sdks[sdkTea] || !sdks[sdkLegacy] {
		t.Errorf("both SDKs must be exercised: %v", sdks)
	}
}

// TestCreateSnapshotConcurrent: of two simultaneous CreateSnapshot calls on
// one disk, exactly one wins; the other sees the first in progress.
func TestCreateSnapshotConcurrent(t *testing.T) {
	f := newErrFx(t)
	f.setState("disk", f.data, "SnapshotHold", true)
	var wg sync.WaitGroup
	ids := make([]string, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i == 0 {
				ids[i], errs[i] = f.snapDisk(f.data)
			} else {
				ids[i], errs[i] = f.legacySnap(func(r *legacy.CreateSnapshotRequest) { r.DiskId = f.data })
			}
		}()
	}
	wg.Wait()
	switch {
	case errs[0] == nil && errs[1] != nil:
		wantLegacyError(t, errs[1], 403, "IncorrectDiskStatus.CreatingSnapshot")
	case errs[1] == nil && errs[0] != nil:
		wantTeaError(t, errs[0], 403, "IncorrectDiskStatus.CreatingSnapshot")
	default:
		t.Fatalf("want exactly one success: %q %v / %q %v", ids[0], errs[0], ids[1], errs[1])
	}
	if got := f.diskSnapshots(f.data); len(got) != 1 {
		t.Errorf("snapshots of the disk: %v, want one", got)
	}
	winner := ids[0]
	if errs[0] != nil {
		winner = ids[1]
	}
	if st := f.snapStatus(winner); st != "progressing" {
		t.Errorf("held snapshot is %q", st)
	}
	f.setState("disk", f.data, "SnapshotHold", false)
	f.waitAccomplished(winner)
}

// TestCreateSnapshotChineseName: lengths count characters, not bytes.
func TestCreateSnapshotChineseName(t *testing.T) {
	f := newErrFx(t)
	_, err := f.snap(&ecs4.CreateSnapshotRequest{DiskId: tea.String(f.data), SnapshotName: tea.String(strings.Repeat("快", 129))})
	wantTeaError(t, err, 400, "InvalidSnapshotName.Malformed")
	name := strings.Repeat("快", 128)
	id, err := f.snap(&ecs4.CreateSnapshotRequest{DiskId: tea.String(f.data), SnapshotName: tea.String(name)})
	if err != nil {
		t.Fatalf("128 Chinese characters: %v", err)
	}
	if s := f.waitAccomplished(id); s.SnapshotName != name {
		t.Errorf("name = %q", s.SnapshotName)
	}
	// The legacy SDK too, and a description of 256 Chinese characters.
	_, err = f.legacySnap(func(r *legacy.CreateSnapshotRequest) {
		r.DiskId, r.SnapshotName, r.Description = f.sys, "快照", strings.Repeat("述", 257)
	})
	wantLegacyError(t, err, 404, "InvalidDescription.Malformed")
	id, err = f.legacySnap(func(r *legacy.CreateSnapshotRequest) {
		r.DiskId, r.SnapshotName, r.Description = f.sys, "快照", strings.Repeat("述", 256)
	})
	if err != nil {
		t.Fatalf("256-character Chinese description: %v", err)
	}
	f.waitAccomplished(id)
}

// TestResetDiskErrors: ResetDisk needs the instance Stopped and a snapshot
// of the disk itself.
func TestResetDiskErrors(t *testing.T) {
	f := newErrFx(t)
	dataSnap := f.mustSnap(f.data)
	sysSnap := f.mustSnap(f.sys)
	wantLegacyError(t, f.resetDisk(f.data, dataSnap), 403, "IncorrectInstanceStatus")
	wantLegacyError(t, f.resetDisk(f.data, sysSnap), 403, "InvalidParameter.Mismatch")
	f.stopInstance(f.inst)
	if err := f.resetDisk(f.data, dataSnap); err != nil {
		t.Fatalf("ResetDisk on a Stopped instance: %v", err)
	}
	wantLegacyError(t, f.resetDisk(f.data, sysSnap), 403, "InvalidParameter.Mismatch")
}

// TestSnapshotRetention: a snapshot with RetentionDays=1 is released once
// a day has passed; one without RetentionDays is kept.
func TestSnapshotRetention(t *testing.T) {
	fake := clock.NewFake(time.Now())
	f := newErrFx(t, withClock(fake))
	short, err := f.snap(&ecs4.CreateSnapshotRequest{DiskId: tea.String(f.data), RetentionDays: tea.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	f.waitAccomplished(short)
	kept := f.mustSnap(f.data)
	ctx := context.Background()
	if n, err := f.app.Service.ExpireSnapshots(ctx); err != nil || n != 0 {
		t.Fatalf("ExpireSnapshots at once: %d %v", n, err)
	}
	fake.Advance(23 * time.Hour)
	if n, err := f.app.Service.ExpireSnapshots(ctx); err != nil || n != 0 {
		t.Fatalf("ExpireSnapshots after 23 h: %d %v", n, err)
	}
	fake.Advance(2 * time.Hour)
	if n, err := f.app.Service.ExpireSnapshots(ctx); err != nil || n != 1 {
		t.Fatalf("ExpireSnapshots after 25 h: %d %v", n, err)
	}
	// Back to the present so that the SDKs' signatures are fresh again.
	fake.Set(time.Now())
	if st := f.snapStatus(short); st != "" {
		t.Errorf("expired snapshot still listed (%s)", st)
	}
	if st := f.snapStatus(kept); st != "accomplished" {
		t.Errorf("snapshot without RetentionDays is %q", st)
	}
}
