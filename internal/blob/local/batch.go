package local

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/snapstack/snapstack/internal/blob"
)

var _ blob.Batcher = (*Store)(nil)

// NewBatch returns a batch: its objects are written to temporary files
// without fsync; Commit flushes the whole file system once (syncfs), then
// renames them into place and flushes again. A crash before Commit leaves
// only temporary files, which Sweep removes, so a torn object never
// carries a final name.
func (s *Store) NewBatch() blob.Batch { return &batch{s: s} }

type pending struct{ tmp, final, dir string }

type batch struct {
	s     *Store
	files []pending
	buf   []byte // O_DIRECT staging buffer
}

func (b *batch) Put(ctx context.Context, name string, data []byte) error {
	if err := begin(ctx, "put", name); err != nil {
		return err
	}
	dir := path.Dir(name)
	if err := b.s.ensureDir(dir); err != nil {
		return fmt.Errorf("blob/local: put %q: %w", name, err)
	}
	tmp := filepath.Join(b.s.path(dir), tmpPrefix+strconv.FormatUint(rand.Uint64(), 36))
	b.s.inflight.Store(tmp, struct{}{})
	if err := b.writeDirect(tmp, data); err != nil {
		b.s.inflight.Delete(tmp)
		os.Remove(tmp)
		return fmt.Errorf("blob/local: put %q: %w", name, err)
	}
	b.files = append(b.files, pending{tmp: tmp, final: b.s.path(name), dir: b.s.path(dir)})
	return nil
}

// writeDirect writes a new file with O_DIRECT where the file system
// allows it: bulk writes then skip the page cache, whose fresh pages are
// expensive on virtual machines; the data still becomes durable only at
// Commit's syncfs. The write is padded to the 4 KiB alignment O_DIRECT
// needs and the file truncated to its length.
func (b *batch) writeDirect(path string, data []byte) error {
	const align = 4096
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_DIRECT, 0o600)
	if err != nil {
		return os.WriteFile(path, data, 0o600) // no O_DIRECT here (tmpfs, ...)
	}
	n := (len(data) + align - 1) / align * align
	var buf []byte
	if len(data) > 0 && cap(data) >= n && uintptr(unsafe.Pointer(&data[0]))%align == 0 {
		// Written from where it is: what the padding past len(data)
		// holds is cut off by the truncate below.
		buf = data[:n]
	} else {
		if cap(b.buf) < n+align {
			b.buf = make([]byte, n+align)
		}
		// An aligned window of the buffer.
		off := 0
		if r := int(uintptr(unsafe.Pointer(&b.buf[0])) % align); r != 0 {
			off = align - r
		}
		buf = b.buf[off : off+n]
		copy(buf, data)
		clear(buf[len(data):])
	}
	if n > 0 {
		if _, err := f.Write(buf); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Truncate(int64(len(data))); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (b *batch) Commit(ctx context.Context) error {
	if len(b.files) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := b.s.group.sync(b.s.syncfs); err != nil {
		return fmt.Errorf("blob/local: commit: %w", err)
	}
	for i, p := range b.files {
		if err := os.Rename(p.tmp, p.final); err != nil {
			b.files = b.files[i:]
			b.Abort()
			return fmt.Errorf("blob/local: commit: %w", err)
		}
		b.s.inflight.Delete(p.tmp)
	}
	b.files = nil
	if err := b.s.group.sync(b.s.syncfs); err != nil {
		return fmt.Errorf("blob/local: commit: %w", err)
	}
	return nil
}

var _ blob.Syncer = (*Store)(nil)

// Sync makes durable the objects that batches have renamed into place
// but whose Commit has not flushed them yet: it waits for a file-system
// flush that starts after the call (shared with concurrent commits).
func (s *Store) Sync(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.group.sync(s.syncfs); err != nil {
		return fmt.Errorf("blob/local: sync: %w", err)
	}
	return nil
}

func (b *batch) Abort() {
	for _, p := range b.files {
		os.Remove(p.tmp)
		b.s.inflight.Delete(p.tmp)
	}
	b.files = nil
}

// groupSync lets concurrent callers share file-system flushes (group
// commit): a caller's sync returns once a flush that started after the
// call has finished, and one flush serves every caller waiting for it.
// The upload workers of a snapshot commit their batches at about the same
// moment; each would otherwise flush the whole file system twice.
type groupSync struct {
	mu        sync.Mutex
	cond      *sync.Cond
	started   uint64 // flushes started
	finished  uint64 // flushes finished (they run one at a time)
	failed    uint64 // the last flush that failed, 0 when none
	failedErr error
	running   bool
}

// sync runs or waits for a flush (flush) that starts after the call.
func (g *groupSync) sync(flush func() error) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cond == nil {
		g.cond = sync.NewCond(&g.mu)
	}
	// The flush running now may have started before our writes.
	target := g.started + 1
	for g.finished < target {
		if g.running {
			g.cond.Wait()
			continue
		}
		g.running = true
		g.started++
		n := g.started
		g.mu.Unlock()
		err := flush()
		g.mu.Lock()
		g.running = false
		g.finished = n
		if err != nil {
			g.failed, g.failedErr = n, err
		}
		g.cond.Broadcast()
	}
	if g.failed >= target {
		return g.failedErr
	}
	return nil
}

// syncfs flushes the file system holding the store: data and metadata of
// every file written so far.
func (s *Store) syncfs() error {
	d, err := os.Open(s.root)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := unix.Syncfs(int(d.Fd())); err != nil {
		return errors.Join(err, d.Sync())
	}
	return nil
}
