package engine

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/snapstack/snapstack/internal/blob/blobtest"
)

// TestRestoreStopsEarlierHydration: a second restore of a disk whose
// first restore still hydrates stops that hydration instead of waiting
// for all of it (Volume.Reset takes the lock Hydrate holds): the chunk
// store here never answers the first hydration's reads until the second
// restore is done, so waiting would hang. The disk then reads as the
// second snapshot.
func TestRestoreStopsEarlierHydration(t *testing.T) {
	f := newFixture(t)
	if err := f.e.CreateDisk(ctx, "d-1", diskSize, ""); err != nil {
		t.Fatal(err)
	}
	first := randBytes(51, diskSize)
	f.write("d-1", first, 0)
	f.snapshot("d-1", "s-1")
	second := randBytes(52, 1<<20)
	f.write("d-1", second, 0)
	f.snapshot("d-1", "s-2")
	release := make(chan struct{})
	f.blobs.SetFault(blobtest.OpGet, func(name string) error {
		if strings.HasPrefix(name, "chunks/") {
			select {
			case <-release:
			case <-time.After(time.Second): // bounded, so that a failure does not hang
			}
		}
		return nil
	})
	f.e.workers = 2
	if err := f.e.RestoreDisk(ctx, "d-1", "s-1"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- f.e.RestoreDisk(ctx, "d-1", "s-2") }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(4 * time.Second): // the whole hydration: 16 chunks of 1 s on 2 workers
		t.Fatal("the second restore waits for the first restore's hydration")
	}
	close(release)
	v, err := f.e.Volume("d-1")
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 2<<20)
	if _, err := v.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[:1<<20], second) || !bytes.Equal(got[1<<20:], first[1<<20:2<<20]) {
		t.Error("the disk does not read as the second snapshot")
	}
}
