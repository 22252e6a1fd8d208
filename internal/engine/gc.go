package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
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
	err = e.blobs.List(ctx, "manifests/", func(name string) error {
		m, err := e.loadManifest(ctx, strings.TrimPrefix(name, "manifests/"))
		if errors.Is(err, blob.ErrNotFound) {
			return nil // deleted since the listing
		}
		if err != nil {
			return err
		}
		mark(m)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("collect: %w", err)
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
	Objects int // distinct stored objects read (a chunk can be pieces of several; chunks can share one)
}

// Verify re-reads every chunk of a snapshot, checking each object it is
// made of against its checksum and ID (each object once), and returns
// what it checked before the first problem, and that problem.
func (e *Engine) Verify(ctx context.Context, snapshotID string) (Verified, error) {
	var v Verified
	m, err := e.loadManifest(ctx, snapshotID)
	if err != nil {
		return v, fmt.Errorf("%w: %w", ErrNoSnapshotData, err)
	}
	seen := map[chunk.ID]bool{}
	var ps []manifest.Piece
	for _, k := range m.Indices() {
		ps = m.Pieces(k, ps[:0])
		for _, p := range ps {
			if seen[p.ID] {
				continue
			}
			seen[p.ID] = true
			if _, err := e.chunks.Get(ctx, p.ID); err != nil {
				return v, fmt.Errorf("chunk %d of %s: %w", k, snapshotID, err)
			}
			v.Objects++
		}
		v.Chunks++
	}
	return v, nil
}
