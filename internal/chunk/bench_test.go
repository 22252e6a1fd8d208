package chunk

import (
	"context"
	"encoding/binary"
	"testing"

	"github.com/snapstack/snapstack/internal/blob"
	"github.com/snapstack/snapstack/internal/blob/mem"
)

// discard is a backend that holds nothing, so that Put benchmarks measure
// hashing, compression and encoding rather than memory growth.
type discard struct{}

func (discard) Put(context.Context, string, []byte) error   { return nil }
func (discard) Get(context.Context, string) ([]byte, error) { return nil, blob.ErrNotFound }
func (discard) Stat(context.Context, string) (int64, error) { return 0, blob.ErrNotFound }
func (discard) Delete(context.Context, string) error        { return nil }
func (discard) List(context.Context, string, func(string) error) error {
	return nil
}

var benchData = map[string]func(uint64, int) []byte{"compressible": compressible, "random": random}

func BenchmarkPut1MiB(b *testing.B) {
	ctx := context.Background()
	for _, kind := range []string{"compressible", "random"} {
		b.Run(kind, func(b *testing.B) {
			s, err := NewStore(discard{}, DefaultCompression)
			if err != nil {
				b.Fatal(err)
			}
			data := benchData[kind](1, 1<<20)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				binary.LittleEndian.PutUint64(data, uint64(i)) // a new chunk every time
				if _, written, err := s.Put(ctx, data); err != nil || !written {
					b.Fatal(written, err)
				}
			}
		})
	}
}

func BenchmarkGet1MiB(b *testing.B) {
	ctx := context.Background()
	for _, kind := range []string{"compressible", "random"} {
		b.Run(kind, func(b *testing.B) {
			s, err := NewStore(mem.New(), DefaultCompression)
			if err != nil {
				b.Fatal(err)
			}
			id, _, err := s.Put(ctx, benchData[kind](1, 1<<20))
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(1 << 20)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Get(ctx, id); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSum1MiB(b *testing.B) {
	data := random(1, 1<<20)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		Sum(data)
	}
}

func BenchmarkIsZero1MiB(b *testing.B) {
	data := make([]byte, 1<<20)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if !IsZero(data) {
			b.Fatal("not zero")
		}
	}
}
