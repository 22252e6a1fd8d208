package nbd

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// memDevice is an in-memory Device.
type memDevice struct {
	mu      sync.Mutex
	data    []byte
	dirty   bool  // written since the last Flush
	noHole  bool  // last WriteZeroes had noHole
	fail    error // returned by every operation when set
	flushes atomic.Int64
	// writeHook, if set, runs at the start of WriteAt (outside mu).
	writeHook func()
}

func newMemDevice(size int) *memDevice { return &memDevice{data: make([]byte, size)} }

func (d *memDevice) Size() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return int64(len(d.data))
}

func (d *memDevice) check(off, n int64) error {
	if d.fail != nil {
		return d.fail
	}
	if off < 0 || n < 0 || off+n > int64(len(d.data)) {
		return errors.New("memDevice: out of range")
	}
	return nil
}

func (d *memDevice) ReadAt(p []byte, off int64) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.check(off, int64(len(p))); err != nil {
		return 0, err
	}
	return copy(p, d.data[off:]), nil
}

func (d *memDevice) WriteAt(p []byte, off int64) (int, error) {
	if d.writeHook != nil {
		d.writeHook()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.check(off, int64(len(p))); err != nil {
		return 0, err
	}
	d.dirty = true
	return copy(d.data[off:], p), nil
}

func (d *memDevice) Flush() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fail != nil {
		return d.fail
	}
	d.dirty = false
	d.flushes.Add(1)
	return nil
}

func (d *memDevice) Trim(off, n int64) error { return d.WriteZeroes(off, n, false) }

func (d *memDevice) WriteZeroes(off, n int64, noHole bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.check(off, n); err != nil {
		return err
	}
	clear(d.data[off : off+n])
	d.dirty, d.noHole = true, noHole
	return nil
}

func (d *memDevice) setFail(err error) {
	d.mu.Lock()
	d.fail = err
	d.mu.Unlock()
}

func (d *memDevice) snapshot() []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return bytes.Clone(d.data)
}

func (d *memDevice) lastNoHole() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.noHole
}

func (d *memDevice) isDirty() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dirty
}

// memExports serves memDevices by name.
type memExports struct {
	mu       sync.Mutex
	devs     map[string]*memDevice
	ro       map[string]bool
	opens    atomic.Int64
	releases atomic.Int64
}

func newMemExports() *memExports {
	return &memExports{devs: map[string]*memDevice{}, ro: map[string]bool{}}
}

func (e *memExports) add(name string, d *memDevice, readOnly bool) *memDevice {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.devs[name], e.ro[name] = d, readOnly
	return d
}

func (e *memExports) Open(ctx context.Context, name string) (Device, bool, func(), error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	d, ok := e.devs[name]
	if !ok {
		return nil, false, nil, ErrUnknownExport
	}
	e.opens.Add(1)
	return d, e.ro[name], func() { e.releases.Add(1) }, nil
}

func (e *memExports) List(ctx context.Context) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var names []string
	for n := range e.devs {
		names = append(names, n)
	}
	return names
}

// startServer serves exports on 127.0.0.1:0 until the test ends.
func startServer(t testing.TB, exports Exports) (*Server, string) {
	t.Helper()
	return startServerLimits(t, exports, Limits{})
}

// startServerLimits is startServer within lim.
func startServerLimits(t testing.TB, exports Exports, lim Limits) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(exports, nil, lim)
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s, ln.Addr().String()
}

// serverGoroutines returns the stacks of goroutines running server code.
func serverGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "nbd.(*conn)") || strings.Contains(g, "nbd.(*Server)") {
			out = append(out, g)
		}
	}
	return out
}

// waitNoServerGoroutines fails the test if server goroutines outlive 2 s.
func waitNoServerGoroutines(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		gs := serverGoroutines()
		if len(gs) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d server goroutines still running:\n%s", len(gs), strings.Join(gs, "\n\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// isClosed reports whether the peer closed nc (a read gets EOF or reset).
func isClosed(nc net.Conn, r *bufio.Reader) bool {
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := r.ReadByte()
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout()) || errors.Is(err, io.EOF)
}
