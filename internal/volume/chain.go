package volume

import (
	"errors"
	"fmt"
	"sort"
)

// Seal fixes the content of the volume as of now as snapshot id: it waits
// for writes in flight (new ones wait), flushes the head, records it as
// the sealed layer of id and starts a new empty head. Its cost does not
// depend on the size of the volume or of its data.
func (v *Volume) Seal(id string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return ErrClosed
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
	if err := v.save(); err != nil {
		v.st = prev
		nh.remove(v.dir)
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
}

// Changed returns the chunks of snapshot id that differ from its parent.
func (v *Volume) Changed(id string, chunkSize int64) (Changes, error) {
	if chunkSize%ClusterSize != 0 {
		return Changes{}, errors.New("volume: chunk size must be a multiple of the cluster size")
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
	set := map[int64]bool{}
	for j := lo; j <= i; j++ {
		v.layers[j].held(func(c int64) error {
			set[c/per] = true
			return nil
		})
	}
	for k := range set {
		ch.Chunks = append(ch.Chunks, k)
	}
	sort.Slice(ch.Chunks, func(a, b int) bool { return ch.Chunks[a] < ch.Chunks[b] })
	return ch, nil
}

// MarkUploaded records that snapshot id is durable elsewhere, and merges
// the sealed layers that no longer need to stay apart into the bottom
// layer (cost proportional to their data).
func (v *Volume) MarkUploaded(id string) error {
	v.mu.Lock()
	i, err := v.sealedIndex(id)
	if err != nil {
		v.mu.Unlock()
		return err
	}
	v.st.Layers[i].Uploaded = true
	err = v.save()
	v.mu.Unlock()
	if err != nil {
		return err
	}
	return v.mergeDown()
}

// mergeDown folds sealed layers into the bottom, lowest first, up to the
// topmost uploaded one. Readers keep seeing the same bytes throughout:
// a layer leaves the chain only after its clusters are durable below.
func (v *Volume) mergeDown() error {
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
		if top < 1 || v.closed {
			v.mu.RUnlock()
			return nil
		}
		bottom, src := v.layers[0], v.layers[1]
		v.mu.RUnlock()
		// Copy without the barrier, so that a Seal need not wait: src is
		// sealed (immutable) and only bottomMu holders write the bottom.
		buf := make([]byte, ClusterSize)
		err := src.held(func(c int64) error {
			start := c * ClusterSize
			n := min(int64(ClusterSize), v.st.Size-start)
			if _, err := src.data.ReadAt(buf[:n], start); err != nil {
				return err
			}
			if _, err := bottom.data.WriteAt(buf[:n], start); err != nil {
				return err
			}
			bottom.gain(c)
			return nil
		})
		if err == nil {
			err = bottom.flush()
		}
		if err != nil {
			return fmt.Errorf("merge %s: %w", src.name, err)
		}
		v.mu.Lock()
		merged := v.st.Layers[1]
		prev := v.st
		v.st.Layers = append([]layerInfo{v.st.Layers[0]}, v.st.Layers[2:]...)
		if merged.Snapshot != "" && merged.Uploaded {
			v.st.Merged = merged.Snapshot
		}
		if err := v.save(); err != nil {
			v.st = prev
			v.mu.Unlock()
			return err
		}
		v.layers = append([]*layer{v.layers[0]}, v.layers[2:]...)
		v.mu.Unlock()
		src.remove(v.dir)
	}
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
	if v.closed {
		base.Close()
		return ErrClosed
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
	if err := v.save(); err != nil {
		v.st = prev
		for _, f := range fresh {
			f.remove(v.dir)
		}
		base.Close()
		return err
	}
	old, oldBase := v.layers, v.base
	v.layers, v.base = fresh, base
	for _, l := range old {
		l.remove(v.dir)
	}
	if oldBase != nil {
		oldBase.Close()
	}
	return nil
}

// BaseID returns the snapshot the volume reads through, "" when none.
func (v *Volume) BaseID() string {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.st.Base
}

// Hydrate copies the clusters of the base that the bottom layer lacks
// into it, chunk by chunk (want lists the chunkSize-byte chunks the base
// holds; progress is called after each), then drops the base.
func (v *Volume) Hydrate(chunkSize int64, want []int64, progress func(done int)) error {
	v.bottomMu.Lock()
	defer v.bottomMu.Unlock()
	buf := make([]byte, chunkSize)
	for n, k := range want {
		v.mu.RLock()
		if v.closed || v.base == nil {
			v.mu.RUnlock()
			return ErrClosed
		}
		bottom := v.layers[0]
		off := k * chunkSize
		size := min(chunkSize, v.st.Size-off)
		err := v.base.ReadAt(buf[:size], off)
		for c := off / ClusterSize; err == nil && c*ClusterSize < off+size; c++ {
			if bottom.has(c) {
				continue
			}
			start := c*ClusterSize - off
			end := min(start+ClusterSize, size)
			if _, err = bottom.data.WriteAt(buf[start:end], c*ClusterSize); err == nil {
				bottom.gain(c)
			}
		}
		v.mu.RUnlock()
		if err != nil {
			return err
		}
		if progress != nil {
			progress(n + 1)
		}
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
