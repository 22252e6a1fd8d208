package nbd

import (
	"sync"
	"time"
)

// Limits bound what clients can make the server hold. A zero field takes
// its default.
type Limits struct {
	// MaxConns bounds the connections open at once, negotiating or in
	// transmission; one beyond it is closed as soon as it is accepted.
	MaxConns int
	// Memory bounds the request and reply buffers of all connections
	// together, in bytes, counting the buffers' size classes (a 1 MiB READ
	// holds 2 MiB with its reply's header), as long as clients read their
	// replies: a request waits for memory while others hold it. One
	// connection holds at most 64 MiB of its own, and it goes over Memory
	// rather than wait forever: a connection that holds no buffer may
	// always take one, and one that has waited a second takes what its
	// own 64 MiB allow until it holds nothing again, so that clients that
	// stop reading their replies can neither starve the others nor
	// deadlock a client that sends its requests before reading replies.
	// The hard bound is therefore MaxConns × 64 MiB.
	Memory int64
	// ReplyTimeout is how long a reply write may wait for the client to
	// take any of it (the socket being full) before the connection is
	// closed, which frees its buffers and its place: a client that stops
	// reading replies holds them no longer than that, while one that
	// reads them slowly stays connected.
	ReplyTimeout time.Duration
}

const (
	// DefaultMaxConns is Limits.MaxConns when unset: 16 disks of 32
	// virtual machines, with a connection per disk and queue.
	DefaultMaxConns = 512
	// DefaultMemory is Limits.Memory when unset.
	DefaultMemory = 1 << 30
	// DefaultReplyTimeout is Limits.ReplyTimeout when unset: long enough
	// for a client that sends a 32 MiB WRITE before it reads replies on
	// a slow link.
	DefaultReplyTimeout = 5 * time.Minute
)

func (l Limits) withDefaults() Limits {
	if l.MaxConns <= 0 {
		l.MaxConns = DefaultMaxConns
	}
	if l.Memory <= 0 {
		l.Memory = DefaultMemory
	}
	if l.ReplyTimeout <= 0 {
		l.ReplyTimeout = DefaultReplyTimeout
	}
	return l
}

// memory is the server-wide budget of buffer bytes. Its mutex guards the
// total and every connection's share.
type memory struct {
	limit   int64
	mu      sync.Mutex
	cond    sync.Cond
	used    int64
	waiters int
}

func newMemory(limit int64) *memory {
	m := &memory{limit: limit}
	m.cond.L = &m.mu
	return m
}

// held returns the bytes held by all connections.
func (m *memory) held() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.used
}

// memoryWait is how long a connection waits for server memory before it
// takes what its own share allows, until it holds nothing again. The
// server's memory may be held by clients that stopped reading their
// replies, and a client that sends its requests before reading any reply
// (allowed, see transmit) reads nothing while the reader waits: without
// this the two would wait for each other for as long as the stuck
// clients stay connected.
const memoryWait = time.Second

// budget is one connection's share of the server's memory.
type budget struct {
	mem  *memory
	used int64 // guarded by mem.mu
	// late is set (guarded by mem.mu) when the connection waited
	// memoryWait for server memory, and cleared when it holds nothing:
	// meanwhile only its own share bounds it.
	late bool
}

// fits reports whether n more bytes may be taken now: within the
// connection's share and, unless it holds nothing or is late, the
// server's limit. The caller holds mem.mu.
func (b *budget) fits(n int64) bool {
	return b.used+n <= maxBufferBytes && (b.used == 0 || b.late || b.mem.used+n <= b.mem.limit)
}

// acquire takes n bytes, waiting until they fit.
func (b *budget) acquire(n int64) {
	if n == 0 {
		return
	}
	m := b.mem
	m.mu.Lock()
	defer m.mu.Unlock()
	if !b.fits(n) {
		t := time.AfterFunc(memoryWait, func() {
			m.mu.Lock()
			if b.used > 0 {
				b.late = true
			}
			m.mu.Unlock()
			m.cond.Broadcast()
		})
		for !b.fits(n) {
			m.waiters++
			m.cond.Wait()
			m.waiters--
		}
		t.Stop()
	}
	b.used += n
	m.used += n
}

// tryAcquire takes n bytes if they fit now.
func (b *budget) tryAcquire(n int64) bool {
	if n == 0 {
		return true
	}
	m := b.mem
	m.mu.Lock()
	defer m.mu.Unlock()
	if !b.fits(n) {
		return false
	}
	b.used += n
	m.used += n
	return true
}

// release returns n bytes.
func (b *budget) release(n int64) {
	if n == 0 {
		return
	}
	m := b.mem
	m.mu.Lock()
	b.used -= n
	m.used -= n
	if b.used == 0 {
		b.late = false
	}
	wake := m.waiters > 0
	m.mu.Unlock()
	if wake {
		m.cond.Broadcast()
	}
}

// watchWrite records that c starts a reply write that may wait for the
// client, or that the write made progress (on), or that it ended.
func (s *Server) watchWrite(c *conn, on bool) {
	var t int64
	if on {
		t = s.sinceStart() + 1 // never 0, which means no write
	}
	c.blockedSince.Store(t)
}

// sinceStart is the monotonic time since the server was made, in ns:
// wall clock steps (NTP, a resumed VM) must not make writes look stuck.
func (s *Server) sinceStart() int64 { return int64(time.Since(s.start)) }

// watch closes, until the server closes, every connection whose reply
// write has waited for the client to take any of it longer than
// ReplyTimeout; it looks
// four times per timeout (at most every second, at least every 10 ms).
func (s *Server) watch() {
	defer s.wg.Done()
	tick := time.NewTicker(min(max(s.lim.ReplyTimeout/4, 10*time.Millisecond), time.Second))
	defer tick.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-tick.C:
			limit := s.sinceStart() - int64(s.lim.ReplyTimeout)
			s.mu.Lock()
			for c := range s.conns {
				if t := c.blockedSince.Load(); t != 0 && t < limit && !c.stalled.Load() {
					c.stalled.Store(true)
					c.nc.Close()
				}
			}
			s.mu.Unlock()
		}
	}
}
