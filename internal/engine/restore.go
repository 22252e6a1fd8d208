package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/snapstack/snapstack/internal/atomicfile"
	"github.com/snapstack/snapstack/internal/blob"
	"github.com/snapstack/snapstack/internal/chunk"
	"github.com/snapstack/snapstack/internal/manifest"
	"github.com/snapstack/snapstack/internal/volume"
)

// RestoreDisk makes the disk's content that of the snapshot, at once:
// the snapshot becomes the volume's base, read lazily from the chunk
// store, while a background job copies it in (hydration).
func (e *Engine) RestoreDisk(ctx context.Context, diskID, snapshotID string) error {
	v, err := e.open(diskID)
	if err != nil {
		return err
	}
	// One restore of a disk at a time, and none while a finished
	// hydration removes its base table (see hydrate).
	dl := e.diskLock(diskID)
	dl.Lock()
	defer dl.Unlock()
	// The collector must not run between reading the snapshot's table and
	// keeping a copy beside the volume (which then holds its chunks live).
	e.gc.RLock()
	defer e.gc.RUnlock()
	m, err := e.loadManifest(ctx, snapshotID)
	if errors.Is(err, blob.ErrNotFound) {
		// Instant access: the snapshot is not uploaded yet, but its sealed
		// layer is still local.
		switch cerr := e.copyFromSealed(ctx, v, snapshotID); {
		case cerr == nil:
			return nil
		case errors.Is(cerr, volume.ErrNoLayer):
			// Merged meanwhile: its manifest is stored now.
			m, err = e.loadManifest(ctx, snapshotID)
		default:
			return cerr
		}
	}
	if err != nil {
		return err
	}
	// Keep the table beside the volume: the base must stay readable even
	// if the snapshot is deleted while the disk hydrates, and it is the
	// parent of the disk's next snapshot. The table of the base the
	// volume reads now stays until the Reset is durable: a crash in
	// between must leave the volume.json on disk a table to open.
	if err := atomicfile.Write(e.localManifestPath(diskID, "base", snapshotID), m.Encode(), 0o600); err != nil {
		return err
	}
	if err := e.writeLocalManifest(diskID, "parent", snapshotID, m); err != nil {
		return err
	}
	// No client of the disk's previous content may still be writing:
	// the disk is not served (its instance is stopped), but the last
	// connections may still be finishing their requests.
	e.DiskOffline(diskID)
	// The hydration of the previous base ends here (what it copied is of
	// no use now), rather than making the Reset wait for it to finish.
	e.stopHydration(diskID)
	if err := v.Reset(snapshotID); err != nil {
		return err
	}
	e.pruneLocalManifests(diskID, "base", snapshotID)
	e.hydrate(diskID, v)
	return nil
}

// diskLock returns the mutex that serialises the restores of a disk.
func (e *Engine) diskLock(diskID string) *sync.Mutex {
	l, _ := e.diskLocks.LoadOrStore(diskID, new(sync.Mutex))
	return l.(*sync.Mutex)
}

// copyFromSealed copies the content of a snapshot that still has a sealed
// layer in some local volume into dst: only the ranges the snapshot holds
// data in (its layers' clusters, and the base's non-zero chunks), so that
// the cost follows what was written, not the disk size; zero chunks
// within them are skipped too.
func (e *Engine) copyFromSealed(ctx context.Context, dst *volume.Volume, snapshotID string) error {
	e.mu.Lock()
	var src *volume.Volume
	for _, v := range e.vols {
		if v != dst && v.Sealed(snapshotID) {
			src = v
			break
		}
	}
	e.mu.Unlock()
	if src == nil {
		return fmt.Errorf("%s: %w", snapshotID, volume.ErrNoLayer)
	}
	buf := make([]byte, ChunkSize)
	size := min(src.Size(), dst.Size())
	type extent struct{ off, n int64 }
	var data []extent
	// The extents of a window are listed first (fn may not call the
	// volume), then copied.
	for win := int64(0); win < size; win += copyWindow {
		if err := ctx.Err(); err != nil {
			return err
		}
		data = data[:0]
		pos := win
		err := src.SnapshotExtents(snapshotID, win, min(copyWindow, size-win), func(n int64, hole, zero bool) bool {
			if !zero {
				data = append(data, extent{pos, n})
			}
			pos += n
			return true
		})
		if err != nil {
			return err
		}
		for _, x := range data {
			for off := x.off; off < x.off+x.n; {
				if err := ctx.Err(); err != nil {
					return err
				}
				p := buf[:min(int64(ChunkSize), x.off+x.n-off)]
				if err := src.ReadSnapshotAt(snapshotID, p, off); err != nil {
					return err
				}
				if !chunk.IsZero(p) {
					if _, err := dst.WriteAt(p, off); err != nil {
						return err
					}
				}
				off += int64(len(p))
			}
		}
	}
	return dst.Flush()
}

// copyWindow is the span of a disk whose extents copyFromSealed lists at
// a time, bounding the list.
const copyWindow = 1 << 30

// hydrate copies a volume's base in, in the background.
func (e *Engine) hydrate(diskID string, v *volume.Volume) {
	id := v.BaseID()
	m, err := e.readLocalManifest(diskID, "base", id)
	if err != nil {
		e.log.Error("hydrate: base manifest", "disk", diskID, "err", err)
		return
	}
	ctx, cancel := context.WithCancel(e.bg)
	h := &hydration{cancel: cancel}
	e.mu.Lock()
	if old := e.hydrations[diskID]; old != nil {
		old.cancel()
	}
	e.hydrations[diskID] = h
	e.mu.Unlock()
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer func() {
			cancel()
			e.mu.Lock()
			if e.hydrations[diskID] == h {
				delete(e.hydrations, diskID)
			}
			e.mu.Unlock()
		}()
		start := time.Now()
		want := hydrationOrder(m)
		if err := v.Hydrate(ctx, id, ChunkSize, want, e.workers, nil); err != nil {
			// Stopped (the service stops, and a restart resumes it; or
			// another restore of the disk stopped it), or superseded.
			if !errors.Is(err, volume.ErrClosed) && !errors.Is(err, volume.ErrBaseChanged) && ctx.Err() == nil {
				e.log.Error("hydrate", "disk", diskID, "err", err)
			}
			return
		}
		e.log.Info("disk hydrated", "disk", diskID, "snapshot", id, "chunks", len(want), "seconds", time.Since(start).Seconds())
		// A restore of the same snapshot may have made it the base again
		// meanwhile, with the same table: keep it then.
		dl := e.diskLock(diskID)
		dl.Lock()
		defer dl.Unlock()
		if v.BaseID() != id {
			os.Remove(e.localManifestPath(diskID, "base", id))
		}
	}()
}

// hydration is a hydration under way.
type hydration struct{ cancel context.CancelFunc }

// stopHydration stops the hydration of a disk, if one runs; Hydrate
// returns after the chunks in flight.
func (e *Engine) stopHydration(diskID string) {
	e.mu.Lock()
	if h := e.hydrations[diskID]; h != nil {
		h.cancel()
	}
	e.mu.Unlock()
}

// hydrationOrder returns the chunks of m in the order a hydration reads
// them: in disk order, except that a chunk made of pieces of an object an
// earlier chunk holds (a copy found by the upload's deduplication) comes
// right after the first chunk holding that object, while the base still
// has it in its cache, instead of decoding it again much later.
func hydrationOrder(m *manifest.Manifest) []int64 {
	idx, first := firstChunks(m)
	after := make(map[int64]int64) // chunk -> the earlier chunk it follows
	var ps []manifest.Piece
	for _, k := range idx {
		at := k
		ps = m.Pieces(k, ps[:0])
		for _, p := range ps {
			at = min(at, first[p.ID])
		}
		if at != k {
			after[k] = at
		}
	}
	slices.SortStableFunc(idx, func(a, b int64) int {
		ka, kb := a, b
		if f, ok := after[a]; ok {
			ka = f
		}
		if f, ok := after[b]; ok {
			kb = f
		}
		return cmp.Compare(ka, kb)
	})
	return idx
}

// firstChunks returns the chunks of m holding data, in order, and for
// each object the first of them made of it.
func firstChunks(m *manifest.Manifest) ([]int64, map[chunk.ID]int64) {
	idx := m.Indices()
	first := make(map[chunk.ID]int64, len(idx))
	var ps []manifest.Piece
	for _, k := range idx {
		ps = m.Pieces(k, ps[:0])
		for _, p := range ps {
			if _, ok := first[p.ID]; !ok {
				first[p.ID] = k
			}
		}
	}
	return idx, first
}

func (e *Engine) localManifestPath(diskID, kind, snapshotID string) string {
	return filepath.Join(e.volDir(diskID), kind+"-"+snapshotID+".manifest")
}

// writeLocalManifest stores m as the disk's kind ("parent" or "base")
// manifest atomically, removing the previous one of that kind.
func (e *Engine) writeLocalManifest(diskID, kind, snapshotID string, m *manifest.Manifest) error {
	if err := atomicfile.Write(e.localManifestPath(diskID, kind, snapshotID), m.Encode(), 0o600); err != nil {
		return err
	}
	e.pruneLocalManifests(diskID, kind, snapshotID)
	return nil
}

// pruneLocalManifests removes the disk's kind manifests but keep's.
func (e *Engine) pruneLocalManifests(diskID, kind, keep string) {
	path := e.localManifestPath(diskID, kind, keep)
	old, _ := filepath.Glob(filepath.Join(e.volDir(diskID), kind+"-*.manifest"))
	for _, o := range old {
		if o != path {
			os.Remove(o)
		}
	}
}

func (e *Engine) readLocalManifest(diskID, kind, snapshotID string) (*manifest.Manifest, error) {
	raw, err := os.ReadFile(e.localManifestPath(diskID, kind, snapshotID))
	if err != nil {
		return nil, err
	}
	return manifest.Decode(raw)
}

// localManifests calls fn with every manifest kept beside a volume.
func (e *Engine) localManifests(fn func(*manifest.Manifest)) error {
	paths, err := filepath.Glob(filepath.Join(e.dir, "*", "*.manifest"))
	if err != nil {
		return err
	}
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		m, err := manifest.Decode(raw)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		fn(m)
	}
	return nil
}

// opener returns the base opener of the volume in dir: the base's table
// comes from the local copy, its chunks from the chunk store.
func (e *Engine) opener(dir string) volume.BaseOpener {
	return func(snapshotID string) (volume.Base, error) {
		raw, err := os.ReadFile(filepath.Join(dir, "base-"+snapshotID+".manifest"))
		if err != nil {
			return nil, fmt.Errorf("base %s: %w", snapshotID, err)
		}
		m, err := manifest.Decode(raw)
		if err != nil {
			return nil, err
		}
		return newBase(m, e.chunks), nil
	}
}

func newBase(m *manifest.Manifest, chunks *chunk.Store) *base {
	b := &base{m: m, chunks: chunks, shared: map[chunk.ID]bool{}}
	idx, first := firstChunks(m)
	var ps []manifest.Piece
	for _, k := range idx {
		ps = m.Pieces(k, ps[:0])
		for _, p := range ps {
			if first[p.ID] != k {
				b.shared[p.ID] = true
			}
		}
	}
	return b
}

// base reads a snapshot from the chunk store, keeping the objects read
// last in a cache. Concurrent reads of one object share a single fetch
// (clients read a 1 MiB chunk in several requests at once: without it,
// each decompressed and verified the chunk again).
type base struct {
	m      *manifest.Manifest
	chunks *chunk.Store

	mu       sync.Mutex
	cache    map[chunk.ID][]byte
	order    []chunk.ID
	inflight map[chunk.ID]*fetch

	// shared: the objects that more than one chunk is made of; set at
	// creation. ReadBulk caches only these.
	shared map[chunk.ID]bool

	scratch sync.Pool // *[]byte: stored objects read by ReadBulk
	plain   sync.Pool // *[]byte: plaintexts of objects ReadBulk does not cache
}

type fetch struct {
	done chan struct{}
	data []byte
	err  error
}

const baseCacheObjects = 64

func (b *base) ReadAt(p []byte, off int64) error {
	for len(p) > 0 {
		k := off / b.m.ChunkSize
		start := k * b.m.ChunkSize
		n := min(int64(len(p)), start+b.m.ChunkSize-off)
		var err error
		b.spans(k, off-start, off-start+n, func(lo, hi int64, pc *manifest.Piece) bool {
			dst := p[lo-(off-start) : hi-(off-start)]
			if pc == nil { // a gap: zeroes
				clear(dst)
				return true
			}
			var data []byte
			if data, err = b.object(pc.ID); err != nil {
				err = fmt.Errorf("chunk %d: %w", k, err)
				return false
			}
			c := 0
			if from := int64(pc.ObjOff) + lo - int64(pc.Off); from < int64(len(data)) {
				c = copy(dst, data[from:])
			}
			clear(dst[c:])
			return true
		})
		if err != nil {
			return err
		}
		p, off = p[n:], off+n
	}
	return nil
}

// spans calls fn, in order, for the parts of bytes [from, to) of chunk k
// (offsets within the chunk): each stretch of a piece with that piece,
// each gap between pieces (zeroes) with nil. It stops when fn returns
// false.
func (b *base) spans(k, from, to int64, fn func(lo, hi int64, p *manifest.Piece) bool) {
	var buf [maxPieces]manifest.Piece
	pos := from
	for _, p := range b.m.Pieces(k, buf[:0]) {
		lo, hi := max(pos, int64(p.Off)), min(to, int64(p.Off)+int64(p.Len))
		if lo >= hi {
			continue
		}
		if lo > pos && !fn(pos, lo, nil) {
			return
		}
		if !fn(lo, hi, &p) {
			return
		}
		pos = hi
	}
	if to > pos {
		fn(pos, to, nil)
	}
}

// ReadBulk implements volume.BaseBulkReader: a whole chunk held by one
// object is decoded straight into p (or copied from the cache or from a
// fetch under way), without entering the cache; a chunk made of pieces
// caches only the objects other chunks share; anything else is ReadAt.
func (b *base) ReadBulk(p []byte, off int64) error {
	k := off / b.m.ChunkSize
	if off != k*b.m.ChunkSize || int64(len(p)) != min(b.m.ChunkSize, b.m.Size-off) {
		return b.ReadAt(p, off)
	}
	id, whole := b.m.Whole(k)
	if !whole {
		return b.readPieces(p, k)
	}
	b.mu.Lock()
	data, cached := b.cache[id]
	f := b.inflight[id]
	b.mu.Unlock()
	if f != nil {
		<-f.done
		data, cached = f.data, f.err == nil
	}
	if !cached && b.shared[id] {
		// Another chunk is made of it too (a copy): keep it at hand.
		var err error
		if data, err = b.object(id); err != nil {
			return fmt.Errorf("chunk %d: %w", k, err)
		}
		cached = true
	}
	if !cached {
		scratch, _ := b.scratch.Get().(*[]byte)
		if scratch == nil {
			scratch = new([]byte)
		}
		var err error
		data, err = b.chunks.GetInto(context.Background(), id, p[:0], scratch)
		b.scratch.Put(scratch)
		if err != nil {
			return fmt.Errorf("chunk %d: %w", k, err)
		}
	}
	n := min(len(data), len(p))
	if n == 0 || &data[0] != &p[0] { // decoded into p: nothing to copy
		n = copy(p, data)
	}
	clear(p[n:])
	return nil
}

// readPieces fills p with chunk k, made of pieces: each object is read
// once; one that no other chunk uses is decoded into pooled memory,
// around the cache, which it would only churn.
func (b *base) readPieces(p []byte, k int64) error {
	type held struct {
		id      chunk.ID
		data    []byte
		release func()
	}
	var objs []held
	defer func() {
		for _, h := range objs {
			h.release()
		}
	}()
	var err error
	b.spans(k, 0, int64(len(p)), func(lo, hi int64, pc *manifest.Piece) bool {
		dst := p[lo:hi]
		if pc == nil {
			clear(dst)
			return true
		}
		i := 0
		for i < len(objs) && objs[i].id != pc.ID {
			i++
		}
		if i == len(objs) {
			data, release, e := b.private(pc.ID)
			if e != nil {
				err = fmt.Errorf("chunk %d: %w", k, e)
				return false
			}
			objs = append(objs, held{pc.ID, data, release})
		}
		data := objs[i].data
		c := 0
		if from := int64(pc.ObjOff) + lo - int64(pc.Off); from < int64(len(data)) {
			c = copy(dst, data[from:])
		}
		clear(dst[c:])
		return true
	})
	return err
}

// private returns an object's plaintext and the function that releases
// it: from the cache (or a fetch under way) when it is there or shared,
// else decoded into pooled memory (the plaintext may be in either pooled
// buffer, so both are held until the release).
func (b *base) private(id chunk.ID) ([]byte, func(), error) {
	b.mu.Lock()
	_, cached := b.cache[id]
	_, fetching := b.inflight[id]
	b.mu.Unlock()
	if cached || fetching || b.shared[id] {
		data, err := b.object(id)
		return data, func() {}, err
	}
	buf, _ := b.plain.Get().(*[]byte)
	if buf == nil {
		buf = new([]byte)
		*buf = make([]byte, 0, b.m.ChunkSize+64) // 64: the zstd decoder's slack
	}
	scratch, _ := b.scratch.Get().(*[]byte)
	if scratch == nil {
		scratch = new([]byte)
	}
	release := func() {
		b.plain.Put(buf)
		b.scratch.Put(scratch)
	}
	data, err := b.chunks.GetInto(context.Background(), id, (*buf)[:0], scratch)
	if err != nil {
		release()
		return nil, nil, err
	}
	return data, release, nil
}

// object returns the plaintext of an object, fetched once for concurrent
// readers and kept among the last baseCacheObjects read.
func (b *base) object(id chunk.ID) ([]byte, error) {
	b.mu.Lock()
	if d, ok := b.cache[id]; ok {
		b.mu.Unlock()
		return d, nil
	}
	if f, ok := b.inflight[id]; ok {
		b.mu.Unlock()
		<-f.done
		return f.data, f.err
	}
	f := &fetch{done: make(chan struct{})}
	if b.inflight == nil {
		b.inflight, b.cache = map[chunk.ID]*fetch{}, map[chunk.ID][]byte{}
	}
	b.inflight[id] = f
	b.mu.Unlock()

	f.data, f.err = b.chunks.Get(context.Background(), id)
	b.mu.Lock()
	delete(b.inflight, id)
	if f.err == nil {
		b.cache[id] = f.data
		b.order = append(b.order, id)
		if len(b.order) > baseCacheObjects {
			delete(b.cache, b.order[0])
			b.order = b.order[1:]
		}
	}
	b.mu.Unlock()
	close(f.done)
	return f.data, f.err
}

func (b *base) Close() error { return nil }
