package nbd

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
)

// statusDevice is a memDevice whose extents are given per block of
// blockLen bytes (a status byte: bit 0 hole, bit 1 zero). Extents reports
// one extent per block, unmerged, so that the server's merging shows.
type statusDevice struct {
	*memDevice
	blockLen int64
	status   []byte
	err      error
	calls    int
}

func newStatusDevice(blockLen int64, status ...byte) *statusDevice {
	return &statusDevice{memDevice: newMemDevice(int(blockLen) * len(status)), blockLen: blockLen, status: status}
}

func (d *statusDevice) Extents(off, length int64, fn func(n int64, hole, zero bool) bool) error {
	d.mu.Lock()
	d.calls++
	err := d.err
	d.mu.Unlock()
	if err != nil {
		return err
	}
	for length > 0 {
		b := off / d.blockLen
		n := min(length, (b+1)*d.blockLen-off)
		s := d.status[b]
		if !fn(n, s&stateHole != 0, s&stateZero != 0) {
			return nil
		}
		off, length = off+n, length-n
	}
	return nil
}

func (d *statusDevice) setErr(err error) {
	d.mu.Lock()
	d.err = err
	d.mu.Unlock()
}

// metaData is the data of a meta context option.
func metaData(name string, queries ...string) []byte {
	d := be.AppendUint32(nil, uint32(len(name)))
	d = append(d, name...)
	d = be.AppendUint32(d, uint32(len(queries)))
	for _, q := range queries {
		d = be.AppendUint32(d, uint32(len(q)))
		d = append(d, q...)
	}
	return d
}

type metaCtx struct {
	id   uint32
	name string
}

// metaOpt sends a meta context option and returns the contexts replied
// and the type of the final reply.
func (c *testClient) metaOpt(opt uint32, data []byte) ([]metaCtx, uint32) {
	c.t.Helper()
	c.sendOpt(opt, data)
	var ctxs []metaCtx
	for {
		o, typ, d := c.readOptReply()
		if o != opt {
			c.t.Fatalf("reply for option %d, want %d", o, opt)
		}
		if typ != repMetaCtx {
			return ctxs, typ
		}
		if len(d) < 4 {
			c.t.Fatalf("short NBD_REP_META_CONTEXT %x", d)
		}
		ctxs = append(ctxs, metaCtx{be.Uint32(d), string(d[4:])})
	}
}

// dialStatus connects with structured replies and base:allocation
// selected, and enters transmission on export name.
func dialStatus(t *testing.T, addr, name string) *testClient {
	t.Helper()
	c := dial(t, addr)
	c.negotiateStructured()
	c.mustSetMeta(name)
	if _, _, _, rep := c.infoGo(optGo, name); rep != repAck {
		t.Fatalf("GO %q: %#x", name, rep)
	}
	return c
}

// mustSetMeta selects base:allocation for export name.
func (c *testClient) mustSetMeta(name string) {
	c.t.Helper()
	ctxs, rep := c.metaOpt(optSetMetaContext, metaData(name, metaBaseAllocation))
	if rep != repAck || !slices.Equal(ctxs, []metaCtx{{metaBaseAllocID, metaBaseAllocation}}) {
		c.t.Fatalf("SET_META_CONTEXT %q: %v, reply %#x", name, ctxs, rep)
	}
}

type desc struct{ n, status uint32 }

// blockStatus sends a BLOCK_STATUS and reads its reply: the descriptors
// of a block status chunk, or the error of an error chunk or simple reply.
func (c *testClient) blockStatus(flags uint16, off uint64, length uint32) ([]desc, uint32) {
	c.t.Helper()
	cookie := c.send(cmdBlockStatus, flags, off, length, nil)
	var m [4]byte
	c.readFull(m[:])
	switch be.Uint32(m[:]) {
	case simpleMagic:
		var h [12]byte
		c.readFull(h[:])
		if be.Uint64(h[4:]) != cookie {
			c.t.Fatalf("cookie %d, want %d", be.Uint64(h[4:]), cookie)
		}
		if be.Uint32(h[0:]) == 0 {
			c.t.Fatal("BLOCK_STATUS answered by a simple reply without error")
		}
		return nil, be.Uint32(h[0:])
	case structureMagic:
	default:
		c.t.Fatalf("bad reply magic %x", m)
	}
	var h [16]byte
	c.readFull(h[:])
	flags, typ := be.Uint16(h[0:]), be.Uint16(h[2:])
	if be.Uint64(h[4:]) != cookie || flags != replyFlagDone {
		c.t.Fatalf("chunk cookie %d flags %#x, want %d, DONE", be.Uint64(h[4:]), flags, cookie)
	}
	payload := make([]byte, be.Uint32(h[12:]))
	c.readFull(payload)
	switch typ {
	case replyTypeError:
		return nil, be.Uint32(payload)
	case replyTypeBlockStatus:
	default:
		c.t.Fatalf("chunk type %d", typ)
	}
	if len(payload) < 12 || (len(payload)-4)%8 != 0 {
		c.t.Fatalf("block status payload of %d bytes", len(payload))
	}
	if id := be.Uint32(payload); id != metaBaseAllocID {
		c.t.Fatalf("context ID %d", id)
	}
	var ds []desc
	for p := payload[4:]; len(p) > 0; p = p[8:] {
		ds = append(ds, desc{be.Uint32(p), be.Uint32(p[4:])})
	}
	return ds, 0
}

func TestMetaContextNegotiation(t *testing.T) {
	ex := newMemExports()
	ex.add("disk", newMemDevice(testSize), false)
	ex.add("other", newMemDevice(testSize), false)
	_, addr := startServer(t, ex)
	listed := []metaCtx{{0, metaBaseAllocation}}
	selected := []metaCtx{{metaBaseAllocID, metaBaseAllocation}}

	tests := []struct {
		name       string
		structured bool
		opt        uint32
		data       []byte
		want       []metaCtx
		rep        uint32
	}{
		{"list all", false, optListMetaContext, metaData("disk"), listed, repAck},
		{"list all structured", true, optListMetaContext, metaData("disk"), listed, repAck},
		{"list base:", true, optListMetaContext, metaData("disk", "base:"), listed, repAck},
		{"list base:allocation", true, optListMetaContext, metaData("disk", "base:allocation"), listed, repAck},
		{"list twice", true, optListMetaContext, metaData("disk", "base:allocation", "base:"), listed, repAck},
		{"list unknown", true, optListMetaContext, metaData("disk", "base:nope", "qemu:dirty-bitmap:a", "x-y:"), nil, repAck},
		{"list unknown export", true, optListMetaContext, metaData("nope"), nil, repErrUnknown},
		{"set", true, optSetMetaContext, metaData("disk", "base:allocation"), selected, repAck},
		{"set twice", true, optSetMetaContext, metaData("disk", "x-a:b", "base:allocation", "base:allocation"), selected, repAck},
		{"set base: selects nothing", true, optSetMetaContext, metaData("disk", "base:"), nil, repAck},
		{"set nothing", true, optSetMetaContext, metaData("disk"), nil, repAck},
		{"set unstructured", false, optSetMetaContext, metaData("disk", "base:allocation"), nil, repErrInvalid},
		{"set unknown export", true, optSetMetaContext, metaData("nope", "base:allocation"), nil, repErrUnknown},
		{"no data", true, optSetMetaContext, nil, nil, repErrInvalid},
		{"name too long", true, optListMetaContext, []byte{0, 0, 0, 9, 'd', 0, 0, 0, 0}, nil, repErrInvalid},
		{"no count", true, optListMetaContext, metaData("disk")[:8], nil, repErrInvalid},
		{"count too high", true, optSetMetaContext, append(metaData("disk")[:8:8], 0, 0, 0, 4), nil, repErrInvalid},
		{"query too long", true, optSetMetaContext, metaData("disk", "base:allocation")[:21], nil, repErrInvalid},
		{"trailing data", true, optSetMetaContext, append(metaData("disk", "base:allocation"), 0), nil, repErrInvalid},
		{"query without namespace", true, optListMetaContext, metaData("disk", "allocation"), nil, repErrInvalid},
		{"query with empty namespace", true, optSetMetaContext, metaData("disk", ":allocation"), nil, repErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, addr)
			if tt.structured {
				c.negotiateStructured()
			}
			got, rep := c.metaOpt(tt.opt, tt.data)
			if rep != tt.rep || !slices.Equal(got, tt.want) {
				t.Fatalf("contexts %v reply %#x, want %v %#x", got, rep, tt.want, tt.rep)
			}
			// The connection goes on.
			if _, _, _, rep := c.infoGo(optGo, "disk"); rep != repAck {
				t.Fatalf("GO: %#x", rep)
			}
			c.mustRead(0, 4096)
		})
	}
}

// TestMetaContextBinding: BLOCK_STATUS works only when the last
// SET_META_CONTEXT selected base:allocation for the export entered.
func TestMetaContextBinding(t *testing.T) {
	ex := newMemExports()
	ex.add("disk", newMemDevice(testSize), false)
	ex.add("other", newMemDevice(testSize), false)
	_, addr := startServer(t, ex)
	structured := func(t *testing.T) *testClient {
		c := dial(t, addr)
		c.negotiateStructured()
		return c
	}
	enter := func(t *testing.T, c *testClient, name string, exportName bool) {
		if exportName {
			c.sendOpt(optExportName, []byte(name))
			var b [10]byte
			c.readFull(b[:])
			return
		}
		if _, _, _, rep := c.infoGo(optGo, name); rep != repAck {
			t.Fatalf("GO: %#x", rep)
		}
	}
	tests := []struct {
		name  string
		setup func(c *testClient)
		enter string
		ok    bool
	}{
		{"selected", func(c *testClient) { c.mustSetMeta("disk") }, "disk", true},
		{"other export", func(c *testClient) { c.mustSetMeta("other") }, "disk", false},
		{"reselected", func(c *testClient) { c.mustSetMeta("other"); c.mustSetMeta("disk") }, "disk", true},
		{"cleared", func(c *testClient) { c.mustSetMeta("disk"); c.metaOpt(optSetMetaContext, metaData("disk")) }, "disk", false},
		{"cleared by a failed set", func(c *testClient) {
			c.mustSetMeta("disk")
			c.metaOpt(optSetMetaContext, metaData("disk", "nonamespace"))
		}, "disk", false},
		{"listed only", func(c *testClient) { c.metaOpt(optListMetaContext, metaData("disk")) }, "disk", false},
		{"none", func(c *testClient) {}, "disk", false},
	}
	for _, tt := range tests {
		for _, exportName := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/export_name=%v", tt.name, exportName), func(t *testing.T) {
				c := structured(t)
				tt.setup(c)
				enter(t, c, tt.enter, exportName)
				ds, errno := c.blockStatus(0, 0, 4096)
				switch {
				case tt.ok && (errno != 0 || !slices.Equal(ds, []desc{{4096, 0}})):
					t.Fatalf("descriptors %v errno %d, want one of 4096 bytes", ds, errno)
				case !tt.ok && errno != errInval:
					t.Fatalf("descriptors %v errno %d, want EINVAL", ds, errno)
				}
				c.mustRead(0, 4096)
			})
		}
	}
}

func TestBlockStatus(t *testing.T) {
	const bl = 4096
	// data, data, hole+zero x2, zero, hole, data, hole+zero
	dev := newStatusDevice(bl, 0, 0, 3, 3, 2, 1, 0, 3)
	_, addr := startServer(t, statusExports{newMemExports(), map[string]Device{"disk": dev, "plain": newMemDevice(3 * bl)}})
	size := uint64(8 * bl)

	c := dialStatus(t, addr, "disk")
	tests := []struct {
		name   string
		flags  uint16
		off    uint64
		length uint32
		want   []desc
		errno  uint32
	}{
		{"all", 0, 0, uint32(size), []desc{{2 * bl, 0}, {2 * bl, 3}, {bl, 2}, {bl, 1}, {bl, 0}, {bl, 3}}, 0},
		{"unaligned", 0, 100, 3 * bl, []desc{{2*bl - 100, 0}, {bl + 100, 3}}, 0},
		{"one byte", 0, size - 1, 1, []desc{{1, 3}}, 0},
		{"FUA accepted", cmdFlagFUA, bl, bl, []desc{{bl, 0}}, 0},
		{"REQ_ONE", cmdFlagReqOne, 0, uint32(size), []desc{{2 * bl, 0}}, 0},
		{"REQ_ONE clipped", cmdFlagReqOne, 2*bl + 1, 100, []desc{{100, 3}}, 0},
		{"REQ_ONE mid-extent", cmdFlagReqOne | cmdFlagFUA, bl, 2 * bl, []desc{{bl, 0}}, 0},
		{"length 0", 0, 0, 0, nil, errInval},
		{"past end", 0, size, 1, nil, errInval},
		{"across end", 0, size - bl, bl + 1, nil, errInval},
		{"offset overflow", 0, math.MaxUint64, 2, nil, errInval},
		{"bad flag NO_HOLE", cmdFlagNoHole, 0, bl, nil, errInval},
		{"bad flag DF", 1 << 2, 0, bl, nil, errInval},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds, errno := c.blockStatus(tt.flags, tt.off, tt.length)
			if errno != tt.errno || !slices.Equal(ds, tt.want) {
				t.Fatalf("descriptors %v errno %d, want %v errno %d", ds, errno, tt.want, tt.errno)
			}
			c.mustRead(0, 4096) // still in sync
		})
	}
	t.Run("device error", func(t *testing.T) {
		dev.setErr(errors.New("boom"))
		defer dev.setErr(nil)
		if _, errno := c.blockStatus(0, 0, bl); errno != errIO {
			t.Fatalf("errno %d, want EIO", errno)
		}
		c.mustRead(0, 4096)
	})
	t.Run("no Extenter", func(t *testing.T) {
		c := dialStatus(t, addr, "plain")
		for _, flags := range []uint16{0, cmdFlagReqOne} {
			if ds, errno := c.blockStatus(flags, 1, 2*bl); errno != 0 || !slices.Equal(ds, []desc{{2 * bl, 0}}) {
				t.Fatalf("flags %#x: descriptors %v errno %d", flags, ds, errno)
			}
		}
	})
	t.Run("pipelined", func(t *testing.T) {
		for i := range 50 {
			c.send(cmdBlockStatus, 0, uint64(i%8)*bl, bl, nil)
			c.send(cmdRead, 0, 0, 512, nil)
		}
		for range 100 {
			// Reads are structured too: any chunk type is fine here.
			var h [20]byte
			c.readFull(h[:])
			if be.Uint32(h[:]) != structureMagic || be.Uint16(h[4:]) != replyFlagDone {
				t.Fatalf("reply header %x", h)
			}
			c.readFull(make([]byte, be.Uint32(h[16:])))
		}
	})
}

// TestBlockStatusManyExtents: a reply holds at most maxStatusExtents
// descriptors and describes less than asked rather than more.
func TestBlockStatusManyExtents(t *testing.T) {
	const bl = 512
	status := make([]byte, 3*maxStatusExtents)
	for i := range status {
		status[i] = byte(i%2) * 3
	}
	dev := newStatusDevice(bl, status...)
	_, addr := startServer(t, statusExports{newMemExports(), map[string]Device{"disk": dev}})
	c := dialStatus(t, addr, "disk")
	ds, errno := c.blockStatus(0, 0, uint32(len(status)*bl))
	if errno != 0 || len(ds) != maxStatusExtents {
		t.Fatalf("errno %d, %d descriptors, want %d", errno, len(ds), maxStatusExtents)
	}
	for i, d := range ds {
		if d != (desc{bl, uint32(i%2) * 3}) {
			t.Fatalf("descriptor %d: %v", i, d)
		}
	}
}

// statusExports serves the devices of devs by name, the others from
// memExports.
type statusExports struct {
	*memExports
	devs map[string]Device
}

func (e statusExports) Open(ctx context.Context, name string) (Device, bool, func(), error) {
	if d, ok := e.devs[name]; ok {
		return d, false, func() {}, nil
	}
	return e.memExports.Open(ctx, name)
}
