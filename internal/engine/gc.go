package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/snapstack/snapstack/internal/blob"
	"github.com/snapstack/snapstack/internal/chunk"
	"github.com/snapstack/snapstack/internal/manifest"
)

// collectRetry is how often Collect tries to start while uploads or
// restores hold the collector's lock.
const collectRetry = 50 * time.Millisecond

// Collect deletes every chunk that no manifest needs: neither a
// snapshot's, nor a disk's parent or base table. Uploads and restores
// wait while it runs, and it runs only when none is under way, so a chunk
// written by an upload whose manifest is not stored yet is never taken.
//
// It does not queue for the lock: a sync.RWMutex admits no new reader
// while a writer waits, so every new upload and restore would wait for
// the longest upload under way. It tries again every collectRetry until
// ctx ends; under uploads that never pause it does not run.
func (e *Engine) Collect(ctx context.Context) (removed int, err error) {
	for !e.gc.TryLock() {
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("collect: %w", ctx.Err())
		case <-time.After(collectRetry):
		}
	}
	defer e.gc.Unlock()
	live := map[chunk.ID]bool{}
	mark := func(m *manifest.Manifest) { m.IDs(func(id chunk.ID) { live[id] = true }) }
	ids, err := e.StoredSnapshots(ctx)
	if err != nil {
		return 0, fmt.Errorf("collect: %w", err)
	}
	for _, id := range ids {
		m, err := e.loadManifest(ctx, id)
		if errors.Is(err, blob.ErrNotFound) {
			continue // deleted since the listing
		}
		if err != nil {
			return 0, fmt.Errorf("collect: %w", err)
		}
		mark(m)
	}
	if err := e.localManifests(mark); err != nil {
		return 0, fmt.Errorf("collect: %w", err)
	}
	var dead []chunk.ID
	if err := e.chunks.List(ctx, func(id chunk.ID) error {
		if !live[id] {
			dead = append(dead, id)
		}
		return nil
	}); err != nil {
		return 0, fmt.Errorf("collect: %w", err)
	}
	for _, id := range dead {
		if err := e.chunks.Delete(ctx, id); err != nil {
			return removed, fmt.Errorf("collect: %w", err)
		}
		removed++
	}
	return removed, nil
}

// Verified counts what Verify checked.
type Verified struct {
	Chunks  int // data chunks of the snapshot whose every object is intact
	Objects int // distinct stored objects read intact (a chunk can be pieces of several; chunks can share one)
	Damaged int // data chunks with an object that is damaged, missing or unreadable
}

// ChunkProblem is a chunk of a snapshot whose data cannot be read back
// intact: one of its objects is damaged (Err wraps chunk.ErrCorrupt or
// chunk.ErrUnsupported), missing (blob.ErrNotFound) or unreadable.
type ChunkProblem struct {
	Index int64    // the chunk's index in the disk
	ID    chunk.ID // the object
	Err   error
}

func (p *ChunkProblem) Error() string {
	return fmt.Sprintf("chunk %d (object %s): %v", p.Index, p.ID, p.Err)
}

func (p *ChunkProblem) Unwrap() error { return p.Err }

// Public describes the problem for a client: what is wrong with which
// chunk, without the host's details (paths, system errors) that a
// storage error carries; those are for the service's log.
func (p *ChunkProblem) Public() string {
	switch {
	case errors.Is(p.Err, chunk.ErrCorrupt), errors.Is(p.Err, chunk.ErrUnsupported):
		// The chunk package's errors name the object and what is wrong
		// with its bytes, nothing of the host.
		return fmt.Sprintf("chunk %d: %v", p.Index, p.Err)
	case errors.Is(p.Err, blob.ErrNotFound):
		return fmt.Sprintf("chunk %d: object %s is missing from the store", p.Index, p.ID)
	}
	return fmt.Sprintf("chunk %d: object %s could not be read (the service log has the cause)", p.Index, p.ID)
}

// Verify re-reads every chunk of a snapshot, checking each object it is
// made of against its checksum and ID (each object once). It goes on past
// damaged chunks, counting them, and returns the first as a *ChunkProblem;
// other errors: ErrNoSnapshotData (no manifest), a damaged manifest, or
// the context's.
func (e *Engine) Verify(ctx context.Context, snapshotID string) (Verified, error) {
	var v Verified
	m, err := e.loadManifest(ctx, snapshotID)
	switch {
	case errors.Is(err, blob.ErrNotFound), errors.Is(err, blob.ErrInvalidName):
		// An ID that cannot name a manifest (client input) has none.
		return v, fmt.Errorf("%w: %w", ErrNoSnapshotData, err)
	case err != nil:
		return v, err
	}
	read := map[chunk.ID]error{} // objects read, and what was wrong with each (nil: intact)
	var first *ChunkProblem
	var ps []manifest.Piece
	for _, k := range m.Indices() {
		ps = m.Pieces(k, ps[:0])
		var problem error
		var at chunk.ID
		for _, p := range ps {
			perr, seen := read[p.ID]
			if !seen {
				if _, perr = e.chunks.Get(ctx, p.ID); perr != nil && ctx.Err() != nil {
					return v, ctx.Err()
				}
				read[p.ID] = perr
				if perr == nil {
					v.Objects++
				}
			}
			if perr != nil && problem == nil {
				problem, at = perr, p.ID
			}
		}
		if problem == nil {
			v.Chunks++
			continue
		}
		v.Damaged++
		if first == nil {
			first = &ChunkProblem{Index: k, ID: at, Err: problem}
		}
	}
	if first != nil {
		return v, first
	}
	return v, nil
}
