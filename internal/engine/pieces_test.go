package engine

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/snapstack/snapstack/internal/chunk"
	"github.com/snapstack/snapstack/internal/manifest"
	"github.com/snapstack/snapstack/internal/volume"
)

// A small change inside a chunk stores only the changed clusters, as
// pieces over the parent's object, and every snapshot still restores
// exactly.
func TestIncrementalStoresChangedClustersOnly(t *testing.T) {
	f := newFixture(t)
	if err := f.e.CreateDisk(ctx, "d-1", diskSize, ""); err != nil {
		t.Fatal(err)
	}
	f.write("d-1", randBytes(10, 4<<20), 0)
	img1 := f.read("d-1")
	f.snapshot("d-1", "s-1")

	// Two clusters of chunk 1 (one write inside one, one across two).
	f.write("d-1", []byte("small change"), 1<<20+100)
	f.write("d-1", randBytes(11, 1000), 1<<20+3*volume.ClusterSize-500)
	img2 := f.read("d-1")
	f.snapshot("d-1", "s-2")
	m, err := f.e.loadManifest(ctx, "s-2")
	if err != nil {
		t.Fatal(err)
	}
	// Pieces: cluster 0 (new), clusters 1 (parent), 2-3 (new), 4-15 (parent).
	if got := m.Fragments(1); got != 4 {
		t.Errorf("chunk 1 has %d pieces, want 4: %+v", got, m.Pieces(1, nil))
	}
	for _, k := range []int64{0, 2, 3} {
		if _, ok := m.Whole(k); !ok {
			t.Errorf("unchanged chunk %d is not its parent's whole object", k)
		}
	}
	// The changed runs are one new object of 3 clusters; the rest points
	// at the parent's object of chunk 1.
	parent, _ := mustManifest(t, f, "s-1").Whole(1)
	news := map[chunk.ID]bool{}
	for _, p := range m.Pieces(1, nil) {
		if p.ID != parent {
			news[p.ID] = true
		}
	}
	if len(news) != 1 {
		t.Fatalf("chunk 1 refers to %d new objects, want 1", len(news))
	}
	// Verify counts the 4 data chunks, and reads 5 objects: the parent's
	// 4 and the changed runs of chunk 1.
	if v, err := f.e.Verify(ctx, "s-2"); err != nil || v != (Verified{Chunks: 4, Objects: 5}) {
		t.Errorf("verify s-2: %+v, %v", v, err)
	}
	for id := range news {
		raw, err := f.e.chunks.Get(ctx, id)
		if err != nil || len(raw) != 3*volume.ClusterSize {
			t.Errorf("the new object holds %d bytes (%v), want the 3 changed clusters (%d)", len(raw), err, 3*volume.ClusterSize)
		}
	}

	// Half a chunk or more changed: the whole chunk is stored again.
	f.write("d-1", randBytes(12, 9*volume.ClusterSize), 2<<20)
	img3 := f.read("d-1")
	f.snapshot("d-1", "s-3")
	if m, _ = f.e.loadManifest(ctx, "s-3"); m.Fragments(2) != 1 {
		t.Errorf("chunk 2 after a 9-cluster change has %d pieces, want 1", m.Fragments(2))
	}

	// A write of zeroes into a chunk that had data becomes a gap.
	f.write("d-1", make([]byte, volume.ClusterSize), 3<<20)
	img4 := f.read("d-1")
	f.snapshot("d-1", "s-4")

	for _, tc := range []struct {
		id   string
		want []byte
	}{{"s-1", img1}, {"s-2", img2}, {"s-3", img3}, {"s-4", img4}} {
		if err := f.e.CreateDisk(ctx, "r-"+tc.id, diskSize, tc.id); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(f.read("r-"+tc.id), tc.want) {
			t.Fatalf("disk from %s differs", tc.id)
		}
		if _, err := f.e.Verify(ctx, tc.id); err != nil {
			t.Fatalf("verify %s: %v", tc.id, err)
		}
	}
}

// Many snapshots of random small writes (so chunks fragment, hit the
// piece limit and are rewritten whole) restore byte for byte, from the
// stored manifests and after the collector ran with all but the last
// deleted.
func TestRandomIncrementalsRestoreExactly(t *testing.T) {
	f := newFixture(t)
	const size = 4 << 20
	if err := f.e.CreateDisk(ctx, "d-1", size, ""); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	var imgs [][]byte
	for s := 0; s < 12; s++ {
		for w := 0; w < 1+r.IntN(6); w++ {
			n := 1 + r.IntN(3*volume.ClusterSize)
			off := r.Int64N(size - int64(n))
			p := randBytes(uint64(100*s+w), n)
			if r.IntN(4) == 0 {
				p = make([]byte, n)
			}
			f.write("d-1", p, off)
		}
		imgs = append(imgs, f.read("d-1"))
		f.snapshot("d-1", fmt.Sprintf("s-%d", s))
	}
	split := 0
	for s, want := range imgs {
		id := fmt.Sprintf("s-%d", s)
		if err := f.e.RestoreDisk(ctx, "d-1", id); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(f.read("d-1"), want) {
			t.Fatalf("restore of %s differs", id)
		}
		m, _ := f.e.loadManifest(ctx, id)
		for _, k := range m.Indices() {
			if m.Fragments(k) > maxPieces {
				t.Fatalf("%s: chunk %d has %d pieces", id, k, m.Fragments(k))
			}
			if m.Fragments(k) > 1 {
				split++
			}
		}
	}
	if split == 0 {
		t.Fatal("no snapshot has a chunk made of pieces: the test does not test them")
	}
	for s := 0; s < len(imgs)-1; s++ {
		f.e.DeleteSnapshot(ctx, fmt.Sprintf("s-%d", s))
	}
	if _, err := f.e.Collect(ctx); err != nil {
		t.Fatal(err)
	}
	last := fmt.Sprintf("s-%d", len(imgs)-1)
	if err := f.e.CreateDisk(ctx, "d-2", size, last); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(f.read("d-2"), imgs[len(imgs)-1]) {
		t.Fatal("last snapshot damaged by the collector")
	}
}

func TestClusterRuns(t *testing.T) {
	for _, tc := range []struct {
		dirty uint64
		want  []clusterRun
	}{
		{0, nil},
		{1, []clusterRun{{0, 1}}},
		{0b1101100, []clusterRun{{2, 2}, {5, 2}}},
		{^uint64(0), []clusterRun{{0, 64}}},
		{1 << 63, []clusterRun{{63, 1}}},
		{^uint64(1), []clusterRun{{1, 63}}},
	} {
		got := clusterRuns(tc.dirty)
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("clusterRuns(%b) = %v, want %v", tc.dirty, got, tc.want)
		}
	}
}

// The hydration read (ReadBulk) returns what ReadAt returns, for whole
// chunks, chunks of pieces, zero chunks and the short last chunk, and
// reports a damaged object instead of returning its bytes.
func TestBaseReadBulk(t *testing.T) {
	f := newFixture(t)
	const size = 4<<20 + 3*volume.ClusterSize
	if err := f.e.CreateDisk(ctx, "d-1", size, ""); err != nil {
		t.Fatal(err)
	}
	f.write("d-1", randBytes(20, 2<<20), 0)
	f.write("d-1", randBytes(21, 3*volume.ClusterSize), 4<<20)
	f.snapshot("d-1", "s-1")
	f.write("d-1", []byte("piece"), 1<<20+volume.ClusterSize)
	f.snapshot("d-1", "s-2")
	m, err := f.e.loadManifest(ctx, "s-2")
	if err != nil {
		t.Fatal(err)
	}
	if m.Fragments(1) < 2 {
		t.Fatalf("chunk 1 is not made of pieces: %+v", m.Pieces(1, nil))
	}
	b := &base{m: m, chunks: f.e.chunks}
	for k := int64(0); k*ChunkSize < size; k++ {
		n := min(ChunkSize, size-k*ChunkSize)
		want, got := make([]byte, n), bytes.Repeat([]byte{0xaa}, int(n))
		if err := b.ReadAt(want, k*ChunkSize); err != nil {
			t.Fatal(err)
		}
		if err := b.ReadBulk(got, k*ChunkSize); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("chunk %d: ReadBulk differs from ReadAt", k)
		}
	}
	id, _ := m.Whole(0)
	if err := f.blobs.FlipBit(ctx, "chunks/"+id.String()[:2]+"/"+id.String(), 999); err != nil {
		t.Fatal(err)
	}
	fresh := &base{m: m, chunks: f.e.chunks}
	if err := fresh.ReadBulk(make([]byte, ChunkSize), 0); !errors.Is(err, chunk.ErrCorrupt) {
		t.Fatalf("ReadBulk of a damaged chunk: %v", err)
	}
}

// The base's extents (what NBD block status reports for a restored disk
// until it is hydrated) are zero exactly where the snapshot reads zeroes
// at chunk and piece granularity: chunks without data and gaps between
// pieces; every byte reported as zero reads as zero.
func TestBaseExtents(t *testing.T) {
	f := newFixture(t)
	const size = 6 << 20
	if err := f.e.CreateDisk(ctx, "d-1", size, ""); err != nil {
		t.Fatal(err)
	}
	f.write("d-1", randBytes(30, 1<<20), 0)                                     // chunk 0: whole
	f.write("d-1", randBytes(31, volume.ClusterSize), 2<<20+volume.ClusterSize) // chunk 2: one piece
	f.write("d-1", randBytes(32, 2<<20), 4<<20)                                 // chunks 4, 5: whole
	f.snapshot("d-1", "s-1")
	f.write("d-1", make([]byte, volume.ClusterSize), 4<<20+3*volume.ClusterSize) // a gap in chunk 4
	f.snapshot("d-1", "s-2")
	m, err := f.e.loadManifest(ctx, "s-2")
	if err != nil {
		t.Fatal(err)
	}
	b := &base{m: m, chunks: f.e.chunks}
	content := make([]byte, size)
	if err := b.ReadAt(content, 0); err != nil {
		t.Fatal(err)
	}
	type ext struct {
		n    int64
		zero bool
	}
	var got []ext
	var pos int64
	if err := b.Extents(volume.ClusterSize, size-volume.ClusterSize-100, func(n int64, zero bool) bool {
		if zero && !isZero(content[volume.ClusterSize+pos:volume.ClusterSize+pos+n]) {
			t.Fatalf("extent at %d of %d bytes reported zero holds data", volume.ClusterSize+pos, n)
		}
		pos += n
		if len(got) > 0 && got[len(got)-1].zero == zero {
			got[len(got)-1].n += n
		} else {
			got = append(got, ext{n, zero})
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if pos != size-volume.ClusterSize-100 {
		t.Fatalf("extents cover %d bytes, want %d", pos, size-volume.ClusterSize-100)
	}
	const c = volume.ClusterSize
	// Expected layout, merged: data [64K,1M), zero [1M,2M+64K), data
	// [2M+64K,2M+128K), zero [2M+128K,4M), data [4M,4M+192K), zero
	// [4M+192K,4M+256K), data [4M+256K, 6M-100).
	exp := []ext{{1<<20 - c, false}, {1<<20 + c, true}, {c, false}, {2<<20 - 2*c, true}, {3 * c, false}, {c, true}, {2<<20 - 4*c - 100, false}}
	if fmt.Sprint(got) != fmt.Sprint(exp) {
		t.Fatalf("extents %v, want %v", got, exp)
	}
	// Stopping early is honoured.
	calls := 0
	b.Extents(0, size, func(int64, bool) bool { calls++; return false })
	if calls != 1 {
		t.Fatalf("fn called %d times after returning false", calls)
	}
}

func isZero(p []byte) bool { return chunk.IsZero(p) }

func mustManifest(t *testing.T, f *fixture, id string) *manifest.Manifest {
	t.Helper()
	m, err := f.e.loadManifest(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
