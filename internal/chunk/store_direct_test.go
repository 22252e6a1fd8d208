package chunk

import (
	"bytes"
	"context"
	"math/rand/v2"
	"testing"

	"github.com/snapstack/snapstack/internal/blob/local"
)

// Batch puts of mixed sizes (raw and compressed, aligned or not to 4 KiB,
// shrinking and growing) through the O_DIRECT in-place path read back
// exactly.
func TestBatchDirectMixedSizes(t *testing.T) {
	ctx := context.Background()
	b, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewStore(b, DefaultCompression)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	batch := s.NewBatch()
	var datas [][]byte
	for _, n := range []int{1, 4096, 4096 - Overhead, 5000, MaxSize, 100, MaxSize - 17, 0, 64 << 10, 3} {
		for _, compressible := range []bool{false, true} {
			d := make([]byte, n)
			for i := range d {
				if compressible {
					d[i] = byte(i / 100)
				} else {
					d[i] = byte(r.Uint32())
				}
			}
			if _, _, err := batch.Put(ctx, d); err != nil {
				t.Fatal(err)
			}
			datas = append(datas, d)
		}
	}
	if err := batch.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	for _, d := range datas {
		got, err := s.Get(ctx, Sum(d))
		if err != nil || !bytes.Equal(got, d) {
			t.Fatalf("%d bytes: got %d, %v", len(d), len(got), err)
		}
	}
}
