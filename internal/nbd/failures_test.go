package nbd

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/snapstack/snapstack/internal/volume"
)

// failingBase is a restored snapshot whose chunk store is unavailable.
type failingBase struct{}

func (failingBase) ReadAt(p []byte, off int64) error { return errors.New("chunk store unavailable") }
func (failingBase) Close() error                     { return nil }

// oneExport serves dev as export "d".
type oneExport struct{ dev Device }

func (x oneExport) Open(ctx context.Context, name string) (Device, bool, func(), error) {
	if name != "d" {
		return nil, false, nil, ErrUnknownExport
	}
	return x.dev, false, func() {}, nil
}
func (x oneExport) List(ctx context.Context) []string { return []string{"d"} }

// fullCountError is a device whose reads fail but report every byte read,
// as io.ReaderAt allows.
type fullCountError struct{ *memDevice }

func (d fullCountError) ReadAt(p []byte, off int64) (int, error) {
	return len(p), errors.New("read failed after the count")
}

// A READ whose device read fails (a restored disk whose base cannot be
// read) must get an error, not a success reply carrying whatever the
// pooled buffer held before (here: another request's WRITE payload).
func TestReadErrorNotSwallowed(t *testing.T) {
	v, err := volume.Create(t.TempDir(), 1<<20, func(string) (volume.Base, error) { return failingBase{}, nil })
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if err := v.Reset("snap"); err != nil {
		t.Fatal(err)
	}
	_, addr := startServer(t, oneExport{v})
	c, _, _ := dialGo(t, addr, "d", false)
	// A WRITE of a "secret" leaves its payload buffer in the pool; it is
	// written into the head (one full cluster: no base read needed).
	secret := bytes.Repeat([]byte("SECRET!!"), 64<<10/8)
	c.mustDo(cmdWrite, 0, 0, uint32(len(secret)), secret)
	// A READ of a cluster that falls through to the (failing) base.
	errno, data := c.do(cmdRead, 0, 64<<10, 64<<10-simpleHdrLen, nil)
	if errno == 0 {
		leaked := bytes.Contains(data, []byte("SECRET!!"))
		t.Fatalf("READ of an unreadable range replied success (%d bytes, contains other request's payload: %v)", len(data), leaked)
	}
}

// A device read that returns an error with a full count is a failure too.
func TestReadErrorWithFullCount(t *testing.T) {
	_, addr := startServer(t, oneExport{fullCountError{newMemDevice(1 << 20)}})
	c, _, _ := dialGo(t, addr, "d", false)
	c.mustDo(cmdWrite, 0, 0, 4096, bytes.Repeat([]byte{7}, 4096))
	if errno, _ := c.do(cmdRead, 0, 4096, 4096-simpleHdrLen, nil); errno != errIO {
		t.Fatalf("READ failing with a full count: errno %d, want EIO", errno)
	}
}

// TestDisconnectDropsRequestsNotStarted: a request the reader holds when
// Disconnect starts (here: waiting for a slot while 16 writes are in the
// device) is not executed, since Disconnect's caller (ResetDisk, another
// instance attaching the disk) relies on nothing landing after it
// returns; the requests in flight finish. A new client of the export is
// refused until Disconnect returns.
func TestDisconnectDropsRequestsNotStarted(t *testing.T) {
	ex := newMemExports()
	dev := ex.add("d", newMemDevice(1<<20), false)
	gate := make(chan struct{})
	var entered sync.WaitGroup
	entered.Add(maxInFlight)
	dev.writeHook = func() {
		entered.Done()
		<-gate
	}
	srv, addr := startServer(t, ex)
	c, _, _ := dialGo(t, addr, "d", false)
	block := bytes.Repeat([]byte{1}, 4096)
	for i := range maxInFlight {
		c.send(cmdWrite, cmdFlagFUA, uint64(i)*4096, 4096, block) // FUA: never inline
	}
	entered.Wait() // every slot is taken by a write inside the device
	c.send(cmdWrite, cmdFlagFUA, uint64(maxInFlight)*4096, 4096, block)
	time.Sleep(50 * time.Millisecond) // the reader holds it, waiting for a slot
	done := make(chan struct{})
	go func() {
		srv.Disconnect("d")
		close(done)
	}()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		srv.mu.Lock()
		n := srv.draining["d"]
		srv.mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Disconnect did not start")
		}
	}
	// A new client while the old connection finishes: refused.
	c2 := dial(t, addr)
	if _, _, _, rep := c2.infoGo(optGo, "d"); rep != repErrShutdwn {
		t.Errorf("GO during Disconnect: reply %#x, want NBD_REP_ERR_SHUTDOWN", rep)
	}
	close(gate)
	<-done
	dev.mu.Lock()
	defer dev.mu.Unlock()
	for i := range maxInFlight {
		if dev.data[i*4096] != 1 {
			t.Fatalf("write %d, in flight at Disconnect, was not finished", i)
		}
	}
	if dev.data[maxInFlight*4096] != 0 {
		t.Fatal("a write not started when Disconnect began landed on the device")
	}
}

// countingDevice counts reads.
type countingDevice struct {
	*memDevice
	reads atomic.Int64
}

func (d *countingDevice) ReadAt(p []byte, off int64) (int, error) {
	d.reads.Add(1)
	return d.memDevice.ReadAt(p, off)
}

// TestBudgetCountsBufferMemory: a connection's budget counts the memory
// its buffers hold, not the bytes requested. A 32 MiB READ's reply buffer
// (header included) takes the 64 MiB size class, so a second one waits
// until the first reply is sent; counted by length, both were held at
// once (128 MiB for a client that does not read its replies).
func TestBudgetCountsBufferMemory(t *testing.T) {
	dev := &countingDevice{memDevice: newMemDevice(64 << 20)}
	_, addr := startServer(t, oneExport{dev})
	c, _, _ := dialGo(t, addr, "d", false)
	c.send(cmdRead, 0, 0, 32<<20, nil)
	c.send(cmdRead, 0, 32<<20, 32<<20, nil)
	waitFor(t, "the first read", func() bool { return dev.reads.Load() >= 1 })
	time.Sleep(200 * time.Millisecond) // a second read would have started by now
	if n := dev.reads.Load(); n != 1 {
		t.Fatalf("%d reads executed while the first reply was unread, want 1", n)
	}
	for range 2 {
		if _, errno, _ := c.recv(32<<20, 0); errno != 0 {
			t.Fatalf("errno %d", errno)
		}
	}
	if n := dev.reads.Load(); n != 2 {
		t.Fatalf("%d reads, want 2", n)
	}
}
