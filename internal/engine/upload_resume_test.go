package engine

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/snapstack/snapstack/internal/blob/blobtest"

	"github.com/snapstack/snapstack/internal/volume"
)

// TestFallbackUploadKeepsData: when the parent's table cannot be found
// (local copy gone, parent snapshot deleted), upload falls back to
// reading every chunk, whole, into a fresh manifest. It used to keep the
// dirty clusters of the incremental change set: chunks were stored as
// pieces of those clusters only, the rest of each chunk read as zeroes
// (and with more chunks than changed ones, the worker panicked).
func TestFallbackUploadKeepsData(t *testing.T) {
	f := newFixture(t)
	const size = 2 << 20 // two chunks, both changed below: no panic, only wrong data
	if err := f.e.CreateDisk(ctx, "d-1", size, ""); err != nil {
		t.Fatal(err)
	}
	f.write("d-1", randBytes(21, size), 0)
	f.snapshot("d-1", "s-1")
	// The parent becomes unavailable (e.g. the local copy lost in a crash
	// window and the parent snapshot deleted by retention).
	os.Remove(f.e.localManifestPath("d-1", "parent", "s-1"))
	if err := f.e.DeleteSnapshot(ctx, "s-1"); err != nil {
		t.Fatal(err)
	}
	f.write("d-1", []byte("a"), 0)
	f.write("d-1", []byte("b"), ChunkSize+volume.ClusterSize)
	want := f.read("d-1")
	f.snapshot("d-1", "s-2")
	if err := f.e.CreateDisk(ctx, "d-2", size, "s-2"); err != nil {
		t.Fatal(err)
	}
	if got := f.read("d-2"); !bytes.Equal(got, want) {
		n := 0
		for i := range got {
			if got[i] != want[i] {
				n++
			}
		}
		t.Fatalf("snapshot s-2 (accomplished) restores %d wrong bytes out of %d", n, len(got))
	}
}

// TestResumeAfterStoredManifestFinishesBookkeeping: a restart after the
// manifest is stored but before the disk's parent table is written and
// its layer marked uploaded (here: the manifest's Put takes effect, then
// fails, as a crash would cut the upload) must not leave the next
// snapshot without its parent: resuming finishes the bookkeeping.
func TestResumeAfterStoredManifestFinishesBookkeeping(t *testing.T) {
	f := newFixture(t)
	const size = 4 << 20
	if err := f.e.CreateDisk(ctx, "d-1", size, ""); err != nil {
		t.Fatal(err)
	}
	f.write("d-1", randBytes(22, size), 0)
	f.blobs.SetFaultAfter(blobtest.OpPut, func(name string) error {
		if strings.HasPrefix(name, "manifests/") {
			return blobtest.ErrInjected
		}
		return nil
	})
	done := f.startSnapshot("d-1", "s-1")
	if err := <-done; !errors.Is(err, blobtest.ErrInjected) {
		t.Fatalf("upload: %v", err)
	}
	f.blobs.Clear()
	f.reopen()
	f.snapshot("d-1", "s-1") // resumed: the manifest is stored
	if _, err := os.Stat(f.e.localManifestPath("d-1", "parent", "s-1")); err != nil {
		t.Fatalf("resumed snapshot is not the disk's parent: %v", err)
	}
	f.write("d-1", []byte("x"), 5)
	want := f.read("d-1")
	f.snapshot("d-1", "s-2")
	m, err := f.e.loadManifest(ctx, "s-2")
	if err != nil {
		t.Fatal(err)
	}
	if m.Parent != "s-1" {
		t.Fatalf("s-2's parent is %q", m.Parent)
	}
	if err := f.e.CreateDisk(ctx, "d-2", size, "s-2"); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(f.read("d-2"), want) {
		t.Fatal("s-2 restores other bytes")
	}
}
