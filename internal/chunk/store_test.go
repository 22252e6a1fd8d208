package chunk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/snapstack/snapstack/internal/blob"
	"github.com/snapstack/snapstack/internal/blob/blobtest"
	"github.com/snapstack/snapstack/internal/blob/mem"
)

// compressible returns n bytes of text-like data from seed.
func compressible(seed uint64, n int) []byte {
	words := []string{"snapshot ", "disk ", "chunk ", "block ", "zero ", "volume ", "\n", "0x1f2e ", "inode "}
	r := rand.New(rand.NewPCG(seed, 1))
	var b bytes.Buffer
	for b.Len() < n {
		b.WriteString(words[r.IntN(len(words))])
	}
	return b.Bytes()[:n]
}

func random(seed uint64, n int) []byte { return blobtest.Data(seed, n) }

func newTestStore(t testing.TB) (*Store, *blobtest.Faulty) {
	t.Helper()
	return newTestStoreWith(t, DefaultCompression)
}

// newTestStoreWith is newTestStore writing new chunks with compression write.
func newTestStoreWith(t testing.TB, write Compression) (*Store, *blobtest.Faulty) {
	t.Helper()
	f := blobtest.NewFaulty(mem.New())
	s, err := NewStore(f, write)
	if err != nil {
		t.Fatal(err)
	}
	return s, f
}

// storedCompression reports the compression ID of the stored chunk.
func storedCompression(t *testing.T, f *blobtest.Faulty, id ID) Compression {
	t.Helper()
	obj, err := f.Inner().Get(context.Background(), objectName(id))
	if err != nil {
		t.Fatal(err)
	}
	return Compression(obj[5])
}

func TestRoundTrip(t *testing.T) {
	for _, write := range writeCompressions {
		for _, size := range []int{0, 1, 4 << 10, 1 << 20, MaxSize} {
			for kind, gen := range map[string]func(uint64, int) []byte{"compressible": compressible, "random": random} {
				t.Run(fmt.Sprintf("%v/%s/%d", write, kind, size), func(t *testing.T) {
					roundTrip(t, write, gen(uint64(size), size), kind == "random" || size <= 1)
				})
			}
		}
	}
}

// roundTrip puts data in a store writing with compression write, reads it
// back through Get and GetInto, and checks it was stored raw if wantRaw
// (or compression is none), else compressed with write.
func roundTrip(t *testing.T, write Compression, data []byte, wantRaw bool) {
	ctx := context.Background()
	size := len(data)
	s, f := newTestStoreWith(t, write)
	id, written, err := s.Put(ctx, data)
	if err != nil || !written {
		t.Fatalf("Put = %v, %v", written, err)
	}
	if id != Sum(data) {
		t.Fatalf("Put returned ID %s, want %s", id, Sum(data))
	}
	got, err := s.Get(ctx, id)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Get = %d bytes, %v; want the %d bytes put", len(got), err, len(data))
	}
	// GetInto: into the caller's memory when it is large
	// enough, else a fresh buffer; the scratch buffer grows.
	var scratch []byte
	for _, dst := range [][]byte{make([]byte, min(7, size), size+1), make([]byte, 0, size/2)} {
		got, err := s.GetInto(ctx, id, dst, &scratch)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("GetInto(cap %d) = %d bytes, %v; want the %d bytes put", cap(dst), len(got), err, len(data))
		}
		if size > 0 && cap(dst) >= size && &got[:1][0] != &dst[:1][0] {
			t.Fatalf("GetInto(cap %d) did not use dst", cap(dst))
		}
	}
	if has, err := s.Has(ctx, id); !has || err != nil {
		t.Fatalf("Has = %v, %v", has, err)
	}
	// Random data and tiny chunks do not shrink: they are stored raw.
	want := write
	if wantRaw {
		want = CompressionNone
	}
	if cmp := storedCompression(t, f, id); cmp != want {
		t.Fatalf("stored with compression %d, want %d", cmp, want)
	}
}

func TestGetIntoDetectsCorruption(t *testing.T) {
	ctx := context.Background()
	s, f := newTestStore(t)
	data := compressible(5, 1<<20)
	id, _, _ := s.Put(ctx, data)
	if err := f.FlipBit(ctx, objectName(id), 200*8); err != nil {
		t.Fatal(err)
	}
	var scratch []byte
	dst := make([]byte, 1<<20)
	if _, err := s.GetInto(ctx, id, dst, &scratch); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("GetInto of a flipped bit: %v, want ErrCorrupt", err)
	}
	if _, err := s.GetInto(ctx, Sum([]byte("absent")), dst, &scratch); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("GetInto of a missing chunk: %v, want ErrNotFound", err)
	}
}

func TestDedup(t *testing.T) {
	ctx := context.Background()
	s, f := newTestStore(t)
	data := compressible(1, 1<<20)
	id1, written, err := s.Put(ctx, data)
	if err != nil || !written {
		t.Fatalf("first Put = %v, %v", written, err)
	}
	id2, written, err := s.Put(ctx, slices.Clone(data))
	if err != nil || written || id2 != id1 {
		t.Fatalf("second Put = %s, %v, %v; want %s, false, nil", id2, written, err, id1)
	}
	if n := f.Calls(blobtest.OpPut); n != 1 {
		t.Fatalf("%d backend Puts, want 1", n)
	}
	// A failing existence check is an error, not a reason to skip or write.
	f.Fail(blobtest.OpStat, nil)
	if _, _, err := s.Put(ctx, []byte("other")); !errors.Is(err, blobtest.ErrInjected) {
		t.Fatalf("Put with a failing Stat = %v", err)
	}
	if n := f.Calls(blobtest.OpPut); n != 1 {
		t.Fatalf("%d backend Puts, want 1", n)
	}
}

func TestPutErrors(t *testing.T) {
	ctx := context.Background()
	s, f := newTestStore(t)
	if _, _, err := s.Put(ctx, make([]byte, MaxSize+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Put of MaxSize+1 bytes = %v, want ErrTooLarge", err)
	}
	f.Fail(blobtest.OpPut, nil)
	if _, written, err := s.Put(ctx, []byte("x")); !errors.Is(err, blobtest.ErrInjected) || written {
		t.Fatalf("Put with a failing backend = %v, %v", written, err)
	}
}

func TestMissing(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	id := Sum([]byte("never stored"))
	if _, err := s.Get(ctx, id); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("Get = %v, want blob.ErrNotFound", err)
	}
	if has, err := s.Has(ctx, id); has || err != nil {
		t.Fatalf("Has = %v, %v", has, err)
	}
	if err := s.Delete(ctx, id); err != nil {
		t.Fatalf("Delete = %v", err)
	}
}

func TestListAndDelete(t *testing.T) {
	ctx := context.Background()
	s, f := newTestStore(t)
	var want []ID
	for i := range 20 {
		id, _, err := s.Put(ctx, random(uint64(i), 100+i))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
	}
	// Foreign objects under chunks/ are not chunks.
	for _, name := range []string{"chunks/README", "chunks/00/" + want[0].String(), "chunks/zz/zz", "manifests/x"} {
		if err := f.Inner().Put(ctx, name, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	list := func() []ID {
		var got []ID
		if err := s.List(ctx, func(id ID) error { got = append(got, id); return nil }); err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(got, func(a, b ID) int { return bytes.Compare(a[:], b[:]) })
		return got
	}
	cmp := func(a, b ID) int { return bytes.Compare(a[:], b[:]) }
	if got := list(); !slices.Equal(got, slices.SortedFunc(slices.Values(want), cmp)) {
		t.Fatalf("List = %v, want %v", got, want)
	}
	for _, id := range want[:10] {
		if err := s.Delete(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if got := list(); !slices.Equal(got, slices.SortedFunc(slices.Values(want[10:]), cmp)) {
		t.Fatalf("List after Delete = %v, want %v", got, want[10:])
	}
	stop := errors.New("stop")
	if err := s.List(ctx, func(ID) error { return stop }); err != stop {
		t.Fatalf("List with a failing callback = %v, want the callback's error", err)
	}
}

func TestConcurrentPutGet(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t)
	done := make(chan error, 8)
	for g := range 8 {
		go func() {
			for i := range 20 {
				data := compressible(uint64(i%5), 64<<10) // the same 5 chunks from every goroutine
				id, _, err := s.Put(ctx, data)
				if err == nil {
					var got []byte
					got, err = s.Get(ctx, id)
					if err == nil && !bytes.Equal(got, data) {
						err = fmt.Errorf("goroutine %d: wrong data", g)
					}
				}
				if err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// syncCounter is a backend whose visible objects need Sync to be durable
// (as the local directory's batches are between their renames and their
// last flush); it counts the Syncs.
type syncCounter struct {
	blob.Backend
	syncs int
}

func (s *syncCounter) Sync(context.Context) error { s.syncs++; return nil }

// TestBatchSyncsWhatItFound: a batch that deduplicates against a chunk
// it did not write (another batch may still be committing it) makes that
// chunk durable at Commit, before the caller records a manifest naming
// it; a batch that found nothing stored does not pay for it.
func TestBatchSyncsWhatItFound(t *testing.T) {
	ctx := context.Background()
	back := &syncCounter{Backend: mem.New()}
	s, err := NewStore(back, DefaultCompression)
	if err != nil {
		t.Fatal(err)
	}
	other := s.NewBatch()
	if _, _, err := other.Put(ctx, random(1, 4096)); err != nil {
		t.Fatal(err)
	}
	if err := other.Commit(ctx); err != nil || back.syncs != 0 {
		t.Fatalf("commit of new chunks: %v, %d syncs", err, back.syncs)
	}
	b := s.NewBatch()
	if _, written, err := b.Put(ctx, random(1, 4096)); err != nil || written {
		t.Fatalf("put of a stored chunk: written %v, %v", written, err)
	}
	if _, _, err := b.Put(ctx, random(2, 4096)); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(ctx); err != nil || back.syncs != 1 {
		t.Fatalf("commit after a dedup hit: %v, %d syncs, want 1", err, back.syncs)
	}
	if err := b.Commit(ctx); err != nil || back.syncs != 1 {
		t.Fatalf("empty commit: %v, %d syncs, want still 1", err, back.syncs)
	}
}
