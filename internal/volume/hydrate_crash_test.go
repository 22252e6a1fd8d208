package volume

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// countingBase is a memBase that counts its reads.
type countingBase struct {
	memBase
	reads *atomic.Int64
}

func (b *countingBase) ReadAt(p []byte, off int64) error {
	b.reads.Add(1)
	return b.memBase.ReadAt(p, off)
}

// TestHydrationProgressSurvivesKill: a hydration makes what it copied
// durable every hydrateFlushEvery chunks, so that after a kill -9 (the
// files as the kernel has them at that instant, page cache included) the
// resumed hydration reads from the base only what was not flushed, and
// the volume reads the base's bytes throughout.
func TestHydrationProgressSurvivesKill(t *testing.T) {
	const chunks = hydrateFlushEvery + 144
	const size = chunks * ClusterSize
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i*13 + i>>16)
	}
	var reads atomic.Int64
	opener := func(id string) (Base, error) {
		if id != "s-base" {
			return nil, errors.New("unknown")
		}
		return &countingBase{memBase{data}, &reads}, nil
	}
	v := newVol(t, size, opener)
	if err := v.Reset("s-base"); err != nil {
		t.Fatal(err)
	}
	want := make([]int64, chunks)
	for i := range want {
		want[i] = int64(i)
	}
	held, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- v.Hydrate(context.Background(), "s-base", ClusterSize, want, 1, func(n int) {
			if n == hydrateFlushEvery+20 {
				close(held)
				<-release
			}
		})
	}()
	<-held
	// The kill: the volume's files as they are now, the hydration's
	// later writes and flushes left out.
	crash := filepath.Join(t.TempDir(), "vol")
	if err := os.CopyFS(crash, os.DirFS(v.Dir())); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	v2, err := Open(crash, opener)
	if err != nil {
		t.Fatalf("open after the kill: %v", err)
	}
	t.Cleanup(func() { v2.Close() })
	if v2.BaseID() != "s-base" {
		t.Fatalf("after the kill the base is %q", v2.BaseID())
	}
	reads.Store(0)
	if err := v2.Hydrate(context.Background(), "s-base", ClusterSize, want, 1, nil); err != nil {
		t.Fatal(err)
	}
	if n := reads.Load(); n > chunks-hydrateFlushEvery {
		t.Errorf("the resumed hydration read %d chunks from the base; %d were flushed before the kill, %d were not",
			n, hydrateFlushEvery, chunks-hydrateFlushEvery)
	}
	if got := read(t, v2, 0, size); !bytes.Equal(got, data) {
		t.Fatal("the volume hydrated after the kill differs from the base")
	}
}
