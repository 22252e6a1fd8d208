package ecs

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"

	"github.com/snapstack/snapstack/internal/clock"
	"github.com/snapstack/snapstack/internal/meta/sqlstore"
)

// recordingEngine records DeleteSnapshot calls; the rest does nothing.
type recordingEngine struct {
	mu      sync.Mutex
	deleted []string
}

func (e *recordingEngine) CreateDisk(context.Context, string, int64, string) error { return nil }
func (e *recordingEngine) DeleteDisk(context.Context, string) error                { return nil }
func (e *recordingEngine) DiskOffline(string)                                      {}
func (e *recordingEngine) StartSnapshot(context.Context, SnapshotJob, func(Progress)) error {
	return nil
}
func (e *recordingEngine) RestoreDisk(context.Context, string, string) error { return nil }
func (e *recordingEngine) DeleteSnapshot(_ context.Context, id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.deleted = append(e.deleted, id)
	return nil
}

// TestFinishedUploadOfDeletedSnapshotIsReleased: an upload that ends after
// its snapshot was deleted (it stored its manifest after DeleteSnapshot
// released the data, or it was started just after the delete) has what
// it stored released; progress reports before the end release nothing.
func TestFinishedUploadOfDeletedSnapshotIsReleased(t *testing.T) {
	store, err := sqlstore.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	eng := &recordingEngine{}
	s, err := New(store, eng, clock.Real{}, DefaultConfig(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	report := s.reporter("acc-1", "s-gone")
	report(Progress{Done: 1, Total: 2})
	if len(eng.deleted) != 0 {
		t.Fatalf("released on a progress report: %v", eng.deleted)
	}
	report(Progress{Done: 2, Total: 2, Finished: true})
	if len(eng.deleted) != 1 || eng.deleted[0] != "s-gone" {
		t.Fatalf("released after the end: %v, want [s-gone]", eng.deleted)
	}
}
