package nbd

import (
	"bytes"
	"context"
	"errors"
	"testing"

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
