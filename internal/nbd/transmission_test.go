package nbd

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"syscall"
	"testing"
)

const testSize = 1 << 20

// forReplyModes runs f with simple and with structured replies.
func forReplyModes(t *testing.T, f func(t *testing.T, structured bool)) {
	for _, structured := range []bool{false, true} {
		t.Run(fmt.Sprintf("structured=%v", structured), func(t *testing.T) { f(t, structured) })
	}
}

func TestReadWrite(t *testing.T) {
	forReplyModes(t, func(t *testing.T, structured bool) {
		ex := newMemExports()
		dev := ex.add("disk", newMemDevice(testSize), false)
		_, addr := startServer(t, ex)
		c, _, _ := dialGo(t, addr, "disk", structured)
		tests := []struct {
			off uint64
			n   int
		}{{0, 4096}, {1, 1}, {12345, 70000}, {testSize - 512, 512}, {testSize - 1, 1}, {0, testSize}}
		for i, tt := range tests {
			p := bytes.Repeat([]byte{byte(i + 1)}, tt.n)
			c.mustDo(cmdWrite, 0, tt.off, uint32(tt.n), p)
			if got := c.mustRead(tt.off, tt.n); !bytes.Equal(got, p) {
				t.Fatalf("%d@%d: read back differs", tt.n, tt.off)
			}
			if !bytes.Equal(dev.snapshot()[tt.off:tt.off+uint64(tt.n)], p) {
				t.Fatalf("%d@%d: device differs", tt.n, tt.off)
			}
		}
		// Zero lengths succeed, including at the end of the export.
		for _, off := range []uint64{0, testSize} {
			for _, typ := range []uint16{cmdRead, cmdWrite, cmdTrim, cmdWriteZeroes} {
				if errno, data := c.do(typ, 0, off, 0, nil); errno != 0 || len(data) != 0 {
					t.Fatalf("%s of 0 bytes at %d: errno %d, %d bytes", cmdName(typ), off, errno, len(data))
				}
			}
		}
	})
}

func TestFUA(t *testing.T) {
	ex := newMemExports()
	dev := ex.add("disk", newMemDevice(testSize), false)
	_, addr := startServer(t, ex)
	c, _, _ := dialGo(t, addr, "disk", false)
	tests := []struct {
		typ, flags uint16
		payload    []byte
		flushes    int64 // expected device flushes before the reply
	}{
		{cmdWrite, 0, make([]byte, 4096), 0},
		{cmdWrite, cmdFlagFUA, make([]byte, 4096), 1},
		{cmdTrim, 0, nil, 0},
		{cmdTrim, cmdFlagFUA, nil, 1},
		{cmdWriteZeroes, 0, nil, 0},
		{cmdWriteZeroes, cmdFlagFUA | cmdFlagNoHole, nil, 1},
		{cmdFlush, 0, nil, 1},
		{cmdRead, cmdFlagFUA, nil, 0}, // accepted, nothing to flush
	}
	for _, tt := range tests {
		before := dev.flushes.Load()
		var off uint64
		length := uint32(4096)
		if tt.typ == cmdFlush {
			length = 0
		}
		c.mustDo(tt.typ, tt.flags, off, length, tt.payload)
		if got := dev.flushes.Load() - before; got != tt.flushes {
			t.Errorf("%s flags %#x: %d flushes before the reply, want %d", cmdName(tt.typ), tt.flags, got, tt.flushes)
		}
		if tt.flushes > 0 && dev.isDirty() {
			t.Errorf("%s flags %#x: device dirty after the reply", cmdName(tt.typ), tt.flags)
		}
	}
}

func TestRequestErrors(t *testing.T) {
	forReplyModes(t, func(t *testing.T, structured bool) {
		ex := newMemExports()
		dev := ex.add("disk", newMemDevice(testSize), false)
		_, addr := startServer(t, ex)
		c, _, _ := dialGo(t, addr, "disk", structured)
		tests := []struct {
			name       string
			typ, flags uint16
			off        uint64
			n          uint32
			payload    bool
			devErr     error
			want       uint32
		}{
			{"read past end", cmdRead, 0, testSize, 1, false, nil, errInval},
			{"read across end", cmdRead, 0, testSize - 512, 1024, false, nil, errInval},
			{"read offset overflow", cmdRead, 0, math.MaxUint64, 2, false, nil, errInval},
			{"read too long", cmdRead, 0, 0, MaxPayload + 1, false, nil, errInval},
			{"write across end", cmdWrite, 0, testSize - 512, 1024, true, nil, errNoSpc},
			{"write offset overflow", cmdWrite, 0, math.MaxUint64 - 10, 512, true, nil, errNoSpc},
			{"trim past end", cmdTrim, 0, testSize, 4096, false, nil, errInval},
			{"zero past end", cmdWriteZeroes, 0, testSize - 1, 2, false, nil, errNoSpc},
			{"unknown command", 42, 0, 0, 0, false, nil, errInval},
			{"cache not advertised", 5, 0, 0, 4096, false, nil, errInval},
			{"block status not advertised", 7, 0, 0, 4096, false, nil, errInval},
			{"read with DF", cmdRead, 1 << 2, 0, 4096, false, nil, errInval},
			{"write with NO_HOLE", cmdWrite, cmdFlagNoHole, 0, 4096, true, nil, errInval},
			{"zero with FAST_ZERO", cmdWriteZeroes, 1 << 4, 0, 4096, false, nil, errInval},
			{"read device error", cmdRead, 0, 0, 4096, false, errors.New("boom"), errIO},
			{"write device error", cmdWrite, 0, 0, 4096, true, errors.New("boom"), errIO},
			{"flush device error", cmdFlush, 0, 0, 0, false, errors.New("boom"), errIO},
			{"trim device error", cmdTrim, 0, 0, 4096, false, errors.New("boom"), errIO},
			{"write device ENOSPC", cmdWrite, 0, 0, 4096, true, fmt.Errorf("x: %w", syscall.ENOSPC), errNoSpc},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				dev.setFail(tt.devErr)
				var p []byte
				if tt.payload {
					p = make([]byte, tt.n)
				}
				errno, data := c.do(tt.typ, tt.flags, tt.off, tt.n, p)
				dev.setFail(nil)
				if errno != tt.want || len(data) != 0 {
					t.Fatalf("errno %d (%d bytes), want %d", errno, len(data), tt.want)
				}
				c.mustRead(testSize-4096, 4096) // still in sync
			})
		}
	})
}

func TestOversizedWrite(t *testing.T) {
	ex := newMemExports()
	ex.add("disk", newMemDevice(testSize), false)
	_, addr := startServer(t, ex)
	c, _, _ := dialGo(t, addr, "disk", true)
	// Above the maximum payload: discarded, NBD_EINVAL, stream in sync.
	if errno, _ := c.do(cmdWrite, 0, 0, MaxPayload+1, make([]byte, MaxPayload+1)); errno != errInval {
		t.Fatalf("oversized write: errno %d", errno)
	}
	p := bytes.Repeat([]byte{7}, 4096)
	c.mustDo(cmdWrite, 0, 0, 4096, p)
	if !bytes.Equal(c.mustRead(0, 4096), p) {
		t.Fatal("read after oversized write differs")
	}
	// Absurd: the connection is dropped without reading the payload.
	c.send(cmdWrite, 0, 0, maxSanePayload+1, nil)
	if !isClosed(c.nc, c.r) {
		t.Fatal("connection open after absurd write")
	}
}

func TestTrimWriteZeroes(t *testing.T) {
	ex := newMemExports()
	dev := ex.add("disk", newMemDevice(testSize), false)
	_, addr := startServer(t, ex)
	c, _, _ := dialGo(t, addr, "disk", true)
	tests := []struct {
		typ, flags uint16
		off        uint64
		n          uint32
		noHole     bool
	}{
		{cmdTrim, 0, 4096, 8192, false},
		{cmdTrim, 0, 1, 3, false},
		{cmdWriteZeroes, 0, 0, testSize, false},
		{cmdWriteZeroes, cmdFlagNoHole, 100, 5000, true},
		{cmdWriteZeroes, cmdFlagNoHole | cmdFlagFUA, testSize - 4096, 4096, true},
	}
	for _, tt := range tests {
		c.mustDo(cmdWrite, 0, 0, testSize, bytes.Repeat([]byte{0xff}, testSize))
		c.mustDo(tt.typ, tt.flags, tt.off, tt.n, nil)
		got := c.mustRead(0, testSize)
		for i, b := range got {
			in := uint64(i) >= tt.off && uint64(i) < tt.off+uint64(tt.n)
			if in && b != 0 || !in && b != 0xff {
				t.Fatalf("%s %d@%d: byte %d is %#x", cmdName(tt.typ), tt.n, tt.off, i, b)
			}
		}
		if got := dev.lastNoHole(); tt.typ == cmdWriteZeroes && got != tt.noHole {
			t.Fatalf("noHole %v, want %v", got, tt.noHole)
		}
	}
}

func TestReadOnly(t *testing.T) {
	ex := newMemExports()
	dev := ex.add("ro", newMemDevice(testSize), true)
	dev.WriteAt([]byte{0x42}, 0)
	_, addr := startServer(t, ex)
	c, _, flags := dialGo(t, addr, "ro", false)
	if flags&flagReadOnly == 0 {
		t.Fatalf("flags %#x lack READ_ONLY", flags)
	}
	for _, typ := range []uint16{cmdWrite, cmdTrim, cmdWriteZeroes} {
		var p []byte
		if typ == cmdWrite {
			p = make([]byte, 4096)
		}
		if errno, _ := c.do(typ, cmdFlagFUA, 0, 4096, p); errno != errPerm {
			t.Fatalf("%s: errno %d, want EPERM", cmdName(typ), errno)
		}
	}
	if got := c.mustRead(0, 4096); got[0] != 0x42 {
		t.Fatal("read-only export was modified")
	}
	c.mustDo(cmdFlush, 0, 0, 0, nil)
}

// TestPipelined sends many requests before reading any reply; replies may
// come out of order.
func TestPipelined(t *testing.T) {
	ex := newMemExports()
	ex.add("disk", newMemDevice(testSize), false)
	_, addr := startServer(t, ex)
	c, _, _ := dialGo(t, addr, "disk", true)
	const n = 100
	for i := range n {
		c.send(cmdWrite, 0, uint64(i)*4096, 4096, bytes.Repeat([]byte{byte(i)}, 4096))
	}
	seen := map[uint64]bool{}
	for range n {
		cookie, errno, _ := c.recv(0, 0)
		if errno != 0 || seen[cookie] {
			t.Fatalf("cookie %d: errno %d, seen %v", cookie, errno, seen[cookie])
		}
		seen[cookie] = true
	}
	for i := range n {
		if got := c.mustRead(uint64(i)*4096, 4096); got[0] != byte(i) || got[4095] != byte(i) {
			t.Fatalf("block %d: %#x", i, got[0])
		}
	}
}

func TestMultiConn(t *testing.T) {
	ex := newMemExports()
	ex.add("disk", newMemDevice(testSize), false)
	_, addr := startServer(t, ex)
	a, _, _ := dialGo(t, addr, "disk", false)
	b, _, _ := dialGo(t, addr, "disk", true)
	p := bytes.Repeat([]byte("multi"), 1000)
	a.mustDo(cmdWrite, 0, 777, uint32(len(p)), p)
	b.mustDo(cmdFlush, 0, 0, 0, nil)
	if !bytes.Equal(b.mustRead(777, len(p)), p) {
		t.Fatal("second connection does not see the write")
	}
}

// TestPipelinedLargeWrites keeps 16 large WRITEs in flight (each executed
// by the goroutine that read it, the reader's role moving on) over
// disjoint ranges, some with FUA, and checks that each lands whole with
// its own payload.
func TestPipelinedLargeWrites(t *testing.T) {
	const devSize = 48 << 20
	ex := newMemExports()
	dev := ex.add("disk", newMemDevice(devSize), false)
	_, addr := startServer(t, ex)
	forReplyModes(t, func(t *testing.T, structured bool) {
		c, _, _ := dialGo(t, addr, "disk", structured)
		model := make([]byte, devSize)
		sizes := []int{inlineWriteMax + 1, 64 << 10, 1 << 20, 3 << 20, 1<<20 + 512}
		inflight := map[uint64]bool{}
		for i, off := 0, 0; off < devSize || len(inflight) > 0; i++ {
			if n := min(sizes[i%len(sizes)], devSize-off); n > 0 && len(inflight) < maxInFlight {
				p := randomBytes(t, n)
				copy(model[off:], p)
				flags := uint16(0)
				if i%7 == 3 {
					flags = cmdFlagFUA
				}
				inflight[c.send(cmdWrite, flags, uint64(off), uint32(n), p)] = true
				off += n
				continue
			}
			cookie, errno, _ := c.recv(0, 0)
			if !inflight[cookie] || errno != 0 {
				t.Fatalf("reply cookie %d (in flight %v) errno %d", cookie, inflight[cookie], errno)
			}
			delete(inflight, cookie)
		}
		for off := 0; off < devSize; off += MaxPayload / 2 {
			if got := c.mustRead(uint64(off), MaxPayload/2); !bytes.Equal(got, model[off:off+MaxPayload/2]) {
				t.Fatalf("read back from %d differs", off)
			}
		}
		if !bytes.Equal(dev.snapshot(), model) {
			t.Fatal("device differs from the writes")
		}
	})
}
