package volume

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"
)

type extent struct {
	n          int64
	hole, zero bool
}

func (e extent) String() string { return fmt.Sprintf("{%d h=%v z=%v}", e.n, e.hole, e.zero) }

// extentsOf collects the extents of [off, off+n).
func extentsOf(t testing.TB, v *Volume, off, n int64) []extent {
	t.Helper()
	var got []extent
	if err := v.Extents(off, n, func(n int64, hole, zero bool) bool {
		got = append(got, extent{n, hole, zero})
		return true
	}); err != nil {
		t.Fatalf("Extents(%d, %d): %v", off, n, err)
	}
	return got
}

// zeroBase is a memBase that reports chunks of zeroChunk bytes as zero
// where zero[k] is set.
type zeroBase struct {
	memBase
	chunk int64
	zero  map[int64]bool
	calls int
	err   error
}

func (b *zeroBase) Extents(off, length int64, fn func(n int64, zero bool) bool) error {
	b.calls++
	if b.err != nil {
		return b.err
	}
	for length > 0 {
		k := off / b.chunk
		n := min(length, (k+1)*b.chunk-off)
		if !fn(n, b.zero[k]) {
			return nil
		}
		off, length = off+n, length-n
	}
	return nil
}

// punchWorks reports whether the file system of dir punches holes and
// reports them with SEEK_HOLE.
func punchWorks(t *testing.T, dir string) bool {
	f, err := os.CreateTemp(dir, "probe")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	f.Write(make([]byte, 2*ClusterSize))
	if syscall.Fallocate(int(f.Fd()), 0x03, 0, ClusterSize) != nil {
		return false
	}
	h, err := syscall.Seek(int(f.Fd()), 0, seekHole)
	return err == nil && h == 0
}

func TestExtents(t *testing.T) {
	const C = ClusterSize
	data := bytes.Repeat([]byte{0xab}, 2*C)
	v := newVol(t, 32*C, nil)
	hole, dat := extent{hole: true, zero: true}, extent{}
	ext := func(e extent, n int64) extent { e.n = n; return e }

	if got, want := extentsOf(t, v, 0, 32*C), []extent{ext(hole, 32*C)}; !slices.Equal(got, want) {
		t.Fatalf("empty volume: %v, want %v", got, want)
	}
	if _, err := v.WriteAt(data, 2*C); err != nil { // clusters 2, 3
		t.Fatal(err)
	}
	if _, err := v.WriteAt([]byte("x"), 5*C+100); err != nil { // copy-up of cluster 5
		t.Fatal(err)
	}
	if err := v.Seal("s-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := v.WriteAt(data[:C], 4*C); err != nil { // cluster 4, in the new head
		t.Fatal(err)
	}
	if err := v.WriteZeroes(10*C, C, true); err != nil { // written zeroes: data
		t.Fatal(err)
	}
	if err := v.WriteZeroes(3*C, C, false); err != nil { // punched in the head
		t.Fatal(err)
	}
	if err := v.WriteZeroes(20*C, 2*C, false); err != nil { // punched, nothing below
		t.Fatal(err)
	}
	punched := hole
	if !punchWorks(t, v.Dir()) {
		t.Log("no hole punching here: punched clusters are data")
		punched = dat
	}
	want := []extent{ext(hole, 2*C), ext(dat, C), ext(punched, C), ext(dat, 2*C), ext(hole, 4*C), ext(dat, C), ext(hole, 9*C), ext(punched, 2*C), ext(hole, 10*C)}
	if punched == dat {
		want = []extent{ext(hole, 2*C), ext(dat, 4*C), ext(hole, 4*C), ext(dat, C), ext(hole, 9*C), ext(dat, 2*C), ext(hole, 10*C)}
	}
	merged := mergeExtents(want)
	if got := extentsOf(t, v, 0, 32*C); !slices.Equal(got, merged) {
		t.Fatalf("extents %v, want %v", got, merged)
	}
	// Unaligned ranges are clipped.
	if got, w := extentsOf(t, v, 2*C+7, 100), []extent{ext(dat, 100)}; !slices.Equal(got, w) {
		t.Fatalf("unaligned: %v, want %v", got, w)
	}
	if got, w := extentsOf(t, v, C+1, C), []extent{ext(hole, C-1), ext(dat, 1)}; !slices.Equal(got, w) {
		t.Fatalf("across a boundary: %v, want %v", got, w)
	}
	// fn stops the walk.
	calls := 0
	if err := v.Extents(0, 32*C, func(int64, bool, bool) bool { calls++; return false }); err != nil || calls != 1 {
		t.Fatalf("stop: %d calls, err %v", calls, err)
	}
	// Bounds.
	for _, r := range [][2]int64{{-1, 1}, {0, 32*C + 1}, {32 * C, 1}, {0, -1}} {
		if err := v.Extents(r[0], r[1], func(int64, bool, bool) bool { return true }); !errors.Is(err, ErrRange) {
			t.Fatalf("Extents(%d, %d): %v, want ErrRange", r[0], r[1], err)
		}
	}
	if got := extentsOf(t, v, 32*C, 0); len(got) != 0 {
		t.Fatalf("empty range: %v", got)
	}
}

// mergeExtents merges adjacent extents of the same kind.
func mergeExtents(in []extent) []extent {
	var out []extent
	for _, e := range in {
		if n := len(out); n > 0 && out[n-1].hole == e.hole && out[n-1].zero == e.zero {
			out[n-1].n += e.n
			continue
		}
		out = append(out, e)
	}
	return out
}

func TestExtentsBase(t *testing.T) {
	const C, chunk = ClusterSize, 4 * ClusterSize
	size := int64(16 * C)
	zb := &zeroBase{memBase: memBase{data: make([]byte, size)}, chunk: chunk, zero: map[int64]bool{0: true, 2: true, 3: true}}
	copy(zb.data[chunk:], bytes.Repeat([]byte{1}, chunk))
	var base Base = zb
	v := newVol(t, size, func(string) (Base, error) { return base, nil })
	if err := v.Reset("s-base"); err != nil {
		t.Fatal(err)
	}
	if _, err := v.WriteAt(bytes.Repeat([]byte{2}, C), 9*C); err != nil { // in a zero chunk
		t.Fatal(err)
	}
	hole := func(n int64) extent { return extent{n, true, true} }
	data := func(n int64) extent { return extent{n: n} }
	want := []extent{hole(chunk), data(chunk), hole(C), data(C), hole(6 * C)}
	if got := extentsOf(t, v, 0, size); !slices.Equal(got, want) {
		t.Fatalf("extents %v, want %v", got, want)
	}
	// Every zero extent reads as zeroes.
	checkZeroExtents(t, v, size)

	zb.err = errors.New("base lost")
	if err := v.Extents(0, size, func(int64, bool, bool) bool { return true }); !errors.Is(err, zb.err) {
		t.Fatalf("base error: %v", err)
	}
	zb.err = nil

	// A base without BaseExtenter is data throughout.
	base = &memBase{data: zb.data}
	if err := v.Reset("s-plain"); err != nil {
		t.Fatal(err)
	}
	if got, w := extentsOf(t, v, 0, size), []extent{data(size)}; !slices.Equal(got, w) {
		t.Fatalf("plain base: %v, want %v", got, w)
	}
}

// checkZeroExtents checks that the extents cover [0, size) and that every
// extent reported zero reads as zeroes.
func checkZeroExtents(t *testing.T, v *Volume, size int64) {
	t.Helper()
	var pos int64
	for _, e := range extentsOf(t, v, 0, size) {
		if e.n <= 0 || e.hole && !e.zero {
			t.Fatalf("bad extent %v at %d", e, pos)
		}
		if e.zero && !bytes.Equal(read(t, v, pos, e.n), make([]byte, e.n)) {
			t.Fatalf("extent %v at %d reported zero, has data", e, pos)
		}
		pos += e.n
	}
	if pos != size {
		t.Fatalf("extents cover %d of %d bytes", pos, size)
	}
}

// TestExtentsAgainstModel checks zero extents against the content after
// random writes, zeroes, trims and seals.
func TestExtentsAgainstModel(t *testing.T) {
	const size = 2<<20 + 12345
	v := newVol(t, size, nil)
	rng := rand.New(rand.NewPCG(3, 4))
	for step := 0; step < 300; step++ {
		off := rng.Int64N(size)
		n := min(rng.Int64N(300<<10)+1, size-off)
		switch r := rng.IntN(10); {
		case r < 4:
			p := randomFrom(rng, n)
			if _, err := v.WriteAt(p, off); err != nil {
				t.Fatal(err)
			}
		case r < 8:
			if err := v.WriteZeroes(off, n, r == 7); err != nil {
				t.Fatal(err)
			}
		case r == 8:
			if err := v.Seal(fmt.Sprintf("s-%d", step)); err != nil {
				t.Fatal(err)
			}
		}
		if step%10 == 0 {
			checkZeroExtents(t, v, size)
		}
	}
	checkZeroExtents(t, v, size)
}

// TestExtentsSparse1TiB: the extents of a sparse 1 TiB volume come from
// the cluster maps, quickly.
func TestExtentsSparse1TiB(t *testing.T) {
	const size = 1 << 40
	v, err := Create(filepath.Join(t.TempDir(), "vol"), size, noBase)
	if err != nil {
		t.Skipf("no 1 TiB sparse file here: %v", err)
	}
	defer v.Close()
	for _, off := range []int64{0, 1 << 30, size - ClusterSize} {
		if _, err := v.WriteAt([]byte("data"), off); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	got := extentsOf(t, v, 0, size)
	want := []extent{{ClusterSize, false, false}, {1<<30 - ClusterSize, true, true}, {ClusterSize, false, false},
		{size - 1<<30 - 2*ClusterSize, true, true}, {ClusterSize, false, false}}
	if !slices.Equal(got, want) {
		t.Fatalf("extents %v, want %v", got, want)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Extents of 1 TiB took %v", d)
	}
	t.Logf("Extents of a sparse 1 TiB volume: %v", time.Since(start))
}

func BenchmarkExtents4GiB(b *testing.B) {
	v := benchChain(b, 8)
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		v.Extents(0, chainSize, func(int64, bool, bool) bool { n++; return true })
		if n == 0 {
			b.Fatal("no extents")
		}
	}
}

// Before hydrating, the data ranges of the wanted chunks, as the base
// reports them, are allocated in the bottom's file, and nothing else.
func TestPreallocateDataExtents(t *testing.T) {
	const chunk, size, unit = 1 << 20, 4 << 20, 256 << 10
	zb := &zeroBase{memBase: memBase{data: make([]byte, size)}, chunk: unit, zero: map[int64]bool{1: true, 2: true, 9: true}}
	v := newVol(t, size, func(string) (Base, error) { return zb, nil })
	if err := v.Reset("s-base"); err != nil {
		t.Fatal(err)
	}
	bottom := v.layers[0]
	// Chunks 3, 0 and 1 (chunk 2 not wanted): units 0 and 3 of chunk 0,
	// all of chunks 1 and 3.
	preallocate(context.Background(), bottom, zb, size, chunk, []int64{3, 0, 1})
	var st syscall.Stat_t
	if err := syscall.Fstat(int(bottom.data.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	want := int64(2*unit + 2*chunk)
	if got := st.Blocks * 512; got < want || got > want+64<<10 {
		t.Fatalf("%d bytes allocated, want the %d of the data ranges", got, want)
	}
}

// A hydration through a base that reports its zero ranges gives the
// base's bytes, with zero clusters as holes, also one inside a range the
// base reports as data (allocated beforehand, then punched).
func TestHydratePreallocated(t *testing.T) {
	const chunk, size, unit = 1 << 20, 4 << 20, 256 << 10
	zb := &zeroBase{memBase: memBase{data: make([]byte, size)}, chunk: unit, zero: map[int64]bool{1: true, 6: true}}
	rng := rand.New(rand.NewPCG(5, 6))
	for u := int64(0); u < size/unit; u++ {
		if !zb.zero[u] {
			copy(zb.data[u*unit:], randomFrom(rng, unit))
		}
	}
	zeroInData := int64(9*unit + ClusterSize) // a zero cluster in a data unit
	clear(zb.data[zeroInData : zeroInData+ClusterSize])
	v := newVol(t, size, func(string) (Base, error) { return zb, nil })
	if err := v.Reset("s-base"); err != nil {
		t.Fatal(err)
	}
	if !punchWorks(t, filepath.Dir(v.Dir())) {
		t.Skip("no hole punching here")
	}
	if err := v.Hydrate(context.Background(), v.BaseID(), chunk, []int64{0, 1, 2, 3}, 4, nil); err != nil {
		t.Fatal(err)
	}
	if got := read(t, v, 0, size); !bytes.Equal(got, zb.data) {
		t.Fatal("hydrated volume differs from the base")
	}
	fd := int(v.layers[0].data.Fd())
	for _, off := range []int64{1 * unit, 6 * unit, zeroInData} {
		if next, err := syscall.Seek(fd, off, seekData); err == nil && next < off+ClusterSize {
			t.Errorf("zero cluster at %d holds data after hydration", off)
		}
	}
}
