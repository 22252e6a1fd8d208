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
	var ps []manifest.Piece
	for length > 0 {
		k := off / b.m.ChunkSize
		start := k * b.m.ChunkSize
		end := min(off+length, start+b.m.ChunkSize)
		ps = b.m.Pieces(k, ps[:0])
		pos := off
		for _, p := range ps {
			lo, hi := max(pos, start+int64(p.Off)), min(end, start+int64(p.Off)+int64(p.Len))
			if lo >= hi {
				continue
			}
			if lo > pos && !fn(lo-pos, true) {
				return nil
			}
			if !fn(hi-lo, false) {
				return nil
			}
			pos = hi
		}
		if end > pos && !fn(end-pos, true) {
			return nil
		}
		length -= end - off
		off = end
	}
	return nil
}
