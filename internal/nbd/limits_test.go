package nbd

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// heldDevice is a device whose reads wait until release is closed.
type heldDevice struct {
	*memDevice
	started atomic.Int64
	release chan struct{}
}

func (d *heldDevice) ReadAt(p []byte, off int64) (int, error) {
	d.started.Add(1)
	<-d.release
	return d.memDevice.ReadAt(p, off)
}

// TestMemoryLimitIsServerWide: once the buffers of all connections reach
// Limits.Memory, a connection that already holds a buffer waits for
// memory (up to memoryWait) before it starts another request, although
// its own share would allow 64 MiB.
func TestMemoryLimitIsServerWide(t *testing.T) {
	const readLen = 1<<20 - simpleHdrLen // a 1 MiB buffer with its reply header
	dev := &heldDevice{memDevice: newMemDevice(16 << 20), release: make(chan struct{})}
	s, addr := startServerLimits(t, oneExport{dev}, Limits{Memory: 1 << 20})
	var once sync.Once
	release := func() { once.Do(func() { close(dev.release) }) }
	t.Cleanup(release) // before the server's Close, which waits for the reads
	c, _, _ := dialGo(t, addr, "d", false)
	for i := range 4 {
		c.send(cmdRead, 0, uint64(i)<<20, readLen, nil)
	}
	waitFor(t, "the first read", func() bool { return dev.started.Load() == 1 })
	time.Sleep(100 * time.Millisecond)
	if n := dev.started.Load(); n != 1 {
		t.Fatalf("%d reads started within 1 MiB of server memory, want 1", n)
	}
	if held := s.mem.held(); held != 1<<20 {
		t.Fatalf("server holds %d buffer bytes, want %d", held, 1<<20)
	}
	release()
	for range 4 {
		if _, errno, _ := c.recv(readLen, 0); errno != 0 {
			t.Fatalf("errno %d", errno)
		}
	}
	waitFor(t, "every buffer released", func() bool { return s.mem.held() == 0 })
}

// TestStuckClientDoesNotStarveOthers: a client that stops reading its
// replies holds its buffers, past the server's limit; another connection
// still gets one request at a time through.
func TestStuckClientDoesNotStarveOthers(t *testing.T) {
	dev := newMemDevice(64 << 20)
	model := randomBytes(t, 1<<20)
	dev.WriteAt(model, 0)
	s, addr := startServerLimits(t, oneExport{dev}, Limits{Memory: 1 << 20})
	stuck, _, _ := dialGo(t, addr, "d", false)
	for i := range 2 {
		stuck.send(cmdRead, 0, uint64(i)*(32<<20), 32<<20, nil) // never read
	}
	waitFor(t, "the stuck client's buffers", func() bool { return s.mem.held() >= 64<<20 })
	c, _, _ := dialGo(t, addr, "d", true)
	for i := range 20 {
		p := bytes.Repeat([]byte{byte(i)}, 256<<10)
		c.mustDo(cmdWrite, 0, 1<<20, uint32(len(p)), p)
		if got := c.mustRead(0, 1<<20); !bytes.Equal(got, model) {
			t.Fatal("read differs")
		}
		if got := c.mustRead(1<<20, len(p)); !bytes.Equal(got, p) {
			t.Fatal("write not applied")
		}
	}
}

// TestMaxConns: a connection beyond Limits.MaxConns is closed at once;
// once one ends, a new one is served.
func TestMaxConns(t *testing.T) {
	ex := newMemExports()
	ex.add("disk", newMemDevice(testSize), false)
	s, addr := startServerLimits(t, ex, Limits{MaxConns: 2})
	a, _, _ := dialGo(t, addr, "disk", false)
	dialRaw(t, addr) // negotiating counts too
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	if n, err := io.ReadFull(nc, make([]byte, 18)); err == nil || n != 0 {
		t.Fatalf("third connection: read %d bytes, err %v; want it closed before the greeting", n, err)
	}
	a.mustDo(cmdFlush, 0, 0, 0, nil) // the first ones are served
	a.send(cmdDisc, 0, 0, 0, nil)
	waitFor(t, "the first connection to end", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.conns) < 2
	})
	b, _, _ := dialGo(t, addr, "disk", true)
	b.mustDo(cmdFlush, 0, 0, 0, nil)
}

// TestHalfDuplexClientOverServerLimit: a client may send its requests
// (up to the 16 in flight) before reading any reply (TestHalfDuplexClient)
// even while other connections hold all the server's memory (here a
// client that stopped reading its replies). Its reader, holding a READ
// buffer whose reply the client reads only after its WRITE payload is
// read, waits memoryWait for server memory and then takes its own
// share; without that the two would wait for each other for as long as
// the stuck client stays connected.
func TestHalfDuplexClientOverServerLimit(t *testing.T) {
	const devSize = 64 << 20
	ex := newMemExports()
	ex.add("disk", newMemDevice(devSize), false)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(ex, nil, Limits{Memory: 64 << 20})
	go s.Serve(smallBufListener{ln})
	t.Cleanup(func() { s.Close() })
	addr := ln.Addr().String()

	// One client stops reading: its 32 MiB READ holds 64 MiB, the limit.
	stuck, _, _ := dialGo(t, addr, "disk", false)
	stuck.send(cmdRead, 0, 0, MaxPayload, nil) // never read
	waitFor(t, "the stuck client's buffer", func() bool { return s.mem.held() >= 64<<20 })

	// The half-duplex client of TestHalfDuplexClient.
	c, _, _ := dialGo(t, addr, "disk", false)
	c.nc.(*net.TCPConn).SetReadBuffer(16 << 10)
	const reads, rlen = maxInFlight - 1, inlineReadMax
	var req []byte
	for i := range reads {
		req = appendRequest(req, cmdRead, 0, uint64(i+100), uint64(i*rlen), rlen, nil)
	}
	req = appendRequest(req, cmdWrite, 0, 200, 32<<20, MaxPayload, bytes.Repeat([]byte{7}, MaxPayload))
	c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.nc.Write(req); err != nil {
		t.Fatalf("half-duplex client could not send its requests (%v): the server "+
			"holds %d buffer bytes (limit 64 MiB) and its reader waits for memory "+
			"that only the client's reading of replies would free\n%s", err, s.mem.held(), acquireStacks())
	}
	c.nc.SetDeadline(time.Now().Add(10 * time.Second))
	for range reads + 1 {
		c.recvLen(func(cookie uint64) int {
			if cookie == 200 {
				return 0
			}
			return rlen
		})
	}
}

// TestZeroCostRequestsDoNotWaitForMemory: a FLUSH takes no buffer, so it
// runs at once although the server is over its limit and the connection
// holds a buffer (a READ in flight).
func TestZeroCostRequestsDoNotWaitForMemory(t *testing.T) {
	dev := &heldDevice{memDevice: newMemDevice(16 << 20), release: make(chan struct{})}
	s, addr := startServerLimits(t, oneExport{dev}, Limits{Memory: 1 << 20})
	var once sync.Once
	release := func() { once.Do(func() { close(dev.release) }) }
	t.Cleanup(release)
	c, _, _ := dialGo(t, addr, "d", false)
	// A 1 MiB READ (a 2 MiB buffer): allowed, the connection holding none.
	c.send(cmdRead, 0, 0, 1<<20, nil)
	waitFor(t, "the read", func() bool { return dev.started.Load() == 1 })
	flush := c.send(cmdFlush, 0, 0, 0, nil)
	if cookie, errno, _ := c.recv(0, 0); cookie != flush || errno != 0 {
		t.Fatalf("first reply: cookie %d errno %d, want the FLUSH's (%d) while the READ is held", cookie, errno, flush)
	}
	if held := s.mem.held(); held != 2<<20 {
		t.Fatalf("server holds %d buffer bytes, want the READ's %d", held, 2<<20)
	}
	release()
	if _, errno, _ := c.recv(1<<20, 0); errno != 0 {
		t.Fatalf("READ: errno %d", errno)
	}
}

// acquireStacks returns the stacks of goroutines waiting in budget.acquire.
func acquireStacks() string {
	var out []string
	for _, g := range serverGoroutines() {
		if strings.Contains(g, "(*budget).acquire") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}

// TestReplyTimeoutClosesStuckClient: a client that stops reading its
// replies is disconnected after Limits.ReplyTimeout, which frees its
// buffers and its place.
func TestReplyTimeoutClosesStuckClient(t *testing.T) {
	ex := newMemExports()
	ex.add("disk", newMemDevice(64<<20), false)
	s, addr := startServerLimits(t, ex, Limits{ReplyTimeout: 300 * time.Millisecond})
	stuck, _, _ := dialGo(t, addr, "disk", false)
	for i := range 2 {
		stuck.send(cmdRead, 0, uint64(i)*(32<<20), 32<<20, nil) // never read
	}
	waitFor(t, "the stuck client's buffers", func() bool { return s.mem.held() > 0 })
	waitFor(t, "the stuck connection to be closed", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.conns) == 0
	})
	if held := s.mem.held(); held != 0 {
		t.Fatalf("%d buffer bytes held after the stuck connection ended", held)
	}
}

// TestReplyTimeoutSparesIdleClients: the timeout counts only while a
// reply waits for the client; a connection idle for longer, after replies
// that filled the socket, is served as before.
func TestReplyTimeoutSparesIdleClients(t *testing.T) {
	ex := newMemExports()
	dev := ex.add("disk", newMemDevice(16<<20), false)
	model := randomBytes(t, 16<<20)
	dev.WriteAt(model, 0)
	_, addr := startServerLimits(t, ex, Limits{ReplyTimeout: 200 * time.Millisecond})
	c, _, _ := dialGo(t, addr, "disk", false)
	for range 2 {
		if !bytes.Equal(c.mustRead(0, 8<<20), model[:8<<20]) { // larger than the socket takes at once
			t.Fatal("8 MiB read differs")
		}
		time.Sleep(500 * time.Millisecond)
		if !bytes.Equal(c.mustRead(4096, 4096), model[4096:8192]) { // executed by the reader
			t.Fatal("4 KiB read differs")
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestReplyTimeoutSparesSlowReaders: the timeout counts from the client's
// last progress, not from the start of a reply batch: a client that keeps
// taking its replies, only slowly, stays connected however long a batch
// takes.
func TestReplyTimeoutSparesSlowReaders(t *testing.T) {
	ex := newMemExports()
	dev := ex.add("disk", newMemDevice(16<<20), false)
	model := randomBytes(t, 16<<20)
	dev.WriteAt(model, 0)
	const timeout = 500 * time.Millisecond
	s, addr := startServerLimits(t, ex, Limits{ReplyTimeout: timeout})
	// Small socket buffers, so that the server's writes wait for the
	// client all along, and the kernel lets the writer go on after each
	// few hundred KiB the client reads (a third of the send buffer; with
	// a send buffer autotuned to 16 MiB that would be half a second).
	d := &net.Dialer{Control: func(network, address string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 128<<10)
		})
		return errors.Join(err, serr)
	}}
	c := dialRawVia(t, addr, d)
	c.write(be.AppendUint32(nil, flagCFixedNewstyle|flagCNoZeroes))
	if _, _, _, rep := c.infoGo(optGo, "disk", infoBlockSize); rep != repAck {
		t.Fatalf("GO: reply %#x", rep)
	}
	s.mu.Lock()
	for sc := range s.conns {
		if err := sc.nc.(*net.TCPConn).SetWriteBuffer(512 << 10); err != nil {
			t.Fatal(err)
		}
	}
	s.mu.Unlock()
	offsets := map[uint64]int{}
	for i := range 16 {
		offsets[c.send(cmdRead, 0, uint64(i)<<20, 1<<20, nil)] = i << 20
	}
	// At most 13 MB/s: the 16 MiB of replies take more than twice the
	// timeout, and the socket takes more every tenth of a second or so.
	start := time.Now()
	c.r = bufio.NewReaderSize(&slowReader{r: c.nc, chunk: 64 << 10, every: 5 * time.Millisecond}, 64<<10)
	for range 16 {
		cookie, errno, data := c.recv(1<<20, 0)
		off, ok := offsets[cookie]
		if !ok || errno != 0 || !bytes.Equal(data, model[off:off+1<<20]) {
			t.Fatalf("reply %d: errno %d, ok %v, data equal %v (after %v)", cookie, errno, ok, bytes.Equal(data, model[off:off+1<<20]), time.Since(start))
		}
	}
	if d := time.Since(start); d < 2*timeout {
		t.Fatalf("the replies took %v, less than twice the timeout: the test proves nothing", d)
	}
}

// slowReader reads at most chunk bytes per call, one call every every.
type slowReader struct {
	r     io.Reader
	chunk int
	every time.Duration
}

func (s *slowReader) Read(p []byte) (int, error) {
	time.Sleep(s.every)
	return s.r.Read(p[:min(len(p), s.chunk)])
}

// TestDisconnectFreesItsPlaces: once Disconnect returns, the connections
// it ended no longer count toward MaxConns, so a client that reconnects
// at once (an instance started again) is served, not refused.
func TestDisconnectFreesItsPlaces(t *testing.T) {
	ex := newMemExports()
	ex.add("disk", newMemDevice(testSize), false)
	s, addr := startServerLimits(t, ex, Limits{MaxConns: 1})
	for i := range 50 {
		c, _, _ := dialGo(t, addr, "disk", false)
		c.mustDo(cmdFlush, 0, 0, 0, nil)
		s.Disconnect("disk")
		s.mu.Lock()
		n := len(s.conns)
		s.mu.Unlock()
		if n != 0 {
			t.Fatalf("round %d: %d connections counted after Disconnect returned", i, n)
		}
	}
}
