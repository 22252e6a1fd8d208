package nbd

import "sync"

// Limits bound what clients can make the server hold. A zero field takes
// its default.
type Limits struct {
	// MaxConns bounds the connections open at once, negotiating or in
	// transmission; one beyond it is closed as soon as it is accepted.
	MaxConns int
	// Memory bounds the request and reply buffers of all connections
	// together, in bytes, counting the buffers' size classes (a 1 MiB READ
	// holds 2 MiB with its reply's header). One connection holds at most
	// 64 MiB of its own. A connection that holds no buffer may always take
	// one, whatever the others hold, so that clients that stop reading
	// their replies cannot starve the others: the total may exceed Memory
	// by one request per connection.
	Memory int64
}

const (
	// DefaultMaxConns is Limits.MaxConns when unset: 16 disks of 32
	// virtual machines, with a connection per disk and queue.
	DefaultMaxConns = 512
	// DefaultMemory is Limits.Memory when unset.
	DefaultMemory = 1 << 30
)

func (l Limits) withDefaults() Limits {
	if l.MaxConns <= 0 {
		l.MaxConns = DefaultMaxConns
	}
	if l.Memory <= 0 {
		l.Memory = DefaultMemory
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

// budget is one connection's share of the server's memory.
type budget struct {
	mem  *memory
	used int64 // guarded by mem.mu
}

// fits reports whether n more bytes may be taken now; the caller holds
// mem.mu.
func (b *budget) fits(n int64) bool {
	return b.used+n <= maxBufferBytes && (b.used == 0 || b.mem.used+n <= b.mem.limit)
}

// acquire takes n bytes, waiting until they fit.
func (b *budget) acquire(n int64) {
	m := b.mem
	m.mu.Lock()
	for !b.fits(n) {
		m.waiters++
		m.cond.Wait()
		m.waiters--
	}
	b.used += n
	m.used += n
	m.mu.Unlock()
}

// tryAcquire takes n bytes if they fit now.
func (b *budget) tryAcquire(n int64) bool {
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
	m := b.mem
	m.mu.Lock()
	b.used -= n
	m.used -= n
	wake := m.waiters > 0
	m.mu.Unlock()
	if wake {
		m.cond.Broadcast()
	}
}
