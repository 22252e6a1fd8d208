package engine

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"github.com/snapstack/snapstack/internal/chunk"
	"github.com/snapstack/snapstack/internal/ecs"
	"github.com/snapstack/snapstack/internal/manifest"
	"github.com/snapstack/snapstack/internal/volume"
)

// StartSnapshot seals the disk's volume as the snapshot (the point in
// time) and uploads it in the background. Called again after a restart,
// it resumes: an upload whose manifest is stored is reported done, a
// sealed layer is uploaded again (chunks already stored are not
// rewritten).
func (e *Engine) StartSnapshot(ctx context.Context, job ecs.SnapshotJob, report func(ecs.Progress)) error {
	if _, err := e.blobs.Stat(ctx, manifestName(job.SnapshotID)); err == nil {
		// Stored before a restart, which may have cut short the local
		// bookkeeping that follows: finish it, or the disk's next
		// snapshot would not find its parent's table.
		if v, err := e.open(job.DiskID); err == nil && v.Sealed(job.SnapshotID) {
			m, err := e.loadManifest(ctx, job.SnapshotID)
			if err == nil {
				err = e.finishUpload(job, v, m)
			}
			if err != nil {
				return err
			}
		}
		e.goReport(report, ecs.Progress{Finished: true})
		return nil
	}
	v, err := e.open(job.DiskID)
	if err != nil {
		return err
	}
	if !v.Sealed(job.SnapshotID) {
		if err := v.Seal(job.SnapshotID); err != nil {
			return fmt.Errorf("seal %s: %w", job.SnapshotID, err)
		}
	}
	uctx, cancel := context.WithCancel(e.bg)
	e.mu.Lock()
	e.uploads[job.SnapshotID] = cancel
	e.mu.Unlock()
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer func() {
			e.mu.Lock()
			delete(e.uploads, job.SnapshotID)
			e.mu.Unlock()
			cancel()
		}()
		done, total, err := e.upload(uctx, job, v, report)
		if err != nil && e.bg.Err() != nil {
			// Stopped by Close: the snapshot stays in progress, and the
			// next start resumes its upload.
			e.log.Info("snapshot upload interrupted by shutdown; it resumes at the next start", "snapshot", job.SnapshotID)
			return
		}
		if err != nil {
			e.log.Error("snapshot upload failed", "snapshot", job.SnapshotID, "err", err)
		}
		report(ecs.Progress{Done: done, Total: total, Finished: true, Err: err})
	}()
	return nil
}

func (e *Engine) goReport(report func(ecs.Progress), p ecs.Progress) {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		report(p)
	}()
}

// upload stores the chunks of a sealed snapshot that changed since its
// parent, then its manifest, then lets the volume merge the layer.
func (e *Engine) upload(ctx context.Context, job ecs.SnapshotJob, v *volume.Volume, report func(ecs.Progress)) (done, total int64, err error) {
	ch, err := v.Changed(job.SnapshotID, ChunkSize)
	if err != nil {
		return 0, 0, err
	}
	// From reading the parent's table (whose chunks the new manifest
	// shares) until the manifest is stored, the collector waits.
	e.gc.RLock()
	defer e.gc.RUnlock()
	m, err := e.parentManifest(ctx, job.DiskID, ch.Parent, v.Size())
	if err != nil {
		// Without the parent's table every chunk has to be read, whole.
		e.log.Warn("parent manifest unavailable, uploading every chunk", "snapshot", job.SnapshotID, "parent", ch.Parent, "err", err)
		m = manifest.New(v.Size(), ChunkSize, ch.Parent)
		ch.Chunks, ch.Dirty = ch.Chunks[:0], nil
		for k := int64(0); k*ChunkSize < v.Size(); k++ {
			ch.Chunks = append(ch.Chunks, k)
		}
	}
	m.Parent = ch.Parent
	total = int64(len(ch.Chunks))
	report(ecs.Progress{Total: total})

	var count atomic.Int64
	u := &uploadState{snap: job.SnapshotID, v: v, m: m, idx: e.allocIndex(total * ChunkSize / dedupBlock / 4)}
	defer e.releaseIndex(u.idx)
	work := make(chan int)
	errc := make(chan error, e.workers)
	var wg sync.WaitGroup
	for w := 0; w < e.workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, ChunkSize)
			scratch := make([]byte, 64<<10)
			// Chunks are made durable in batches (one file-system flush
			// per batch instead of one per chunk); the manifest is stored
			// only after every batch committed.
			batch := e.chunks.NewBatch()
			defer batch.Abort()
			for i := range work {
				k, dirty := ch.Chunks[i], ^uint64(0)
				if ch.Dirty != nil {
					dirty = ch.Dirty[i]
				}
				if err := u.chunk(ctx, batch, buf, scratch, k, dirty); err != nil {
					errc <- err
					return
				}
				if batch.Len() >= uploadBatch {
					if err := batch.Commit(ctx); err != nil {
						errc <- err
						return
					}
				}
				count.Add(1)
			}
			if err := batch.Commit(ctx); err != nil {
				errc <- err
			}
		}()
	}
	last := time.Now()
	var ferr error
feed:
	for i := range ch.Chunks {
		// A stop goes first (select picks at random among ready cases).
		if ferr = ctx.Err(); ferr != nil {
			break
		}
		select {
		case work <- i:
		case ferr = <-errc:
			break feed
		case <-ctx.Done():
			ferr = ctx.Err()
			break feed
		}
		if time.Since(last) > 200*time.Millisecond {
			report(ecs.Progress{Done: count.Load(), Total: total})
			last = time.Now()
		}
	}
	close(work)
	wg.Wait()
	if ferr == nil {
		select {
		case ferr = <-errc:
		default:
		}
	}
	if ferr != nil {
		return count.Load(), total, ferr
	}
	if err := e.blobs.Put(ctx, manifestName(job.SnapshotID), m.Encode()); err != nil {
		return count.Load(), total, fmt.Errorf("store manifest: %w", err)
	}
	return total, total, e.finishUpload(job, v, m)
}

// finishUpload does the local bookkeeping of a stored snapshot: its table
// becomes the disk's parent table, its layer is marked uploaded, and the
// layer is folded down in the background.
func (e *Engine) finishUpload(job ecs.SnapshotJob, v *volume.Volume, m *manifest.Manifest) error {
	if err := e.writeLocalManifest(job.DiskID, "parent", job.SnapshotID, m); err != nil {
		return err
	}
	if err := v.MarkUploaded(job.SnapshotID); err != nil {
		return err
	}
	// The snapshot is durable: folding its layer down is housekeeping,
	// done after the upload is reported.
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		if err := v.Compact(); err != nil && !errors.Is(err, volume.ErrClosed) {
			e.log.Error("compact volume", "disk", job.DiskID, "err", err)
		}
	}()
	return nil
}

// uploadBatch is how many new chunks a worker writes between two flushes.
const uploadBatch = 64

// maxPieces bounds the pieces of one chunk in a manifest: a restore reads
// at most this many objects for one chunk.
const maxPieces = 8

// uploadState is what the workers of one upload share.
type uploadState struct {
	snap string
	v    *volume.Volume
	idx  *blockIndex // blocks stored so far, for deduplication

	mu sync.Mutex
	m  *manifest.Manifest // guarded by mu
}

// chunk stores chunk k of the snapshot and records it in the manifest.
// dirty has a bit per cluster of the chunk written since the parent.
// When few clusters changed, only their runs are read and stored
// (together, as one object), as pieces over the parent's content: the
// cost of a small change is the change, not the chunk. Otherwise, or
// when the chunk would be cut into too many pieces, the whole chunk is
// read, its runs that copy blocks stored earlier in this upload become
// pieces of their objects (dedup.go), and the rest is stored as one
// object. buf holds a chunk, scratch at least 64 KiB.
func (u *uploadState) chunk(ctx context.Context, batch *chunk.Batch, buf, scratch []byte, k int64, dirty uint64) error {
	start := k * ChunkSize
	n := min(int64(ChunkSize), u.v.Size()-start)
	clusters := (n + volume.ClusterSize - 1) / volume.ClusterSize
	dirty &= 1<<clusters - 1
	runs := clusterRuns(dirty)
	u.mu.Lock()
	frags := u.m.Fragments(k)
	u.mu.Unlock()
	whole := int64(bits.OnesCount64(dirty))*2 >= clusters || frags+len(runs) > maxPieces
	if whole {
		runs = []clusterRun{{0, clusters}}
	}
	// The runs that hold data are stored together as one object (one
	// file to create, one write), each a piece at its place in it.
	type part struct{ off, n, at int64 }
	var parts []part
	var used int64
	for _, r := range runs {
		off := r.first * volume.ClusterSize
		ln := min(n, (r.first+r.count)*volume.ClusterSize) - off
		p := buf[used : used+ln]
		if err := u.v.ReadSnapshotAt(u.snap, p, start+off); err != nil {
			return err
		}
		if chunk.IsZero(p) {
			u.mu.Lock()
			u.m.Patch(k, off, ln, chunk.ID{}, true)
			u.mu.Unlock()
			continue
		}
		parts = append(parts, part{off, ln, used})
		used += ln
	}
	// Runs copied from earlier chunks are not stored again: each part
	// may be cut into references and the runs between them, within the
	// chunk's piece budget. What is left is moved together (each copy
	// moves data down, so overlapping copies are safe).
	var refs []dedupRef
	spare := maxPieces - len(parts)
	if !whole {
		// Each run can also cut a piece of the parent into two.
		spare -= frags + len(parts)
	}
	if spare > 0 {
		stored := parts
		parts, used = nil, 0
		for _, p := range stored {
			found := u.idx.findCopies(u.v, u.snap, buf[p.at:p.at+p.n], scratch, u.m, &u.mu, 1+spare)
			if len(found) > 0 {
				spare -= len(found) + len(gaps(found, p.n)) - 1
			}
			for _, g := range gaps(found, p.n) {
				copy(buf[used:], buf[p.at+g[0]:p.at+g[0]+g[1]])
				parts = append(parts, part{p.off + g[0], g[1], used})
				used += g[1]
			}
			for _, r := range found {
				r.off += p.off
				refs = append(refs, r)
			}
		}
	}
	if len(parts) == 0 && len(refs) == 0 {
		return nil
	}
	var id chunk.ID
	if used > 0 {
		var err error
		if id, _, err = batch.Put(ctx, buf[:used]); err != nil {
			return err
		}
	}
	u.mu.Lock()
	for _, p := range parts {
		u.m.PatchFrom(k, p.off, p.n, id, p.at)
	}
	for _, r := range refs {
		u.m.PatchFrom(k, r.off, r.n, r.id, r.objOff)
	}
	u.mu.Unlock()
	// Only now, with the manifest saying where they are, may later
	// chunks find these blocks.
	for _, p := range parts {
		for b := int64(0); b+dedupBlock <= p.n; b += dedupBlock {
			if key := blockKey(buf[p.at+b:]); sampled(key) {
				u.idx.insert(key, (start+p.off+b)/dedupBlock)
			}
		}
	}
	return nil
}

// clusterRun is a run of consecutive dirty clusters of a chunk.
type clusterRun struct{ first, count int64 }

func clusterRuns(dirty uint64) []clusterRun {
	var out []clusterRun
	for dirty != 0 {
		first := int64(bits.TrailingZeros64(dirty))
		count := int64(bits.TrailingZeros64(^(dirty >> first)))
		out = append(out, clusterRun{first, count})
		if first+count >= 64 {
			break
		}
		dirty &^= (1<<count - 1) << first
	}
	return out
}

// parentManifest returns a copy of the parent's table to build on: an
// empty one for a disk without a parent, the disk's local copy of its
// last uploaded manifest, or the parent snapshot's stored manifest.
func (e *Engine) parentManifest(ctx context.Context, diskID, parent string, size int64) (*manifest.Manifest, error) {
	if parent == "" {
		return manifest.New(size, ChunkSize, ""), nil
	}
	m, err := e.readLocalManifest(diskID, "parent", parent)
	if err != nil {
		m, err = e.readLocalManifest(diskID, "base", parent)
	}
	if err != nil {
		m, err = e.loadManifest(ctx, parent)
	}
	if err != nil {
		return nil, err
	}
	if m.ChunkSize != ChunkSize {
		return nil, errors.New("parent manifest has another chunk size")
	}
	return m.Derive(size, parent), nil
}
