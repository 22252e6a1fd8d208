package engine

import "github.com/snapstack/snapstack/internal/volume"

var _ volume.BaseExtenter = (*base)(nil)

// Extents implements volume.BaseExtenter: a chunk without an entry in the
// snapshot's table (no fragments) is all zeroes, the others are data. One
// call of fn per chunk; the volume merges them.
func (b *base) Extents(off, length int64, fn func(n int64, zero bool) bool) error {
	for length > 0 {
		k := off / b.m.ChunkSize
		n := min(length, (k+1)*b.m.ChunkSize-off)
		if !fn(n, b.m.Fragments(k) == 0) {
			return nil
		}
		off, length = off+n, length-n
	}
	return nil
}
