package volume

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"syscall"
)

// Seal fixes the content of the volume as of now as snapshot id: it waits
// for writes in flight (new ones wait), flushes the head, records it as
// the sealed layer of id and starts a new empty head. Its cost does not
// depend on the size of the volume or of its data.
func (v *Volume) Seal(id string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.usable(); err != nil {
		return err
	}
	for _, li := range v.st.Layers {
		if li.Snapshot == id {
			return nil // already sealed (a resumed request)
		}
	}
	head := v.layers[len(v.layers)-1]
	if err := head.flush(); err != nil {
		return err
	}
	nh, err := v.newLayer()
	if err != nil {
		return err
	}
	prev := v.st
	v.st.Layers = append(append([]layerInfo(nil), v.st.Layers...), layerInfo{File: nh.name})
	v.st.Layers[len(v.st.Layers)-2].Snapshot = id
	if unknown, err := v.commit(prev); err != nil {
		if !unknown { // else volume.json may name nh: keep its files
			nh.remove(v.dir)
		}
		return err
	}
	v.layers = append(v.layers, nh)
	return nil
}

// sealedIndex returns the chain position of snapshot id's layer.
func (v *Volume) sealedIndex(id string) (int, error) {
	for i, li := range v.st.Layers {
		if li.Snapshot == id {
			return i, nil
		}
	}
	return 0, fmt.Errorf("%s: %w", id, ErrNoLayer)
}

// Sealed reports whether snapshot id has a sealed layer in this volume.
func (v *Volume) Sealed(id string) bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	_, err := v.sealedIndex(id)
	return err == nil
}

// ReadSnapshotAt reads the content of sealed snapshot id at off: the
// chain up to and including its layer, and the base.
func (v *Volume) ReadSnapshotAt(id string, p []byte, off int64) error {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if err := v.check(off, int64(len(p))); err != nil {
		return err
	}
	i, err := v.sealedIndex(id)
	if err != nil {
		return err
	}
	return v.readChain(p, off, i+1)
}

// Changes describes what an upload of a sealed snapshot must read.
type Changes struct {
	// Parent is the snapshot whose content the unchanged chunks have: the
	// nearest uploaded snapshot below, else what the bottom holds
	// (Merged), "" for a disk that never had a snapshot.
	Parent string
	// Chunks are the indices of the chunkSize-byte chunks holding a
	// cluster written since Parent, ascending.
	Chunks []int64
	// Dirty[i] has bit j set when cluster j of chunk Chunks[i] was
	// written since Parent (the other clusters of the chunk are the
	// parent's).
	Dirty []uint64
}

// Changed returns the chunks of snapshot id that differ from its parent.
// chunkSize must be a multiple of ClusterSize of at most 64 clusters.
func (v *Volume) Changed(id string, chunkSize int64) (Changes, error) {
	if chunkSize%ClusterSize != 0 || chunkSize/ClusterSize > 64 || chunkSize <= 0 {
		return Changes{}, errors.New("volume: chunk size must be 1 to 64 clusters")
	}
	v.mu.RLock()
	defer v.mu.RUnlock()
	i, err := v.sealedIndex(id)
	if err != nil {
		return Changes{}, err
	}
	ch := Changes{Parent: v.st.Merged}
	lo := 1
	for j := i - 1; j >= 1; j-- {
		if v.st.Layers[j].Uploaded {
			ch.Parent, lo = v.st.Layers[j].Snapshot, j+1
			break
		}
	}
	per := chunkSize / ClusterSize
	set := map[int64]uint64{}
	for j := lo; j <= i; j++ {
		v.layers[j].held(func(c int64) error {
			set[c/per] |= 1 << (c % per)
			return nil
		})
	}
	for k := range set {
		ch.Chunks = append(ch.Chunks, k)
	}
	slices.Sort(ch.Chunks)
	ch.Dirty = make([]uint64, len(ch.Chunks))
	for i, k := range ch.Chunks {
		ch.Dirty[i] = set[k]
	}
	return ch, nil
}

// MarkUploaded records that snapshot id is durable elsewhere. Its layer
// (and the sealed layers below it) may then be merged down by Compact.
func (v *Volume) MarkUploaded(id string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	i, err := v.sealedIndex(id)
	if err != nil {
		return err
	}
	prev := v.st
	v.st.Layers = slices.Clone(v.st.Layers)
	v.st.Layers[i].Uploaded = true
	_, err = v.commit(prev)
	return err
}

// Compact folds sealed layers into the bottom, lowest first, up to the
// topmost uploaded one, so that reads walk a short chain. Each step
// copies the smaller side: the sealed layer's clusters into the bottom,
// or the bottom's clusters the layer lacks into the layer, which then
// becomes the bottom (a first snapshot of a fresh disk costs nothing).
// Readers see the same bytes throughout: a layer leaves the chain only
// after the clusters it shadowed or provided are durable in the survivor.
func (v *Volume) Compact() error {
	v.bottomMu.Lock()
	defer v.bottomMu.Unlock()
	for {
		v.mu.RLock()
		top := -1
		for j := 1; j < len(v.st.Layers)-1; j++ {
			if v.st.Layers[j].Uploaded {
				top = j
			}
		}
		if top < 1 || v.closed || v.failed != nil {
			err := v.failed
			v.mu.RUnlock()
			return err
		}
		bottom, src := v.layers[0], v.layers[1]
		v.mu.RUnlock()
		// Copy without the barrier, so that a Seal need not wait: src is
		// sealed (immutable to writers), and only bottomMu holders write
		// the bottom or add clusters to a sealed layer. Copying the
		// bottom's data into src does not change what src's snapshot
		// reads: those clusters fell through to the same bytes before.
		into, from, keepSrc := bottom, src, true
		if bottom.count.Load() <= src.count.Load() {
			into, from, keepSrc = src, bottom, false
		}
		if err := v.copyClusters(into, from, !keepSrc); err != nil {
			return fmt.Errorf("merge %s: %w", src.name, err)
		}
		v.mu.Lock()
		if v.closed || v.failed != nil {
			// Closed (or failed) during the copy: the chain is no longer
			// this Compact's to change.
			err := v.failed
			v.mu.Unlock()
			return err
		}
		merged := v.st.Layers[1]
		prev := v.st
		if keepSrc {
			v.st.Layers = append([]layerInfo{v.st.Layers[0]}, v.st.Layers[2:]...)
		} else {
			bottomInfo := layerInfo{File: merged.File}
			v.st.Layers = append([]layerInfo{bottomInfo}, v.st.Layers[2:]...)
		}
		if merged.Snapshot != "" && merged.Uploaded {
			v.st.Merged = merged.Snapshot
		}
		if _, err := v.commit(prev); err != nil {
			// Nothing is removed before the commit: the files of both
			// chains are there either way.
			v.mu.Unlock()
			return err
		}
		gone := src
		if keepSrc {
			v.layers = append([]*layer{v.layers[0]}, v.layers[2:]...)
		} else {
			gone = bottom
			v.layers = append([]*layer{src}, v.layers[2:]...)
		}
		v.mu.Unlock()
		gone.remove(v.dir)
	}
}

// copyClusters copies the clusters from holds into into, skipping those
// into already holds when skipHeld, then makes into durable.
func (v *Volume) copyClusters(into, from *layer, skipHeld bool) error {
	buf := alignedBuffer(ClusterSize)
	err := from.held(func(c int64) error {
		if skipHeld && into.has(c) {
			return nil
		}
		start := c * ClusterSize
		n := min(int64(ClusterSize), v.st.Size-start)
		if _, err := from.data.ReadAt(buf[:n], start); err != nil {
			return err
		}
		if err := into.writeBulk(buf[:n], start); err != nil {
			return err
		}
		into.gain(c)
		return nil
	})
	if err != nil {
		return err
	}
	return into.flush()
}

// Reset makes the volume's content that of snapshot id (read through
// the base until hydrated): every layer is dropped. Writes in flight
// finish first.
func (v *Volume) Reset(id string) error {
	base, err := v.opener(id)
	if err != nil {
		return err
	}
	v.bottomMu.Lock()
	defer v.bottomMu.Unlock()
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.usable(); err != nil {
		base.Close()
		return err
	}
	var fresh []*layer
	for i := 0; i < 2; i++ {
		l, err := v.newLayer()
		if err != nil {
			for _, f := range fresh {
				f.remove(v.dir)
			}
			base.Close()
			return err
		}
		fresh = append(fresh, l)
	}
	prev := v.st
	v.st.Layers = []layerInfo{{File: fresh[0].name}, {File: fresh[1].name}}
	v.st.Base, v.st.Merged = id, id
	if unknown, err := v.commit(prev); err != nil {
		if !unknown { // else volume.json may name the fresh layers: keep them
			for _, f := range fresh {
				f.remove(v.dir)
			}
		}
		base.Close()
		return err
	}
	old, oldBase := v.layers, v.base
	v.layers, v.base = fresh, base
	// The old layers are out of the chain: removing their files (which can
	// take long for large ones) need not hold up the reset. A crash before
	// they are gone leaves strays that Open removes.
	v.bg.Add(1)
	go func() {
		defer v.bg.Done()
		for _, l := range old {
			l.remove(v.dir)
		}
		if oldBase != nil {
			oldBase.Close()
		}
	}()
	return nil
}

// hydrated is a chunk read from the base, waiting to be written into the
// bottom layer.
type hydrated struct {
	k, off, size int64
	buf          []byte
}

// readChunk reads chunk k of the base into buf when the bottom lacks any
// of its clusters; ok is false for a chunk the bottom holds whole (not
// read at all). The caller holds bottomMu (so no merge writes the bottom)
// and is the only one hydrating chunk k.
func (v *Volume) readChunk(buf []byte, k, chunkSize int64) (h hydrated, ok bool, err error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if err := v.usable(); err != nil {
		return h, false, err
	}
	if v.base == nil {
		return h, false, ErrClosed
	}
	bottom := v.layers[0]
	off := k * chunkSize
	size := min(chunkSize, v.st.Size-off)
	if size <= 0 {
		return h, false, nil
	}
	first, end := off/ClusterSize, (off+size+ClusterSize-1)/ClusterSize
	missing := false
	for c := first; c < end && !missing; c++ {
		missing = !bottom.has(c)
	}
	if !missing {
		return h, false, nil
	}
	read := v.base.ReadAt
	if br, ok := v.base.(BaseBulkReader); ok {
		read = br.ReadBulk
	}
	if err := read(buf[:size], off); err != nil {
		return h, false, err
	}
	return hydrated{k: k, off: off, size: size, buf: buf}, true, nil
}

// writeChunk writes what readChunk read into the clusters the bottom
// lacks: each run of missing data clusters in one write, each run of
// missing zero clusters as a hole (punched, so that whatever an
// interrupted merge or hydration left in the file cannot show through).
func (v *Volume) writeChunk(h hydrated) error {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if err := v.usable(); err != nil {
		return err
	}
	if v.base == nil {
		return ErrClosed
	}
	bottom := v.layers[0]
	first, end := h.off/ClusterSize, (h.off+h.size+ClusterSize-1)/ClusterSize
	zero := func(c int64) bool {
		from, to := c*ClusterSize-h.off, min((c+1)*ClusterSize-h.off, h.size)
		return isZero(h.buf[from:to])
	}
	for c := first; c < end; {
		if bottom.has(c) {
			c++
			continue
		}
		z := zero(c)
		r := c + 1
		for r < end && !bottom.has(r) && zero(r) == z {
			r++
		}
		from, to := c*ClusterSize-h.off, min(r*ClusterSize-h.off, h.size)
		var err error
		if z {
			err = bottom.punch(c*ClusterSize, to-from)
		} else {
			err = bottom.writeBulk(h.buf[from:to], c*ClusterSize)
		}
		if err != nil {
			return err
		}
		for ; c < r; c++ {
			bottom.gain(c)
		}
	}
	return nil
}

// preallocate allocates in the bottom's data file the ranges of the
// wanted chunks that the base holds data for (zero ranges stay holes),
// before the hydration writes them: ext4 lets direct writes into
// allocated (unwritten) blocks share the file's lock, while writes that
// allocate take it exclusively and so run one at a time (bench restore:
// 2.10-2.37 s against 2.38-2.67 s, three runs each). Failures are
// ignored: the writes allocate then. Zero clusters inside a data range
// are punched by the hydration as before. It stops when ctx ends.
func preallocate(ctx context.Context, bottom *layer, bx BaseExtenter, size, chunkSize int64, want []int64) {
	sorted := slices.Clone(want)
	slices.Sort(sorted)
	const keepSize = 0x01
	var from, to int64 // the data range being gathered
	alloc := func() {
		if to > from {
			syscall.Fallocate(int(bottom.data.Fd()), keepSize, from, to-from)
		}
	}
	for i := 0; i < len(sorted); {
		j := i + 1
		for j < len(sorted) && sorted[j] == sorted[j-1]+1 {
			j++
		}
		off := sorted[i] * chunkSize
		end := min(sorted[j-1]*chunkSize+chunkSize, size)
		pos := off
		bx.Extents(off, end-off, func(n int64, zero bool) bool {
			if !zero {
				if pos != to {
					alloc()
					from = pos
				}
				to = pos + n
			}
			pos += n
			return ctx.Err() == nil
		})
		if ctx.Err() != nil {
			return // the hydration stops too
		}
		i = j
	}
	alloc()
}

// hydrateWriters is the number of goroutines writing hydrated chunks.
const hydrateWriters = 2

// zeroBlock is compared against data by isZero; never written.
var zeroBlock [ClusterSize]byte

// isZero reports whether p (at most ClusterSize bytes) is all zeroes.
func isZero(p []byte) bool { return bytes.Equal(p, zeroBlock[:len(p)]) }

// BaseID returns the snapshot the volume reads through, "" when none.
func (v *Volume) BaseID() string {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.st.Base
}

// hydrateFlushEvery is the number of chunks Hydrate copies between two
// flushes of the bottom layer (its data, then the map of the clusters it
// holds), so that a crash loses at most that much copying.
const hydrateFlushEvery = 256

// flushBottom makes the clusters copied into the bottom layer durable,
// as Flush does for the head (a hydration holds bottomMu, so bottom is
// still the bottom layer).
func (v *Volume) flushBottom(bottom *layer) error {
	v.flushMu.Lock()
	defer v.flushMu.Unlock()
	v.mu.RLock()
	defer v.mu.RUnlock()
	return bottom.flush()
}

// Hydrate copies the clusters of the base that the bottom layer lacks
// into it, chunk by chunk with workers goroutines reading the base and
// hydrateWriters writing (want lists the chunkSize-byte chunks the base
// holds; progress is called, one call at a time, with the number done so
// far); zero clusters become holes. Then it drops the base. Chunks that
// clients read from the base meanwhile go first, while the base still
// has them at hand, so that reading a disk while it hydrates fetches
// each chunk once.
//
// base names the snapshot that want describes: if the volume's base is
// another one by the time Hydrate starts (a Reset came first), it returns
// ErrBaseChanged and copies nothing. When ctx ends, Hydrate stops after
// the chunks in flight and returns ctx's error; what it copied stays, and
// a later Hydrate skips it.
func (v *Volume) Hydrate(ctx context.Context, base string, chunkSize int64, want []int64, workers int, progress func(done int)) error {
	v.bottomMu.Lock()
	defer v.bottomMu.Unlock()
	v.mu.RLock()
	err := v.usable()
	if err == nil && v.st.Base != base {
		err = fmt.Errorf("%w: %q, not %q", ErrBaseChanged, v.st.Base, base)
	}
	bx, _ := v.base.(BaseExtenter)
	bottom, size := v.layers[0], v.st.Size
	v.mu.RUnlock()
	if err != nil {
		return err
	}
	if workers < 1 {
		workers = 1
	}
	if bx != nil {
		preallocate(ctx, bottom, bx, size, chunkSize, want)
	}
	hints := make(chan int64, 256)
	v.mu.Lock()
	v.hints, v.hintChunk = hints, chunkSize
	v.mu.Unlock()
	defer func() {
		v.mu.Lock()
		v.hints = nil
		v.mu.Unlock()
	}()
	// Reading (fetch, decode, verify: CPU, or the network for a remote
	// store) and writing (the local device) are two stages, so that
	// neither waits for the other: workers readers, hydrateWriters
	// writers, 2*workers buffers between them. More writers than a few
	// only lengthen the device's queue (measured: 8 writers 2.53 s, 2
	// writers 2.27–2.60 s, on the bench workload's restore).
	work := make(chan int64)
	errc := make(chan error, workers+hydrateWriters)
	bufs := make(chan []byte, 2*workers)
	for range cap(bufs) {
		bufs <- alignedBuffer(int(chunkSize))
	}
	written := make(chan hydrated, workers)
	var readers, writers sync.WaitGroup
	var progressMu sync.Mutex // progress sees 1, 2, 3, ... one call at a time
	done := 0
	finish := func() {
		progressMu.Lock()
		defer progressMu.Unlock()
		done++
		if progress != nil {
			progress(done)
		}
		if done%hydrateFlushEvery == 0 {
			// What is copied stays copied across a crash too.
			if err := v.flushBottom(bottom); err != nil {
				select {
				case errc <- err:
				default: // another error already ends the hydration
				}
			}
		}
	}
	for range workers {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for k := range work {
				buf := <-bufs
				h, ok, err := v.readChunk(buf, k, chunkSize)
				if err != nil {
					errc <- err
					return
				}
				if !ok {
					bufs <- buf
					finish()
					continue
				}
				written <- h
			}
		}()
	}
	for range hydrateWriters {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for h := range written {
				if err := v.writeChunk(h); err != nil {
					errc <- err
					// Drain, so that the readers never block on written.
					for h := range written {
						bufs <- h.buf
					}
					return
				}
				bufs <- h.buf
				finish()
			}
		}()
	}
	// Each wanted chunk is handed out once (no two workers write the
	// same clusters): hinted ones first, then in order.
	pending := make(map[int64]bool, len(want))
	for _, k := range want {
		pending[k] = true
	}
	next := 0
feed:
	for len(pending) > 0 {
		// A stop goes first: select picks at random among ready cases,
		// and a stopped hydration must not keep handing out chunks.
		if err = ctx.Err(); err != nil {
			break
		}
		for next < len(want) && !pending[want[next]] {
			next++
		}
		var k int64
		select {
		case k = <-hints: // a hinted chunk goes before the next in order
		default:
			select {
			case k = <-hints:
			case err = <-errc:
				break feed
			case <-ctx.Done():
				err = ctx.Err()
				break feed
			case work <- want[next]:
				delete(pending, want[next])
				continue
			}
		}
		if !pending[k] {
			continue
		}
		select {
		case work <- k:
			delete(pending, k)
		case err = <-errc:
			break feed
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(work)
	readers.Wait()
	close(written)
	writers.Wait()
	if err == nil {
		select {
		case err = <-errc:
		default:
		}
	}
	if err != nil {
		// Keep what was copied: a later Hydrate skips it.
		if ferr := v.flushBottom(bottom); ferr != nil {
			return errors.Join(err, ferr)
		}
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.layers[0].flush(); err != nil {
		return err
	}
	if v.base == nil {
		return nil
	}
	prevBase := v.st.Base
	v.st.Base = ""
	if err := v.save(); err != nil {
		v.st.Base = prevBase
		return err
	}
	b := v.base
	v.base = nil
	return b.Close()
}
