package e2e

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	ecs4 "github.com/alibabacloud-go/ecs-20140526/v4/client"
	"github.com/alibabacloud-go/tea/tea"
)

// nbdGo opens a raw NBD connection to export name and enters transmission.
func nbdGo(t *testing.T, addr, name string) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	be := binary.BigEndian
	var greet [18]byte
	if _, err := io.ReadFull(nc, greet[:]); err != nil {
		t.Fatal(err)
	}
	b := be.AppendUint32(nil, 3) // FIXED_NEWSTYLE|NO_ZEROES
	d := be.AppendUint32(nil, uint32(len(name)))
	d = append(d, name...)
	d = be.AppendUint16(d, 0)
	b = be.AppendUint64(b, 0x49484156454f5054)
	b = be.AppendUint32(b, 7) // NBD_OPT_GO
	b = be.AppendUint32(b, uint32(len(d)))
	nc.Write(append(b, d...))
	for {
		var h [20]byte
		if _, err := io.ReadFull(nc, h[:]); err != nil {
			t.Fatal(err)
		}
		data := make([]byte, be.Uint32(h[16:]))
		io.ReadFull(nc, data)
		switch typ := be.Uint32(h[12:]); typ {
		case 1: // ACK
			return nc
		case 3: // INFO
		default:
			t.Fatalf("NBD_OPT_GO %s: reply %#x", name, typ)
		}
	}
}

func nbdReq(typ uint16, cookie, off uint64, length uint32, payload []byte) []byte {
	be := binary.BigEndian
	b := be.AppendUint32(nil, 0x25609513)
	b = be.AppendUint16(b, 0)
	b = be.AppendUint16(b, typ)
	b = be.AppendUint64(b, cookie)
	b = be.AppendUint64(b, off)
	b = be.AppendUint32(b, length)
	return append(b, payload...)
}

// StopInstance reports the instance Stopped after TransitionDelay (2 s by
// default) whether or not the NBD server has let go of its disks: a
// client that stopped reading replies keeps Disconnect busy for the 10 s
// drain timeout. A WRITE it sent before the stop used to be applied to
// the volume after a ResetDisk that the Stopped status allowed, so the
// reset disk no longer held the snapshot's content. ResetDisk now waits
// for the disk's connections to end, and a connection shut down executes
// no request it had not started.
func TestNoWriteAppliedAfterResetDisk(t *testing.T) {
	e := start(t, "", withDelay(2*time.Second))
	inst, data := e.runSmallInstance()
	e.waitStatus(inst, "Running")
	waitInUse(t, e, data)
	tc := e.teaClient("")
	snap, err := tc.CreateSnapshot(&ecs4.CreateSnapshotRequest{DiskId: tea.String(data), SnapshotName: tea.String("empty")})
	if err != nil {
		t.Fatal(err)
	}
	sid := tea.StringValue(snap.Body.SnapshotId)
	e.waitAccomplished(sid)

	// A client that sends two 32 MiB READs (whose replies fill the socket:
	// it does not read them) and then a 4 KiB WRITE (which waits for the
	// READs' buffer budget).
	nc := nbdGo(t, e.app.NBDAddr, data)
	pattern := bytes.Repeat([]byte{0xab}, 4096)
	var reqs []byte
	reqs = append(reqs, nbdReq(0, 1, 0, 32<<20, nil)...)
	reqs = append(reqs, nbdReq(0, 2, 32<<20, 32<<20, nil)...)
	reqs = append(reqs, nbdReq(1, 3, 0, 4096, pattern)...)
	if _, err := nc.Write(reqs); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)

	stopped := make(chan time.Time, 1)
	go func() {
		_, err := tc.StopInstance(&ecs4.StopInstanceRequest{InstanceId: tea.String(inst)})
		if err != nil {
			t.Error(err)
		}
		stopped <- time.Now()
	}()
	e.waitStatus(inst, "Stopped")
	if _, err := tc.ResetDisk(&ecs4.ResetDiskRequest{DiskId: tea.String(data), SnapshotId: tea.String(sid)}); err != nil {
		t.Fatal(err)
	}
	resetAt := time.Now()
	at := <-stopped
	t.Logf("StopInstance returned %v after ResetDisk returned", at.Sub(resetAt))

	v, err := e.app.Engine.Volume(data)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4096)
	if _, err := v.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(got, pattern) {
		t.Fatal("a WRITE of the stopped instance's NBD connection was applied after ResetDisk: the reset disk does not hold the snapshot's content")
	}
}
