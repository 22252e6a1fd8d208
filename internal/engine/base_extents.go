package engine

import (
	"github.com/snapstack/snapstack/internal/manifest"
	"github.com/snapstack/snapstack/internal/volume"
)

var _ volume.BaseExtenter = (*base)(nil)

// Extents implements volume.BaseExtenter from the snapshot's table alone:
// a chunk without an entry is zeroes, and so are the gaps between the
// pieces of a chunk made of pieces; whole chunks and pieces are data.
func (b *base) Extents(off, length int64, fn func(n int64, zero bool) bool) error {
	for length > 0 {
		k := off / b.m.ChunkSize
		start := k * b.m.ChunkSize
		end := min(off+length, start+b.m.ChunkSize)
		more := true
		b.spans(k, off-start, end-start, func(lo, hi int64, p *manifest.Piece) bool {
			more = fn(hi-lo, p == nil)
			return more
		})
		if !more {
			return nil
		}
		length -= end - off
		off = end
	}
	return nil
}
