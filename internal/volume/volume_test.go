package volume

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// memBase is a base held in memory.
type memBase struct{ data []byte }

func (b *memBase) ReadAt(p []byte, off int64) error { copy(p, b.data[off:]); return nil }
func (b *memBase) Close() error                     { return nil }

func noBase(string) (Base, error) { return nil, errors.New("no base in this test") }

func newVol(t *testing.T, size int64, opener BaseOpener) *Volume {
	t.Helper()
	if opener == nil {
		opener = noBase
	}
	v, err := Create(filepath.Join(t.TempDir(), "vol"), size, opener)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

// reopen closes v and opens its directory again (opener nil: noBase), as
// a restart does.
func reopen(t *testing.T, v *Volume, opener BaseOpener) *Volume {
	t.Helper()
	if opener == nil {
		opener = noBase
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	v2, err := Open(v.Dir(), opener)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	t.Cleanup(func() { v2.Close() })
	return v2
}

// randomFrom returns n bytes drawn from rng.
func randomFrom(rng *rand.Rand, n int64) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(rng.IntN(256))
	}
	return p
}

func read(t *testing.T, v *Volume, off, n int64) []byte {
	t.Helper()
	p := make([]byte, n)
	if _, err := v.ReadAt(p, off); err != nil {
		t.Fatalf("ReadAt(%d, %d): %v", off, n, err)
	}
	return p
}

// model runs random writes, zeroes and seals against a []byte model and
// checks the volume and every sealed snapshot against it.
func TestAgainstModel(t *testing.T) {
	const size = 4 << 20
	v := newVol(t, size, nil)
	model := make([]byte, size)
	snaps := map[string][]byte{}
	rng := rand.New(rand.NewPCG(1, 2))
	for step := 0; step < 400; step++ {
		off := rng.Int64N(size)
		n := min(rng.Int64N(200<<10)+1, size-off)
		switch r := rng.IntN(10); {
		case r < 6:
			p := randomFrom(rng, n)
			if _, err := v.WriteAt(p, off); err != nil {
				t.Fatal(err)
			}
			copy(model[off:], p)
		case r < 8:
			if err := v.WriteZeroes(off, n, r == 7); err != nil {
				t.Fatal(err)
			}
			clear(model[off : off+n])
		case r == 8:
			id := fmt.Sprintf("s-%d", step)
			if err := v.Seal(id); err != nil {
				t.Fatal(err)
			}
			snaps[id] = bytes.Clone(model)
		default:
			if err := v.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got := read(t, v, 0, size); !bytes.Equal(got, model) {
		t.Fatal("volume differs from the model")
	}
	for id, want := range snaps {
		got := make([]byte, size)
		if err := v.ReadSnapshotAt(id, got, 0); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("snapshot %s differs from the model at its seal", id)
		}
	}
	// Uploading (and so merging) every snapshot in order keeps the content.
	for step := 0; step < 400; step++ {
		id := fmt.Sprintf("s-%d", step)
		if _, ok := snaps[id]; ok {
			if err := v.MarkUploaded(id); err != nil {
				t.Fatal(err)
			}
			if err := v.Compact(); err != nil {
				t.Fatal(err)
			}
			if got := read(t, v, 0, size); !bytes.Equal(got, model) {
				t.Fatalf("content changed by merging %s", id)
			}
		}
	}
	if n := len(v.st.Layers); n != 2 {
		t.Errorf("%d layers after merging every snapshot, want 2", n)
	}
}

func TestReopenKeepsFlushedWrites(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vol")
	v, err := Create(dir, 1<<20, noBase)
	if err != nil {
		t.Fatal(err)
	}
	v.WriteAt(bytes.Repeat([]byte{7}, 100), 70000)
	v.Seal("s-1")
	v.WriteAt(bytes.Repeat([]byte{9}, 10), 70010)
	if err := v.Flush(); err != nil {
		t.Fatal(err)
	}
	v = reopen(t, v, nil)
	want := bytes.Repeat([]byte{7}, 100)
	copy(want[10:], bytes.Repeat([]byte{9}, 10))
	if got := read(t, v, 70000, 100); !bytes.Equal(got, want) {
		t.Errorf("after reopen: %v", got[:20])
	}
	snap := make([]byte, 100)
	v.ReadSnapshotAt("s-1", snap, 70000)
	if !bytes.Equal(snap, bytes.Repeat([]byte{7}, 100)) {
		t.Error("sealed snapshot changed by reopen")
	}
}

func TestChanged(t *testing.T) {
	const chunk = 1 << 20
	v := newVol(t, 8<<20, nil)
	v.WriteAt([]byte{1}, 0)
	v.WriteAt([]byte{1}, 3*chunk+5)
	v.WriteAt([]byte{1, 2}, 3*chunk+2*ClusterSize-1) // clusters 1 and 2
	v.Seal("s-1")
	ch, err := v.Changed("s-1", chunk)
	if err != nil || ch.Parent != "" || fmt.Sprint(ch.Chunks) != "[0 3]" {
		t.Fatalf("first: %+v %v", ch, err)
	}
	// Dirty: the written clusters of each chunk.
	if fmt.Sprint(ch.Dirty) != "[1 7]" {
		t.Fatalf("dirty clusters %b, want [1 111]", ch.Dirty)
	}
	if _, err := v.Changed("s-1", 128*ClusterSize); err == nil {
		t.Fatal("a chunk of 128 clusters was accepted")
	}
	v.WriteAt([]byte{2}, 5*chunk)
	v.Seal("s-2")
	// s-1 not uploaded yet: s-2's changes are relative to what s-1 was
	// relative to.
	ch, _ = v.Changed("s-2", chunk)
	if ch.Parent != "" || fmt.Sprint(ch.Chunks) != "[0 3 5]" {
		t.Fatalf("before s-1 uploaded: %+v", ch)
	}
	v.MarkUploaded("s-1")
	v.Compact()
	ch, _ = v.Changed("s-2", chunk)
	if ch.Parent != "s-1" || fmt.Sprint(ch.Chunks) != "[5]" {
		t.Fatalf("after s-1 uploaded: %+v", ch)
	}
	v.MarkUploaded("s-2")
	v.Compact()
	v.WriteAt([]byte{3}, 7*chunk)
	v.Seal("s-3")
	ch, _ = v.Changed("s-3", chunk)
	if ch.Parent != "s-2" || fmt.Sprint(ch.Chunks) != "[7]" {
		t.Fatalf("after merges: %+v", ch)
	}
}

func TestResetAndHydrate(t *testing.T) {
	const size = 2 << 20
	baseData := make([]byte, size)
	for i := range baseData {
		baseData[i] = byte(i * 7)
	}
	opener := func(id string) (Base, error) {
		if id != "s-base" {
			return nil, errors.New("unknown")
		}
		return &memBase{data: baseData}, nil
	}
	v := newVol(t, size, opener)
	v.WriteAt(bytes.Repeat([]byte{0xff}, 1000), 0)
	if err := v.Reset("s-base"); err != nil {
		t.Fatal(err)
	}
	if got := read(t, v, 0, size); !bytes.Equal(got, baseData) {
		t.Fatal("after reset the volume is not the base")
	}
	v.WriteAt([]byte{1, 2, 3}, 70000) // copy-up from the base
	want := bytes.Clone(baseData)
	copy(want[70000:], []byte{1, 2, 3})
	// A hydration planned for another base (a Reset came first) copies
	// nothing; one whose context has ended stops and keeps the base.
	if err := v.Hydrate(context.Background(), "s-other", 1<<20, []int64{0, 1}, 1, nil); !errors.Is(err, ErrBaseChanged) {
		t.Fatalf("hydrate of another base: %v", err)
	}
	stopped, cancel := context.WithCancel(context.Background())
	cancel()
	if err := v.Hydrate(stopped, "s-base", 1<<20, []int64{0, 1}, 1, nil); !errors.Is(err, context.Canceled) || v.BaseID() != "s-base" {
		t.Fatalf("stopped hydrate: %v, base %q", err, v.BaseID())
	}
	calls := 0
	if err := v.Hydrate(context.Background(), v.BaseID(), 1<<20, []int64{0, 1}, 1, func(int) { calls++ }); err != nil {
		t.Fatal(err)
	}
	if calls != 2 || v.BaseID() != "" {
		t.Errorf("hydrate: %d progress calls, base %q", calls, v.BaseID())
	}
	if got := read(t, v, 0, size); !bytes.Equal(got, want) {
		t.Fatal("content changed by hydration")
	}
	ch, _ := func() (Changes, error) { v.Seal("s-next"); return v.Changed("s-next", 1<<20) }()
	if ch.Parent != "s-base" || fmt.Sprint(ch.Chunks) != "[0]" {
		t.Errorf("changes after restore: %+v", ch)
	}
}

func TestBounds(t *testing.T) {
	v := newVol(t, 1<<20, nil)
	if _, err := v.WriteAt([]byte{1}, 1<<20); !errors.Is(err, ErrRange) {
		t.Errorf("write past end: %v", err)
	}
	if _, err := v.ReadAt(make([]byte, 2), (1<<20)-1); !errors.Is(err, ErrRange) {
		t.Errorf("read past end: %v", err)
	}
	if err := v.WriteZeroes(-1, 1, false); !errors.Is(err, ErrRange) {
		t.Errorf("negative offset: %v", err)
	}
}

// TestSealUnderWrites: a writer rewrites blocks in order; every snapshot
// holds a prefix of the write order.
func TestSealUnderWrites(t *testing.T) {
	const blocks, bs = 256, 4096
	v := newVol(t, blocks*bs, nil)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for gen := 1; ; gen++ {
			for b := 0; b < blocks; b++ {
				select {
				case <-stop:
					return
				default:
				}
				v.WriteAt(genBlock(uint32(gen), bs), int64(b*bs))
			}
		}
	}()
	var ids []string
	for i := 0; i < 20; i++ {
		id := fmt.Sprintf("s-%d", i)
		if err := v.Seal(id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	close(stop)
	wg.Wait()
	for _, id := range ids {
		img := make([]byte, blocks*bs)
		v.ReadSnapshotAt(id, img, 0)
		// Generations must be non-increasing along the block order, by at
		// most one: blocks before the writer's position have gen g, after
		// it g-1.
		prev := binary.LittleEndian.Uint32(img)
		for b := 0; b < blocks; b++ {
			g := binary.LittleEndian.Uint32(img[b*bs:])
			if !bytes.Equal(img[b*bs:(b+1)*bs], genBlock(g, bs)) {
				t.Fatalf("%s: block %d torn", id, b)
			}
			if g > prev || (prev-g) > 1 {
				t.Fatalf("%s: block %d gen %d after %d: not a prefix of the write order", id, b, g, prev)
			}
			prev = g
		}
	}
}

// genBlock is a block filled with generation g.
func genBlock(g uint32, n int) []byte {
	p := make([]byte, n)
	for i := 0; i+4 <= n; i += 4 {
		binary.LittleEndian.PutUint32(p[i:], g)
	}
	return p
}

func BenchmarkSeal4GiB(b *testing.B) { benchSeal(b, 4<<30) }
func BenchmarkSeal1TiB(b *testing.B) { benchSeal(b, 1<<40) }

func benchSeal(b *testing.B, size int64) {
	v, err := Create(filepath.Join(b.TempDir(), "vol"), size, noBase)
	if err != nil {
		b.Fatal(err)
	}
	defer v.Close()
	p := make([]byte, 4096)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		v.WriteAt(p, int64(i%1000)*ClusterSize)
		if err := v.Seal(fmt.Sprintf("s-%d", i)); err != nil {
			b.Fatal(err)
		}
	}
}

// TestOpenRestoresLostLength: a layer file created just before a crash
// may come back empty; Open zero-extends it.
func TestOpenRestoresLostLength(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vol")
	v, err := Create(dir, 1<<20, noBase)
	if err != nil {
		t.Fatal(err)
	}
	v.Close()
	if err := os.Truncate(filepath.Join(dir, "layer-1.data"), 0); err != nil {
		t.Fatal(err)
	}
	v, err = Open(dir, noBase)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if _, err := v.WriteAt([]byte("x"), (1<<20)-1); err != nil {
		t.Fatal(err)
	}
	if got := read(t, v, (1<<20)-2, 2); got[0] != 0 || got[1] != 'x' {
		t.Errorf("read %v", got)
	}
}

// gatedBase records the whole-chunk reads (hydration's) and holds the
// first one until released.
type gatedBase struct {
	memBase
	chunk   int64
	mu      sync.Mutex
	order   []int64
	started chan struct{}
	release chan struct{}
}

func (b *gatedBase) ReadAt(p []byte, off int64) error {
	if int64(len(p)) == b.chunk && off%b.chunk == 0 {
		b.mu.Lock()
		b.order = append(b.order, off/b.chunk)
		first := len(b.order) == 1
		b.mu.Unlock()
		if first {
			close(b.started)
			<-b.release
		}
	}
	return b.memBase.ReadAt(p, off)
}

// A chunk a client reads from the base while the disk hydrates is
// hydrated next, out of order, and no chunk is hydrated twice.
func TestHydrateFollowsReads(t *testing.T) {
	const chunk, size = 1 << 20, 8 << 20
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i*13 + i>>20)
	}
	gb := &gatedBase{memBase: memBase{data: data}, chunk: chunk, started: make(chan struct{}), release: make(chan struct{})}
	v := newVol(t, size, func(string) (Base, error) { return gb, nil })
	if err := v.Reset("s-base"); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		errc <- v.Hydrate(context.Background(), v.BaseID(), chunk, []int64{0, 1, 2, 3, 4, 5, 6, 7}, 1, nil)
	}()
	<-gb.started // the worker is inside chunk 0
	if got := read(t, v, 6*chunk+4096, 4096); !bytes.Equal(got, data[6*chunk+4096:6*chunk+8192]) {
		t.Fatal("read during hydration")
	}
	close(gb.release)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(gb.order); got != "[0 6 1 2 3 4 5 7]" {
		t.Errorf("hydration order %s, want chunk 6 second and every chunk once", got)
	}
	if got := read(t, v, 0, size); !bytes.Equal(got, data) {
		t.Fatal("content changed by hydration")
	}
}

// TestHydrateZeroClusters: zero clusters of the base are hydrated as holes
// (no data written), and bytes left in the bottom's file where it holds
// nothing (as an interrupted merge can leave) never show through.
func TestHydrateZeroClusters(t *testing.T) {
	const chunk, size = 1 << 20, 3 << 20
	baseData := make([]byte, size)
	for i := range baseData {
		if c := i / ClusterSize; c%3 != 1 { // clusters 1, 4, 7, ... are zero
			baseData[i] = byte(i*13) | 1
		}
	}
	v := newVol(t, size, func(string) (Base, error) { return &memBase{data: baseData}, nil })
	if err := v.Reset("s-base"); err != nil {
		t.Fatal(err)
	}
	bottom := v.layers[0]
	junk := bytes.Repeat([]byte{0xee}, ClusterSize)
	if _, err := bottom.data.WriteAt(junk, 4*ClusterSize); err != nil {
		t.Fatal(err)
	}
	if err := v.Hydrate(context.Background(), v.BaseID(), chunk, []int64{0, 1, 2}, 4, nil); err != nil {
		t.Fatal(err)
	}
	if got := read(t, v, 0, size); !bytes.Equal(got, baseData) {
		t.Fatal("hydrated volume differs from the base")
	}
	fd := int(bottom.data.Fd())
	for c := int64(0); c < size/ClusterSize; c++ {
		if !bottom.has(c) {
			t.Fatalf("cluster %d not held after hydration", c)
		}
		// SEEK_DATA from a hole's start lands past it; from data, on it.
		const seekData = 3
		next, err := syscall.Seek(fd, c*ClusterSize, seekData)
		isHole := err != nil || next >= (c+1)*ClusterSize
		if want := c%3 == 1; isHole != want {
			t.Errorf("cluster %d: hole %v, want %v", c, isHole, want)
		}
	}
}

// failingBase fails reads of one chunk.
type failingBase struct {
	memBase
	chunk, bad int64
}

func (b *failingBase) ReadAt(p []byte, off int64) error {
	if off/b.chunk == b.bad {
		return errors.New("store unreachable")
	}
	return b.memBase.ReadAt(p, off)
}

// TestHydrateError: a chunk that cannot be read ends Hydrate with its
// error (no hang, whatever the number of workers), and the volume keeps
// its base and reads as before.
func TestHydrateError(t *testing.T) {
	const chunk, n = 64 << 10, 64
	baseData := bytes.Repeat([]byte{7}, chunk*n)
	for _, workers := range []int{1, 3, 8} {
		b := &failingBase{memBase: memBase{data: baseData}, chunk: chunk, bad: 40}
		v := newVol(t, chunk*n, func(string) (Base, error) { return b, nil })
		if err := v.Reset("s-base"); err != nil {
			t.Fatal(err)
		}
		want := make([]int64, n)
		for i := range want {
			want[i] = int64(i)
		}
		err := v.Hydrate(context.Background(), v.BaseID(), chunk, want, workers, nil)
		if err == nil || !strings.Contains(err.Error(), "store unreachable") {
			t.Fatalf("%d workers: Hydrate = %v", workers, err)
		}
		if v.BaseID() != "s-base" {
			t.Fatalf("%d workers: base dropped after a failed hydration", workers)
		}
		if got := read(t, v, 0, chunk); !bytes.Equal(got, baseData[:chunk]) {
			t.Fatalf("%d workers: content changed", workers)
		}
	}
}
