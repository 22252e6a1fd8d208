package volume

import (
	"errors"
	"math/bits"
	"sync/atomic"
	"syscall"
)

// BaseExtenter is an optional interface of a Base that knows which of its
// ranges read as all zeroes (for a snapshot in the chunk store: the chunks
// its table has no entry for). Volume.Extents reports such ranges as
// holes; without the interface every range the volume reads from the base
// is reported as data.
type BaseExtenter interface {
	// Extents describes [off, off+length) of the base as consecutive
	// extents starting at off, in order: fn(n, zero) for each, with
	// n > 0, where zero means the n bytes read as zeroes (false: data, or
	// not known). It returns when fn returns false or the extents cover
	// length bytes. Extents need not be merged; one reaching past
	// off+length is clipped; a part of the range left uncovered (by a nil
	// return before fn returned false) is taken as data. It must be cheap
	// (no chunk data read), safe for concurrent use, and call fn only
	// before it returns. An error fails the caller's request.
	Extents(off, length int64, fn func(n int64, zero bool) bool) error
}

// maxExtentSeeks bounds the lseek calls one Extents call makes to find
// punched holes in held clusters; past it, held clusters are reported
// as data unchecked.
const maxExtentSeeks = 1024

// Whence values of lseek(2) not in package syscall.
const (
	seekData = 3
	seekHole = 4
)

// Extents describes the allocation of [off, off+length) as consecutive
// extents starting at off, in order, calling fn(n, hole, zero) for each
// (n > 0; adjacent extents of the same kind are merged) until fn returns
// false or the range is covered:
//
//   - a cluster some layer holds is data (hole and zero false), except
//     where that layer's data file has a hole (WriteZeroes and Trim punch
//     whole clusters), which is hole and zero;
//   - a cluster no layer holds reads the base: hole and zero where the
//     base implements BaseExtenter and reports zeroes, else data;
//   - with no base, such a cluster is hole and zero.
//
// Data is "allocated" in the sense of NBD's base:allocation context,
// although a write to a cluster the head lacks still allocates (copy-up).
// The work is bounded by the cluster maps of the range and at most
// maxExtentSeeks lseek calls. fn must not call methods of v.
func (v *Volume) Extents(off, length int64, fn func(n int64, hole, zero bool) bool) error {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if err := v.check(off, length); err != nil {
		return err
	}
	return v.extents(off, length, len(v.layers), fn)
}

// SnapshotExtents is Extents of sealed snapshot id's content: the chain
// up to and including its layer, and the base (see ReadSnapshotAt).
func (v *Volume) SnapshotExtents(id string, off, length int64, fn func(n int64, hole, zero bool) bool) error {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if err := v.check(off, length); err != nil {
		return err
	}
	i, err := v.sealedIndex(id)
	if err != nil {
		return err
	}
	return v.extents(off, length, i+1, fn)
}

// extents is Extents of layers[:top] and the base; v.mu is held.
func (v *Volume) extents(off, length int64, top int, fn func(n int64, hole, zero bool) bool) error {
	e := extentMerger{fn: fn, seeks: maxExtentSeeks}
	end := off + length
	limit := (end + ClusterSize - 1) / ClusterSize // first cluster past the range
	for pos := off; pos < end && !e.stopped; {
		c := pos / ClusterSize
		src := v.holder(c, top)
		var next int64 // first cluster of another source
		if src < 0 {
			next = v.nextHeld(c+1, limit, top)
		} else {
			next = c + 1
			for next < limit && v.holder(next, top) == src {
				next++
			}
		}
		runEnd := min(next*ClusterSize, end)
		var err error
		switch {
		case src >= 0:
			err = e.layer(v.layers[src], pos, runEnd)
		case v.base != nil:
			err = e.base(v.base, pos, runEnd)
		default:
			e.add(runEnd-pos, true, true)
		}
		if err != nil {
			return err
		}
		pos = runEnd
	}
	e.flush()
	return nil
}

// holder returns the topmost of layers[:top] holding cluster c, -1 if none.
func (v *Volume) holder(c int64, top int) int {
	for i := top - 1; i >= 0; i-- {
		if v.layers[i].has(c) {
			return i
		}
	}
	return -1
}

// nextHeld returns the first cluster in [c, limit) some layer of
// layers[:top] holds, else limit. It skips 64 clusters per map word.
func (v *Volume) nextHeld(c, limit int64, top int) int64 {
	for c < limit {
		w := c / 64
		var word uint64
		for i := 0; i < top; i++ {
			word |= atomic.LoadUint64(&v.layers[i].bits[w])
		}
		word &^= 1<<(uint(c)%64) - 1 // clusters before c
		if word != 0 {
			return min(w*64+int64(bits.TrailingZeros64(word)), limit)
		}
		c = (w + 1) * 64
	}
	return limit
}

// extentMerger merges adjacent extents of the same kind before passing
// them to fn, and remembers when fn asked to stop.
type extentMerger struct {
	fn         func(n int64, hole, zero bool) bool
	n          int64 // pending extent
	hole, zero bool
	stopped    bool
	seeks      int // lseek calls left
}

func (e *extentMerger) add(n int64, hole, zero bool) {
	if e.stopped || n <= 0 {
		return
	}
	if e.n > 0 && (hole != e.hole || zero != e.zero) {
		e.flush()
		if e.stopped {
			return
		}
	}
	e.n += n
	e.hole, e.zero = hole, zero
}

func (e *extentMerger) flush() {
	if e.n > 0 && !e.stopped {
		e.stopped = !e.fn(e.n, e.hole, e.zero)
	}
	e.n = 0
}

// layer reports [from, to), clusters l holds, as data except where l's
// data file has holes (punched clusters), found with SEEK_DATA/SEEK_HOLE.
// A file system without them reports the whole file as data.
func (e *extentMerger) layer(l *layer, from, to int64) error {
	fd := int(l.data.Fd())
	for from < to && !e.stopped {
		if e.seeks <= 0 {
			e.add(to-from, false, false)
			return nil
		}
		e.seeks--
		d, err := syscall.Seek(fd, from, seekData)
		switch {
		case errors.Is(err, syscall.ENXIO):
			d = to // no data after from
		case err != nil:
			d = from // cannot tell: data
		}
		if d > from {
			d = min(d, to)
			e.add(d-from, true, true)
			from = d
			if from >= to {
				return nil
			}
		}
		e.seeks--
		h, err := syscall.Seek(fd, from, seekHole)
		if err != nil || h <= from || h > to {
			h = to
		}
		e.add(h-from, false, false)
		from = h
	}
	return nil
}

// base reports [from, to), clusters no layer holds, as the base describes
// them.
func (e *extentMerger) base(b Base, from, to int64) error {
	be, ok := b.(BaseExtenter)
	if !ok {
		e.add(to-from, false, false)
		return nil
	}
	pos := from
	err := be.Extents(from, to-from, func(n int64, zero bool) bool {
		if n <= 0 || pos >= to {
			return false
		}
		n = min(n, to-pos)
		e.add(n, zero, zero)
		pos += n
		return !e.stopped && pos < to
	})
	if err != nil {
		return err
	}
	e.add(to-pos, false, false) // left uncovered: data
	return nil
}
