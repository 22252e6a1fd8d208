package nbd

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"testing"
	"time"
)

// TestHalfDuplexClient: a client that sends all its requests (up to the
// in-flight limit) before reading any reply works, even when the replies
// outgrow the socket buffers before a large WRITE payload is read.
func TestHalfDuplexClient(t *testing.T) {
	const devSize = 64 << 20
	ex := newMemExports()
	dev := ex.add("disk", newMemDevice(devSize), false)
	fill := randomBytes(t, 8<<20)
	dev.WriteAt(fill, 0)
	// Small socket buffers on both sides, so that the replies fill them.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(ex, nil, Limits{})
	go s.Serve(smallBufListener{ln})
	t.Cleanup(func() { s.Close() })
	addr := ln.Addr().String()
	for _, structured := range []bool{false, true} {
		c, _, _ := dialGo(t, addr, "disk", structured)
		c.nc.(*net.TCPConn).SetReadBuffer(16 << 10)
		const reads, rlen = maxInFlight - 1, inlineReadMax
		for i := range reads {
			c.send(cmdRead, 0, uint64(i*rlen), rlen, nil)
		}
		payload := bytes.Repeat([]byte{7}, MaxPayload)
		wcookie := c.send(cmdWrite, 0, 32<<20, MaxPayload, payload)
		for range reads + 1 {
			cookie, errno, data := c.recvLen(func(cookie uint64) int {
				if cookie == wcookie {
					return 0
				}
				return rlen
			})
			if errno != 0 {
				t.Fatalf("cookie %d: errno %d", cookie, errno)
			}
			if cookie == wcookie {
				continue
			}
			off := int(cookie-wcookie+reads) * rlen // cookies are consecutive
			if !bytes.Equal(data, fill[off:off+rlen]) {
				t.Fatalf("cookie %d: data differs", cookie)
			}
		}
		if !bytes.Equal(dev.snapshot()[32<<20:], payload) {
			t.Fatal("write not applied")
		}
	}
}

// smallBufListener gives accepted connections a 16 KiB send buffer.
type smallBufListener struct{ net.Listener }

func (l smallBufListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err == nil {
		nc.(*net.TCPConn).SetWriteBuffer(16 << 10)
	}
	return nc, err
}

// slowDevice delays reads (or, with writes set, writes) at or above
// slowFrom.
type slowDevice struct {
	*memDevice
	slowFrom int64
	delay    time.Duration
	writes   bool
}

func (d *slowDevice) ReadAt(p []byte, off int64) (int, error) {
	if !d.writes && off >= d.slowFrom {
		time.Sleep(d.delay)
	}
	return d.memDevice.ReadAt(p, off)
}

func (d *slowDevice) WriteAt(p []byte, off int64) (int, error) {
	if d.writes && off >= d.slowFrom {
		time.Sleep(d.delay)
	}
	return d.memDevice.WriteAt(p, off)
}

// startSlow serves a device of which the upper half is slow to read (or
// write) and connects to it.
func startSlow(t *testing.T, delay time.Duration, writes bool) *testClient {
	t.Helper()
	dev := &slowDevice{memDevice: newMemDevice(testSize), slowFrom: testSize / 2, delay: delay, writes: writes}
	_, addr := startServer(t, statusExports{newMemExports(), map[string]Device{"disk": dev}})
	c, _, _ := dialGo(t, addr, "disk", true)
	return c
}

// overtakes sends n requests to the slow half (send(i) sends the i-th),
// then a read of the fast half, and checks that the read is answered
// first and that the n slow ones, delay each, overlap.
func overtakes(t *testing.T, c *testClient, n int, delay time.Duration, send func(i int)) {
	t.Helper()
	start := time.Now()
	for i := range n {
		send(i)
	}
	fast := c.send(cmdRead, 0, 0, 4096, nil)
	first, errno, _ := c.recv(0, 0)
	if errno != 0 || first != fast {
		t.Fatalf("first reply: cookie %d errno %d, want the fast read %d", first, errno, fast)
	}
	for range n {
		if _, errno, _ := c.recv(0, 0); errno != 0 {
			t.Fatalf("errno %d", errno)
		}
	}
	if d := time.Since(start); d > time.Duration(n)*delay*3/4 {
		t.Fatalf("%d slow requests took %v: not in parallel", n, d)
	}
}

// TestSlowReadsRunInParallel: once reads are slow, small reads are no
// longer executed one by one by the reader: a fast read overtakes slow
// ones, and slow ones overlap.
func TestSlowReadsRunInParallel(t *testing.T) {
	const delay = 40 * time.Millisecond
	c := startSlow(t, delay, false)
	// Teach the connection that reads are slow.
	for range inlineScore / slowReadScore {
		c.mustRead(testSize/2, 4096)
	}
	overtakes(t, c, 8, delay, func(i int) { c.send(cmdRead, 0, testSize/2+uint64(i)*4096, 4096, nil) })
	// Fast reads bring inline execution back; the data stays right.
	p := randomBytes(t, 4096)
	c.mustDo(cmdWrite, 0, 8192, 4096, p)
	for range maxSlowScore + 1 {
		if !bytes.Equal(c.mustRead(8192, 4096), p) {
			t.Fatal("read back differs")
		}
	}
}

// TestSlowWritesRunInParallel: small writes run in the reader while the
// device is fast; once writes are slow (write-back throttling, a disk),
// they go to workers: a read overtakes them, and they overlap.
func TestSlowWritesRunInParallel(t *testing.T) {
	const delay, n = 40 * time.Millisecond, 8
	c := startSlow(t, delay, true)
	p := randomBytes(t, 4096)
	for range inlineScore / slowReadScore {
		c.mustDo(cmdWrite, 0, testSize/2, 4096, p)
	}
	overtakes(t, c, n, delay, func(i int) { c.send(cmdWrite, 0, testSize/2+uint64(i)*4096, 4096, p) })
	for i := range n {
		if !bytes.Equal(c.mustRead(testSize/2+uint64(i)*4096, 4096), p) {
			t.Fatalf("write %d not applied", i)
		}
	}
}

// TestPipelinedMixed keeps the in-flight limit busy with reads of every
// size (inline and not), writes, zeroes and flushes on several
// connections, and checks every reply against a model.
func TestPipelinedMixed(t *testing.T) {
	const devSize = 16 << 20
	ex := newMemExports()
	dev := ex.add("disk", newMemDevice(devSize), false)
	model := randomBytes(t, devSize)
	dev.WriteAt(model, 0)
	_, addr := startServer(t, ex)
	t.Run("conns", func(t *testing.T) {
		for conn := range 3 {
			t.Run(fmt.Sprint(conn), func(t *testing.T) {
				t.Parallel()
				pipelineMixed(t, addr, conn, devSize, model)
			})
		}
	})
}

func pipelineMixed(t *testing.T, addr string, conn int, devSize uint64, model []byte) {
	c, _, _ := dialGo(t, addr, "disk", conn%2 == 0)
	own := uint64(conn) * devSize / 4 // each connection writes its own quarter
	rng := rand.New(rand.NewPCG(uint64(conn), 9))
	type op struct {
		typ      uint16
		off      uint64
		n        int
		expected []byte
	}
	inflight := map[uint64]op{}
	for i := 0; i < 600 || len(inflight) > 0; {
		for ; i < 600 && len(inflight) < maxInFlight; i++ {
			size := []int{512, 4096, 65536, inlineReadMax, inlineReadMax + 1, 1 << 20}[rng.IntN(6)]
			switch r := rng.IntN(10); {
			case r < 7: // read the last quarter, never written
				off := 3*devSize/4 + uint64(rng.IntN(int(devSize/4)-size))
				cookie := c.send(cmdRead, 0, off, uint32(size), nil)
				inflight[cookie] = op{cmdRead, off, size, model[off : off+uint64(size)]}
			case r < 9:
				off := own + uint64(rng.IntN(int(devSize/4)-size))
				cookie := c.send(cmdWrite, 0, off, uint32(size), randomBytes(t, size))
				inflight[cookie] = op{typ: cmdWrite}
			default:
				cookie := c.send(cmdFlush, 0, 0, 0, nil)
				inflight[cookie] = op{typ: cmdFlush}
			}
		}
		cookie, errno, data := c.recvLen(func(cookie uint64) int { return inflight[cookie].n })
		o, ok := inflight[cookie]
		if !ok || errno != 0 {
			t.Fatalf("reply cookie %d (known %v) errno %d", cookie, ok, errno)
		}
		delete(inflight, cookie)
		if o.typ == cmdRead && !bytes.Equal(data, o.expected) {
			t.Fatalf("read %d@%d differs", o.n, o.off)
		}
	}
}

// recvLen reads one reply; lenOf gives the data length of a simple reply
// to a READ by its cookie.
func (c *testClient) recvLen(lenOf func(cookie uint64) int) (cookie uint64, errno uint32, data []byte) {
	c.t.Helper()
	m, err := c.r.Peek(4)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	if be.Uint32(m) != simpleMagic {
		return c.recv(0, 0) // structured: the chunks say their length
	}
	var h [simpleHdrLen]byte
	c.readFull(h[:])
	errno, cookie = be.Uint32(h[4:]), be.Uint64(h[8:])
	if n := lenOf(cookie); errno == 0 && n > 0 {
		data = make([]byte, n)
		c.readFull(data)
	}
	return cookie, errno, data
}

// TestInlinePolicy: which requests the reader executes itself, and that
// slow writes and slow reads each move only their own kind to workers.
func TestInlinePolicy(t *testing.T) {
	var c conn
	read := request{typ: cmdRead, length: 4096}
	write := request{typ: cmdWrite, length: 4096}
	payload := make([]byte, 4096)
	check := func(when string, wantRead, wantWrite bool) {
		t.Helper()
		if got := c.inline(read, nil); got != wantRead {
			t.Errorf("%s: small read inline %v, want %v", when, got, wantRead)
		}
		if got := c.inline(write, payload); got != wantWrite {
			t.Errorf("%s: small write inline %v, want %v", when, got, wantWrite)
		}
	}
	check("fresh", true, true)
	for _, r := range []request{
		{typ: cmdRead, length: inlineReadMax + 1},
		{typ: cmdWrite, length: inlineWriteMax + 1},
		{typ: cmdWrite, length: 4096, flags: cmdFlagFUA},
		{typ: cmdFlush}, {typ: cmdTrim, length: 4096}, {typ: cmdWriteZeroes, length: 4096},
	} {
		if c.inline(r, payload) {
			t.Errorf("%+v runs inline", r)
		}
	}
	if c.inline(write, nil) {
		t.Error("a write without its payload (oversized, discarded) runs inline")
	}
	noteIO(&c.slowWrites, slowWrite(4096), 20*time.Millisecond) // write-back throttling
	check("after a slow write", true, false)
	for range maxSlowScore {
		noteIO(&c.slowWrites, slowWrite(4096), 0)
	}
	check("after many fast writes", true, true)
	noteIO(&c.slowReads, slowRead(4096), 5*time.Millisecond) // a read from disk
	check("after a slow read", false, true)
	// A page-cache write of 100 us is not slow; a read of 100 us is.
	c = conn{}
	for range 100 {
		noteIO(&c.slowWrites, slowWrite(4096), 100*time.Microsecond)
		noteIO(&c.slowReads, slowRead(4096), 100*time.Microsecond)
	}
	check("after 100 reads and writes of 100 us", false, true)
}
