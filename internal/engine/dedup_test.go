package engine

import (
	"bytes"
	"encoding/binary"
	"slices"
	"testing"

	"github.com/snapstack/snapstack/internal/chunk"
	"github.com/snapstack/snapstack/internal/manifest"
)

// pieceAt returns the piece of chunk k holding byte off of the chunk.
func pieceAt(t *testing.T, m *manifest.Manifest, k, off int64) manifest.Piece {
	t.Helper()
	for _, p := range m.Pieces(k, nil) {
		if int64(p.Off) <= off && off < int64(p.Off+p.Len) {
			return p
		}
	}
	t.Fatalf("no piece of chunk %d holds offset %d: %+v", k, off, m.Pieces(k, nil))
	return manifest.Piece{}
}

// A copy of data stored earlier in the same snapshot, at another offset
// within its chunk, is stored once: the copy is a piece of the earlier
// chunk's object, and the snapshot restores byte for byte.
func TestUploadStoresCopiedBlocksOnce(t *testing.T) {
	f := newFixture(t)
	f.e.workers = 1 // chunks in disk order: the copy is uploaded after its original
	if err := f.e.CreateDisk(ctx, "d-1", diskSize, ""); err != nil {
		t.Fatal(err)
	}
	orig := randBytes(20, 300<<10)
	f.write("d-1", randBytes(21, 2<<20), 0) // chunks 0 and 1
	f.write("d-1", orig, 1<<20+8<<10)       // inside chunk 1
	f.write("d-1", randBytes(22, 1<<20), 5<<20)
	f.write("d-1", orig, 5<<20+100<<10) // a copy inside chunk 5, elsewhere in its chunk
	img := f.read("d-1")
	f.snapshot("d-1", "s-1")

	m := mustManifest(t, f, "s-1")
	src, ok := m.Whole(1)
	if !ok {
		t.Fatalf("chunk 1 is not one object: %+v", m.Pieces(1, nil))
	}
	p := pieceAt(t, m, 5, 100<<10)
	if p.ID != src || p.Off != 100<<10 || p.Len != 300<<10 || p.ObjOff != 8<<10 {
		t.Errorf("the copy in chunk 5 is %+v, want bytes [8 KiB, 308 KiB) of chunk 1's object %s", p, src)
	}
	// Chunk 5's own object holds the rest of the chunk only.
	own := pieceAt(t, m, 5, 0).ID
	if raw, err := f.e.chunks.Get(ctx, own); err != nil || len(raw) != 1<<20-300<<10 {
		t.Errorf("chunk 5's object holds %d bytes (%v), want %d", len(raw), err, 1<<20-300<<10)
	}

	f.restoresTo("r-1", "s-1", diskSize, img)
	if _, err := f.e.Verify(ctx, "s-1"); err != nil {
		t.Fatal(err)
	}
}

// The index only proposes: a block whose sampled bytes match an earlier
// block but whose other bytes differ is stored, not referenced.
func TestUploadComparesBytesBeforeReferencing(t *testing.T) {
	f := newFixture(t)
	f.e.workers = 1
	if err := f.e.CreateDisk(ctx, "d-1", diskSize, ""); err != nil {
		t.Fatal(err)
	}
	orig := randBytes(30, 512<<10)
	almost := bytes.Clone(orig)
	const bad = minDedup/dedupBlock + 4 // a block with a run worth a piece on both sides
	almost[bad*dedupBlock+100]++        // at a byte the key does not sample
	if blockKey(orig[bad*dedupBlock:]) != blockKey(almost[bad*dedupBlock:]) {
		t.Fatal("the changed byte is sampled by blockKey; pick another")
	}
	f.write("d-1", orig, 2<<20)
	f.write("d-1", almost, 6<<20+64<<10)
	img := f.read("d-1")
	f.snapshot("d-1", "s-1")

	m := mustManifest(t, f, "s-1")
	src := pieceAt(t, m, 2, 0).ID
	base := int64(64 << 10)
	if p := pieceAt(t, m, 6, base+bad*dedupBlock); p.ID == src {
		t.Errorf("the differing block refers to chunk 2's object: %+v", p)
	}
	// The equal runs on both sides of it are still found.
	for _, off := range []int64{base, base + (bad+1)*dedupBlock} {
		if p := pieceAt(t, m, 6, off); p.ID != src {
			t.Errorf("the equal block at %d is not a piece of chunk 2's object: %+v", off, p)
		}
	}
	f.restoresTo("r-1", "s-1", diskSize, img)
}

// An object referenced by another chunk's copy outlives the snapshot
// that stored it: the collector keeps it while a later snapshot shares
// the copy.
func TestCollectorKeepsCopiedBlocksSource(t *testing.T) {
	f := newFixture(t)
	f.e.workers = 1
	if err := f.e.CreateDisk(ctx, "d-1", diskSize, ""); err != nil {
		t.Fatal(err)
	}
	orig := randBytes(40, 200<<10)
	f.write("d-1", orig, 1<<20)
	f.write("d-1", orig, 3<<20+40<<10)
	f.snapshot("d-1", "s-1")
	// Chunk 1 rewritten: s-2 shares chunk 3, whose copy lives in s-1's
	// object of chunk 1.
	f.write("d-1", randBytes(41, 1<<20), 1<<20)
	img2 := f.read("d-1")
	f.snapshot("d-1", "s-2")
	if err := f.e.DeleteSnapshot(ctx, "s-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.e.Collect(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.e.Verify(ctx, "s-2"); err != nil {
		t.Fatalf("s-2 lost the source of its copy: %v", err)
	}
	f.restoresTo("r-2", "s-2", diskSize, img2)
}

// The references kept fit the piece budget, longest first.
func TestBestRefsKeepsPieceBudget(t *testing.T) {
	const size = 1 << 20
	var refs []dedupRef
	for i := int64(0); i < 12; i++ {
		refs = append(refs, dedupRef{off: i * 80 << 10, n: (16 + i) << 10, id: chunk.ID{byte(i)}})
	}
	kept := bestRefs(refs, size, maxPieces)
	if n := len(kept) + len(gaps(kept, size)); n > maxPieces {
		t.Fatalf("%d refs and their gaps make %d pieces, more than %d", len(kept), n, maxPieces)
	}
	// The three longest (inner: 2 pieces each, 7 in all), then the one
	// at the chunk's start, which adds a single piece.
	var offs []int64
	for _, r := range kept {
		offs = append(offs, r.off/(80<<10))
	}
	if !slices.Equal(offs, []int64{0, 9, 10, 11}) {
		t.Fatalf("kept refs %v, want 0, 9, 10, 11", offs)
	}
}

// The index forgets but never answers for another key.
func TestBlockIndexLookup(t *testing.T) {
	x := newBlockIndex(100, 1<<20)
	a, b := blockKey(randBytes(1, dedupBlock)), blockKey(randBytes(2, dedupBlock))
	x.insert(a, 7)
	if blk, ok := x.lookup(a); !ok || blk != 7 {
		t.Fatalf("lookup after insert: %d, %v", blk, ok)
	}
	if _, ok := x.lookup(b); ok && x.slot(b) != x.slot(a) {
		t.Fatal("lookup of a key never inserted succeeded")
	}
	if blockKey(make([]byte, dedupBlock)) != 0 {
		t.Fatal("a zero block has a key")
	}
	x.insert(b, 1<<32) // past 16 TiB: not indexed
	if _, ok := x.lookup(b); ok && x.slot(b) != x.slot(a) {
		t.Fatal("a block past 16 TiB was indexed")
	}
}

// A hydration reads a chunk holding a copy right after the chunk whose
// object it shares, so that the object is decoded once.
func TestHydrationOrderFollowsSharedObjects(t *testing.T) {
	m := manifest.New(16<<20, ChunkSize, "")
	obj := func(b byte) chunk.ID { return chunk.ID{b} }
	for k := int64(0); k < 8; k++ {
		m.Set(k, obj(byte(k+1)))
	}
	m.PatchFrom(6, 0, 64<<10, obj(3), 128<<10) // chunk 6 copies from chunk 2's object
	m.PatchFrom(7, 4096, 64<<10, obj(2), 0)    // chunk 7 from chunk 1's
	got := hydrationOrder(m)
	if want := []int64{0, 1, 7, 2, 6, 3, 4, 5}; !slices.Equal(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
}

// Hydration reads a chunk of pieces with the same bytes as a client's
// read, and keeps in the base's cache only the objects chunks share.
func TestReadBulkOfPieces(t *testing.T) {
	f := newFixture(t)
	f.e.workers = 1
	if err := f.e.CreateDisk(ctx, "d-1", diskSize, ""); err != nil {
		t.Fatal(err)
	}
	orig := randBytes(50, 300<<10)
	f.write("d-1", orig, 1<<20)                                       // chunk 1: pieces of a private object
	f.write("d-1", randBytes(51, 100<<10), 5<<20)                     // chunk 5: its own object ...
	f.write("d-1", orig, 5<<20+128<<10)                               // ... and a copy of chunk 1's
	f.write("d-1", bytes.Repeat([]byte("raw?"), 1<<10), 7<<20+64<<10) // compressible, private
	f.snapshot("d-1", "s-1")
	m := mustManifest(t, f, "s-1")
	b := newBase(m, f.e.chunks)
	shared := pieceAt(t, m, 1, 0).ID
	if len(b.shared) != 1 || !b.shared[shared] {
		t.Fatalf("shared objects %v, want only chunk 1's %s", b.shared, shared)
	}
	fresh := newBase(m, f.e.chunks)
	for _, k := range m.Indices() {
		if err := fresh.ReadBulk(make([]byte, ChunkSize), k*ChunkSize); err != nil {
			t.Fatal(err)
		}
	}
	for id := range fresh.cache {
		if !fresh.shared[id] {
			t.Errorf("ReadBulk cached object %s, which one chunk uses", id)
		}
	}
	for _, k := range m.Indices() {
		want := make([]byte, ChunkSize)
		if err := b.ReadAt(want, k*ChunkSize); err != nil {
			t.Fatal(err)
		}
		for range 2 { // the second time from pooled buffers
			got := make([]byte, ChunkSize)
			if err := b.ReadBulk(got, k*ChunkSize); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("ReadBulk of chunk %d differs from ReadAt", k)
			}
		}
	}
	img := f.read("d-1")
	for _, k := range m.Indices() {
		got := make([]byte, ChunkSize)
		b.ReadBulk(got, k*ChunkSize)
		if !bytes.Equal(got, img[k*ChunkSize:(k+1)*ChunkSize]) {
			t.Fatalf("chunk %d differs from the disk", k)
		}
	}
}

// The indexes of the uploads under way share dedupMemory: two large
// uploads get half of it each, a third the smallest table while they
// hold it, and the budget is whole again once they are released.
func TestIndexesShareTheMemoryBudget(t *testing.T) {
	f := newFixture(t)
	const huge = 1 << 40 / dedupBlock // a 1 TiB upload
	a, b := f.e.allocIndex(huge), f.e.allocIndex(huge)
	if a.bytes() != dedupMemory/2 || b.bytes() != dedupMemory/2 {
		t.Fatalf("two large uploads' indexes: %d and %d bytes, want %d each", a.bytes(), b.bytes(), dedupMemory/2)
	}
	c := f.e.allocIndex(huge)
	if c.bytes() != minIndexSlots*8 {
		t.Fatalf("third index while the first two hold the budget: %d bytes, want %d", c.bytes(), minIndexSlots*8)
	}
	f.e.releaseIndex(a)
	f.e.releaseIndex(b)
	f.e.releaseIndex(c)
	if got := f.e.dedupMem.Load(); got != 0 {
		t.Fatalf("%d bytes still counted after every release", got)
	}
	if d := f.e.allocIndex(huge); d.bytes() != dedupMemory/2 {
		t.Fatalf("after the releases: %d bytes, want %d", d.bytes(), dedupMemory/2)
	}
	// A small upload gets a table for its size.
	if s := f.e.allocIndex(100_000); s.bytes() != 256<<10*8 {
		t.Fatalf("an upload of 100,000 blocks: %d bytes, want %d", s.bytes(), 256<<10*8)
	}
}

// Keys spread over every slot of the table (blockKey sets the lowest bit
// of every key: slots indexed by it would use half the table).
func TestBlockIndexUsesEverySlot(t *testing.T) {
	x := newBlockIndex(0, 1<<20)
	used := map[uint64]bool{}
	blk := randBytes(1, dedupBlock)
	for i := range 20 * minIndexSlots {
		binary.LittleEndian.PutUint64(blk, uint64(i)) // bytes 0-7 are sampled
		used[x.slot(blockKey(blk))] = true
	}
	if len(used) < minIndexSlots*9/10 {
		t.Fatalf("%d of %d slots used by %d keys", len(used), minIndexSlots, 20*minIndexSlots)
	}
}
