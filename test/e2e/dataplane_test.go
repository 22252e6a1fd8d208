package e2e

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	ecs4 "github.com/alibabacloud-go/ecs-20140526/v4/client"
	"github.com/alibabacloud-go/tea/tea"
	legacy "github.com/aliyun/alibaba-cloud-sdk-go/services/ecs"
)

// The data plane through the real tools: qemu-io and nbdcopy write and
// read a disk over NBD, the official SDK takes snapshots, resets the disk
// and creates a disk from a snapshot; hashes must match byte for byte.

func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed (scripts/test.sh installs it)", name)
	}
	return p
}

func (e *env) nbdURI(disk string) string { return "nbd://" + e.app.NBDAddr + "/" + disk }

func (e *env) qemuIO(disk string, cmds ...string) string {
	e.t.Helper()
	args := []string{"-f", "raw"}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	args = append(args, e.nbdURI(disk))
	out, err := exec.Command(needTool(e.t, "qemu-io"), args...).CombinedOutput()
	if err != nil || bytes.Contains(out, []byte("failed")) || bytes.Contains(out, []byte("Pattern verification failed")) {
		e.t.Fatalf("qemu-io %v: %v\n%s", cmds, err, out)
	}
	return string(out)
}

// dump copies a disk out over NBD with nbdcopy and returns its SHA-256.
func (e *env) dump(disk string) [32]byte {
	e.t.Helper()
	out := filepath.Join(e.t.TempDir(), disk+".raw")
	if b, err := exec.Command(needTool(e.t, "nbdcopy"), e.nbdURI(disk), out).CombinedOutput(); err != nil {
		e.t.Fatalf("nbdcopy %s: %v\n%s", disk, err, b)
	}
	f, err := os.Open(out)
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		e.t.Fatal(err)
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

func (e *env) waitStatus(inst, status string) {
	e.t.Helper()
	c := e.legacyClient()
	for deadline := time.Now().Add(10 * time.Second); ; {
		req := legacy.CreateDescribeInstancesRequest()
		e.point(req)
		req.InstanceIds = `["` + inst + `"]`
		resp, err := c.DescribeInstances(req)
		if err == nil && len(resp.Instances.Instance) == 1 && resp.Instances.Instance[0].Status == status {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("instance %s not %s: %v %+v", inst, status, err, resp)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDataPlaneSnapshotResetAndClone(t *testing.T) {
	needTool(t, "qemu-io")
	needTool(t, "nbdcopy")
	e := start(t, "")
	inst, data := e.runSmallInstance()
	tc := e.teaClient("")

	// Seeded writes, at unaligned offsets and across clusters.
	e.qemuIO(data, "write -P 0x5a 0 3M", "write -P 0xc3 5000 70000", "write -P 0x11 1000M 1M", "flush")
	before := e.dump(data)

	snap, err := tc.CreateSnapshot(&ecs4.CreateSnapshotRequest{DiskId: tea.String(data), SnapshotName: tea.String("seeded")})
	if err != nil {
		t.Fatal(err)
	}
	sid := tea.StringValue(snap.Body.SnapshotId)
	e.waitAccomplished(sid)

	// Overwrite, check the change is visible, then roll back.
	e.qemuIO(data, "write -P 0xff 0 4M", "flush")
	if e.dump(data) == before {
		t.Fatal("overwrite not visible")
	}
	_, err = tc.ResetDisk(&ecs4.ResetDiskRequest{DiskId: tea.String(data), SnapshotId: tea.String(sid)})
	wantTeaError(t, err, 403, "IncorrectInstanceStatus") // still Running
	if _, err := tc.StopInstance(&ecs4.StopInstanceRequest{InstanceId: tea.String(inst)}); err != nil {
		t.Fatal(err)
	}
	e.waitStatus(inst, "Stopped")
	// A stopped instance's disks are not exported.
	if out, err := exec.Command("qemu-io", "-f", "raw", "-c", "read 0 512", e.nbdURI(data)).CombinedOutput(); err == nil {
		t.Fatalf("disk of a stopped instance is still exported:\n%s", out)
	}
	if _, err := tc.ResetDisk(&ecs4.ResetDiskRequest{DiskId: tea.String(data), SnapshotId: tea.String(sid)}); err != nil {
		t.Fatal(err)
	}
	if _, err := tc.StartInstance(&ecs4.StartInstanceRequest{InstanceId: tea.String(inst)}); err != nil {
		t.Fatal(err)
	}
	e.waitStatus(inst, "Running")
	waitInUse(t, e, data)
	if got := e.dump(data); got != before {
		t.Fatal("ResetDisk did not bring the snapshot back byte for byte")
	}
	e.qemuIO(data, "read -P 0x5a 0 5000", "read -P 0xc3 5000 70000", "read -P 0x11 1000M 1M")

	// A new disk from the snapshot, attached to the running instance.
	cd, err := tc.CreateDisk(&ecs4.CreateDiskRequest{RegionId: tea.String("cn-hangzhou"), ZoneId: tea.String("cn-hangzhou-i"),
		SnapshotId: tea.String(sid), DiskCategory: tea.String("cloud_auto")})
	if err != nil {
		t.Fatal(err)
	}
	clone := tea.StringValue(cd.Body.DiskId)
	waitAvailable(t, e, clone)
	if _, err := tc.AttachDisk(&ecs4.AttachDiskRequest{InstanceId: tea.String(inst), DiskId: tea.String(clone)}); err != nil {
		t.Fatal(err)
	}
	waitInUse(t, e, clone)
	if got := e.dump(clone); got != before {
		t.Fatal("disk created from the snapshot differs")
	}

	// A new instance whose data disk is made from the snapshot (Size left
	// out: the snapshot's size).
	ri, err := tc.RunInstances(&ecs4.RunInstancesRequest{RegionId: tea.String("cn-hangzhou"), ZoneId: tea.String("cn-hangzhou-i"),
		ImageId: tea.String("ubuntu_22_04_x64_20G_alibase_20240101.vhd"), InstanceType: tea.String("ecs.g7.large"),
		DataDisk: []*ecs4.RunInstancesRequestDataDisk{{SnapshotId: tea.String(sid), Category: tea.String("cloud_auto")}}})
	if err != nil {
		t.Fatal(err)
	}
	inst2 := tea.StringValue(ri.Body.InstanceIdSets.InstanceIdSet[0])
	dd, err := tc.DescribeDisks(&ecs4.DescribeDisksRequest{RegionId: tea.String("cn-hangzhou"), InstanceId: tea.String(inst2), DiskType: tea.String("data")})
	if err != nil || len(dd.Body.Disks.Disk) != 1 {
		t.Fatalf("data disk of %s: %v", inst2, err)
	}
	restored := dd.Body.Disks.Disk[0]
	if tea.StringValue(restored.SourceSnapshotId) != sid || tea.Int32Value(restored.Size) != 1 {
		t.Fatalf("RunInstances data disk: source %q, size %d", tea.StringValue(restored.SourceSnapshotId), tea.Int32Value(restored.Size))
	}
	e.waitStatus(inst2, "Running")
	if got := e.dump(tea.StringValue(restored.DiskId)); got != before {
		t.Fatal("RunInstances data disk made from the snapshot differs")
	}
	_, err = tc.RunInstances(&ecs4.RunInstancesRequest{RegionId: tea.String("cn-hangzhou"), ZoneId: tea.String("cn-hangzhou-i"),
		ImageId: tea.String("ubuntu_22_04_x64_20G_alibase_20240101.vhd"), InstanceType: tea.String("ecs.g7.large"),
		DataDisk: []*ecs4.RunInstancesRequestDataDisk{{SnapshotId: tea.String("s-doesnotexist"), Category: tea.String("cloud_auto")}}})
	wantTeaError(t, err, 404, "InvalidDataDiskSnapshotId.NotFound")
	ds, err := tc.DescribeSnapshots(&ecs4.DescribeSnapshotsRequest{RegionId: tea.String("cn-hangzhou"), SnapshotIds: tea.String(`["` + sid + `"]`)})
	if err != nil || len(ds.Body.Snapshots.Snapshot) != 1 || tea.StringValue(ds.Body.Snapshots.Snapshot[0].Usage) != "disk" {
		t.Fatalf("snapshot usage after restores: %v %+v", err, ds)
	}

	// The snapshot's stored data verifies.
	e.verify(sid)
}

// runSmallInstance runs an instance with a 1 GiB data disk (the data
// plane tests copy whole disks) and returns the instance and that disk.
func (e *env) runSmallInstance() (inst, data string) {
	e.t.Helper()
	tc := e.teaClient("")
	resp, err := tc.RunInstances(&ecs4.RunInstancesRequest{RegionId: tea.String("cn-hangzhou"), ZoneId: tea.String("cn-hangzhou-i"),
		ImageId: tea.String("ubuntu_22_04_x64_20G_alibase_20240101.vhd"), InstanceType: tea.String("ecs.g7.large"),
		DataDisk: []*ecs4.RunInstancesRequestDataDisk{{Size: tea.Int32(1), Category: tea.String("cloud_auto")}}})
	if err != nil {
		e.t.Fatal(err)
	}
	inst = tea.StringValue(resp.Body.InstanceIdSets.InstanceIdSet[0])
	d, err := tc.DescribeDisks(&ecs4.DescribeDisksRequest{RegionId: tea.String("cn-hangzhou"), InstanceId: tea.String(inst), DiskType: tea.String("data")})
	if err != nil || len(d.Body.Disks.Disk) != 1 {
		e.t.Fatalf("data disk of %s: %v", inst, err)
	}
	return inst, tea.StringValue(d.Body.Disks.Disk[0].DiskId)
}

func waitDisk(t *testing.T, e *env, disk, status string) {
	t.Helper()
	c := e.legacyClient()
	for deadline := time.Now().Add(10 * time.Second); ; {
		req := legacy.CreateDescribeDisksRequest()
		e.point(req)
		req.DiskIds = `["` + disk + `"]`
		resp, err := c.DescribeDisks(req)
		if err == nil && len(resp.Disks.Disk) == 1 && resp.Disks.Disk[0].Status == status {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("disk %s not %s: %v", disk, status, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitInUse(t *testing.T, e *env, disk string)     { waitDisk(t, e, disk, "In_use") }
func waitAvailable(t *testing.T, e *env, disk string) { waitDisk(t, e, disk, "Available") }

// verify calls the VerifySnapshot admin action.
func (e *env) verify(snapshotID string) {
	e.t.Helper()
	n, healthy := e.adminVerify(snapshotID)
	if !healthy || n == 0 {
		e.t.Fatalf("verify %s: %d chunks, healthy %v", snapshotID, n, healthy)
	}
}

func (e *env) adminVerify(snapshotID string) (int, bool) {
	e.t.Helper()
	out := e.admin("VerifySnapshot", map[string]string{"SnapshotId": snapshotID})
	var n int
	var healthy bool
	fmt.Sscanf(out["CheckedChunks"], "%d", &n)
	healthy = out["Healthy"] == "true"
	return n, healthy
}
