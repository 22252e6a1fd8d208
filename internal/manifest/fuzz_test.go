package manifest

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/snapstack/snapstack/internal/chunk"
)

// FuzzDecode feeds Decode bodies with a valid checksum, so that the
// fuzzer explores the parser behind it (a manifest is read from a store
// that another process, or a damaged disk, may have written): Decode must
// never panic, and what it accepts must satisfy the invariants the engine
// relies on and survive an encode/decode round trip unchanged.
func FuzzDecode(f *testing.F) {
	seed := New(8<<20, 1<<20, "s-parent")
	seed.Set(0, chunk.Sum([]byte("a")))
	seed.Patch(3, 4096, 65536, chunk.Sum([]byte("b")), false)
	seed.PatchFrom(3, 1<<19, 4096, chunk.Sum([]byte("c")), 8192)
	raw := seed.Encode()
	f.Add(raw[:len(raw)-32])
	f.Add(New(0, 1<<20, "").Encode()[:len(New(0, 1<<20, "").Encode())-32])
	f.Fuzz(func(t *testing.T, body []byte) {
		sum := chunk.Sum(body)
		m, err := Decode(append(bytes.Clone(body), sum[:]...))
		if err != nil {
			return
		}
		if m.Size < 0 || m.ChunkSize <= 0 {
			t.Fatalf("accepted size %d, chunk size %d", m.Size, m.ChunkSize)
		}
		chunks := (m.Size + m.ChunkSize - 1) / m.ChunkSize
		var buf []Piece
		for _, k := range m.Indices() {
			if k < 0 || k >= chunks {
				t.Fatalf("chunk %d outside the disk's %d chunks", k, chunks)
			}
			if _, ok := m.Whole(k); ok {
				continue
			}
			buf = m.Pieces(k, buf[:0])
			if len(buf) == 0 {
				t.Fatalf("chunk %d: split entry without pieces", k)
			}
			end := int64(0)
			for _, p := range buf {
				if p.Len == 0 || int64(p.Off) < end || int64(p.Off)+int64(p.Len) > m.chunkLen(k) {
					t.Fatalf("chunk %d: piece %+v out of order or outside the chunk", k, p)
				}
				end = int64(p.Off) + int64(p.Len)
			}
		}
		again := m.Encode()
		m2, err := Decode(again)
		if err != nil {
			t.Fatalf("re-encoded manifest does not decode: %v", err)
		}
		if !bytes.Equal(m2.Encode(), again) {
			t.Fatal("encode/decode is not a fixed point")
		}
		if body[4] == version && !bytes.Equal(again[:len(again)-32], body) {
			t.Fatal("a version 2 manifest re-encodes differently")
		}
	})
}

// TestDecodeRejectsNegativeSize: a size above 2^63 would wrap to a
// negative disk size.
func TestDecodeRejectsNegativeSize(t *testing.T) {
	raw := New(1<<20, 1<<20, "").Encode()
	body := bytes.Clone(raw[:len(raw)-32])
	binary.LittleEndian.PutUint64(body[5:], 1<<63)
	sum := chunk.Sum(body)
	if _, err := Decode(append(body, sum[:]...)); err == nil {
		t.Fatal("negative size accepted")
	}
}
