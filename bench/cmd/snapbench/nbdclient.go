package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"
)

// nbdClient is a minimal NBD client (fixed newstyle, NBD_OPT_GO, simple
// replies, one request at a time): enough to write the changed extents of
// a "day of changes" into a disk and to read a few bytes back.
type nbdClient struct {
	nc     net.Conn
	r      *bufio.Reader
	w      *bufio.Writer
	size   int64
	cookie uint64
}

const (
	nbdMagic      = 0x4e42444d41474943
	nbdOptMagic   = 0x49484156454f5054
	nbdRepMagic   = 0x0003e889045565a9
	nbdReqMagic   = 0x25609513
	nbdSimpleRep  = 0x67446698
	nbdOptGo      = 7
	nbdRepAck     = 1
	nbdRepInfo    = 3
	nbdCmdRead    = 0
	nbdCmdWrite   = 1
	nbdCmdDisc    = 2
	nbdCmdFlush   = 3
	nbdMaxRequest = 1 << 20
)

var be = binary.BigEndian

// dialNBD connects to addr (host:port) and opens export name.
func dialNBD(addr, name string) (*nbdClient, error) {
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	c := &nbdClient{nc: nc, r: bufio.NewReaderSize(nc, 1<<16), w: bufio.NewWriterSize(nc, 1<<16)}
	if err := c.handshake(name); err != nil {
		nc.Close()
		return nil, fmt.Errorf("nbd %s/%s: %w", addr, name, err)
	}
	return c, nil
}

func (c *nbdClient) handshake(name string) error {
	var g [18]byte
	if _, err := io.ReadFull(c.r, g[:]); err != nil {
		return err
	}
	if be.Uint64(g[0:]) != nbdMagic || be.Uint64(g[8:]) != nbdOptMagic {
		return errors.New("not a newstyle NBD server")
	}
	c.w.Write(be.AppendUint32(nil, 1|2)) // FIXED_NEWSTYLE | NO_ZEROES
	data := be.AppendUint32(nil, uint32(len(name)))
	data = append(data, name...)
	data = be.AppendUint16(data, 0) // no info requests: NBD_INFO_EXPORT comes anyway
	opt := be.AppendUint64(nil, nbdOptMagic)
	opt = be.AppendUint32(opt, nbdOptGo)
	opt = be.AppendUint32(opt, uint32(len(data)))
	c.w.Write(append(opt, data...))
	if err := c.w.Flush(); err != nil {
		return err
	}
	for {
		var h [20]byte
		if _, err := io.ReadFull(c.r, h[:]); err != nil {
			return err
		}
		if be.Uint64(h[0:]) != nbdRepMagic {
			return errors.New("bad option reply magic")
		}
		typ, n := be.Uint32(h[12:]), be.Uint32(h[16:])
		body := make([]byte, n)
		if _, err := io.ReadFull(c.r, body); err != nil {
			return err
		}
		switch {
		case typ == nbdRepAck:
			if c.size == 0 {
				return errors.New("no export size in the reply")
			}
			return nil
		case typ == nbdRepInfo && len(body) >= 12 && be.Uint16(body) == 0:
			c.size = int64(be.Uint64(body[2:]))
		case typ&(1<<31) != 0:
			return fmt.Errorf("option GO refused (%#x): %s", typ, body)
		}
	}
}

// request sends one command and waits for its simple reply; data is the
// payload of a write, or the buffer a read fills.
func (c *nbdClient) request(cmd uint16, off int64, data []byte) error {
	c.cookie++
	h := be.AppendUint32(make([]byte, 0, 28), nbdReqMagic)
	h = be.AppendUint16(h, 0)
	h = be.AppendUint16(h, cmd)
	h = be.AppendUint64(h, c.cookie)
	h = be.AppendUint64(h, uint64(off))
	h = be.AppendUint32(h, uint32(len(data)))
	c.w.Write(h)
	if cmd == nbdCmdWrite {
		c.w.Write(data)
	}
	if err := c.w.Flush(); err != nil {
		return err
	}
	if cmd == nbdCmdDisc {
		return nil
	}
	var r [16]byte
	if _, err := io.ReadFull(c.r, r[:]); err != nil {
		return err
	}
	if be.Uint32(r[0:]) != nbdSimpleRep || be.Uint64(r[8:]) != c.cookie {
		return errors.New("bad reply")
	}
	if e := be.Uint32(r[4:]); e != 0 {
		return fmt.Errorf("nbd command %d at %d: error %d", cmd, off, e)
	}
	if cmd == nbdCmdRead {
		_, err := io.ReadFull(c.r, data)
		return err
	}
	return nil
}

// WriteAt writes p at off in requests of at most 1 MiB.
func (c *nbdClient) WriteAt(p []byte, off int64) error {
	for len(p) > 0 {
		n := min(len(p), nbdMaxRequest)
		if err := c.request(nbdCmdWrite, off, p[:n]); err != nil {
			return err
		}
		p, off = p[n:], off+int64(n)
	}
	return nil
}

// ReadAt fills p from off.
func (c *nbdClient) ReadAt(p []byte, off int64) error { return c.request(nbdCmdRead, off, p) }

// Flush makes the writes so far durable.
func (c *nbdClient) Flush() error { return c.request(nbdCmdFlush, 0, nil) }

// Close disconnects.
func (c *nbdClient) Close() error {
	c.request(nbdCmdDisc, 0, nil)
	return c.nc.Close()
}

// extent is one write of a "day of changes".
type extent struct{ off, n int64 }

// readDayLog parses a diskgen day log ("offset length content" per line).
func readDayLog(path string) ([]extent, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []extent
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var e extent
		if _, err := fmt.Sscan(line, &e.off, &e.n); err != nil {
			return nil, fmt.Errorf("%s: %q: %v", path, line, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// writeExtents copies the extents of image into the export, then flushes:
// what the guest wrote during the day, and nothing else.
func writeExtents(addr, export, image string, exts []extent) error {
	f, err := os.Open(image)
	if err != nil {
		return err
	}
	defer f.Close()
	c, err := dialNBD(addr, export)
	if err != nil {
		return err
	}
	defer c.Close()
	buf := make([]byte, 4<<20)
	for _, e := range exts {
		for done := int64(0); done < e.n; {
			p := buf[:min(int64(len(buf)), e.n-done)]
			if _, err := f.ReadAt(p, e.off+done); err != nil {
				return err
			}
			if err := c.WriteAt(p, e.off+done); err != nil {
				return err
			}
			done += int64(len(p))
		}
	}
	return c.Flush()
}
