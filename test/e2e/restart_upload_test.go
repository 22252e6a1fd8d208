package e2e

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	legacy "github.com/aliyun/alibaba-cloud-sdk-go/services/ecs"
)

// snapStatusOf returns a snapshot's Status through DescribeSnapshots.
func (e *env) snapStatusOf(id string) string {
	e.t.Helper()
	req := legacy.CreateDescribeSnapshotsRequest()
	e.point(req)
	req.SnapshotIds = `["` + id + `"]`
	resp, err := e.legacyClient().DescribeSnapshots(req)
	if err != nil || len(resp.Snapshots.Snapshot) != 1 {
		e.t.Fatalf("DescribeSnapshots %s: %v", id, err)
	}
	return resp.Snapshots.Snapshot[0].Status
}

// TestGracefulRestartResumesUpload: a graceful stop (App.Close: SIGTERM,
// an upgrade) while an upload runs leaves the snapshot progressing, and
// the next start resumes and accomplishes it. (Engine.Close cancelled the
// upload, which reported context.Canceled, and the snapshot was recorded
// failed for good before the store closed.)
func TestGracefulRestartResumesUpload(t *testing.T) {
	dir := t.TempDir()
	e := start(t, dir)
	_, _, data := e.runInstance()
	v, err := e.app.Engine.Volume(data)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 128<<20) // incompressible: the upload takes a while
	r := rand.New(rand.NewPCG(1, 2))
	for i := range buf {
		buf[i] = byte(r.Uint32())
	}
	if _, err := v.WriteAt(buf, 0); err != nil {
		t.Fatal(err)
	}
	if err := v.Flush(); err != nil {
		t.Fatal(err)
	}
	req := legacy.CreateCreateSnapshotRequest()
	e.point(req)
	req.DiskId = data
	resp, err := e.legacyClient().CreateSnapshot(req)
	if err != nil {
		t.Fatal(err)
	}
	if st := e.snapStatusOf(resp.SnapshotId); st != "progressing" {
		t.Skipf("upload already %s before the stop; cannot observe the race", st)
	}
	if err := e.app.Close(); err != nil { // graceful stop
		t.Fatal(err)
	}
	e2 := start(t, dir)
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := e2.snapStatusOf(resp.SnapshotId)
		if st == "accomplished" {
			return
		}
		if st == "failed" {
			t.Fatalf("snapshot %s is failed after a graceful restart; want it resumed and accomplished", resp.SnapshotId)
		}
		if time.Now().After(deadline) {
			t.Fatalf("snapshot %s still %s", resp.SnapshotId, st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestOrphanVolumeIsRemovedAtStart: CreateDisk makes the volume before
// the record is committed and DeleteDisk commits before removing it; a
// crash in either window leaves a volume directory (up to the disk's size
// of host space, and its local manifests keep chunks live) that no record
// names. The next start removes it, and only it.
func TestOrphanVolumeIsRemovedAtStart(t *testing.T) {
	dir := t.TempDir()
	e := start(t, dir)
	_, _, data := e.runInstance()
	// The crash window of CreateDisk: data made, record never committed.
	if err := e.app.Engine.CreateDisk(t.Context(), "d-orphan", 1<<30, ""); err != nil {
		t.Fatal(err)
	}
	if err := e.app.Close(); err != nil {
		t.Fatal(err)
	}
	start(t, dir)
	if _, err := os.Stat(filepath.Join(dir, "volumes", "d-orphan", "volume.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the volume of a disk without a record survives a restart: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "volumes", data, "volume.json")); err != nil {
		t.Errorf("the volume of a recorded disk: %v", err)
	}
}
