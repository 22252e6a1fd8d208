package engine

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/snapstack/snapstack/internal/blob/blobtest"
)

// TestCloseDuringHydration: Engine.Close (service shutdown) stops a
// hydration after the reads in flight instead of waiting for the whole
// disk, and the next start resumes it to the same bytes.
func TestCloseDuringHydration(t *testing.T) {
	f := newFixture(t)
	if err := f.e.CreateDisk(ctx, "d-1", diskSize, ""); err != nil {
		t.Fatal(err)
	}
	f.write("d-1", randBytes(41, diskSize), 0)
	want := f.read("d-1")
	f.snapshot("d-1", "s-1")
	// A slow store: each chunk takes 1 s, the disk's 16 chunks several
	// seconds with the engine's workers; a stop should wait at most for
	// the reads in flight.
	f.blobs.SetFault(blobtest.OpGet, func(name string) error {
		if strings.HasPrefix(name, "chunks/") {
			time.Sleep(time.Second)
		}
		return nil
	})
	f.e.workers = 2
	if err := f.e.RestoreDisk(ctx, "d-1", "s-1"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // reads in flight
	closed := make(chan error, 1)
	go func() { closed <- f.e.Close() }()
	select {
	case <-closed:
	case <-time.After(3 * time.Second):
		start := time.Now()
		<-closed
		t.Fatalf("Engine.Close waited for the whole hydration (%.1f s in all) instead of stopping it", time.Since(start).Seconds()+3)
	}
	f.blobs.Clear()
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
	if !bytes.Equal(f.read("d-1"), want) {
		t.Fatal("disk differs after the resumed hydration")
	}
}
