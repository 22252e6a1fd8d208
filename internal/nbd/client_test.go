package nbd

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"testing"
	"time"
)

// testClient is a minimal NBD client for the tests.
type testClient struct {
	t          testing.TB
	nc         net.Conn
	r          *bufio.Reader
	structured bool
	cookie     uint64
}

// dialRaw connects and reads the server greeting, without sending flags.
func dialRaw(t testing.TB, addr string) *testClient {
	t.Helper()
	return dialRawVia(t, addr, &net.Dialer{})
}

// dialRawVia is dialRaw with a dialer of the test's (socket options).
func dialRawVia(t testing.TB, addr string, d *net.Dialer) *testClient {
	t.Helper()
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	c := &testClient{t: t, nc: nc, r: bufio.NewReader(nc)}
	var b [18]byte
	c.readFull(b[:])
	if be.Uint64(b[0:]) != nbdMagic || be.Uint64(b[8:]) != optMagic {
		t.Fatalf("bad greeting %x", b)
	}
	if f := be.Uint16(b[16:]); f != flagFixedNewstyle|flagNoZeroes {
		t.Fatalf("handshake flags %#x", f)
	}
	return c
}

// dial connects and sends the client flags FIXED_NEWSTYLE|NO_ZEROES.
func dial(t testing.TB, addr string) *testClient {
	c := dialRaw(t, addr)
	c.write(be.AppendUint32(nil, flagCFixedNewstyle|flagCNoZeroes))
	return c
}

// dialGo connects and enters transmission on export name.
func dialGo(t testing.TB, addr, name string, structured bool) (*testClient, uint64, uint16) {
	t.Helper()
	c := dial(t, addr)
	if structured {
		c.negotiateStructured()
	}
	size, flags, _, rep := c.infoGo(optGo, name, infoBlockSize)
	if rep != repAck {
		t.Fatalf("GO %q: reply %#x", name, rep)
	}
	return c, size, flags
}

// negotiateStructured asks for structured replies, which the server must
// grant.
func (c *testClient) negotiateStructured() {
	c.t.Helper()
	c.sendOpt(optStructuredReply, nil)
	if _, typ, _ := c.readOptReply(); typ != repAck {
		c.t.Fatalf("STRUCTURED_REPLY: reply %#x", typ)
	}
	c.structured = true
}

func (c *testClient) readFull(b []byte) {
	c.t.Helper()
	if _, err := io.ReadFull(c.r, b); err != nil {
		c.t.Fatalf("read: %v", err)
	}
}

func (c *testClient) write(b []byte) {
	c.t.Helper()
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *testClient) sendOpt(opt uint32, data []byte) {
	c.t.Helper()
	b := be.AppendUint64(nil, optMagic)
	b = be.AppendUint32(b, opt)
	b = be.AppendUint32(b, uint32(len(data)))
	c.write(append(b, data...))
}

func (c *testClient) readOptReply() (opt, typ uint32, data []byte) {
	c.t.Helper()
	var h [optReplyHdrLen]byte
	c.readFull(h[:])
	if be.Uint64(h[0:]) != optReplyMagic {
		c.t.Fatalf("bad option reply magic %x", h)
	}
	data = make([]byte, be.Uint32(h[16:]))
	c.readFull(data)
	return be.Uint32(h[8:]), be.Uint32(h[12:]), data
}

// infoGo sends NBD_OPT_INFO or NBD_OPT_GO and reads the replies up to the
// final one, whose type it returns.
func (c *testClient) infoGo(opt uint32, name string, infos ...uint16) (size uint64, flags uint16, bs [3]uint32, rep uint32) {
	c.t.Helper()
	d := be.AppendUint32(nil, uint32(len(name)))
	d = append(d, name...)
	d = be.AppendUint16(d, uint16(len(infos)))
	for _, i := range infos {
		d = be.AppendUint16(d, i)
	}
	c.sendOpt(opt, d)
	for {
		o, typ, data := c.readOptReply()
		if o != opt {
			c.t.Fatalf("reply for option %d, want %d", o, opt)
		}
		if typ != repInfo {
			return size, flags, bs, typ
		}
		switch be.Uint16(data) {
		case infoExport:
			size, flags = be.Uint64(data[2:]), be.Uint16(data[10:])
		case infoBlockSize:
			bs = [3]uint32{be.Uint32(data[2:]), be.Uint32(data[6:]), be.Uint32(data[10:])}
		}
	}
}

// send sends one request and returns its cookie.
func (c *testClient) send(typ, flags uint16, off uint64, length uint32, payload []byte) uint64 {
	c.t.Helper()
	c.cookie++
	c.write(appendRequest(make([]byte, 0, requestLen+len(payload)), typ, flags, c.cookie, off, length, payload))
	return c.cookie
}

// appendRequest appends a request and its payload to b.
func appendRequest(b []byte, typ, flags uint16, cookie, off uint64, length uint32, payload []byte) []byte {
	b = be.AppendUint32(b, requestMagic)
	b = be.AppendUint16(b, flags)
	b = be.AppendUint16(b, typ)
	b = be.AppendUint64(b, cookie)
	b = be.AppendUint64(b, off)
	b = be.AppendUint32(b, length)
	return append(b, payload...)
}

// recv reads one reply; readLen is the length of a READ for a simple reply
// (the client must know it), ignored otherwise. For structured replies it
// reads chunks up to the one flagged done and returns the data of the
// OFFSET_DATA chunks, which must cover the request from base.
func (c *testClient) recv(readLen int, base uint64) (cookie uint64, errno uint32, data []byte) {
	c.t.Helper()
	var m [4]byte
	c.readFull(m[:])
	switch be.Uint32(m[:]) {
	case simpleMagic:
		var h [12]byte
		c.readFull(h[:])
		errno, cookie = be.Uint32(h[0:]), be.Uint64(h[4:])
		if errno == 0 && readLen > 0 {
			data = make([]byte, readLen)
			c.readFull(data)
		}
		return cookie, errno, data
	case structureMagic:
		if !c.structured {
			c.t.Fatal("structured reply not negotiated")
		}
	default:
		c.t.Fatalf("bad reply magic %x", m)
	}
	for {
		var h [16]byte
		c.readFull(h[:])
		flags, typ := be.Uint16(h[0:]), be.Uint16(h[2:])
		cookie = be.Uint64(h[4:])
		payload := make([]byte, be.Uint32(h[12:]))
		c.readFull(payload)
		switch typ {
		case replyTypeNone:
		case replyTypeOffsetData:
			off := be.Uint64(payload) - base
			data = append(data[:min(int(off), len(data))], payload[8:]...)
		case replyTypeError:
			errno = be.Uint32(payload)
			if n := int(be.Uint16(payload[4:])); n > len(payload)-6 {
				c.t.Fatalf("error chunk message length %d of %d", n, len(payload))
			}
		default:
			c.t.Fatalf("unexpected chunk type %d", typ)
		}
		if flags&replyFlagDone != 0 {
			return cookie, errno, data
		}
		var m2 [4]byte
		c.readFull(m2[:])
		if be.Uint32(m2[:]) != structureMagic {
			c.t.Fatalf("bad chunk magic %x", m2)
		}
	}
}

// do sends a request and waits for its reply.
func (c *testClient) do(typ, flags uint16, off uint64, length uint32, payload []byte) (uint32, []byte) {
	c.t.Helper()
	cookie := c.send(typ, flags, off, length, payload)
	readLen := 0
	if typ == cmdRead {
		readLen = int(length)
	}
	got, errno, data := c.recv(readLen, off)
	if got != cookie {
		c.t.Fatalf("reply cookie %d, want %d", got, cookie)
	}
	return errno, data
}

// mustRead reads [off, off+n) and fails the test on error.
func (c *testClient) mustRead(off uint64, n int) []byte {
	c.t.Helper()
	errno, data := c.do(cmdRead, 0, off, uint32(n), nil)
	if errno != 0 || len(data) != n {
		c.t.Fatalf("read %d@%d: errno %d, %d bytes", n, off, errno, len(data))
	}
	return data
}

func (c *testClient) mustDo(typ, flags uint16, off uint64, length uint32, payload []byte) {
	c.t.Helper()
	if errno, _ := c.do(typ, flags, off, length, payload); errno != 0 {
		c.t.Fatalf("%s: errno %d", cmdName(typ), errno)
	}
}

func cmdName(typ uint16) string {
	switch typ {
	case cmdRead:
		return "READ"
	case cmdWrite:
		return "WRITE"
	case cmdFlush:
		return "FLUSH"
	case cmdTrim:
		return "TRIM"
	case cmdWriteZeroes:
		return "WRITE_ZEROES"
	}
	return fmt.Sprintf("cmd%d", typ)
}
