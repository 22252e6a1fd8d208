package oci

import (
	"context"
	"errors"
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
	_, err = WriteLayer(context.Background(), io.Discard, root, nil)
	stop.Store(true)
	<-done
	if err == nil {
		t.Fatal("the file grew while read, yet the layer was written without error (torn file in an Available snapshot)")
	}
}

// TestWriteLayerStopsWithItsContext: a layer being written stops when
// its context ends (the snapshot was deleted, the service stops), also in
// the middle of a large file.
func TestWriteLayerStopsWithItsContext(t *testing.T) {
	root := t.TempDir()
	f, err := os.Create(filepath.Join(root, "big"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 30); err != nil {
		t.Fatal(err)
	}
	f.Close()
	ctx, cancel := context.WithCancel(context.Background())
	w := &cancelAfter{n: 8 << 20, cancel: cancel}
	if _, err := WriteLayer(ctx, w, root, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("WriteLayer after its context ended: %v", err)
	}
	if w.written > 16<<20 {
		t.Fatalf("%d bytes written after the context ended at 8 MiB", w.written)
	}
}

// cancelAfter is a writer that cancels a context after n bytes.
type cancelAfter struct {
	n, written int
	cancel     func()
}

func (c *cancelAfter) Write(p []byte) (int, error) {
	c.written += len(p)
	if c.written >= c.n {
		c.cancel()
	}
	return len(p), nil
}
