package engine

import (
	"encoding/binary"
	"math/bits"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/snapstack/snapstack/internal/chunk"
	"github.com/snapstack/snapstack/internal/manifest"
	"github.com/snapstack/snapstack/internal/volume"
)

// Block deduplication inside one upload.
//
// Chunk IDs deduplicate whole 1 MiB chunks. A disk image also holds
// copies of data at other offsets: a file copied inside the guest's file
// system lands on other blocks, 4 KiB-aligned but rarely at the same
// place within a chunk. While it uploads a snapshot, the engine keeps a
// bounded index of a sample of the 4 KiB blocks it stored (one in 4,
// chosen by content); a sampled block of a later chunk found in the index
// is compared byte for byte with the earlier copy (read back from the
// sealed snapshot), the match is extended block by block backwards and
// forwards, and the run becomes a manifest piece pointing into the
// earlier chunk's object instead of being compressed and stored again.
//
// The index is lossy and bounded: a fixed table of 8-byte entries, each
// slot overwritten by the last block that hashed to it. It forgets, it
// never lies: a hit is only a candidate, kept only if the bytes are
// equal. The tables of all the uploads under way share a budget
// (dedupMemory): an upload that starts when others hold it gets a small
// table, which only finds fewer copies.

const (
	dedupBlock = 4096
	// minDedup is the shortest run worth a piece: each piece costs the
	// restore a read of another object.
	minDedup = 64 << 10
	// dedupMemory bounds the memory of the indexes of all uploads.
	dedupMemory = 64 << 20
	// minIndexSlots is the table an upload gets whatever the budget.
	minIndexSlots = 4096
)

// blockIndex maps a sampled key of a 4 KiB block to the disk block
// number where the upload stored it. Safe for concurrent use; concurrent
// updates of one slot lose one of them, which costs only a missed match.
type blockIndex struct {
	slots []atomic.Uint64 // tag (high 32 bits, never 0) | block number
	mask  uint64
}

// newBlockIndex returns a table of twice as many slots as blocks (a
// power of two), at most maxSlots and at least minIndexSlots.
func newBlockIndex(blocks, maxSlots int64) *blockIndex {
	n := uint64(minIndexSlots)
	for n < uint64(blocks)*2 && n*2 <= uint64(maxSlots) {
		n <<= 1
	}
	return &blockIndex{slots: make([]atomic.Uint64, n), mask: n - 1}
}

// bytes is the memory of the table.
func (x *blockIndex) bytes() int64 { return int64(len(x.slots)) * 8 }

// allocIndex returns an index for an upload of about blocks blocks,
// within what the other uploads leave of dedupMemory; releaseIndex gives
// it back.
func (e *Engine) allocIndex(blocks int64) *blockIndex {
	for {
		used := e.dedupMem.Load()
		// One upload takes at most half the budget (32 MiB: 4 Mi slots,
		// for 2 Mi sampled blocks, 32 GiB of data stored well).
		x := newBlockIndex(blocks, min(dedupMemory-used, dedupMemory/2)/8)
		if e.dedupMem.CompareAndSwap(used, used+x.bytes()) {
			return x
		}
	}
}

func (e *Engine) releaseIndex(x *blockIndex) { e.dedupMem.Add(-x.bytes()) }

// blockKey hashes 64 bytes sampled across a 4 KiB block: cheap (the
// bytes are compared before any use), and 0 when every sampled byte is
// zero (such blocks are mostly zero and not worth indexing).
func blockKey(b []byte) uint64 {
	_ = b[dedupBlock-1]
	var h, or uint64
	for i := 0; i < 8; i++ {
		w := binary.LittleEndian.Uint64(b[i*512+i*56:])
		or |= w
		h = bits.RotateLeft64((h^w)*0x9E3779B97F4A7C15, 29)
	}
	if or == 0 {
		return 0
	}
	return h | 1
}

func (x *blockIndex) tag(key uint64) uint64 { return key>>32 | 1<<31 }

// slot is where key goes: its low bits but the lowest, which blockKey
// sets to 1.
func (x *blockIndex) slot(key uint64) uint64 { return key >> 1 & x.mask }

// sampled reports whether a block with this key is indexed (and looked
// up): one block in 4, chosen by content so that a copy's blocks are
// chosen as its original's were. A run of minDedup (16 blocks) has none
// with a probability of 1%; the table holds 4 times more of the data.
func sampled(key uint64) bool { return key != 0 && key>>62 == 0 }

// lookup returns the block last indexed under key, if any.
func (x *blockIndex) lookup(key uint64) (int64, bool) {
	v := x.slots[x.slot(key)].Load()
	if v == 0 || v>>32 != x.tag(key) {
		return 0, false
	}
	return int64(v & (1<<32 - 1)), true
}

// insert records block number blk under key (blocks past 16 TiB are not
// indexed).
func (x *blockIndex) insert(key uint64, blk int64) {
	if blk >= 1<<32 {
		return
	}
	x.slots[x.slot(key)].Store(x.tag(key)<<32 | uint64(blk))
}

// dedupRef is a run of the chunk at off, n bytes long, equal to bytes
// [objOff, objOff+n) of object id.
type dedupRef struct {
	off, n, objOff int64
	id             chunk.ID
}

// findCopies looks for runs of data (a chunk of the sealed snapshot
// snap) that an earlier chunk of this upload stored, and returns them as
// references in chunk order, none shorter than minDedup, so that the
// references and the runs between them make at most budget pieces.
// scratch (at least 64 KiB) holds the earlier copy while it is compared;
// m, guarded by mu, says where the earlier chunks are stored.
func (x *blockIndex) findCopies(v *volume.Volume, snap string, data, scratch []byte,
	m *manifest.Manifest, mu *sync.Mutex, budget int) []dedupRef {
	var refs []dedupRef
	var ps [maxPieces]manifest.Piece
	end := int64(0) // the end of the last reference: runs do not overlap
	for j := int64(0); j+dedupBlock <= int64(len(data)); j += dedupBlock {
		key := blockKey(data[j:])
		if !sampled(key) {
			continue
		}
		blk, ok := x.lookup(key)
		if !ok {
			continue
		}
		src := blk * dedupBlock
		k, srcOff := src/ChunkSize, src%ChunkSize
		// The earlier chunk's piece holding src bounds the run: a piece
		// is one object's range.
		mu.Lock()
		pieces := m.Pieces(k, ps[:0])
		mu.Unlock()
		var p *manifest.Piece
		for i := range pieces {
			if q := &pieces[i]; int64(q.Off) <= srcOff && srcOff < int64(q.Off+q.Len) {
				p = q
				break
			}
		}
		if p == nil {
			continue
		}
		// Only sampled blocks are indexed: the run may begin before the
		// block found, as far back as the piece and the last run allow.
		back := matchBack(v, snap, src, data[max(end, j-(srcOff-int64(p.Off))):j], scratch)
		limit := min(int64(p.Off+p.Len)-srcOff, int64(len(data))-j)
		if back+limit < minDedup {
			continue
		}
		n := back + matchRun(v, snap, src, data[j:j+limit], scratch)
		if n < minDedup {
			continue
		}
		refs = append(refs, dedupRef{off: j - back, n: n, objOff: int64(p.ObjOff) + srcOff - back - int64(p.Off), id: p.ID})
		end = j - back + n
		j = end - dedupBlock
	}
	return bestRefs(refs, int64(len(data)), budget)
}

// matchRun returns how many leading whole blocks of want equal the
// snapshot's bytes at src, in bytes.
func matchRun(v *volume.Volume, snap string, src int64, want, scratch []byte) int64 {
	var n int64
	for n+dedupBlock <= int64(len(want)) {
		step := min(int64(len(scratch)), int64(len(want))-n) &^ (dedupBlock - 1)
		got := scratch[:step]
		if err := v.ReadSnapshotAt(snap, got, src+n); err != nil {
			return n // a failed read only loses the match
		}
		for b := int64(0); b < step; b += dedupBlock {
			if string(got[b:b+dedupBlock]) != string(want[n:n+dedupBlock]) {
				return n
			}
			n += dedupBlock
		}
	}
	return n
}

// matchBack returns how many trailing whole blocks of want equal the
// snapshot's bytes just before src, in bytes.
func matchBack(v *volume.Volume, snap string, src int64, want, scratch []byte) int64 {
	var n int64
	for n+dedupBlock <= int64(len(want)) {
		step := min(int64(len(scratch)), int64(len(want))-n) &^ (dedupBlock - 1)
		got := scratch[:step]
		if err := v.ReadSnapshotAt(snap, got, src-n-step); err != nil {
			return n
		}
		for b := step - dedupBlock; b >= 0; b -= dedupBlock {
			w := int64(len(want)) - n - dedupBlock
			if string(got[b:b+dedupBlock]) != string(want[w:w+dedupBlock]) {
				return n
			}
			n += dedupBlock
		}
	}
	return n
}

// bestRefs keeps the longest references whose pieces (the references and
// the stored runs between them) number at most budget, in chunk order.
func bestRefs(refs []dedupRef, size int64, budget int) []dedupRef {
	if len(refs) == 0 {
		return nil
	}
	sort.SliceStable(refs, func(a, b int) bool { return refs[a].n > refs[b].n })
	var kept []dedupRef
	for _, r := range refs {
		try := append(append([]dedupRef(nil), kept...), r)
		sort.Slice(try, func(a, b int) bool { return try[a].off < try[b].off })
		if len(try)+len(gaps(try, size)) <= budget {
			kept = try
		}
	}
	return kept
}

// gaps returns the runs of [0, size) that refs (sorted, not overlapping)
// do not cover, as {off, n} pairs.
func gaps(refs []dedupRef, size int64) [][2]int64 {
	var out [][2]int64
	at := int64(0)
	for _, r := range refs {
		if r.off > at {
			out = append(out, [2]int64{at, r.off - at})
		}
		at = r.off + r.n
	}
	if at < size {
		out = append(out, [2]int64{at, size - at})
	}
	return out
}
