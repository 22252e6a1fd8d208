package engine

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/snapstack/snapstack/internal/blob/blobtest"
)

// TestHydrationProgressSurvivesRestart: a hydration stopped by Close keeps
// what it copied (the bottom layer is flushed on the way out, and every
// hydrateFlushEvery chunks against a crash), so the next start fetches
// only the rest. It used to flush only when the whole base was copied,
// so on a large disk restored from a remote store frequent restarts
// meant the hydration never ended.
func TestHydrationProgressSurvivesRestart(t *testing.T) {
	f := newFixture(t)
	if err := f.e.CreateDisk(ctx, "d-1", diskSize, ""); err != nil {
		t.Fatal(err)
	}
	f.write("d-1", randBytes(41, diskSize), 0)
	f.snapshot("d-1", "s-1")
	var gets atomic.Int32
	f.blobs.SetFault(blobtest.OpGet, func(name string) error {
		if strings.HasPrefix(name, "chunks/") {
			gets.Add(1)
			time.Sleep(50 * time.Millisecond)
		}
		return nil
	})
	f.e.workers = 2
	if err := f.e.RestoreDisk(ctx, "d-1", "s-1"); err != nil {
		t.Fatal(err)
	}
	for gets.Load() < 12 { // 12 of the 16 chunks fetched
		time.Sleep(5 * time.Millisecond)
	}
	f.e.Close()
	gets.Store(0)
	f.reopen() // resumes the hydration
	v, err := f.e.Volume("d-1")
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); v.BaseID() != ""; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("hydration not resumed")
		}
	}
	if n := gets.Load(); n > 8 {
		t.Fatalf("the resumed hydration fetched %d of 16 chunks again; about 10 were hydrated before the stop", n)
	}
}
