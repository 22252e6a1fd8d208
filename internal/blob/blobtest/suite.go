// Package blobtest checks that a blob.Backend keeps the blob contract, and
// provides Faulty, a decorator injecting failures and corruption for tests of
// the layers above.
//
// Every backend runs the same suite from its own test:
//
//	func TestConformance(t *testing.T) {
//		blobtest.Run(t, func(t *testing.T) blob.Backend { return newBackend(t) })
//	}
package blobtest

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/snapstack/snapstack/internal/blob"
)

// Run runs the conformance suite as subtests of t. newBackend is called once
// per subtest and must return an empty backend; it should register its own
// cleanup with t.Cleanup.
func Run(t *testing.T, newBackend func(t *testing.T) blob.Backend) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, b blob.Backend)
	}{
		{"PutGet", testPutGet},
		{"Replace", testReplace},
		{"NotFound", testNotFound},
		{"Delete", testDelete},
		{"ListPrefix", testListPrefix},
		{"ListStop", testListStop},
		{"ListEmpty", testListEmpty},
		{"InvalidNames", testInvalidNames},
		{"UnusualNames", testUnusualNames},
		{"EmptyObject", testEmptyObject},
		{"LargeObject", testLargeObject},
		{"Copies", testCopies},
		{"Canceled", testCanceled},
		{"ConcurrentDifferentNames", testConcurrentDifferent},
		{"ConcurrentSameName", testConcurrentSame},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newBackend(t)) })
	}
}

// Data returns n deterministic pseudo-random bytes derived from seed.
func Data(seed uint64, n int) []byte {
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), byte(seed >> 24),
		byte(seed >> 32), byte(seed >> 40), byte(seed >> 48), byte(seed >> 56)})
	b := make([]byte, n)
	_, _ = r.Read(b)
	return b
}

func put(t *testing.T, b blob.Backend, name string, data []byte) {
	t.Helper()
	if err := b.Put(context.Background(), name, data); err != nil {
		t.Fatalf("Put(%q, %d bytes): %v", name, len(data), err)
	}
}

// mustGet checks that name holds want, by Get and by Stat.
func mustGet(t *testing.T, b blob.Backend, name string, want []byte) {
	t.Helper()
	got, err := b.Get(context.Background(), name)
	if err != nil {
		t.Fatalf("Get(%q): %v", name, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Get(%q) returned %d bytes that differ from the %d bytes put", name, len(got), len(want))
	}
	size, err := b.Stat(context.Background(), name)
	if err != nil || size != int64(len(want)) {
		t.Fatalf("Stat(%q) = %d, %v; want %d, nil", name, size, err, len(want))
	}
	// GetAppend (the backend's own, or the fallback) appends after what
	// the buffer holds.
	prefix := []byte("keep")
	got, err = blob.GetAppend(context.Background(), b, name, prefix)
	if err != nil || !bytes.Equal(got[:4], prefix) || !bytes.Equal(got[4:], want) {
		t.Fatalf("GetAppend(%q) = %d bytes, %v; want the prefix then the %d bytes put", name, len(got), err, len(want))
	}
}

func mustNotFound(t *testing.T, b blob.Backend, name string) {
	t.Helper()
	if got, err := b.Get(context.Background(), name); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("Get(%q) = %d bytes, %v; want ErrNotFound", name, len(got), err)
	}
	if size, err := b.Stat(context.Background(), name); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("Stat(%q) = %d, %v; want ErrNotFound", name, size, err)
	}
	if got, err := blob.GetAppend(context.Background(), b, name, nil); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("GetAppend(%q) = %d bytes, %v; want ErrNotFound", name, len(got), err)
	}
}

// list returns the sorted names under prefix and fails on duplicates.
func list(t *testing.T, b blob.Backend, prefix string) []string {
	t.Helper()
	var names []string
	err := b.List(context.Background(), prefix, func(name string) error {
		names = append(names, name)
		return nil
	})
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	slices.Sort(names)
	if c := slices.Compact(slices.Clone(names)); len(c) != len(names) {
		t.Fatalf("List(%q) reported duplicates: %q", prefix, names)
	}
	return names
}

func testPutGet(t *testing.T, b blob.Backend) {
	data := Data(1, 1000)
	put(t, b, "a/b/obj", data)
	mustGet(t, b, "a/b/obj", data)
	put(t, b, "top", data[:10])
	mustGet(t, b, "top", data[:10])
}

func testReplace(t *testing.T, b blob.Backend) {
	put(t, b, "r/x", Data(1, 5000))
	put(t, b, "r/x", Data(2, 300))
	mustGet(t, b, "r/x", Data(2, 300))
	put(t, b, "r/x", Data(3, 7000))
	mustGet(t, b, "r/x", Data(3, 7000))
	if got := list(t, b, ""); !slices.Equal(got, []string{"r/x"}) {
		t.Fatalf("List after replacements = %q", got)
	}
}

func testNotFound(t *testing.T, b blob.Backend) {
	mustNotFound(t, b, "missing")
	mustNotFound(t, b, "no/such/object")
	put(t, b, "dir/obj", []byte("x"))
	// A prefix of an object's name is not an object.
	mustNotFound(t, b, "dir")
	mustNotFound(t, b, "dir/ob")
	mustNotFound(t, b, "dir/obj/below")
	if err := b.Delete(context.Background(), "dir"); err != nil {
		t.Fatalf("Delete of a directory-like name: %v", err)
	}
	mustGet(t, b, "dir/obj", []byte("x"))
}

func testDelete(t *testing.T, b blob.Backend) {
	ctx := context.Background()
	put(t, b, "d/1", []byte("one"))
	put(t, b, "d/2", []byte("two"))
	if err := b.Delete(ctx, "d/1"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	mustNotFound(t, b, "d/1")
	mustGet(t, b, "d/2", []byte("two"))
	if got := list(t, b, ""); !slices.Equal(got, []string{"d/2"}) {
		t.Fatalf("List after Delete = %q", got)
	}
	for _, name := range []string{"d/1", "never/existed", "d/2/below"} {
		if err := b.Delete(ctx, name); err != nil {
			t.Fatalf("Delete(%q) of a missing name: %v", name, err)
		}
	}
	put(t, b, "d/1", []byte("again"))
	mustGet(t, b, "d/1", []byte("again"))
}

func testListPrefix(t *testing.T, b blob.Backend) {
	all := []string{"a/1", "a/2", "a/b", "a/bc", "a/b2/x", "ab/3", "b/x", "c", "chunks/00/aa", "chunks/ff/bb"}
	for i, name := range all {
		put(t, b, name, Data(uint64(i), i))
	}
	cases := map[string][]string{
		"":          all,
		"a/":        {"a/1", "a/2", "a/b", "a/b2/x", "a/bc"},
		"a":         {"a/1", "a/2", "a/b", "a/b2/x", "a/bc", "ab/3"},
		"a/b":       {"a/b", "a/b2/x", "a/bc"},
		"a/b2/":     {"a/b2/x"},
		"c":         {"c", "chunks/00/aa", "chunks/ff/bb"},
		"chunks/":   {"chunks/00/aa", "chunks/ff/bb"},
		"chunks/f":  {"chunks/ff/bb"},
		"zzz":       nil,
		"zzz/":      nil,
		"a/1/":      nil,
		"chunks/00": {"chunks/00/aa"},
	}
	for prefix, want := range cases {
		want = slices.Sorted(slices.Values(want))
		if got := list(t, b, prefix); !slices.Equal(got, want) {
			t.Errorf("List(%q) = %q, want %q", prefix, got, want)
		}
	}
}

func testListStop(t *testing.T, b blob.Backend) {
	for i := range 5 {
		put(t, b, "s/"+string(rune('a'+i)), []byte{byte(i)})
	}
	stop := errors.New("stop here")
	calls := 0
	err := b.List(context.Background(), "s/", func(string) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("List with a failing callback = %v after %d calls; want the callback's error after 1", err, calls)
	}
}

func testListEmpty(t *testing.T, b blob.Backend) {
	if got := list(t, b, ""); len(got) != 0 {
		t.Fatalf("List of an empty backend = %q", got)
	}
	if got := list(t, b, "chunks/"); len(got) != 0 {
		t.Fatalf("List of an empty backend = %q", got)
	}
}
