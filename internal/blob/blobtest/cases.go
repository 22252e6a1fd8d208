package blobtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/snapstack/snapstack/internal/blob"
)

// invalidNames break one naming rule each (see package blob).
var invalidNames = []string{
	"", "/", "/a", "a/", "a//b", "..", "../a", "a/../b", "a/..", ".", "a/./b",
	".hidden", "a/.tmp-1", "a b", "a\nb", "a\x00b", "caf\u00e9",
	string(bytes.Repeat([]byte("x"), blob.MaxSegmentLen+1)),
}

func testInvalidNames(t *testing.T, b blob.Backend) {
	ctx := context.Background()
	for _, name := range invalidNames {
		if err := b.Put(ctx, name, []byte("x")); !errors.Is(err, blob.ErrInvalidName) {
			t.Errorf("Put(%.40q) = %v, want ErrInvalidName", name, err)
		}
		if _, err := b.Get(ctx, name); !errors.Is(err, blob.ErrInvalidName) {
			t.Errorf("Get(%.40q) = %v, want ErrInvalidName", name, err)
		}
		if _, err := b.Stat(ctx, name); !errors.Is(err, blob.ErrInvalidName) {
			t.Errorf("Stat(%.40q) = %v, want ErrInvalidName", name, err)
		}
		if err := b.Delete(ctx, name); !errors.Is(err, blob.ErrInvalidName) {
			t.Errorf("Delete(%.40q) = %v, want ErrInvalidName", name, err)
		}
	}
	for _, prefix := range []string{"/", "/a", "a//", "../", "a/../", "a b"} {
		err := b.List(ctx, prefix, func(string) error { return nil })
		if !errors.Is(err, blob.ErrInvalidName) {
			t.Errorf("List(%q) = %v, want ErrInvalidName", prefix, err)
		}
	}
	if got := list(t, b, ""); len(got) != 0 {
		t.Fatalf("invalid Puts stored objects: %q", got)
	}
}

func testUnusualNames(t *testing.T, b blob.Backend) {
	names := []string{
		"x/a-b_c.d~e+f=g,h@i:j!k$l&m'n(o)p*q;r",
		"x/%20%2F", "x/UPPER", "x/upper", "x/a..b", "x/trailing.",
		"x/" + string(bytes.Repeat([]byte("s"), blob.MaxSegmentLen)),
	}
	for i, name := range names {
		put(t, b, name, Data(uint64(i), 10+i))
	}
	for i, name := range names {
		mustGet(t, b, name, Data(uint64(i), 10+i))
	}
	if got, want := list(t, b, "x/"), slices.Sorted(slices.Values(names)); !slices.Equal(got, want) {
		t.Fatalf("List = %q, want %q", got, want)
	}
}

func testEmptyObject(t *testing.T, b blob.Backend) {
	put(t, b, "empty", nil)
	mustGet(t, b, "empty", []byte{})
	put(t, b, "empty", []byte("now full"))
	mustGet(t, b, "empty", []byte("now full"))
	put(t, b, "empty", []byte{})
	mustGet(t, b, "empty", nil)
	if got := list(t, b, ""); !slices.Equal(got, []string{"empty"}) {
		t.Fatalf("List = %q", got)
	}
}

func testLargeObject(t *testing.T, b blob.Backend) {
	data := Data(8, 8<<20)
	put(t, b, "large/8MiB", data)
	mustGet(t, b, "large/8MiB", data)
}

// testCopies checks that the backend neither retains the slice given to Put
// nor shares the slices returned by Get.
func testCopies(t *testing.T, b blob.Backend) {
	data := []byte("original")
	put(t, b, "c", data)
	data[0] = 'X'
	got, err := b.Get(context.Background(), "c")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "original" {
		t.Fatalf("object changed with the caller's slice: %q", got)
	}
	got[1] = 'Y'
	mustGet(t, b, "c", []byte("original"))

	// The same holds within a batch (the backend's own or the fallback),
	// whose objects are read only after Commit.
	batch := blob.NewBatch(b)
	defer batch.Abort()
	data = []byte("batched")
	if err := batch.Put(context.Background(), "c-batched", data); err != nil {
		t.Fatal(err)
	}
	copy(data, "XXXXXXX")
	if err := batch.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	mustGet(t, b, "c-batched", []byte("batched"))
}

func testCanceled(t *testing.T, b blob.Backend) {
	put(t, b, "c/exists", []byte("x"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Put(ctx, "c/new", []byte("x")); err == nil {
		t.Error("Put with a canceled context succeeded")
	}
	if _, err := b.Get(ctx, "c/exists"); err == nil {
		t.Error("Get with a canceled context succeeded")
	}
	if _, err := b.Stat(ctx, "c/exists"); err == nil {
		t.Error("Stat with a canceled context succeeded")
	}
	if err := b.List(ctx, "c/", func(string) error { return nil }); err == nil {
		t.Error("List with a canceled context succeeded")
	}
	if err := b.Delete(ctx, "c/exists"); err == nil {
		t.Error("Delete with a canceled context succeeded")
	}
	mustNotFound(t, b, "c/new")
	mustGet(t, b, "c/exists", []byte("x"))
}

func testConcurrentDifferent(t *testing.T, b blob.Backend) {
	const writers, each = 8, 16
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				name := fmt.Sprintf("cc/%02x/%d-%d", (w*each+i)%5, w, i)
				if err := b.Put(context.Background(), name, Data(uint64(w*each+i), 100*i)); err != nil {
					t.Errorf("Put(%q): %v", name, err)
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for w := range writers {
		for i := range each {
			mustGet(t, b, fmt.Sprintf("cc/%02x/%d-%d", (w*each+i)%5, w, i), Data(uint64(w*each+i), 100*i))
		}
	}
	if got := list(t, b, "cc/"); len(got) != writers*each {
		t.Fatalf("List reported %d names, want %d", len(got), writers*each)
	}
}

// testConcurrentSame has writers replace one name with whole values of
// different sizes while readers check that they only ever see whole values.
func testConcurrentSame(t *testing.T, b blob.Backend) {
	const writers, rounds, readers = 6, 10, 2
	value := func(w int) []byte { return bytes.Repeat([]byte{byte('a' + w)}, 1000+w*7919) }
	valid := func(got []byte) bool {
		return len(got) > 0 && got[0] >= 'a' && bytes.Equal(got, value(int(got[0]-'a')))
	}
	ctx := context.Background()
	done := make(chan struct{})
	var rg, wg sync.WaitGroup
	for range readers {
		rg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				got, err := b.Get(ctx, "same")
				if errors.Is(err, blob.ErrNotFound) {
					continue
				}
				if err != nil || !valid(got) {
					t.Errorf("Get during replacement = %d bytes, %v: not a whole value", len(got), err)
					return
				}
			}
		})
	}
	for w := range writers {
		wg.Go(func() {
			for range rounds {
				if err := b.Put(ctx, "same", value(w)); err != nil {
					t.Errorf("Put: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(done)
	rg.Wait()
	got, err := b.Get(ctx, "same")
	if err != nil || !valid(got) {
		t.Fatalf("final Get = %d bytes, %v: not a whole value", len(got), err)
	}
	if names := list(t, b, ""); !slices.Equal(names, []string{"same"}) {
		t.Fatalf("List = %q, want only the one name", names)
	}
}
