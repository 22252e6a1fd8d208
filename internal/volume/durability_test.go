package volume

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"testing"

	"github.com/snapstack/snapstack/internal/atomicfile"
)

// A Flush whose map-log append is cut short (ENOSPC, EFBIG, EIO after a
// partial write) fails; the next Flush that succeeds must make both
// clusters durable. Torn bytes left in the log would end the replay at
// open and lose the acknowledged records behind them (read from below:
// zeroes). Here the short write is provoked with RLIMIT_FSIZE.
func TestTornMapAppendKeepsLaterFlush(t *testing.T) {
	signal.Ignore(syscall.SIGXFSZ)
	defer signal.Reset(syscall.SIGXFSZ)
	v := newVol(t, 1<<20, nil)
	a := bytes.Repeat([]byte{0xaa}, ClusterSize)
	b := bytes.Repeat([]byte{0xbb}, ClusterSize)
	if _, err := v.WriteAt(a, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := v.WriteAt(b, ClusterSize); err != nil {
		t.Fatal(err)
	}

	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	// The map log is empty: allow 24 bytes, so that the 32-byte append of
	// two records stops in the middle of the second one.
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: 24, Max: old.Max}); err != nil {
		t.Skip("setrlimit:", err)
	}
	ferr := v.Flush()
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	if ferr == nil {
		t.Skip("the limited flush did not fail; cannot provoke a short write here")
	}
	// Space is back: the retried Flush succeeds, so both clusters are
	// acknowledged as durable.
	if err := v.Flush(); err != nil {
		t.Fatalf("retried flush: %v", err)
	}
	v2 := reopen(t, v, nil)
	if got := read(t, v2, 0, ClusterSize); !bytes.Equal(got, a) {
		t.Errorf("cluster 0 lost after a successful Flush (first byte %#x)", got[0])
	}
	if got := read(t, v2, ClusterSize, ClusterSize); !bytes.Equal(got, b) {
		t.Errorf("cluster 1 lost after a successful Flush (first byte %#x): the torn record left by the failed append cut the replay", got[0])
	}
}

// A write that lands while a Flush fsyncs the data must not be recorded
// in the map by that Flush: its data may not be durable, and after a
// crash the map would make the whole cluster read as the hole or torn
// bytes of the data file, including bytes that were flushed below it.
func TestWriteDuringFlushIsRecordedByTheNextFlush(t *testing.T) {
	v := newVol(t, 1<<20, nil)
	head := v.layers[len(v.layers)-1]
	a := bytes.Repeat([]byte{0xaa}, ClusterSize)
	if _, err := v.WriteAt(a, 0); err != nil {
		t.Fatal(err)
	}
	sync := head.syncData
	head.syncData = func() error {
		// Another connection's write completes during the fsync.
		done := make(chan error)
		go func() {
			_, err := v.WriteAt(a, 3*ClusterSize)
			done <- err
		}()
		if err := <-done; err != nil {
			t.Error(err)
		}
		head.syncData = sync
		return sync()
	}
	if err := v.Flush(); err != nil {
		t.Fatal(err)
	}
	head.mu.Lock()
	dirty := append([]uint64(nil), head.dirty...)
	head.mu.Unlock()
	if len(dirty) != 1 || dirty[0] != 3 {
		t.Fatalf("after the flush, clusters waiting for the next one: %v, want [3]", dirty)
	}
	if head.logSize != recordSize {
		t.Fatalf("the flush recorded %d bytes of map, want one record", head.logSize)
	}
	if err := v.Flush(); err != nil {
		t.Fatal(err)
	}
	v2 := reopen(t, v, nil)
	if got := read(t, v2, 3*ClusterSize, ClusterSize); !bytes.Equal(got, a) {
		t.Fatal("the write flushed by the second Flush is lost")
	}
}

// Linux reports a failed writeback to one fsync and marks the pages
// clean: a later fsync succeeds without the data. So after a failed data
// fsync, every later Flush and Seal of the layer fails, until the volume
// is opened again from what is durable.
func TestFailedFsyncIsSticky(t *testing.T) {
	v := newVol(t, 1<<20, nil)
	a := bytes.Repeat([]byte{0xaa}, ClusterSize)
	b := bytes.Repeat([]byte{0xbb}, ClusterSize)
	if _, err := v.WriteAt(a, 0); err != nil {
		t.Fatal(err)
	}
	if err := v.Flush(); err != nil {
		t.Fatal(err)
	}
	head := v.layers[len(v.layers)-1]
	sync := head.syncData
	head.syncData = func() error {
		head.syncData = sync // fails once, as the kernel reports it once
		return syscall.EIO
	}
	if _, err := v.WriteAt(b, ClusterSize); err != nil {
		t.Fatal(err)
	}
	if err := v.Flush(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("flush with a failing fsync: %v", err)
	}
	if err := v.Flush(); !errors.Is(err, ErrFailed) {
		t.Fatalf("the flush after a failed fsync: %v, want ErrFailed", err)
	}
	if err := v.Seal("s-1"); !errors.Is(err, ErrFailed) {
		t.Fatalf("seal after a failed fsync: %v, want ErrFailed", err)
	}
	v2 := reopen(t, v, nil)
	if got := read(t, v2, 0, ClusterSize); !bytes.Equal(got, a) {
		t.Fatal("the cluster flushed before the failure is lost")
	}
	if err := v2.Flush(); err != nil {
		t.Fatalf("reopened volume: %v", err)
	}
}

// When volume.json was replaced but its directory fsync failed, a crash
// may bring back either chain. Seal, Reset, MarkUploaded and Compact
// must then keep the files of both (the old code removed the new layers, so that the volume.json
// on disk could name files that no longer exist and the disk could not
// be opened), and the volume must refuse I/O until it is reopened.
func TestChainChangeOfUnknownDurability(t *testing.T) {
	notDurable := func(path string, data []byte, perm os.FileMode) error {
		if err := atomicfile.Write(path, data, perm); err != nil {
			return err
		}
		return fmt.Errorf("%w: %w", atomicfile.ErrNotDurable, syscall.EIO)
	}
	a := bytes.Repeat([]byte{0xaa}, ClusterSize)
	for _, step := range []string{"seal", "reset", "mark uploaded", "compact"} {
		t.Run(step, func(t *testing.T) {
			base := &memBase{data: bytes.Repeat([]byte{0xcc}, 1<<20)}
			v := newVol(t, 1<<20, func(string) (Base, error) { return base, nil })
			if _, err := v.WriteAt(a, 0); err != nil {
				t.Fatal(err)
			}
			if err := v.Flush(); err != nil {
				t.Fatal(err)
			}
			if step == "mark uploaded" || step == "compact" {
				if err := v.Seal("s-1"); err != nil {
					t.Fatal(err)
				}
			}
			if step == "compact" {
				if err := v.MarkUploaded("s-1"); err != nil {
					t.Fatal(err)
				}
			}
			v.writeState = notDurable
			var err error
			switch step {
			case "seal":
				err = v.Seal("s-1")
			case "reset":
				err = v.Reset("s-base")
			case "mark uploaded":
				err = v.MarkUploaded("s-1")
			case "compact":
				err = v.Compact()
			}
			if !errors.Is(err, atomicfile.ErrNotDurable) {
				t.Fatalf("%s: %v", step, err)
			}
			if _, err := v.WriteAt(a, ClusterSize); !errors.Is(err, ErrFailed) {
				t.Fatalf("write after an undurable %s: %v, want ErrFailed", step, err)
			}
			if err := v.Flush(); !errors.Is(err, ErrFailed) {
				t.Fatalf("flush after an undurable %s: %v, want ErrFailed", step, err)
			}
			// The rename happened: reopening finds the new chain, whose
			// files must all be there.
			v2 := reopen(t, v, func(string) (Base, error) { return base, nil })
			want := a
			if step == "reset" {
				want = base.data[:ClusterSize]
			}
			if got := read(t, v2, 0, ClusterSize); !bytes.Equal(got, want) {
				t.Fatalf("reopened volume reads %#x at 0", got[0])
			}
		})
	}
}

// A MarkUploaded whose volume.json was not written leaves the snapshot
// not uploaded in memory too: it is not the parent of the next snapshot,
// whose upload then carries its changes (the old code kept the mark, so
// that a failed upload's layer passed for uploaded).
func TestMarkUploadedFailureKeepsTheLayerUnuploaded(t *testing.T) {
	v := newVol(t, 1<<20, nil)
	if _, err := v.WriteAt([]byte{1}, 0); err != nil {
		t.Fatal(err)
	}
	if err := v.Seal("s-1"); err != nil {
		t.Fatal(err)
	}
	v.writeState = func(string, []byte, os.FileMode) error { return syscall.ENOSPC }
	if err := v.MarkUploaded("s-1"); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("MarkUploaded: %v", err)
	}
	v.writeState = nil
	if err := v.Seal("s-2"); err != nil {
		t.Fatalf("the volume is usable after a plain failure: %v", err)
	}
	ch, err := v.Changed("s-2", ClusterSize)
	if err != nil {
		t.Fatal(err)
	}
	if ch.Parent != "" || fmt.Sprint(ch.Chunks) != "[0]" {
		t.Fatalf("changes of s-2: %+v, want s-1's write with no parent", ch)
	}
}
