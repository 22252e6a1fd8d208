package nbd

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	// maxInFlight bounds the concurrent requests of one connection.
	maxInFlight = 16
	// maxBufferBytes bounds the READ/WRITE buffers of one connection.
	maxBufferBytes = 2 * MaxPayload
)

// A request is executed by one of the connection's worker goroutines (at
// most maxInFlight started as needed, plus the connection's own; kept
// until it ends, so that their stacks stay grown), or by the reader itself when it is a READ of at
// most inlineReadMax bytes or a WRITE without FUA of at most
// inlineWriteMax bytes, and the device's reads and writes have been fast
// lately (see noteIO): page-cache I/O then costs no hand-off between
// goroutines (for 4 KiB random writes the hand-off was a fifth of the
// server's CPU), while I/O that waits for a disk, the chunk store or
// write-back throttling still runs in parallel.
//
// A WRITE that goes to a worker is executed by the goroutine that read
// it instead, which hands the reader's role to the worker (leader and
// followers, as nbdkit's threads take turns on the socket): the payload
// is copied into the device by the thread that just copied it out of the
// socket, while it is in that core's cache, and the next request is read
// meanwhile. For 1 MiB writes this is about 4% more throughput and 7% less
// CPU per byte than handing the payload to another goroutine.
//
// A reply is queued; whoever queues to an idle queue becomes the writer
// and sends everything queued, several replies per writev, until the
// queue is empty. The reader, though, never waits on the socket: it
// defers the replies of its inline requests while more requests are
// buffered (one writev then answers a burst), flushes them before
// anything that may wait, and only writes what the socket takes at once,
// handing the rest to the connection's writer goroutine; so a client may
// send a WRITE payload without reading replies meanwhile. The writer
// returns the buffers, the budget and the slot of each reply sent, so a
// request counts against maxInFlight and its READ buffer against the
// budget until its reply is on the socket.

const (
	// inlineReadMax is the largest READ the reader executes itself.
	inlineReadMax = 128 << 10
	// inlineWriteMax is the largest WRITE the reader executes itself:
	// larger ones gain more from running in parallel than they lose to
	// the hand-off.
	inlineWriteMax = 16 << 10
	// The slow scores of a connection, one for reads and one for writes:
	// a device read or write that takes d > slow (slowRead, slowWrite)
	// adds slowReadScore*d/slow to its score (a short preemption a few
	// points, a read from disk or the chunk store hundreds), up to
	// maxSlowScore; a fast one takes 1 off. The reader executes small
	// reads (writes) itself while the read (write) score is under
	// inlineScore: they then stay inline through a few slightly slow
	// ones, and go to workers after one very slow one until hundreds of
	// fast ones have followed.
	slowReadScore = 8
	inlineScore   = 4 * slowReadScore
	maxSlowScore  = 1024
)

// slowRead is the device read time above which a READ of n bytes is not
// served from memory (the page cache).
func slowRead(n int) time.Duration {
	return 50*time.Microsecond + time.Duration(n)*time.Nanosecond // + 1 GB/s
}

// slowWrite is the device write time above which a WRITE of n bytes
// waited for more than the page cache. Writes into the page cache vary
// more than reads (a journal handle, a cluster copied up from a lower
// layer: 20-100 us on a VM); write-back throttling and disks take
// milliseconds.
func slowWrite(n int) time.Duration {
	return 500*time.Microsecond + time.Duration(n)*time.Nanosecond // + 1 GB/s
}

// noteIO updates a slow score (reads and writes keep their own, so that
// throttled writes do not send page-cache reads to the workers) with a
// device read or write that took d, slow being the time above which it
// counts as slow.
func noteIO(score *atomic.Int32, slow, d time.Duration) {
	if d > slow {
		if score.Load() < maxSlowScore {
			score.Add(int32(min(int64(slowReadScore)*int64(d/slow), maxSlowScore)))
		}
	} else if score.Load() > 0 {
		score.Add(-1)
	}
}

// job is a request handed to a worker, or the reader's role.
type job struct {
	req     request
	payload []byte // WRITE payload from the pool, or nil
	cost    int64  // budget held
	read    bool   // no request: the worker becomes the reader
}

// reply is a reply queued for the writer.
type reply struct {
	b      []byte
	pooled bool  // b came from the buffer pool
	cost   int64 // budget to release once b is sent
}

// transmission is the state of a connection's request loop. started and
// hdr belong to the goroutine that holds the reader's role (as do the
// conn's reader state: r, deferred); the role passes through jobs (or a
// go statement), which orders their uses. c and ex never change.
type transmission struct {
	c       *conn
	ex      *export
	wg      sync.WaitGroup // requests taken by workers or former readers and not done
	workers sync.WaitGroup
	jobs    chan job
	started int // workers
	hdr     [requestLen]byte
}

// transmit reads requests until DISC, a socket error or shutdown, then waits
// for the in-flight requests and flushes a writable device.
func (c *conn) transmit(ex *export) {
	c.slots = make(chan struct{}, maxInFlight)
	if sc, ok := c.nc.(syscall.Conn); ok {
		c.rc, _ = sc.SyscallConn()
	}
	c.wake = make(chan struct{}, 1)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writer()
	}()
	t := &transmission{c: c, ex: ex, jobs: make(chan job)}
	t.workers.Add(1)
	t.work(job{read: true}) // this goroutine starts as the reader
	t.workers.Wait()
	close(c.wake) // the writer goroutine sends what it was handed first
	<-writerDone
	if !ex.readOnly {
		if err := ex.dev.Flush(); err != nil {
			c.log.Warn("nbd: flush at disconnect", "export", ex.name, "err", err)
		}
	}
}

// work is a worker: it executes the jobs it is handed until jobs is closed.
func (t *transmission) work(j job) {
	defer t.workers.Done()
	for ok := true; ok; j, ok = <-t.jobs {
		if j.read {
			t.read()
			continue
		}
		t.c.run(t.ex, j)
		t.wg.Done()
	}
}

// read is the reader: it reads requests and executes or hands them out
// until the stream ends, when it waits for the requests taken and closes
// jobs; or until it takes a WRITE meant for a worker, which it executes
// itself after handing its role to an idle (or new) worker: the payload
// is then copied into the device by the thread that received it, while
// it is in that core's cache, and the next request is received
// meanwhile.
func (t *transmission) read() {
	c, ex := t.c, t.ex
	// The reader flushes the replies it deferred before anything that
	// may wait: the client, the budget, a slot or a worker.
	for {
		if c.r.Buffered() < requestLen {
			c.flushDeferred()
		}
		if _, err := io.ReadFull(c.r, t.hdr[:]); err != nil {
			c.readFailed(err)
			break
		}
		req, ok := parseRequest(t.hdr[:])
		if !ok {
			c.log.Warn("nbd: bad request magic; closing", "export", ex.name)
			break
		}
		if req.typ == cmdDisc {
			c.log.Debug("nbd: client disconnect", "export", ex.name)
			break
		}
		// The budget counts the memory of the request's buffer: its size
		// class, header included for a READ's reply.
		var cost int64
		switch {
		case req.length > MaxPayload || req.length == 0:
		case req.typ == cmdRead:
			cost = int64(c.s.bufs.size(c.readHeaderLen() + int(req.length)))
		case req.typ == cmdWrite:
			cost = int64(c.s.bufs.size(int(req.length)))
		}
		var payload []byte
		if req.typ == cmdWrite {
			if req.length > maxSanePayload {
				c.log.Warn("nbd: absurd write length; closing", "export", ex.name, "length", req.length)
				break
			}
			if c.r.Buffered() < int(req.length) {
				c.flushDeferred()
			}
			if req.length > MaxPayload {
				// Keep the stream in sync; the handler replies NBD_EINVAL.
				if err := discard(c.r, int64(req.length)); err != nil {
					c.readFailed(err)
					break
				}
			} else {
				c.acquire(cost)
				payload = c.s.bufs.get(int(req.length))
				if _, err := io.ReadFull(c.r, payload); err != nil {
					c.s.bufs.put(payload)
					c.bud.release(cost)
					c.readFailed(err)
					break
				}
			}
		} else {
			c.acquire(cost)
		}
		select {
		case c.slots <- struct{}{}:
		default:
			c.flushDeferred()
			c.slots <- struct{}{}
		}
		j := job{req: req, payload: payload, cost: cost}
		if c.closing.Load() {
			// Shut down (Disconnect) while this request waited for budget
			// or a slot: it is not executed, so that nothing lands on the
			// device after Disconnect returned. It was never answered.
			c.releasePayload(&j)
			c.bud.release(j.cost)
			<-c.slots
			break
		}
		if c.inline(req, payload) {
			c.runInline(ex, j)
			continue
		}
		t.wg.Add(1)
		if payload != nil && t.give(job{read: true}) { // the reader's role
			c.run(ex, j)
			t.wg.Done()
			return
		}
		if !t.give(j) {
			c.flushDeferred()
			t.jobs <- j
		}
	}
	c.flushDeferred()
	t.wg.Wait() // every reply is sent (or dropped after a write error)
	close(t.jobs)
}

// give hands j to an idle worker, or to a new one if fewer than
// maxInFlight were started, and reports whether it did.
func (t *transmission) give(j job) bool {
	select {
	case t.jobs <- j:
		return true
	default:
		if t.started < maxInFlight {
			t.started++
			t.workers.Add(1)
			go t.work(j)
			return true
		}
	}
	return false
}

// readHeaderLen is the length of the header before a READ's data in its
// reply.
func (c *conn) readHeaderLen() int {
	if c.structured {
		return offsetDataLen
	}
	return simpleHdrLen
}

// acquire takes n bytes of budget for the reader, flushing its deferred
// replies first if it has to wait.
func (c *conn) acquire(n int64) {
	if !c.bud.tryAcquire(n) {
		c.flushDeferred()
		c.bud.acquire(n)
	}
}

// inline reports whether the reader executes req itself (see above).
func (c *conn) inline(req request, payload []byte) bool {
	switch req.typ {
	case cmdRead:
		return req.length <= inlineReadMax && c.slowReads.Load() < inlineScore
	case cmdWrite:
		return payload != nil && req.length <= inlineWriteMax && req.flags&cmdFlagFUA == 0 &&
			c.slowWrites.Load() < inlineScore
	}
	return false
}

// runInline executes a request in the reader. Its reply is deferred when
// another request is already buffered (so that one writev sends the
// replies of everything the client sent together), else queued with a
// write that does not wait.
func (c *conn) runInline(ex *export, j job) {
	b, pooled := c.handle(ex, j.req, j.payload)
	c.releasePayload(&j)
	r := reply{b: b, pooled: pooled, cost: j.cost}
	if c.r.Buffered() >= requestLen {
		c.wmu.Lock()
		c.replies = append(c.replies, r)
		c.wmu.Unlock()
		c.deferred = true
		return
	}
	c.deferred = false
	c.queue(r, false)
}

// flushDeferred sends the replies the reader deferred, unless a writer is
// at work (which sends them).
func (c *conn) flushDeferred() {
	if !c.deferred {
		return
	}
	c.deferred = false
	c.wmu.Lock()
	if c.writing || len(c.replies) == 0 {
		c.wmu.Unlock()
		return
	}
	c.writing = true
	c.drain(false)
}

// run executes a request in a worker and queues its reply.
func (c *conn) run(ex *export, j job) {
	b, pooled := c.handle(ex, j.req, j.payload)
	c.releasePayload(&j)
	c.queue(reply{b: b, pooled: pooled, cost: j.cost}, true)
}

// releasePayload returns an executed WRITE's payload and its budget (the
// device keeps no reference to it); a READ keeps its budget until its
// reply is sent.
func (c *conn) releasePayload(j *job) {
	if j.payload != nil {
		c.s.bufs.put(j.payload)
		c.bud.release(j.cost)
		j.payload, j.cost = nil, 0
	}
}

// queue queues a reply. If no one is writing, the caller becomes the
// writer and sends the queue until it is empty; without wait it sends
// only what the socket takes at once and hands the rest, and the writer's
// role, to the writer goroutine (the reader must go on reading: a client
// may not read replies while it sends a WRITE payload).
func (c *conn) queue(r reply, wait bool) {
	c.wmu.Lock()
	c.replies = append(c.replies, r)
	if c.writing {
		c.wmu.Unlock()
		return
	}
	c.writing = true
	c.drain(wait)
}

// drain sends the queue until it is empty, then gives up the writer's
// role; see queue for wait. The caller is the writer and holds wmu,
// which drain unlocks.
func (c *conn) drain(wait bool) {
	for len(c.replies) > 0 {
		batch := c.replies
		c.replies = c.spare[:0]
		c.wmu.Unlock()
		if !c.send(batch, 0, wait) {
			return // handed off
		}
		c.wmu.Lock()
		c.spare = batch[:0]
	}
	c.writing = false
	c.wmu.Unlock()
}

// send writes batch after its first skip bytes with one writev, unless a
// write failed before (the connection is closed; replies are dropped),
// and then releases the batch. Without wait, if the socket does not take
// it all at once, it hands the rest to the writer goroutine and returns
// false. A failed write closes the connection, so that the reader stops
// too. Only the writer calls it.
func (c *conn) send(batch []reply, skip int, wait bool) bool {
	if !c.wfailed {
		iov, total := c.iov[:0], 0
		for _, r := range batch {
			if skip >= len(r.b) {
				skip -= len(r.b)
				continue
			}
			iov = append(iov, r.b[skip:])
			total += len(r.b) - skip
			skip = 0
		}
		c.iov = iov
		var err error
		if wait {
			// The server's watchdog closes the connection if this write
			// waits for the client longer than ReplyTimeout without
			// progress.
			c.s.watchWrite(c, true)
			err = writevAll(c.rc, c.nc, iov, &c.iovecs, c.progress)
			c.s.watchWrite(c, false)
		} else {
			var n int
			n, err = writevNow(c.rc, iov, &c.iovecs)
			if err == nil && n < total {
				clear(iov)
				c.handoff, c.handoffSent = batch, n
				c.wake <- struct{}{}
				return false
			}
		}
		clear(iov)
		if err != nil {
			switch {
			case c.stalled.Load():
				c.log.Warn("nbd: client did not take its replies in time; closed", "timeout", c.s.lim.ReplyTimeout)
			case c.closing.Load() || errors.Is(err, net.ErrClosed):
			default:
				c.log.Info("nbd: write reply", "err", err)
			}
			c.nc.Close()
			c.wfailed = true
		}
	}
	for _, r := range batch {
		if r.pooled {
			c.s.bufs.put(r.b)
		}
		if r.cost > 0 {
			c.bud.release(r.cost)
		}
		<-c.slots
	}
	clear(batch)
	return true
}

// progress tells the watchdog that the reply write under way made
// progress.
func (c *conn) progress() { c.s.watchWrite(c, true) }

// writer is the writer goroutine: woken by a hand-off, it sends the rest
// of the batch handed off and then drains the queue.
func (c *conn) writer() {
	for range c.wake {
		batch := c.handoff
		c.handoff = nil
		c.send(batch, c.handoffSent, true)
		c.wmu.Lock()
		c.spare = batch[:0]
		c.drain(true)
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

// handle executes one request and returns its reply; pooled tells whether
// the reply's buffer comes from the buffer pool.
func (c *conn) handle(ex *export, req request, payload []byte) (b []byte, pooled bool) {
	switch req.typ {
	case cmdRead:
		return c.read(ex, req)
	case cmdBlockStatus:
		return c.blockStatus(ex, req)
	}
	b = make([]byte, simpleHdrLen)
	putSimple(b, c.exec(ex, req, payload), req.cookie)
	return b, false
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
			t0 := time.Now()
			w, err = ex.dev.WriteAt(payload, off)
			noteIO(&c.slowWrites, slowWrite(len(payload)), time.Since(t0))
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

// read executes a READ and returns its reply: simple, or one structured
// chunk.
func (c *conn) read(ex *export, req request) (b []byte, pooled bool) {
	var errno uint32
	switch {
	case req.flags&^cmdFlagFUA != 0, req.length > MaxPayload, !ex.inRange(req):
		errno = errInval
	case req.length > 0:
		hl := c.readHeaderLen()
		buf := c.s.bufs.get(hl + int(req.length))
		t0 := time.Now()
		n, err := ex.dev.ReadAt(buf[hl:], int64(req.offset))
		noteIO(&c.slowReads, slowRead(int(req.length)), time.Since(t0))
		// io.ReaderAt: an error means the read failed, even with n full
		// (except EOF at the very end); the pooled buffer then holds
		// stale bytes of another request, which must never be sent.
		if n < int(req.length) || (err != nil && err != io.EOF) {
			c.s.bufs.put(buf)
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
		return buf, true
	}
	if c.structured && errno == 0 {
		b = make([]byte, structHdrLen)
		putStructured(b, replyFlagDone, replyTypeNone, req.cookie, 0)
		return b, false
	}
	return c.errorReply(req.cookie, errno), false
}

// errorReply returns a reply without data: a simple reply, or with
// structured replies an NBD_REPLY_TYPE_ERROR chunk (errno 0 only in a
// simple reply).
func (c *conn) errorReply(cookie uint64, errno uint32) []byte {
	if !c.structured {
		b := make([]byte, simpleHdrLen)
		putSimple(b, errno, cookie)
		return b
	}
	msg := errText(errno)
	b := make([]byte, structHdrLen+6+len(msg))
	putStructured(b, replyFlagDone, replyTypeError, cookie, 6+len(msg))
	be.PutUint32(b[structHdrLen:], errno)
	be.PutUint16(b[structHdrLen+4:], uint16(len(msg)))
	copy(b[structHdrLen+6:], msg)
	return b
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
