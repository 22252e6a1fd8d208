package engine

import (
	"context"
	"errors"
	"fmt"
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
	m, err := e.parentManifest(ctx, job.DiskID, ch.Parent, v.Size())
	if err != nil {
		// Without the parent's table every chunk has to be read.
		e.log.Warn("parent manifest unavailable, uploading every chunk", "snapshot", job.SnapshotID, "parent", ch.Parent, "err", err)
		m = manifest.New(v.Size(), ChunkSize, ch.Parent)
		ch.Chunks = ch.Chunks[:0]
		for k := int64(0); k*ChunkSize < v.Size(); k++ {
			ch.Chunks = append(ch.Chunks, k)
		}
	}
	m.Parent = ch.Parent
	total = int64(len(ch.Chunks))
	report(ecs.Progress{Total: total})

	e.gc.RLock()
	defer e.gc.RUnlock()
	var count atomic.Int64
	var mu sync.Mutex
	work := make(chan int64)
	errc := make(chan error, e.workers)
	var wg sync.WaitGroup
	for w := 0; w < e.workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, ChunkSize)
			// Chunks are made durable in batches (one file-system flush
			// per batch instead of one per chunk); the manifest is stored
			// only after every batch committed.
			batch := e.chunks.NewBatch()
			defer batch.Abort()
			for k := range work {
				n := min(int64(ChunkSize), v.Size()-k*ChunkSize)
				p := buf[:n]
				if err := v.ReadSnapshotAt(job.SnapshotID, p, k*ChunkSize); err != nil {
					errc <- err
					return
				}
				var id chunk.ID
				zero := chunk.IsZero(p)
				if !zero {
					var perr error
					if id, _, perr = batch.Put(ctx, p); perr != nil {
						errc <- perr
						return
					}
					if batch.Len() >= uploadBatch {
						if err := batch.Commit(ctx); err != nil {
							errc <- err
							return
						}
					}
				}
				mu.Lock()
				if zero {
					m.Clear(k)
				} else {
					m.Set(k, id)
				}
				mu.Unlock()
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
	for _, k := range ch.Chunks {
		select {
		case work <- k:
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
	if err := e.writeLocalManifest(job.DiskID, "parent", job.SnapshotID, m); err != nil {
		return total, total, err
	}
	if err := v.MarkUploaded(job.SnapshotID); err != nil {
		return total, total, err
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
	return total, total, nil
}

// uploadBatch is how many new chunks a worker writes between two flushes.
const uploadBatch = 64

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
