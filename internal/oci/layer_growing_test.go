package oci

import (
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// TestGrowingFileFailsLayer: docs/compatibility.md says "a file that
// changes size ... while read fails the snapshot". A file that grew while
// it was read used to be cut silently at the size Lstat saw, and the layer
// reported good.
func TestGrowingFileFailsLayer(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(root, "db")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(64 << 20); err != nil { // sparse: cheap to create
		t.Fatal(err)
	}
	f.Close()
	var stop atomic.Bool
	done := make(chan struct{})
	go func() { // the instance keeps appending while the snapshot reads
		defer close(done)
		a, _ := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
		defer a.Close()
		for !stop.Load() {
			a.Write([]byte("x"))
			time.Sleep(50 * time.Microsecond)
		}
	}()
	time.Sleep(5 * time.Millisecond)
	_, err = WriteLayer(io.Discard, root, nil)
	stop.Store(true)
	<-done
	if err == nil {
		t.Fatal("the file grew while read, yet the layer was written without error (torn file in an Available snapshot)")
	}
}
