package engine

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/snapstack/snapstack/internal/blob/blobtest"
)

// The last chunk of a disk whose size is not a multiple of 1 MiB is an
// exact copy of the start of an earlier chunk: the reference covers it
// from object offset 0, into an object longer than the chunk. Hydration
// reads the chunk exactly (it used to be recorded as a whole entry, and
// ReadBulk panicked clearing past the chunk's buffer).
func TestShortLastChunkCopyReadBulk(t *testing.T) {
	f := newFixture(t)
	f.e.workers = 1
	const size = 1<<20 + 512<<10
	if err := f.e.CreateDisk(ctx, "d-1", size, ""); err != nil {
		t.Fatal(err)
	}
	orig := randBytes(60, 1<<20)
	f.write("d-1", orig, 0)
	f.write("d-1", orig[:512<<10], 1<<20) // the short last chunk: a copy of chunk 0's start
	img := f.read("d-1")
	f.snapshot("d-1", "s-1")
	m := mustManifest(t, f, "s-1")
	t.Logf("chunk 1: %+v", m.Pieces(1, nil))

	b := newBase(m, f.e.chunks)
	buf := make([]byte, ChunkSize) // as Volume.Hydrate passes it: buf[:size]
	err := func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("panic: %v", r)
			}
		}()
		return b.ReadBulk(buf[:512<<10], 1<<20)
	}()
	if err != nil {
		t.Fatalf("ReadBulk of the last chunk: %v", err)
	}
	if !bytes.Equal(buf[:512<<10], img[1<<20:]) {
		t.Fatal("ReadBulk of the last chunk differs")
	}
}

// The same snapshot is the parent of a larger disk's snapshot: the bytes
// past the old end, zeroes on the disk, stay zeroes (they used to become
// the rest of the longer object).
func TestShortLastChunkCopyGrownDisk(t *testing.T) {
	f := newFixture(t)
	f.e.workers = 1
	const size = 1<<20 + 512<<10
	if err := f.e.CreateDisk(ctx, "d-1", size, ""); err != nil {
		t.Fatal(err)
	}
	orig := randBytes(61, 1<<20)
	f.write("d-1", orig, 0)
	f.write("d-1", orig[:512<<10], 1<<20)
	f.snapshot("d-1", "s-1")

	// A larger disk from s-1 (whose hydration reads the last chunk with
	// ReadAt, the sizes differing), then its snapshot, built on s-1.
	if err := f.e.CreateDisk(ctx, "d-2", 4<<20, "s-1"); err != nil {
		t.Fatal(err)
	}
	f.write("d-2", []byte("x"), 3<<20)
	want := f.read("d-2")
	if !bytes.Equal(want[size:3<<20], make([]byte, 3<<20-size)) {
		t.Fatal("d-2 is not zero past s-1's end")
	}
	f.snapshot("d-2", "s-2")
	m := mustManifest(t, f, "s-2")
	t.Logf("s-2 chunk 1: %+v", m.Pieces(1, nil))
	if err := f.e.CreateDisk(ctx, "r-2", 4<<20, "s-2"); err != nil {
		t.Fatal(err)
	}
	got := f.read("r-2")
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("the disk restored from s-2 differs first at byte %d (%#x, want %#x)", i, got[i], want[i])
		}
	}
}

// An incremental chunk over a whole parent entry: a dirty run inside it
// leaves two remnants of the parent's piece, and the references the run
// is cut into still keep the chunk within maxPieces pieces.
func TestIncrementalCopiesKeepPieceBudget(t *testing.T) {
	f := newFixture(t)
	f.e.workers = 1
	if err := f.e.CreateDisk(ctx, "d-1", diskSize, ""); err != nil {
		t.Fatal(err)
	}
	f.write("d-1", randBytes(70, 1<<20), 0)
	f.write("d-1", randBytes(71, 1<<20), 3<<20)
	f.snapshot("d-1", "s-1")

	r := randBytes(72, 1<<20)
	f.write("d-1", r, 0) // chunk 0 rewritten whole: indexed
	var run []byte
	for i, n := range []int{64 << 10, 64 << 10, 64 << 10, 116 << 10} {
		if i > 0 {
			run = append(run, randBytes(uint64(80+i), dedupBlock)...)
		}
		run = append(run, r[i*128<<10:i*128<<10+n]...)
	}
	if len(run) != 5*64<<10 {
		t.Fatalf("run of %d bytes", len(run))
	}
	f.write("d-1", run, 3<<20+128<<10) // 5 of 16 clusters of chunk 3
	img := f.read("d-1")
	f.snapshot("d-1", "s-2")
	m := mustManifest(t, f, "s-2")
	if ps := m.Pieces(3, nil); len(ps) > maxPieces {
		t.Errorf("chunk 3 has %d pieces, more than %d: %+v", len(ps), maxPieces, ps)
	}
	f.restoresTo("r-2", "s-2", diskSize, img)
}

// Many copies uploaded by concurrent workers, on a disk whose size is a
// multiple of neither 1 MiB nor 4 KiB, restore byte for byte; an
// incremental snapshot on top of the dedup pieces too.
func TestConcurrentCopiesOddSize(t *testing.T) {
	f := newFixture(t)
	f.e.workers = 4
	const size = 12<<20 + 5<<10 + 123
	if err := f.e.CreateDisk(ctx, "d-1", size, ""); err != nil {
		t.Fatal(err)
	}
	src := randBytes(90, 2<<20)
	f.write("d-1", src, 0)
	for i := int64(0); i < 10; i++ {
		off := int64(2<<20) + i*(1<<20) + (i*12)<<10
		n := int64(200<<10) + i*37<<10
		from := (i * 68) << 10
		f.write("d-1", src[from:from+n], off)
		f.write("d-1", randBytes(uint64(100+i), 5000), off+n+4096)
	}
	// A copy running into the disk's last, partial block.
	tail := int64(150<<10 + 123)
	f.write("d-1", src[4096:4096+tail], size-tail)
	img := f.read("d-1")
	f.snapshot("d-1", "s-1")
	m := mustManifest(t, f, "s-1")
	if len(newBase(m, f.e.chunks).shared) == 0 {
		t.Error("no copy was referenced")
	}
	f.restoresTo("r-1", "s-1", size, img)
	// Incremental: small writes into chunks holding dedup pieces, and a
	// new copy of s-1's data.
	f.write("d-1", []byte("patch"), 3<<20+300<<10)
	f.write("d-1", src[1<<20:1<<20+300<<10], 9<<20+64<<10)
	img2 := f.read("d-1")
	f.snapshot("d-1", "s-2")
	if _, err := f.e.Verify(ctx, "s-2"); err != nil {
		t.Fatal(err)
	}
	if err := f.e.DeleteSnapshot(ctx, "s-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.e.Collect(ctx); err != nil {
		t.Fatal(err)
	}
	f.restoresTo("r-2", "s-2", size, img2)
}

// hydrationOrder puts a chunk holding a copy right after its source
// chunk so that the source object is decoded once, also when the source
// chunk is stored whole (ReadBulk's whole path keeps shared objects).
func TestHydrationDecodesSharedWholeOnce(t *testing.T) {
	f := newFixture(t)
	f.e.workers = 1
	if err := f.e.CreateDisk(ctx, "d-1", diskSize, ""); err != nil {
		t.Fatal(err)
	}
	f.write("d-1", randBytes(95, 1<<20), 1<<20)
	f.write("d-1", randBytes(95, 1<<20)[:300<<10], 5<<20+100<<10)
	f.snapshot("d-1", "s-1")
	m := mustManifest(t, f, "s-1")
	if _, ok := m.Whole(1); !ok {
		t.Fatal("chunk 1 is not whole")
	}
	b := newBase(m, f.e.chunks)
	f.blobs.ResetCalls()
	for _, k := range hydrationOrder(m) {
		if err := b.ReadBulk(make([]byte, ChunkSize), k*ChunkSize); err != nil {
			t.Fatal(err)
		}
	}
	if got, objs := f.blobs.Calls(blobtest.OpGet), 2; got != objs {
		t.Errorf("hydration read %d objects, want %d (chunk 1's object once)", got, objs)
	}
}
