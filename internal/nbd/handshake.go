package nbd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// conn is one client connection.
type conn struct {
	s      *Server
	nc     net.Conn
	r      *bufio.Reader
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // closed when serve returns

	noZeroes   bool   // client set NBD_FLAG_C_NO_ZEROES
	structured bool   // NBD_OPT_STRUCTURED_REPLY negotiated
	metaSet    bool   // base:allocation selected by NBD_OPT_SET_META_CONTEXT
	metaExport string // for this export

	// Guarded by s.mu.
	attached bool   // in transmission
	export   string // export name once attached
	opening  string // export being opened during the handshake
	// closing is set (under s.mu) by shutdown.
	closing atomic.Bool
	// blockedSince is when the reply write under way that may wait for
	// the socket started or last made progress (Server.sinceStart + 1),
	// 0 if none; stalled is set when the server's watchdog closed the
	// connection for it (see Server.watch).
	blockedSince atomic.Int64
	stalled      atomic.Bool

	// Transmission (see transmit).
	slots      chan struct{} // a token per request in flight (reply not sent)
	bud        budget        // READ/WRITE buffer bytes held
	slowReads  atomic.Int32  // slow score of recent device reads (see noteIO)
	slowWrites atomic.Int32  // slow score of recent device writes
	deferred   bool          // the reader queued replies without a writer

	wmu     sync.Mutex // guards replies, spare and writing
	replies []reply    // queued, not yet being written
	spare   []reply    // the previous batch's array, reused
	writing bool       // some goroutine is the writer
	// Used by the writer only (the hand-off through wake orders them).
	rc          syscall.RawConn // nc's, for writes that must not block; nil if none
	iov         [][]byte
	iovecs      []syscall.Iovec
	wfailed     bool          // a write failed: the connection is closed
	wake        chan struct{} // hands the writer's role to the writer goroutine
	handoff     []reply       // with the batch being written
	handoffSent int           // and its bytes already sent
}

// export is an opened export.
type export struct {
	name     string
	dev      Device
	readOnly bool
	release  func()
	size     uint64
	flags    uint16
	meta     bool // base:allocation selected for this export
}

// errAbort ends a handshake the client aborted.
var errAbort = errors.New("nbd: client aborted the handshake")

func newConn(s *Server, nc net.Conn) *conn {
	ctx, cancel := context.WithCancel(s.ctx)
	return &conn{
		s:      s,
		nc:     nc,
		r:      bufio.NewReaderSize(nc, 64<<10),
		log:    s.log.With("remote", nc.RemoteAddr().String()),
		ctx:    ctx,
		cancel: cancel,
		done:   make(chan struct{}),
		bud:    budget{mem: s.mem},
	}
}

// shutdown asks c to stop reading, finish its in-flight requests and close.
// The caller holds s.mu.
func (c *conn) shutdown() {
	c.closing.Store(true)
	c.nc.SetReadDeadline(time.Now())
	c.nc.SetWriteDeadline(time.Now().Add(drainTimeout))
}

func (c *conn) serve() {
	defer func() {
		// Before done: once Disconnect returns, c no longer counts
		// toward MaxConns.
		c.s.mu.Lock()
		delete(c.s.conns, c)
		c.s.mu.Unlock()
		close(c.done)
	}()
	defer c.cancel()
	ex, err := c.handshake()
	if err != nil {
		c.nc.Close()
		if errors.Is(err, errAbort) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || c.closing.Load() {
			c.log.Debug("nbd: handshake ended", "err", err)
		} else {
			c.log.Info("nbd: handshake failed", "err", err)
		}
		return
	}
	if ex.release != nil {
		defer ex.release()
	}
	defer c.nc.Close()
	if !c.s.attach(c, ex.name) {
		return
	}
	c.log.Debug("nbd: transmission", "export", ex.name, "size", ex.size, "read_only", ex.readOnly)
	c.transmit(ex)
}

// handshake runs the fixed newstyle negotiation until transmission starts.
func (c *conn) handshake() (*export, error) {
	var b [18]byte
	be.PutUint64(b[0:8], nbdMagic)
	be.PutUint64(b[8:16], optMagic)
	be.PutUint16(b[16:18], flagFixedNewstyle|flagNoZeroes)
	if _, err := c.nc.Write(b[:]); err != nil {
		return nil, err
	}
	if _, err := io.ReadFull(c.r, b[:4]); err != nil {
		return nil, err
	}
	cflags := be.Uint32(b[:4])
	if cflags&^(flagCFixedNewstyle|flagCNoZeroes) != 0 {
		return nil, fmt.Errorf("nbd: unknown client flags %#x", cflags)
	}
	c.noZeroes = cflags&flagCNoZeroes != 0
	for {
		var h [optionHdrLen]byte
		if _, err := io.ReadFull(c.r, h[:]); err != nil {
			return nil, err
		}
		if be.Uint64(h[0:8]) != optMagic {
			return nil, errors.New("nbd: bad option magic")
		}
		opt, n := be.Uint32(h[8:12]), be.Uint32(h[12:16])
		if n > maxOptionLen {
			if opt == optExportName {
				return nil, fmt.Errorf("nbd: export name of %d bytes", n)
			}
			if err := discard(c.r, int64(n)); err != nil {
				return nil, err
			}
			if err := c.optReply(opt, repErrTooBig, []byte("option data too long")); err != nil {
				return nil, err
			}
			continue
		}
		data := make([]byte, n)
		if _, err := io.ReadFull(c.r, data); err != nil {
			return nil, err
		}
		ex, err := c.option(opt, data)
		if ex != nil {
			ex.meta = c.metaSet && c.metaExport == ex.name
		}
		if ex != nil || err != nil {
			return ex, err
		}
	}
}

// option handles one option. It returns an export to enter transmission.
func (c *conn) option(opt uint32, data []byte) (*export, error) {
	switch opt {
	case optExportName:
		if len(data) > maxNameLen {
			return nil, fmt.Errorf("nbd: export name of %d bytes", len(data))
		}
		ex, rep := c.open(string(data))
		if rep != 0 {
			return nil, fmt.Errorf("nbd: NBD_OPT_EXPORT_NAME %q refused", data)
		}
		b := make([]byte, 10, 134)
		be.PutUint64(b[0:8], ex.size)
		be.PutUint16(b[8:10], ex.flags)
		if !c.noZeroes {
			b = b[:134]
		}
		if _, err := c.nc.Write(b); err != nil {
			ex.release()
			return nil, err
		}
		return ex, nil
	case optAbort:
		c.optReply(opt, repAck, nil) // the client may not wait for it
		return nil, errAbort
	case optList:
		if len(data) != 0 {
			return nil, c.optReply(opt, repErrInvalid, []byte("NBD_OPT_LIST takes no data"))
		}
		for _, name := range c.s.exports.List(c.ctx) {
			if len(name) > maxNameLen {
				continue
			}
			d := make([]byte, 4+len(name))
			be.PutUint32(d, uint32(len(name)))
			copy(d[4:], name)
			if err := c.optReply(opt, repServer, d); err != nil {
				return nil, err
			}
		}
		return nil, c.optReply(opt, repAck, nil)
	case optInfo, optGo:
		return c.infoGo(opt, data)
	case optStructuredReply:
		if len(data) != 0 {
			return nil, c.optReply(opt, repErrInvalid, []byte("NBD_OPT_STRUCTURED_REPLY takes no data"))
		}
		c.structured = true
		return nil, c.optReply(opt, repAck, nil)
	case optListMetaContext, optSetMetaContext:
		return nil, c.metaOption(opt, data)
	}
	return nil, c.optReply(opt, repErrUnsup, []byte("option not supported"))
}

// infoGo handles NBD_OPT_INFO and NBD_OPT_GO.
func (c *conn) infoGo(opt uint32, data []byte) (*export, error) {
	if len(data) < 6 {
		return nil, c.optReply(opt, repErrInvalid, []byte("option data too short"))
	}
	nameLen := uint64(be.Uint32(data[0:4]))
	if nameLen > uint64(len(data)-6) {
		return nil, c.optReply(opt, repErrInvalid, []byte("bad name length"))
	}
	name, rest := data[4:4+nameLen], data[4+nameLen:]
	if nreq := int(be.Uint16(rest[0:2])); len(rest) != 2+2*nreq {
		return nil, c.optReply(opt, repErrInvalid, []byte("bad information request count"))
	}
	if len(name) > maxNameLen {
		return nil, c.optReply(opt, repErrInvalid, []byte("export name too long"))
	}
	ex, rep := c.open(string(name))
	if rep != 0 {
		return nil, c.optReply(opt, rep, []byte("export not available"))
	}
	d := make([]byte, 14)
	be.PutUint16(d[0:2], infoExport)
	be.PutUint64(d[2:10], ex.size)
	be.PutUint16(d[10:12], ex.flags)
	err := c.optReply(opt, repInfo, d[:12])
	if err == nil {
		be.PutUint16(d[0:2], infoBlockSize)
		be.PutUint32(d[2:6], MinBlockSize)
		be.PutUint32(d[6:10], PreferredBlockSize)
		be.PutUint32(d[10:14], MaxPayload)
		err = c.optReply(opt, repInfo, d)
	}
	if err == nil {
		err = c.optReply(opt, repAck, nil)
	}
	if err != nil || opt == optInfo {
		ex.release()
		return nil, err
	}
	return ex, nil
}

// open opens export name; on failure it returns the option error to send.
func (c *conn) open(name string) (*export, uint32) {
	// Recorded before Exports.Open, so that a Disconnect of the export
	// from now on also ends this connection (attach then refuses it).
	c.s.mu.Lock()
	c.opening = name
	draining := c.s.draining[name] > 0
	c.s.mu.Unlock()
	if draining {
		// Its previous connections are still finishing (Disconnect).
		return nil, repErrShutdwn
	}
	dev, ro, release, err := c.s.exports.Open(c.ctx, name)
	if err == nil && (dev == nil || dev.Size() < 0) {
		if release != nil {
			release()
		}
		err = errors.New("nbd: Exports.Open returned no usable device")
	}
	if err != nil {
		switch {
		case errors.Is(err, ErrUnknownExport):
			c.log.Debug("nbd: unknown export", "export", name)
		case c.ctx.Err() != nil:
			return nil, repErrShutdwn
		default:
			c.log.Warn("nbd: open export", "export", name, "err", err)
		}
		return nil, repErrUnknown
	}
	if release == nil {
		release = func() {}
	}
	flags := uint16(flagHasFlags | flagSendFlush | flagSendFUA | flagSendTrim | flagSendWriteZeroes | flagCanMultiConn)
	if ro {
		flags |= flagReadOnly
	}
	return &export{name: name, dev: dev, readOnly: ro, release: release, size: uint64(dev.Size()), flags: flags}, 0
}

// optReply sends one option reply.
func (c *conn) optReply(opt, typ uint32, data []byte) error {
	b := make([]byte, optReplyHdrLen+len(data))
	putOptReply(b, opt, typ, len(data))
	copy(b[optReplyHdrLen:], data)
	_, err := c.nc.Write(b)
	return err
}
