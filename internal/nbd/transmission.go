package nbd

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
)

const (
	// maxInFlight bounds the concurrent requests of one connection.
	maxInFlight = 16
	// maxBufferBytes bounds the READ/WRITE buffers of one connection.
	maxBufferBytes = 2 * MaxPayload
)

// budget is a counting semaphore of buffer bytes.
type budget struct {
	mu   sync.Mutex
	cond sync.Cond
	used int64
}

func (b *budget) acquire(n int64) {
	b.mu.Lock()
	for b.used+n > maxBufferBytes {
		b.cond.Wait()
	}
	b.used += n
	b.mu.Unlock()
}

func (b *budget) release(n int64) {
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
	b.cond.Broadcast()
}

// transmit reads requests until DISC, a socket error or shutdown, then waits
// for the in-flight requests and flushes a writable device.
func (c *conn) transmit(ex *export) {
	var (
		wg    sync.WaitGroup
		slots = make(chan struct{}, maxInFlight)
		bud   budget
		hdr   [requestLen]byte
	)
	bud.cond.L = &bud.mu
	for {
		if _, err := io.ReadFull(c.r, hdr[:]); err != nil {
			c.readFailed(err)
			break
		}
		req, ok := parseRequest(hdr[:])
		if !ok {
			c.log.Warn("nbd: bad request magic; closing", "export", ex.name)
			break
		}
		if req.typ == cmdDisc {
			c.log.Debug("nbd: client disconnect", "export", ex.name)
			break
		}
		var cost int64
		if (req.typ == cmdRead || req.typ == cmdWrite) && req.length <= MaxPayload {
			cost = int64(req.length)
		}
		var payload []byte
		if req.typ == cmdWrite {
			if req.length > maxSanePayload {
				c.log.Warn("nbd: absurd write length; closing", "export", ex.name, "length", req.length)
				break
			}
			if req.length > MaxPayload {
				// Keep the stream in sync; the handler replies NBD_EINVAL.
				if err := discard(c.r, int64(req.length)); err != nil {
					c.readFailed(err)
					break
				}
			} else {
				bud.acquire(cost)
				payload = c.s.bufs.get(int(req.length))
				if _, err := io.ReadFull(c.r, payload); err != nil {
					c.s.bufs.put(payload)
					bud.release(cost)
					c.readFailed(err)
					break
				}
			}
		}
		if req.typ != cmdWrite {
			bud.acquire(cost)
		}
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.handle(ex, req, payload)
			if payload != nil {
				c.s.bufs.put(payload) // the device keeps no reference to it
			}
			bud.release(cost)
			<-slots
		}()
	}
	wg.Wait()
	if !ex.readOnly {
		if err := ex.dev.Flush(); err != nil {
			c.log.Warn("nbd: flush at disconnect", "export", ex.name, "err", err)
		}
	}
}

// readFailed logs why reading from the client stopped.
func (c *conn) readFailed(err error) {
	switch {
	case c.closing.Load():
		c.log.Debug("nbd: connection shut down")
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), errors.Is(err, io.ErrUnexpectedEOF):
		c.log.Debug("nbd: client went away", "err", err)
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.log.Info("nbd: read timeout", "err", err)
	default:
		c.log.Info("nbd: read failed", "err", err)
	}
}

// handle executes one request and sends its reply.
func (c *conn) handle(ex *export, req request, payload []byte) {
	switch req.typ {
	case cmdRead:
		c.read(ex, req)
		return
	case cmdBlockStatus:
		c.blockStatus(ex, req)
		return
	}
	var b [simpleHdrLen]byte
	putSimple(b[:], c.exec(ex, req, payload), req.cookie)
	c.send(b[:])
}

// inRange reports whether [off, off+length) lies within the export.
func (ex *export) inRange(req request) bool {
	return req.offset <= ex.size && uint64(req.length) <= ex.size-req.offset
}

// exec executes a request other than READ and returns its NBD error.
func (c *conn) exec(ex *export, req request, payload []byte) uint32 {
	off, n := int64(req.offset), int64(req.length)
	var err error
	switch req.typ {
	case cmdWrite:
		switch {
		case req.flags&^cmdFlagFUA != 0, req.length > MaxPayload:
			return errInval
		case ex.readOnly:
			return errPerm
		case !ex.inRange(req):
			return errNoSpc
		case n > 0:
			var w int
			w, err = ex.dev.WriteAt(payload, off)
			if err == nil && w < len(payload) {
				err = io.ErrShortWrite
			}
		}
	case cmdFlush:
		if req.flags&^cmdFlagFUA != 0 {
			return errInval
		}
		err = ex.dev.Flush()
	case cmdTrim:
		switch {
		case req.flags&^cmdFlagFUA != 0:
			return errInval
		case ex.readOnly:
			return errPerm
		case !ex.inRange(req):
			return errInval
		case n > 0:
			err = ex.dev.Trim(off, n)
		}
	case cmdWriteZeroes:
		switch {
		case req.flags&^(cmdFlagFUA|cmdFlagNoHole) != 0:
			return errInval
		case ex.readOnly:
			return errPerm
		case !ex.inRange(req):
			return errNoSpc
		case n > 0:
			err = ex.dev.WriteZeroes(off, n, req.flags&cmdFlagNoHole != 0)
		}
	default:
		return errInval
	}
	if err == nil && req.flags&cmdFlagFUA != 0 && req.typ != cmdFlush {
		err = ex.dev.Flush()
	}
	if err != nil {
		c.log.Warn("nbd: device error", "export", ex.name, "cmd", req.typ, "offset", off, "length", n, "err", err)
		return deviceErrno(err)
	}
	return 0
}

// read executes a READ and sends its reply: simple, or one structured chunk.
func (c *conn) read(ex *export, req request) {
	var errno uint32
	switch {
	case req.flags&^cmdFlagFUA != 0, req.length > MaxPayload, !ex.inRange(req):
		errno = errInval
	case req.length > 0:
		hl := simpleHdrLen
		if c.structured {
			hl = offsetDataLen
		}
		buf := c.s.bufs.get(hl + int(req.length))
		defer c.s.bufs.put(buf) // send has written it when read returns
		n, err := ex.dev.ReadAt(buf[hl:], int64(req.offset))
		if n < int(req.length) {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			c.log.Warn("nbd: device error", "export", ex.name, "cmd", req.typ, "offset", req.offset, "length", req.length, "err", err)
			errno = deviceErrno(err)
			break
		}
		if c.structured {
			putStructured(buf, replyFlagDone, replyTypeOffsetData, req.cookie, 8+int(req.length))
			be.PutUint64(buf[structHdrLen:], req.offset)
		} else {
			putSimple(buf, 0, req.cookie)
		}
		c.send(buf)
		return
	}
	if c.structured && errno == 0 {
		var b [structHdrLen]byte
		putStructured(b[:], replyFlagDone, replyTypeNone, req.cookie, 0)
		c.send(b[:])
		return
	}
	c.sendError(req.cookie, errno)
}

// sendError sends a reply without data: a simple reply, or with structured
// replies an NBD_REPLY_TYPE_ERROR chunk (errno 0 only in a simple reply).
func (c *conn) sendError(cookie uint64, errno uint32) {
	if !c.structured {
		var b [simpleHdrLen]byte
		putSimple(b[:], errno, cookie)
		c.send(b[:])
		return
	}
	msg := errText(errno)
	b := make([]byte, structHdrLen+6+len(msg))
	putStructured(b, replyFlagDone, replyTypeError, cookie, 6+len(msg))
	be.PutUint32(b[structHdrLen:], errno)
	be.PutUint16(b[structHdrLen+4:], uint16(len(msg)))
	copy(b[structHdrLen+6:], msg)
	c.send(b)
}

func errText(errno uint32) string {
	switch errno {
	case errPerm:
		return "read-only export"
	case errInval:
		return "invalid request"
	case errNoSpc:
		return "beyond the end of the export"
	}
	return "input/output error"
}

// send writes one complete reply. A failed write closes the connection, so
// that the reader stops too.
func (c *conn) send(b []byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if _, err := c.nc.Write(b); err != nil {
		if !c.closing.Load() && !errors.Is(err, net.ErrClosed) {
			c.log.Info("nbd: write reply", "err", err)
		}
		c.nc.Close()
	}
}
