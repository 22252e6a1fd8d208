package volume

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
)

// Micro-benchmarks of cluster map lookups on a layered chain: a 4 GiB
// volume with 1, 8 or 32 sealed layers (never uploaded, so never merged),
// each holding 512 random clusters, under a head holding 512 more. A read
// walks the chain top-down per 64 KiB cluster; a partial write to a
// cluster the head lacks first copies the cluster from below. The files
// are in the page cache, so this is the cost of the maps and the copies.

const chainSize = 4 << 30

// benchChain builds the volume; layers is the number of sealed layers.
func benchChain(b *testing.B, layers int) *Volume {
	b.Helper()
	v, err := Create(filepath.Join(b.TempDir(), "vol"), chainSize, func(string) (Base, error) { return nil, ErrBaseLost })
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { v.Close() })
	r := rand.New(rand.NewPCG(uint64(layers), 3))
	buf := make([]byte, ClusterSize)
	for l := 0; l <= layers; l++ {
		for i := 0; i < 512; i++ {
			buf[0], buf[1] = byte(l), byte(i)
			if _, err := v.WriteAt(buf, r.Int64N(chainSize/ClusterSize)*ClusterSize); err != nil {
				b.Fatal(err)
			}
		}
		if l < layers {
			if err := v.Seal(fmt.Sprintf("s-%03d", l)); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := v.Flush(); err != nil {
		b.Fatal(err)
	}
	return v
}

func BenchmarkChainReadAt(b *testing.B) {
	for _, layers := range []int{1, 8, 32} {
		v := benchChain(b, layers)
		for _, n := range []int{4 << 10, 1 << 20} {
			b.Run(fmt.Sprintf("layers=%d/%dKiB-random", layers, n>>10), func(b *testing.B) {
				r := rand.New(rand.NewPCG(1, 1))
				p := make([]byte, n)
				b.SetBytes(int64(n))
				for b.Loop() {
					off := r.Int64N(chainSize/int64(n)) * int64(n)
					if _, err := v.ReadAt(p, off); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkChainWriteAt writes 4 KiB at random: most land in a cluster
// the head does not hold yet (copy-on-write from the chain).
func BenchmarkChainWriteAt(b *testing.B) {
	for _, layers := range []int{1, 8} {
		v := benchChain(b, layers)
		b.Run(fmt.Sprintf("layers=%d/4KiB-random", layers), func(b *testing.B) {
			r := rand.New(rand.NewPCG(2, 2))
			p := make([]byte, 4<<10)
			b.SetBytes(int64(len(p)))
			for b.Loop() {
				if _, err := v.WriteAt(p, r.Int64N(chainSize/int64(len(p)))*int64(len(p))); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkChainReadSnapshot is the read of an upload: 1 MiB chunks of
// the topmost sealed snapshot, in order.
func BenchmarkChainReadSnapshot(b *testing.B) {
	for _, layers := range []int{1, 8, 32} {
		v := benchChain(b, layers)
		id := fmt.Sprintf("s-%03d", layers-1)
		b.Run(fmt.Sprintf("layers=%d/1MiB-seq", layers), func(b *testing.B) {
			p := make([]byte, 1<<20)
			b.SetBytes(int64(len(p)))
			for i := int64(0); b.Loop(); i++ {
				if err := v.ReadSnapshotAt(id, p, i%(chainSize>>20)<<20); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkChainChanged is the changed-block query of an upload on the
// topmost sealed snapshot.
func BenchmarkChainChanged(b *testing.B) {
	for _, layers := range []int{1, 8, 32} {
		v := benchChain(b, layers)
		id := fmt.Sprintf("s-%03d", layers-1)
		b.Run(fmt.Sprintf("layers=%d", layers), func(b *testing.B) {
			for b.Loop() {
				if _, err := v.Changed(id, 1<<20); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
