package e2e

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	ecd "github.com/aliyun/alibaba-cloud-sdk-go/services/ecd"
)

// TestEDSResetSnapshotWaitsForSnapshotInProgress: as ECS ResetDisk,
// ResetSnapshot refuses a disk with a snapshot in progress (403
// IncorrectDiskStatus): the restore would drop the local data of the
// snapshot being uploaded, and a snapshot CreateSnapshot accepted would
// end FAILED. Once that snapshot is accomplished, the reset goes ahead.
func TestEDSResetSnapshotWaitsForSnapshotInProgress(t *testing.T) {
	e := start(t, "")
	c := e.ecdClient()
	cr := ecd.CreateCreateDesktopsRequest()
	e.point(cr)
	cr.OfficeSiteId, cr.BundleId = "cn-hangzhou+dir-1", "b-default"
	cr.QueryParams["SystemDiskSize"], cr.QueryParams["DataDiskSize"] = "1", "1"
	created, err := c.CreateDesktops(cr)
	if err != nil || len(created.DesktopId) != 1 {
		t.Fatalf("CreateDesktops: %v", err)
	}
	desk := created.DesktopId[0]
	_, data := e.waitDesktop(c, desk, "Running")
	n := 0
	snap := func() string {
		n++
		sr := ecd.CreateCreateSnapshotRequest()
		e.point(sr)
		sr.DesktopId, sr.SourceDiskType, sr.SnapshotName = desk, "data", fmt.Sprintf("snap-%d", n)
		r, err := c.CreateSnapshot(sr)
		if err != nil {
			t.Fatal(err)
		}
		return r.SnapshotId
	}
	first := snap()
	e.waitEDSSnapshot(c, first)
	stop := ecd.CreateStopDesktopsRequest()
	e.point(stop)
	stop.DesktopId = &[]string{desk}
	if _, err := c.StopDesktops(stop); err != nil {
		t.Fatal(err)
	}
	e.waitDesktop(c, desk, "Stopped")
	v, err := e.app.Engine.Volume(data)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 128<<20)
	r := rand.New(rand.NewPCG(5, 6))
	for i := range buf {
		buf[i] = byte(r.Uint32())
	}
	v.WriteAt(buf, 0)
	v.Flush()
	second := snap() // accepted; its upload takes a while
	rr := ecd.CreateResetSnapshotRequest()
	e.point(rr)
	rr.SnapshotId = first
	_, err = c.ResetSnapshot(rr)
	status := func(id string) string {
		req := ecd.CreateDescribeSnapshotsRequest()
		e.point(req)
		req.SnapshotId = id
		resp, err := c.DescribeSnapshots(req)
		if err != nil || len(resp.Snapshots) != 1 {
			t.Fatalf("DescribeSnapshots: %v", err)
		}
		return resp.Snapshots[0].Status
	}
	if err == nil && status(second) == "ACCOMPLISHED" {
		t.Skip("the upload ended before the reset; cannot observe the refusal")
	}
	wantLegacyError(t, err, 403, "IncorrectDiskStatus")
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		st := status(second)
		if st == "ACCOMPLISHED" {
			break
		}
		if st == "FAILED" || time.Now().After(deadline) {
			t.Fatalf("snapshot %s: %s", second, st)
		}
	}
	if _, err := c.ResetSnapshot(rr); err != nil {
		t.Fatalf("ResetSnapshot once the snapshot is accomplished: %v", err)
	}
}
