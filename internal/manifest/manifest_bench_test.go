package manifest

import (
	"math/rand/v2"
	"testing"

	"github.com/snapstack/snapstack/internal/chunk"
)

// Micro-benchmarks of the manifest, which every upload derives from its
// parent, fills and encodes, and every restore decodes: at the benchmark
// workload's size (4 GiB, 3,017 of 4,096 chunks holding data), a 1 TiB
// disk with 1% of its chunks written, and a full 1 TiB disk. b.SetBytes is
// the encoded size.

var benchShapes = []struct {
	name    string
	size    int64
	entries int
}{
	{"4GiB-3017", 4 << 30, 3017},
	{"1TiB-1pct", 1 << 40, 10486},
	{"1TiB-full", 1 << 40, 1 << 20},
}

// benchManifest has n entries with distinct IDs at random chunk indices.
func benchManifest(size int64, n int) *Manifest {
	const chunkSize = 1 << 20
	m := New(size, chunkSize, "s-parent0000000000000")
	r := rand.New(rand.NewPCG(uint64(n), 1))
	chunks := size / chunkSize
	for m.Len() < n {
		var id chunk.ID
		for i := range id {
			id[i] = byte(r.Uint32())
		}
		m.Set(r.Int64N(chunks), id)
	}
	return m
}

func BenchmarkManifestEncode(b *testing.B) {
	for _, s := range benchShapes {
		b.Run(s.name, func(b *testing.B) {
			m := benchManifest(s.size, s.entries)
			b.SetBytes(int64(len(m.Encode())))
			b.ReportAllocs()
			for b.Loop() {
				m.Encode()
			}
		})
	}
}

func BenchmarkManifestDecode(b *testing.B) {
	for _, s := range benchShapes {
		b.Run(s.name, func(b *testing.B) {
			raw := benchManifest(s.size, s.entries).Encode()
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Decode(raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkManifestDerive is the copy of the parent's table an upload
// starts from.
func BenchmarkManifestDerive(b *testing.B) {
	for _, s := range benchShapes {
		b.Run(s.name, func(b *testing.B) {
			m := benchManifest(s.size, s.entries)
			b.ReportAllocs()
			for b.Loop() {
				m.Derive(s.size, "s-child")
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(s.entries), "ns/entry")
		})
	}
}

// BenchmarkManifestGet is the lookup a lazily read base does per chunk.
func BenchmarkManifestGet(b *testing.B) {
	m := benchManifest(4<<30, 3017)
	r := rand.New(rand.NewPCG(9, 9))
	keys := make([]int64, 4096)
	for i := range keys {
		keys[i] = r.Int64N(4096)
	}
	for i := 0; b.Loop(); i++ {
		m.Whole(keys[i%len(keys)])
	}
}

// BenchmarkManifestIndices is the sorted list of data chunks a restore
// hands to hydration.
func BenchmarkManifestIndices(b *testing.B) {
	for _, s := range benchShapes[:2] {
		b.Run(s.name, func(b *testing.B) {
			m := benchManifest(s.size, s.entries)
			b.ReportAllocs()
			for b.Loop() {
				m.Indices()
			}
		})
	}
}
