package local

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/snapstack/snapstack/internal/blob"
	"github.com/snapstack/snapstack/internal/blob/blobtest"
	"golang.org/x/sys/unix"
)

func TestConformance(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Backend { return open(t, t.TempDir()) })
}

func open(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// dotFiles lists the dot files below dir.
func dotFiles(t *testing.T, dir string) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".") && p != dir {
			found = append(found, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

func TestTempFilesIgnoredAndSwept(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)
	if err := s.Put(ctx, "a/b", []byte("object")); err != nil {
		t.Fatal(err)
	}
	leftovers := []string{filepath.Join(dir, ".tmp-root"), filepath.Join(dir, "a", ".tmp-crash")}
	for _, p := range leftovers {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	if err := s.List(ctx, "", func(n string) error { names = append(names, n); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(names, []string{"a/b"}) {
		t.Fatalf("List = %q, want only a/b", names)
	}
	// A temporary file of a Put in progress is spared.
	s.inflight.Store(leftovers[1], struct{}{})
	if n, err := s.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v; want 1 removed", n, err)
	}
	s.inflight.Delete(leftovers[1])
	// New sweeps too.
	open(t, dir)
	if got := dotFiles(t, dir); len(got) != 0 {
		t.Fatalf("temporary files left: %q", got)
	}
	if got, err := s.Get(ctx, "a/b"); err != nil || string(got) != "object" {
		t.Fatalf("Get = %q, %v", got, err)
	}
}

func TestReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	data := blobtest.Data(1, 100000)
	if err := open(t, dir).Put(ctx, "chunks/ab/abcd", data); err != nil {
		t.Fatal(err)
	}
	got, err := open(t, dir).Get(ctx, "chunks/ab/abcd")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Get after reopening = %d bytes, %v", len(got), err)
	}
	fi, err := os.Stat(filepath.Join(dir, "chunks", "ab", "abcd"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("object file: %v, %v; want mode 0600", fi, err)
	}
}

func TestFailedPutsLeaveNoTemporaryFiles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)
	for _, name := range []string{"f", "d/x/y"} {
		if err := s.Put(ctx, name, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	// "f" is an object, so it cannot be a directory; "d/x" is a directory,
	// so it cannot be replaced by an object.
	for _, name := range []string{"f/g", "d/x"} {
		if err := s.Put(ctx, name, []byte("y")); err == nil {
			t.Errorf("Put(%q) succeeded", name)
		}
	}
	if got := dotFiles(t, dir); len(got) != 0 {
		t.Fatalf("temporary files left: %q", got)
	}
	if got, err := s.Get(ctx, "f"); err != nil || string(got) != "x" {
		t.Fatalf("Get(f) = %q, %v", got, err)
	}
}

// TestKill9 kills a process writing objects and checks that every
// acknowledged Put survived whole, and that no partial object is visible.
func TestKill9(t *testing.T) {
	if dir := os.Getenv("BLOB_LOCAL_KILL9_DIR"); dir != "" {
		kill9Child(dir)
		return
	}
	if testing.Short() {
		t.Skip("spawns a process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9$")
	cmd.Env = append(os.Environ(), "BLOB_LOCAL_KILL9_DIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[string]bool{}
	lines := bufio.NewScanner(out)
	for len(acked) < 40 && lines.Scan() {
		acked[lines.Text()] = true
	}
	cmd.Process.Kill()
	cmd.Wait()
	if len(acked) < 40 {
		t.Fatalf("child acknowledged only %d objects", len(acked))
	}
	s := open(t, dir)
	ctx := context.Background()
	err = s.List(ctx, "k/", func(name string) error {
		delete(acked, name)
		i, err := strconv.Atoi(strings.TrimPrefix(name, "k/"))
		if err != nil {
			return err
		}
		got, err := s.Get(ctx, name)
		if err != nil || !bytes.Equal(got, kill9Data(i)) {
			return fmt.Errorf("object %s is not whole (%d bytes, %v)", name, len(got), err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(acked) != 0 {
		t.Fatalf("acknowledged objects lost: %v", acked)
	}
	if got := dotFiles(t, dir); len(got) != 0 {
		t.Fatalf("temporary files left after reopening: %q", got)
	}
}

func kill9Data(i int) []byte { return blobtest.Data(uint64(i), 64<<10+i*997) }

func kill9Child(dir string) {
	s, err := New(dir)
	if err != nil {
		os.Exit(2)
	}
	for i := 0; ; i++ {
		name := fmt.Sprintf("k/%d", i)
		if err := s.Put(context.Background(), name, kill9Data(i)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		fmt.Println(name)
	}
}

func TestGetMissingUnderFile(t *testing.T) {
	s := open(t, t.TempDir())
	ctx := context.Background()
	if err := s.Put(ctx, "file", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "file/below"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("Get below a file = %v, want ErrNotFound", err)
	}
	if err := s.List(ctx, "file/", func(n string) error { return fmt.Errorf("listed %q", n) }); err != nil {
		t.Fatalf("List below a file = %v", err)
	}
}

// GetAppend reads objects whether or not the page cache holds them (out
// of it, they are read with O_DIRECT into an aligned buffer), of sizes
// that are not multiples of the O_DIRECT alignment, after a prefix, and
// into an unaligned buffer.
func TestGetAppendCachedAndNot(t *testing.T) {
	ctx := context.Background()
	s := open(t, t.TempDir())
	for i, size := range []int{1, 4095, 4096, 5000, 1<<20 + 17} {
		name := fmt.Sprintf("obj/%d", i)
		data := blobtest.Data(uint64(size), size)
		b := s.NewBatch() // O_DIRECT writes: the page cache does not hold them
		if err := b.Put(ctx, name, data); err != nil {
			t.Fatal(err)
		}
		if err := b.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		for round := 0; round < 2; round++ {
			dropCache(t, filepath.Join(s.Dir(), name))
			aligned := make([]byte, 0, 2<<20) // a large allocation: page aligned
			unaligned := make([]byte, 3, 2<<20)[3:]
			for _, buf := range [][]byte{aligned, unaligned, []byte("pre")} {
				got, err := s.GetAppend(ctx, name, buf)
				if err != nil {
					t.Fatalf("size %d: %v", size, err)
				}
				if !bytes.Equal(got[:len(buf)], buf) || !bytes.Equal(got[len(buf):], data) {
					t.Fatalf("size %d, buffer of cap %d: GetAppend returned other bytes", size, cap(buf))
				}
			}
		}
	}
}

// dropCache asks the kernel to evict the file's pages.
func dropCache(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		t.Fatal(err)
	}
}

// Concurrent callers share flushes: each returns only after a flush that
// started after its call finished, far fewer flushes run than calls, and
// a failed flush is reported to the callers it was meant to cover.
func TestGroupSync(t *testing.T) {
	var g groupSync
	var mu sync.Mutex
	var flushes int
	var inFlush atomic.Bool
	flush := func() error {
		if inFlush.Swap(true) {
			t.Error("two flushes ran at once")
		}
		time.Sleep(2 * time.Millisecond)
		mu.Lock()
		flushes++
		mu.Unlock()
		inFlush.Store(false)
		return nil
	}
	var wg sync.WaitGroup
	const callers = 32
	for i := 0; i < callers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mu.Lock()
			before := flushes
			mu.Unlock()
			if err := g.sync(flush); err != nil {
				t.Error(err)
			}
			mu.Lock()
			after := flushes
			mu.Unlock()
			if after <= before {
				t.Errorf("sync returned without a flush finishing after the call (%d flushes before, %d after)", before, after)
			}
		}()
	}
	wg.Wait()
	if flushes >= callers {
		t.Errorf("%d flushes for %d concurrent callers: nothing shared", flushes, callers)
	}
	boom := errors.New("boom")
	if err := g.sync(func() error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("failed flush: %v", err)
	}
	if err := g.sync(func() error { return nil }); err != nil {
		t.Fatalf("a later good flush still reports %v", err)
	}
}

// TestSync: Sync flushes (it is how a deduplicating writer makes objects
// that another batch renamed into place durable) and honours its context.
func TestSync(t *testing.T) {
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	done, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Sync(done); err == nil {
		t.Fatal("Sync with a done context succeeded")
	}
	before := s.group.finished
	if err := s.Sync(context.Background()); err != nil || s.group.finished != before+1 {
		t.Fatalf("Sync: %v, flushes %d -> %d", err, before, s.group.finished)
	}
}

// A batch writes an aligned object from where it is (no copy), padding
// included, and the object is exactly its length: what the caller's
// spare capacity held is not part of it.
func TestBatchPutFromAlignedMemory(t *testing.T) {
	ctx := context.Background()
	s := open(t, t.TempDir())
	raw := bytes.Repeat([]byte{0xEE}, 3*4096)
	off := 0
	if r := int(uintptr(unsafe.Pointer(&raw[0])) % 4096); r != 0 {
		off = 4096 - r
	}
	aligned := raw[off : off+5000 : off+8192] // garbage (0xEE) past the length
	copy(aligned, blobtest.Data(7, 5000))
	want := bytes.Clone(aligned)
	b := blob.NewBatch(s)
	if err := b.Put(ctx, "chunks/aa/aligned", aligned); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, "chunks/aa/aligned"); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("stored %d bytes (%v), want the %d put", len(got), err, len(want))
	}
	if !bytes.Equal(aligned[:5000], want) {
		t.Fatal("Put changed the caller's data")
	}
}
