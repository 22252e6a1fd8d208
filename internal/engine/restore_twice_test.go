package engine

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/snapstack/snapstack/internal/blob/blobtest"
)

// TestRestoreTwiceKeepsBaseTable: ResetDisk to the same snapshot while
// the first restore still hydrates. The first hydration, when it ended,
// used to remove base-<snap>.manifest, which the second restore had just
// rewritten and whose base the volume read again: the second hydration
// could not start, and after a restart the volume could not be opened.
func TestRestoreTwiceKeepsBaseTable(t *testing.T) {
	f := newFixture(t)
	if err := f.e.CreateDisk(ctx, "d-1", diskSize, ""); err != nil {
		t.Fatal(err)
	}
	f.write("d-1", randBytes(31, 4<<20), 0)
	want := f.read("d-1")
	f.snapshot("d-1", "s-1")

	release := make(chan struct{})
	f.blobs.SetFault(blobtest.OpGet, func(name string) error {
		if strings.HasPrefix(name, "chunks/") {
			<-release
		}
		return nil
	})
	if err := f.e.RestoreDisk(ctx, "d-1", "s-1"); err != nil {
		t.Fatal(err)
	}
	second := make(chan error, 1)
	go func() { second <- f.e.RestoreDisk(ctx, "d-1", "s-1") }()
	time.Sleep(100 * time.Millisecond) // the second restore waits for the first hydration
	close(release)
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	f.blobs.Clear()
	time.Sleep(200 * time.Millisecond)
	v, _ := f.e.Volume("d-1")
	if v.BaseID() != "" {
		if _, err := os.Stat(f.e.localManifestPath("d-1", "base", "s-1")); err != nil {
			t.Errorf("volume still reads base s-1 but its table is gone: %v", err)
		}
	}
	f.reopen()
	if _, err := f.e.Volume("d-1"); err != nil {
		t.Fatalf("after a restart the disk cannot be opened: %v", err)
	}
	if !bytes.Equal(f.read("d-1"), want) {
		t.Fatal("disk differs")
	}
}
