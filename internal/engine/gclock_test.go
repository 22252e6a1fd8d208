package engine

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/snapstack/snapstack/internal/blob/blobtest"
)

// TestRestoreNotBlockedByOtherUpload: a collection that starts while one
// disk uploads must not make a restore of another disk (ResetDisk,
// CreateDisk from a snapshot) wait for that upload. It did when Collect
// queued on the lock: sync.RWMutex lets no new reader in while a writer
// waits.
func TestRestoreNotBlockedByOtherUpload(t *testing.T) {
	f := newFixture(t)
	for _, d := range []string{"d-1", "d-2"} {
		if err := f.e.CreateDisk(ctx, d, diskSize, ""); err != nil {
			t.Fatal(err)
		}
	}
	f.write("d-2", randBytes(51, 1<<20), 0)
	f.snapshot("d-2", "s-2")

	// A long upload of d-1 (its chunk writes are slow).
	f.write("d-1", randBytes(52, 4<<20), 0)
	release := make(chan struct{})
	f.blobs.SetFault(blobtest.OpPut, func(name string) error {
		if strings.HasPrefix(name, "chunks/") {
			<-release
		}
		return nil
	})
	done := f.startSnapshot("d-1", "s-1")
	time.Sleep(100 * time.Millisecond)
	cctx, stop := context.WithCancel(ctx)
	collected := make(chan error, 1)
	go func() { _, err := f.e.Collect(cctx); collected <- err }() // the periodic collector fires
	time.Sleep(100 * time.Millisecond)

	restored := make(chan error, 1)
	go func() { restored <- f.e.RestoreDisk(ctx, "d-2", "s-2") }()
	select {
	case err := <-restored:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Second):
		close(release)
		<-done
		<-restored
		t.Fatal("RestoreDisk of d-2 waited for an unrelated upload of d-1 (collector queued on e.gc)")
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The collector runs once the upload is over, and keeps its chunks.
	if err := <-collected; err != nil {
		t.Fatalf("collect after the upload: %v", err)
	}
	stop()
	if _, err := f.e.Verify(ctx, "s-1"); err != nil {
		t.Fatal(err)
	}
}

// TestCollectGivesUpWithItsContext: a collector waiting for uploads
// returns when its context ends (service shutdown).
func TestCollectGivesUpWithItsContext(t *testing.T) {
	f := newFixture(t)
	f.e.gc.RLock() // an upload under way
	defer f.e.gc.RUnlock()
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := f.e.Collect(cctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("collect: %v", err)
	}
}
