package ecs

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"

	"github.com/snapstack/snapstack/internal/clock"
	"github.com/snapstack/snapstack/internal/meta"
	"github.com/snapstack/snapstack/internal/meta/sqlstore"
)

// recordingEngine records DeleteSnapshot calls; the rest does nothing.
type recordingEngine struct {
	mu      sync.Mutex
	deleted []string
	stored  []string // what StoredSnapshots answers
}

func (e *recordingEngine) CreateDisk(context.Context, string, int64, string) error { return nil }
func (e *recordingEngine) DeleteDisk(context.Context, string) error                { return nil }
func (e *recordingEngine) DiskOffline(string)                                      {}
func (e *recordingEngine) StartSnapshot(context.Context, SnapshotJob, func(Progress)) error {
	return nil
}
func (e *recordingEngine) RestoreDisk(context.Context, string, string) error { return nil }
func (e *recordingEngine) StoredDisks(context.Context) ([]string, error)     { return nil, nil }
func (e *recordingEngine) StoredSnapshots(context.Context) ([]string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stored, nil
}
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

// TestReleaseOrphans: stored data whose snapshot record is gone (a crash
// between DeleteSnapshot's commit and the release) is released; data of
// a recorded snapshot, of any product, is not.
func TestReleaseOrphans(t *testing.T) {
	ctx := context.Background()
	store, err := sqlstore.OpenSQLite(ctx, filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	eng := &recordingEngine{stored: []string{"s-live", "s-orphan", "s-eds"}}
	s, err := New(store, eng, clock.Real{}, DefaultConfig(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	acc, err := s.EnsureRootAccount(ctx, "LTAIreleaseorphans01", "secret-secret-secret")
	if err != nil {
		t.Fatal(err)
	}
	err = store.Update(ctx, func(tx meta.Tx) error {
		if err := tx.PutSnapshot(&meta.Snapshot{ID: "s-live", AccountID: acc, RegionID: "cn-hangzhou", Status: SnapAccomplished}); err != nil {
			return err
		}
		return tx.PutSnapshot(&meta.Snapshot{ID: "s-eds", AccountID: acc, Product: "ecd", RegionID: "cn-hangzhou", Status: SnapAccomplished})
	})
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.ReleaseOrphans(ctx)
	if err != nil || n != 1 {
		t.Fatalf("ReleaseOrphans = %d, %v; want 1", n, err)
	}
	if len(eng.deleted) != 1 || eng.deleted[0] != "s-orphan" {
		t.Fatalf("released %v, want [s-orphan]", eng.deleted)
	}
}
