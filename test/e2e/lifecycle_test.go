package e2e

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ecs4 "github.com/alibabacloud-go/ecs-20140526/v4/client"
	"github.com/alibabacloud-go/tea/tea"
	sdkerrors "github.com/aliyun/alibaba-cloud-sdk-go/sdk/errors"
	legacy "github.com/aliyun/alibaba-cloud-sdk-go/services/ecs"

	"github.com/snapstack/snapstack/internal/api"
	"github.com/snapstack/snapstack/internal/app"
	"github.com/snapstack/snapstack/internal/ecs"
	"github.com/snapstack/snapstack/internal/meta"
	"github.com/snapstack/snapstack/internal/meta/sqlstore"
)

// snapshotDisk takes a snapshot of disk and waits until it is done.
func (e *env) snapshotDisk(disk string) string {
	e.t.Helper()
	req := legacy.CreateCreateSnapshotRequest()
	e.point(req)
	req.DiskId = disk
	resp, err := e.legacyClient().CreateSnapshot(req)
	if err != nil {
		e.t.Fatal(err)
	}
	e.waitAccomplished(resp.SnapshotId)
	return resp.SnapshotId
}

// waitAccomplished polls DescribeSnapshots until the snapshot is done.
func (e *env) waitAccomplished(id string) legacy.Snapshot {
	e.t.Helper()
	c := e.legacyClient()
	deadline := time.Now().Add(10 * time.Second)
	for {
		req := legacy.CreateDescribeSnapshotsRequest()
		e.point(req)
		req.SnapshotIds = `["` + id + `"]`
		resp, err := c.DescribeSnapshots(req)
		if err != nil {
			e.t.Fatalf("DescribeSnapshots: %v", err)
		}
		if len(resp.Snapshots.Snapshot) != 1 {
			e.t.Fatalf("DescribeSnapshots %s: %d results", id, len(resp.Snapshots.Snapshot))
		}
		s := resp.Snapshots.Snapshot[0]
		if s.Status == "accomplished" {
			return s
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("snapshot %s still %s", id, s.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestLegacySDKLifecycle(t *testing.T) {
	e := start(t, "")
	inst, _, data := e.runInstance()
	c := e.legacyClient()

	req := legacy.CreateCreateSnapshotRequest()
	e.point(req)
	req.DiskId = data
	req.SnapshotName = "nightly-1"
	req.Description = "before the upgrade"
	req.RetentionDays = "7"
	req.Tag = &[]legacy.CreateSnapshotTag{{Key: "env", Value: "dev"}}
	resp, err := c.CreateSnapshot(req)
	if err != nil {
		t.Fatalf("CreateSnapshot: %v", err)
	}
	if resp.SnapshotId == "" || resp.RequestId == "" {
		t.Fatalf("CreateSnapshot response %+v", resp)
	}
	s := e.waitAccomplished(resp.SnapshotId)
	if s.Progress != "100%" || s.SourceDiskSize != "20" || s.SourceDiskId != data || s.SnapshotName != "nightly-1" ||
		s.RetentionDays != 7 || s.SnapshotType != "user" || s.SourceDiskType != "data" || !s.Available {
		t.Errorf("snapshot = %+v", s)
	}
	if len(s.Tags.Tag) != 1 || s.Tags.Tag[0].TagKey != "env" || s.Tags.Tag[0].TagValue != "dev" {
		t.Errorf("tags = %+v", s.Tags)
	}

	// Filters: by instance, by disk, by tag, by status.
	dreq := legacy.CreateDescribeSnapshotsRequest()
	e.point(dreq)
	dreq.InstanceId = inst
	dreq.Status = "accomplished"
	dreq.Tag = &[]legacy.DescribeSnapshotsTag{{Key: "env", Value: "dev"}}
	dresp, err := c.DescribeSnapshots(dreq)
	if err != nil {
		t.Fatal(err)
	}
	if dresp.TotalCount != 1 || dresp.Snapshots.Snapshot[0].SnapshotId != resp.SnapshotId {
		t.Errorf("filtered DescribeSnapshots: %+v", dresp)
	}

	// ModifySnapshotAttribute, then DeleteSnapshot.
	mreq := legacy.CreateModifySnapshotAttributeRequest()
	e.point(mreq)
	mreq.SnapshotId = resp.SnapshotId
	mreq.SnapshotName = "renamed"
	if _, err := c.ModifySnapshotAttribute(mreq); err != nil {
		t.Fatal(err)
	}
	if got := e.waitAccomplished(resp.SnapshotId).SnapshotName; got != "renamed" {
		t.Errorf("name after modify = %q", got)
	}
	del := legacy.CreateDeleteSnapshotRequest()
	e.point(del)
	del.SnapshotId = resp.SnapshotId
	if _, err := c.DeleteSnapshot(del); err != nil {
		t.Fatal(err)
	}
	_, err = c.DeleteSnapshot(del)
	wantLegacyError(t, err, 404, "InvalidSnapshotId.NotFound")
}

func TestLegacySDKXML(t *testing.T) {
	e := start(t, "")
	_, _, data := e.runInstance()
	c := e.legacyClient()
	req := legacy.CreateCreateSnapshotRequest()
	e.point(req)
	req.AcceptFormat = "XML"
	req.DiskId = data
	resp, err := c.CreateSnapshot(req)
	if err != nil {
		t.Fatalf("CreateSnapshot XML: %v", err)
	}
	if resp.SnapshotId == "" || resp.RequestId == "" {
		t.Fatalf("XML response decoded to %+v", resp)
	}
	e.waitAccomplished(resp.SnapshotId)
	dreq := legacy.CreateDescribeSnapshotsRequest()
	e.point(dreq)
	dreq.AcceptFormat = "XML"
	dreq.DiskId = data
	dresp, err := c.DescribeSnapshots(dreq)
	if err != nil {
		t.Fatal(err)
	}
	if len(dresp.Snapshots.Snapshot) != 1 || dresp.Snapshots.Snapshot[0].SnapshotId != resp.SnapshotId || dresp.Snapshots.Snapshot[0].Progress != "100%" {
		t.Errorf("XML DescribeSnapshots = %+v", dresp.Snapshots)
	}
	// Errors are JSON even when XML was asked for.
	req.DiskId = "d-doesnotexist"
	_, err = c.CreateSnapshot(req)
	wantLegacyError(t, err, 404, "InvalidDiskId.NotFound")
}

func TestTeaSDK(t *testing.T) {
	for _, alg := range []string{"", "v2", "ACS3-HMAC-SM3"} {
		t.Run("alg="+alg, func(t *testing.T) {
			e := start(t, "")
			_, sys, _ := e.runInstance()
			c := e.teaClient(alg)
			resp, err := c.CreateSnapshot(&ecs4.CreateSnapshotRequest{DiskId: tea.String(sys), SnapshotName: tea.String("快照-系统盘"),
				Tag: []*ecs4.CreateSnapshotRequestTag{{Key: tea.String("team"), Value: tea.String("")}}})
			if err != nil {
				t.Fatalf("CreateSnapshot: %v", err)
			}
			id := tea.StringValue(resp.Body.SnapshotId)
			e.waitAccomplished(id)
			d, err := c.DescribeSnapshots(&ecs4.DescribeSnapshotsRequest{RegionId: tea.String("cn-hangzhou"), SnapshotIds: tea.String(`["` + id + `"]`)})
			if err != nil {
				t.Fatalf("DescribeSnapshots: %v", err)
			}
			snaps := d.Body.Snapshots.Snapshot
			if tea.Int32Value(d.Body.TotalCount) != 1 || len(snaps) != 1 {
				t.Fatalf("DescribeSnapshots: %v", d.Body)
			}
			s := snaps[0]
			if tea.StringValue(s.SnapshotName) != "快照-系统盘" || tea.StringValue(s.SourceDiskSize) != "40" ||
				tea.StringValue(s.SourceDiskType) != "system" || tea.StringValue(s.Progress) != "100%" ||
				len(s.Tags.Tag) != 1 || tea.StringValue(s.Tags.Tag[0].TagKey) != "team" {
				t.Errorf("snapshot = %v", s)
			}
			_, err = c.CreateSnapshot(&ecs4.CreateSnapshotRequest{DiskId: tea.String(sys), SnapshotName: tea.String("auto-mine")})
			wantTeaError(t, err, 400, "InvalidSnapshotName.Malformed")
		})
	}
}

// TestRestart: committed resources survive a restart on the same data
// directory.
func TestRestart(t *testing.T) {
	dir := t.TempDir()
	e := start(t, dir)
	inst, _, data := e.runInstance()
	c := e.legacyClient()
	req := legacy.CreateCreateSnapshotRequest()
	e.point(req)
	req.DiskId = data
	req.ClientToken = "restart-token"
	resp, err := c.CreateSnapshot(req)
	if err != nil {
		t.Fatal(err)
	}
	e.waitAccomplished(resp.SnapshotId)
	if err := e.app.Close(); err != nil {
		t.Fatal(err)
	}
	e2 := start(t, dir)
	c2 := e2.legacyClient()
	s := e2.waitAccomplished(resp.SnapshotId)
	if s.SourceDiskId != data {
		t.Errorf("after restart: %+v", s)
	}
	ireq := legacy.CreateDescribeInstancesRequest()
	e2.point(ireq)
	ireq.InstanceIds = `["` + inst + `"]`
	iresp, err := c2.DescribeInstances(ireq)
	if err != nil || len(iresp.Instances.Instance) != 1 || iresp.Instances.Instance[0].Status != "Running" {
		t.Fatalf("instance after restart: %v %+v", err, iresp)
	}
	// The ClientToken is remembered too.
	e2.point(req)
	again, err := c2.CreateSnapshot(req)
	if err != nil || again.SnapshotId != resp.SnapshotId {
		t.Errorf("same token after restart: %v, %s want %s", err, again.SnapshotId, resp.SnapshotId)
	}
}

func wantLegacyError(t *testing.T, err error, status int, code string) {
	t.Helper()
	var se *sdkerrors.ServerError
	if !errors.As(err, &se) {
		t.Fatalf("want %d %s, got %v", status, code, err)
	}
	if se.HttpStatus() != status || se.ErrorCode() != code || se.RequestId() == "" || se.Message() == "" {
		t.Errorf("got %d %s (%q), want %d %s", se.HttpStatus(), se.ErrorCode(), se.Message(), status, code)
	}
}

func wantTeaError(t *testing.T, err error, status int, code string) {
	t.Helper()
	var se *tea.SDKError
	if !errors.As(err, &se) {
		t.Fatalf("want %d %s, got %v", status, code, err)
	}
	if tea.IntValue(se.StatusCode) != status || tea.StringValue(se.Code) != code {
		t.Errorf("got %d %s (%s), want %d %s", tea.IntValue(se.StatusCode), tea.StringValue(se.Code), tea.StringValue(se.Message), status, code)
	}
}

// TestLegacySDKGet: the legacy SDK switched to GET (parameters and
// signature in the query) works for reads and writes.
func TestLegacySDKGet(t *testing.T) {
	e := start(t, "")
	_, _, data := e.runInstance()
	c := e.legacyClient()
	req := legacy.CreateCreateSnapshotRequest()
	e.point(req)
	req.Method = "GET"
	req.DiskId = data
	req.SnapshotName = "via-get"
	resp, err := c.CreateSnapshot(req)
	if err != nil {
		t.Fatal(err)
	}
	d := legacy.CreateDescribeSnapshotsRequest()
	e.point(d)
	d.Method = "GET"
	d.SnapshotName = "via-get"
	got, err := c.DescribeSnapshots(d)
	if err != nil || got.TotalCount != 1 || got.Snapshots.Snapshot[0].SnapshotId != resp.SnapshotId {
		t.Fatalf("GET DescribeSnapshots: %v %+v", err, got)
	}
}

// TestDataDirInUse: a second service on a data directory that one
// serves refuses to start, and touches nothing; once the first stops,
// the directory can be served again.
func TestDataDirInUse(t *testing.T) {
	dir := t.TempDir()
	e := start(t, dir)
	cfg := app.Config{Listen: "127.0.0.1:0", NBDListen: "127.0.0.1:0", DataDir: dir, ECS: ecs.DefaultConfig(), API: api.DefaultOptions(),
		AccessKeyID: testKey, AccessKeySecret: testSecret}
	if a, err := app.Start(context.Background(), cfg); !errors.Is(err, app.ErrDataDirInUse) {
		if a != nil {
			a.Close()
		}
		t.Fatalf("second service on the same directory: %v", err)
	}
	if err := e.app.Close(); err != nil {
		t.Fatal(err)
	}
	a, err := app.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("after the first stopped: %v", err)
	}
	a.Close()
}

// TestRestartReleasesDeletedSnapshotData: a crash between DeleteSnapshot's
// commit and the release of the data leaves a stored manifest that no
// record names (its chunks kept forever); the next start releases it.
func TestRestartReleasesDeletedSnapshotData(t *testing.T) {
	dir := t.TempDir()
	e := start(t, dir)
	_, _, data := e.runInstance()
	snap := e.snapshotDisk(data)
	if err := e.app.Close(); err != nil {
		t.Fatal(err)
	}
	manifest := filepath.Join(dir, "store", "manifests", snap)
	if _, err := os.Stat(manifest); err != nil {
		t.Fatalf("the snapshot's manifest is not where this test looks: %v", err)
	}
	// The crash: the record is deleted, the data is not released.
	store, err := sqlstore.OpenSQLite(context.Background(), filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	err = store.Update(context.Background(), func(tx meta.Tx) error {
		accs, err := tx.ListAccounts()
		if err != nil || len(accs) != 1 {
			return fmt.Errorf("accounts %v: %v", accs, err)
		}
		return tx.DeleteSnapshot(accs[0].ID, snap)
	})
	store.Close()
	if err != nil {
		t.Fatal(err)
	}
	start(t, dir)
	if _, err := os.Stat(manifest); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the deleted snapshot's manifest is still stored after a restart: %v", err)
	}
}

// TestVerifySnapshotReportsDamage damages the stored objects of a snapshot
// on disk: VerifySnapshot reads on past the damage, counts the damaged
// chunks and names the first, without the data directory's paths.
func TestVerifySnapshotReportsDamage(t *testing.T) {
	dir := t.TempDir()
	e := start(t, dir)
	_, _, data := e.runInstance()
	e.qemuIO(data, "write -P 0x11 0 1M", "write -P 0x22 1M 1M", "write -P 0x33 2M 1M")
	snap := e.snapshotDisk(data)
	if n, healthy := e.adminVerify(snap); !healthy || n != 3 {
		t.Fatalf("intact snapshot: %d chunks, healthy %v; want 3, true", n, healthy)
	}
	var objects []string
	filepath.WalkDir(filepath.Join(dir, "store", "chunks"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			objects = append(objects, p)
		}
		return nil
	})
	if len(objects) != 3 {
		t.Fatalf("%d chunk objects stored, want 3: %v", len(objects), objects)
	}
	raw, err := os.ReadFile(objects[0])
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)/2] ^= 0x40
	if err := os.WriteFile(objects[0], raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(objects[1]); err != nil {
		t.Fatal(err)
	}
	out := e.admin("VerifySnapshot", map[string]string{"SnapshotId": snap})
	if out["Healthy"] != "false" || out["DamagedChunks"] != "2" || out["CheckedChunks"] != "1" {
		t.Fatalf("VerifySnapshot of a snapshot with a flipped and a missing object: %v", out)
	}
	problem := out["Problem"]
	if !strings.Contains(problem, "corrupt") && !strings.Contains(problem, "missing from the store") {
		t.Errorf("Problem %q says neither corrupt nor missing", problem)
	}
	if strings.Contains(problem, dir) || strings.Contains(problem, "/") {
		t.Errorf("Problem %q shows a path of the host", problem)
	}
}
