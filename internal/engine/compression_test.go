package engine

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/snapstack/snapstack/internal/chunk"
)

// logLines is compressible data: numbered log lines.
func logLines(seed, n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "2026-11-25T10:%02d:%02d host-%d sshd[%d]: accepted publickey for user%d\n", i/60%60, i%60, seed, 1000+i*7%997, i%13)
	}
	return b.Bytes()[:n]
}

// storedCompressions counts the stored chunk objects by compression.
func (f *fixture) storedCompressions() map[chunk.Compression]int {
	f.t.Helper()
	n := map[chunk.Compression]int{}
	err := f.blobs.Inner().List(ctx, "chunks/", func(name string) error {
		obj, err := f.blobs.Inner().Get(ctx, name)
		if err != nil {
			return err
		}
		if !strings.HasPrefix(string(obj), chunk.Magic) || len(obj) < chunk.Overhead {
			f.t.Fatalf("object %s is not a chunk", name)
		}
		n[chunk.Compression(obj[5])]++
		return nil
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return n
}

// TestCompressionChangeKeepsChunksReadable: a store written with zstd (the
// only compression before S2) keeps restoring after the service writes new
// chunks with S2, and an incremental snapshot mixes both.
func TestCompressionChangeKeepsChunksReadable(t *testing.T) {
	f := newFixture(t)
	f.compression = chunk.CompressionZstd
	f.reopen()
	if err := f.e.CreateDisk(ctx, "d-1", 4<<20, ""); err != nil {
		t.Fatal(err)
	}
	f.write("d-1", logLines(1, 4<<20), 0)
	img1 := f.read("d-1")
	f.snapshot("d-1", "s-1")
	if got := f.storedCompressions(); got[chunk.CompressionZstd] != 4 || len(got) != 1 {
		t.Fatalf("written with zstd: chunks by compression %v, want 4 zstd", got)
	}

	f.compression = chunk.CompressionS2
	f.reopen()
	f.write("d-1", logLines(2, 1<<20), 1<<20)
	img2 := f.read("d-1")
	f.snapshot("d-1", "s-2")
	if got := f.storedCompressions(); got[chunk.CompressionZstd] != 4 || got[chunk.CompressionS2] != 1 {
		t.Fatalf("after the switch to s2: chunks by compression %v, want 4 zstd and 1 s2", got)
	}
	f.restoresTo("d-2", "s-1", 4<<20, img1)
	f.restoresTo("d-3", "s-2", 4<<20, img2)
}
