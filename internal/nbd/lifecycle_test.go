package nbd

import (
	"bytes"
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

func TestDisc(t *testing.T) {
	ex := newMemExports()
	dev := ex.add("disk", newMemDevice(testSize), false)
	_, addr := startServer(t, ex)
	c, _, _ := dialGo(t, addr, "disk", false)
	c.mustDo(cmdWrite, 0, 0, 4096, make([]byte, 4096))
	c.send(cmdDisc, 0, 0, 0, nil)
	if !isClosed(c.nc, c.r) {
		t.Fatal("connection open after DISC")
	}
	waitFor(t, "release after DISC", func() bool { return ex.releases.Load() == ex.opens.Load() })
	if dev.isDirty() {
		t.Fatal("device not flushed after DISC")
	}
}

func TestDisconnect(t *testing.T) {
	ex := newMemExports()
	dev := ex.add("disk", newMemDevice(testSize), false)
	ex.add("other", newMemDevice(testSize), false)
	s, addr := startServer(t, ex)
	c1, _, _ := dialGo(t, addr, "disk", false)
	c2, _, _ := dialGo(t, addr, "disk", true)
	other, _, _ := dialGo(t, addr, "other", false)
	c1.mustDo(cmdWrite, 0, 0, 4096, bytes.Repeat([]byte{1}, 4096))

	s.Disconnect("disk")
	if dev.isDirty() {
		t.Fatal("device not flushed by Disconnect")
	}
	if got := ex.opens.Load() - ex.releases.Load(); got != 1 {
		t.Fatalf("%d exports still open after Disconnect, want 1", got)
	}
	for _, c := range []*testClient{c1, c2} {
		if !isClosed(c.nc, c.r) {
			t.Fatal("connection of disk open after Disconnect")
		}
	}
	other.mustRead(0, 4096)
	s.Disconnect("nope") // no connection: returns at once
}

// TestDisconnectInFlight checks that Disconnect lets a request in flight
// finish and reply before closing.
func TestDisconnectInFlight(t *testing.T) {
	ex := newMemExports()
	dev := ex.add("disk", newMemDevice(testSize), false)
	entered, unblock := make(chan struct{}), make(chan struct{})
	dev.writeHook = func() {
		close(entered)
		<-unblock
	}
	s, addr := startServer(t, ex)
	c, _, _ := dialGo(t, addr, "disk", false)
	cookie := c.send(cmdWrite, 0, 0, 4096, bytes.Repeat([]byte{9}, 4096))
	<-entered
	disconnected := disconnectBlocks(t, s, "with a request in flight")
	close(unblock)
	got, errno, _ := c.recv(0, 0)
	if got != cookie || errno != 0 {
		t.Fatalf("in-flight write: cookie %d errno %d", got, errno)
	}
	<-disconnected
	if !isClosed(c.nc, c.r) {
		t.Fatal("connection open after Disconnect")
	}
	if dev.snapshot()[0] != 9 || dev.isDirty() {
		t.Fatal("in-flight write lost or not flushed")
	}
}

func TestClose(t *testing.T) {
	ex := newMemExports()
	ex.add("disk", newMemDevice(testSize), false)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(ex, nil, Limits{})
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	addr := ln.Addr().String()

	live, _, _ := dialGo(t, addr, "disk", true)
	live.mustRead(0, 4096)
	handshaking := dial(t, addr) // still negotiating
	_ = dialRaw(t, addr)         // client flags not sent yet
	waitFor(t, "three connections", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.conns) == 3
	})

	closed := make(chan struct{})
	go func() {
		s.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after Close")
	}
	for _, c := range []*testClient{live, handshaking} {
		if !isClosed(c.nc, c.r) {
			t.Fatal("connection open after Close")
		}
	}
	if ex.opens.Load() != ex.releases.Load() {
		t.Fatalf("%d opens, %d releases", ex.opens.Load(), ex.releases.Load())
	}
	waitNoServerGoroutines(t)

	// Close is idempotent; Serve after Close returns nil at once.
	s.Close()
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(ln2); err != nil {
		t.Fatalf("Serve on a closed server: %v", err)
	}
	if _, err := net.Dial("tcp", ln2.Addr().String()); err == nil {
		t.Fatal("listener still open after Serve on a closed server")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// gatedExports holds Open of its export until released.
type gatedExports struct {
	*memExports
	entered, proceed chan struct{}
}

func (g *gatedExports) Open(ctx context.Context, name string) (Device, bool, func(), error) {
	close(g.entered)
	<-g.proceed
	return g.memExports.Open(ctx, name)
}

// A connection that is opening the export when Disconnect is called (its
// handshake not finished, so not attached yet) is ended too, and
// Disconnect waits for its release: it never attaches afterwards.
func TestDisconnectDuringHandshake(t *testing.T) {
	mem := newMemExports()
	mem.add("disk", newMemDevice(testSize), false)
	ex := &gatedExports{memExports: mem, entered: make(chan struct{}), proceed: make(chan struct{})}
	s, addr := startServer(t, ex)
	var once sync.Once
	proceed := func() { once.Do(func() { close(ex.proceed) }) }
	t.Cleanup(proceed) // before the server stops, even if the test fails
	c := dial(t, addr)
	c.sendOpt(optExportName, []byte("disk"))
	<-ex.entered // the server is inside Exports.Open
	disconnected := disconnectBlocks(t, s, "while a connection was opening the export")
	proceed()
	<-disconnected
	if got := mem.opens.Load() - mem.releases.Load(); got != 0 {
		t.Fatalf("%d exports open after Disconnect, want 0", got)
	}
	// Whatever the server sent of its handshake reply, the connection
	// then ends; it never enters transmission.
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, c.r); err != nil {
		t.Fatalf("the connection that was opening the export did not end: %v", err)
	}
}

// disconnectBlocks starts Disconnect("disk") and checks that it has not
// returned 100 ms later (when, the situation for the message); the
// channel is closed when it returns.
func disconnectBlocks(t *testing.T, s *Server, when string) chan struct{} {
	t.Helper()
	disconnected := make(chan struct{})
	go func() {
		s.Disconnect("disk")
		close(disconnected)
	}()
	select {
	case <-disconnected:
		t.Fatalf("Disconnect returned %s", when)
	case <-time.After(100 * time.Millisecond):
	}
	return disconnected
}
