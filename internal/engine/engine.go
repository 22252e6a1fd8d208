// Package engine is the data plane behind the snapshot core. This first
// engine keeps no bytes: disks are metadata only, so a snapshot has
// nothing to upload and is durable as soon as its point in time is
// fixed. The real engine (volumes, NBD, chunk store) replaces it behind
// the same interface (ecs.Engine).
package engine

import (
	"context"
	"sync"

	"github.com/snapstack/snapstack/internal/ecs"
)

// Null is an engine without data.
type Null struct {
	wg sync.WaitGroup
}

var _ ecs.Engine = (*Null)(nil)

// NewNull returns a Null engine.
func NewNull() *Null { return &Null{} }

// StartSnapshot reports the snapshot finished, from its own goroutine as
// an uploading engine would.
func (n *Null) StartSnapshot(ctx context.Context, job ecs.SnapshotJob, report func(ecs.Progress)) error {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		report(ecs.Progress{Done: 0, Total: 0, Finished: true})
	}()
	return nil
}

// RestoreDisk has nothing to copy.
func (n *Null) RestoreDisk(ctx context.Context, diskID, snapshotID string) error { return nil }

// DeleteSnapshot has nothing to release.
func (n *Null) DeleteSnapshot(ctx context.Context, snapshotID string) error { return nil }

// Close waits for the reports under way.
func (n *Null) Close() error {
	n.wg.Wait()
	return nil
}
