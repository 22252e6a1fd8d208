// Package nbd is a Network Block Device server (see
// https://github.com/NetworkBlockDevice/nbd/blob/master/doc/proto.md)
// used to serve snapstack disks to QEMU and other NBD clients.
//
// # Supported subset
//
// Handshake: fixed newstyle only (NBD_FLAG_FIXED_NEWSTYLE and
// NBD_FLAG_NO_ZEROES are offered; a client flag the server does not know
// drops the connection). Options:
//
//   - NBD_OPT_EXPORT_NAME: enters transmission; an export that cannot be
//     opened drops the connection (the option has no error reply).
//   - NBD_OPT_INFO, NBD_OPT_GO: reply NBD_INFO_EXPORT and NBD_INFO_BLOCK_SIZE
//     (minimum 1, preferred 4096, maximum 32 MiB) whatever was requested;
//     NBD_INFO_NAME and NBD_INFO_DESCRIPTION requests are ignored.
//   - NBD_OPT_LIST: one NBD_REP_SERVER per name of Exports.List.
//   - NBD_OPT_ABORT: NBD_REP_ACK, then the connection is closed.
//   - NBD_OPT_STRUCTURED_REPLY: accepted; READ is then answered with a
//     single NBD_REPLY_TYPE_OFFSET_DATA chunk (NBD_REPLY_TYPE_NONE for a
//     length of 0) or an NBD_REPLY_TYPE_ERROR chunk, both flagged
//     NBD_REPLY_FLAG_DONE, and so is BLOCK_STATUS (one
//     NBD_REPLY_TYPE_BLOCK_STATUS chunk, or an error chunk). Every other
//     command keeps simple replies.
//   - NBD_OPT_LIST_META_CONTEXT, NBD_OPT_SET_META_CONTEXT: the only
//     context is "base:allocation", for every export (the named export
//     must open, else NBD_REP_ERR_UNKNOWN). LIST returns it (context ID 0)
//     for no query, "base:" or "base:allocation"; SET requires structured
//     replies (else NBD_REP_ERR_INVALID), selects it (context ID 1) for
//     "base:allocation" and binds it to the export named: BLOCK_STATUS is
//     allowed if the last SET selected it for the export then entered.
//     Queries of other namespaces are ignored; a query without a
//     namespace or malformed data gives NBD_REP_ERR_INVALID (a failed SET
//     still clears the selection).
//   - anything else (STARTTLS, extended headers, ...): NBD_REP_ERR_UNSUP.
//
// Option errors: malformed data gives NBD_REP_ERR_INVALID, option data above
// 64 KiB is discarded and gives NBD_REP_ERR_TOO_BIG, an export Exports.Open
// rejects gives NBD_REP_ERR_UNKNOWN (NBD_REP_ERR_SHUTDOWN while the server
// closes). The handshake must end within 30 seconds.
//
// Transmission: READ, WRITE, FLUSH, TRIM, WRITE_ZEROES (with
// NBD_CMD_FLAG_NO_HOLE), BLOCK_STATUS (with NBD_CMD_FLAG_REQ_ONE) and
// DISC. The transmission flags are HAS_FLAGS, SEND_FLUSH, SEND_FUA,
// SEND_TRIM, SEND_WRITE_ZEROES and CAN_MULTI_CONN (Device.Flush is
// device-wide), plus READ_ONLY for read-only exports. NBD_CMD_FLAG_FUA on
// a command that writes calls Device.Flush after the operation and before
// the reply. BLOCK_STATUS reports what the Device's Extenter says
// (NBD_STATE_HOLE, NBD_STATE_ZERO; a Device without it is data
// throughout) in at most 4096 descriptors, adjacent ones of the same
// status merged, covering the request from its offset or less of it
// (exactly one descriptor with REQ_ONE), never more. Errors:
//
//   - NBD_EINVAL: unknown command (including CACHE), a command flag not
//     valid for the command, a READ or WRITE longer than 32 MiB, a READ,
//     TRIM or BLOCK_STATUS beyond the end of the export, a BLOCK_STATUS of
//     length 0 or without base:allocation selected for the export;
//   - NBD_ENOSPC: a WRITE or WRITE_ZEROES beyond the end of the export, or a
//     Device error wrapping ENOSPC, EDQUOT or EFBIG;
//   - NBD_EPERM: WRITE, TRIM or WRITE_ZEROES on a read-only export, or a
//     Device error wrapping EROFS or EPERM;
//   - NBD_EIO: any other Device error, or a short ReadAt/WriteAt.
//
// A length of 0 (but for BLOCK_STATUS) succeeds without touching the
// device (NBD_CMD_FLAG_FUA still flushes). The payload of a WRITE longer
// than 32 MiB is read and discarded so the stream stays in sync; a WRITE
// longer than 64 MiB, a bad request magic or any I/O error on the socket
// closes the connection.
//
// Concurrency: the requests of one connection run concurrently, at most 16
// at a time (a request counts until its reply is sent) and at most 64 MiB
// of READ/WRITE buffers at a time (a BLOCK_STATUS reply takes at most
// 32 KiB more), on a pool of worker goroutines; READs of up to 128 KiB
// and WRITEs of up to 16 KiB are executed by the connection's reader
// itself while the device answers them fast (from memory), and go to the
// workers again once it is slow; a WRITE that goes to a worker is
// executed by the goroutine that read it, the worker taking over the
// reading. Replies may be sent out of order, as the protocol allows;
// replies ready together go out in one writev. The reader never waits on
// the socket, so a client may send requests without reading replies
// meanwhile (up to the 16 in flight; while other connections hold the
// server's memory, a request may wait a second for it). Any number of
// connections may use one export, up to Limits.MaxConns connections in
// all, whose buffers together stay within Limits.Memory while clients
// read their replies (see Limits); a connection whose client takes
// nothing of a reply for Limits.ReplyTimeout is closed. When a connection
// ends (DISC, socket error, Disconnect or Close) the server stops
// reading, waits for its in-flight requests, flushes a writable device,
// closes the socket and then calls the release function returned by
// Exports.Open.
package nbd

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Device is a block device served over NBD. It is safe for concurrent use.
// It may implement Extenter, for BLOCK_STATUS.
type Device interface {
	Size() int64
	ReadAt(p []byte, off int64) (int, error)
	WriteAt(p []byte, off int64) (int, error)
	// Flush makes every write acknowledged so far durable.
	Flush() error
	// Trim discards [off, off+length); reads return zeroes afterwards.
	Trim(off, length int64) error
	// WriteZeroes writes zeroes; it may deallocate unless noHole.
	WriteZeroes(off, length int64, noHole bool) error
}

// Exports resolves export names (snapstack: a disk ID).
type Exports interface {
	// Open returns the device of an export, or ErrUnknownExport. release is
	// called when the connection closes (it must not call Server.Disconnect
	// or Server.Close). ctx is cancelled when the connection ends or the
	// server closes. NBD_OPT_INFO opens and releases at once.
	Open(ctx context.Context, name string) (dev Device, readOnly bool, release func(), err error)
	// List returns the names of the exports a client may see (NBD_OPT_LIST).
	List(ctx context.Context) []string
}

// ErrUnknownExport is returned by Exports.Open for a name it does not serve.
var ErrUnknownExport = errors.New("nbd: unknown export")

const (
	handshakeTimeout = 30 * time.Second
	// drainTimeout bounds the replies written after Disconnect or Close.
	drainTimeout = 10 * time.Second
)

// Server serves the exports of an Exports over NBD.
type Server struct {
	exports Exports
	log     *slog.Logger
	ctx     context.Context
	cancel  context.CancelFunc

	mu     sync.Mutex
	closed bool
	lns    map[net.Listener]struct{}
	conns  map[*conn]struct{}
	wg     sync.WaitGroup
	// draining counts the Disconnects under way per export: a new client
	// of such an export is refused until its old connections are gone,
	// so that their last requests cannot land after the new owner's.
	draining map[string]int

	bufs  bufPool // request and reply buffers
	lim   Limits
	mem   *memory   // buffer bytes held by all connections
	start time.Time // with its monotonic reading (see sinceStart)
	// refusing is set while connections are refused for MaxConns, so
	// that a burst of them is logged once.
	refusing bool
}

// NewServer returns a server for exports within lim. log may be nil.
func NewServer(exports Exports, log *slog.Logger, lim Limits) *Server {
	lim = lim.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		exports: exports,
		log:     log,
		ctx:     ctx,
		cancel:  cancel,
		lns:     make(map[net.Listener]struct{}),
		conns:   make(map[*conn]struct{}),
		lim:     lim,
		mem:     newMemory(lim.Memory),
		start:   time.Now(),
	}
	s.wg.Add(1)
	go s.watch()
	return s
}

// Serve accepts connections on ln until Close; returns nil after Close.
// It may be called for several listeners. Other accept errors are returned,
// except temporary ones, which are retried with a back-off.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.lns[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.lns, ln)
		s.mu.Unlock()
	}()
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.isClosed() {
				return nil
			}
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.log.Warn("nbd: accept", "err", err, "retry_in", delay)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		if _, err := s.startConn(nc); err != nil {
			nc.Close()
			if errors.Is(err, errServerClosed) {
				return nil
			}
		}
	}
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Why startConn did not serve a connection.
var (
	errServerClosed = errors.New("nbd: server closed")
	errTooManyConns = errors.New("nbd: too many connections")
)

// startConn serves nc in a new goroutine, unless the server is closed or
// has MaxConns connections; the caller then closes nc.
func (s *Server) startConn(nc net.Conn) (*conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errServerClosed
	}
	if len(s.conns) >= s.lim.MaxConns {
		if !s.refusing {
			s.refusing = true
			s.log.Warn("nbd: connection limit reached; refusing connections", "max_conns", s.lim.MaxConns)
		}
		return nil, errTooManyConns
	}
	s.refusing = false
	c := newConn(s, nc)
	nc.SetDeadline(time.Now().Add(handshakeTimeout))
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		c.serve()
	}()
	return c, nil
}

// Close stops accepting, closes all connections and waits for their
// goroutines. Connections in transmission are closed as by Disconnect: their
// in-flight requests finish (replies get 10 seconds) and the device is
// flushed. Close is idempotent and returns nil.
func (s *Server) Close() error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		s.cancel()
		for ln := range s.lns {
			ln.Close()
		}
		for c := range s.conns {
			c.shutdown()
		}
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// Disconnect closes every connection of export name (after letting in-flight
// requests finish and flushing the device); used when a disk stops being
// exported (instance stopped). It returns once those connections are closed
// and released. Connections still negotiating that have opened (or are
// opening) name end too; ones that have not asked for it yet are not
// affected, so Exports.Open should reject name before Disconnect is called.
func (s *Server) Disconnect(name string) {
	s.mu.Lock()
	if s.draining == nil {
		s.draining = map[string]int{}
	}
	s.draining[name]++
	defer func() {
		s.mu.Lock()
		if s.draining[name]--; s.draining[name] == 0 {
			delete(s.draining, name)
		}
		s.mu.Unlock()
	}()
	var cs []*conn
	for c := range s.conns {
		// Connections still in the handshake that opened the export are
		// ended too: they would otherwise attach after this returns.
		if c.attached && c.export == name || !c.attached && c.opening == name {
			c.shutdown()
			cs = append(cs, c)
		}
	}
	s.mu.Unlock()
	for _, c := range cs {
		<-c.done
	}
}

// attach marks c as in transmission for export name, so that Disconnect
// finds it. It returns false if c is being shut down.
func (s *Server) attach(c *conn, name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.closing.Load() || s.draining[name] > 0 {
		return false
	}
	c.nc.SetDeadline(time.Time{})
	c.attached, c.export = true, name
	return true
}
