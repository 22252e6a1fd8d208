package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/snapstack/snapstack/internal/blob"
	"github.com/snapstack/snapstack/internal/blob/blobtest"
	"github.com/snapstack/snapstack/internal/blob/mem"
	"github.com/snapstack/snapstack/internal/chunk"
	"github.com/snapstack/snapstack/internal/ecs"
	"github.com/snapstack/snapstack/internal/manifest"
)

var ctx = context.Background()

type fixture struct {
	t           *testing.T
	e           *Engine
	blobs       *blobtest.Faulty
	dir         string
	compression chunk.Compression // of new chunks, from the next reopen
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{t: t, blobs: blobtest.NewFaulty(mem.New()), dir: filepath.Join(t.TempDir(), "volumes"), compression: chunk.DefaultCompression}
	f.reopen()
	return f
}

func (f *fixture) reopen() {
	if f.e != nil {
		f.e.Close()
	}
	e, err := New(f.dir, f.blobs, f.compression, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		f.t.Fatal(err)
	}
	f.e = e
	f.t.Cleanup(func() { e.Close() })
}

// startSnapshot starts a snapshot and returns the channel that receives
// its upload's final error.
func (f *fixture) startSnapshot(disk, id string) <-chan error {
	f.t.Helper()
	done := make(chan error, 1)
	if err := f.e.StartSnapshot(ctx, ecs.SnapshotJob{SnapshotID: id, DiskID: disk}, func(p ecs.Progress) {
		if p.Finished {
			done <- p.Err
		}
	}); err != nil {
		f.t.Fatal(err)
	}
	return done
}

// snapshot takes a snapshot and waits for its upload; it returns the
// progress reports seen.
func (f *fixture) snapshot(disk, id string) []ecs.Progress {
	f.t.Helper()
	var mu sync.Mutex
	var seen []ecs.Progress
	done := make(chan error, 1)
	err := f.e.StartSnapshot(ctx, ecs.SnapshotJob{SnapshotID: id, DiskID: disk}, func(p ecs.Progress) {
		mu.Lock()
		seen = append(seen, p)
		mu.Unlock()
		if p.Finished {
			done <- p.Err
		}
	})
	if err != nil {
		f.t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			f.t.Fatalf("upload of %s: %v", id, err)
		}
	case <-time.After(30 * time.Second):
		f.t.Fatalf("upload of %s did not finish", id)
	}
	mu.Lock()
	defer mu.Unlock()
	return seen
}

func (f *fixture) write(disk string, p []byte, off int64) {
	f.t.Helper()
	v, err := f.e.Volume(disk)
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := v.WriteAt(p, off); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) read(disk string) []byte {
	f.t.Helper()
	v, err := f.e.Volume(disk)
	if err != nil {
		f.t.Fatal(err)
	}
	p := make([]byte, v.Size())
	if _, err := v.ReadAt(p, 0); err != nil {
		f.t.Fatal(err)
	}
	return p
}

// restoresTo creates disk from snapshot snap and checks that it reads
// want.
func (f *fixture) restoresTo(disk, snap string, size int64, want []byte) {
	f.t.Helper()
	if err := f.e.CreateDisk(ctx, disk, size, snap); err != nil {
		f.t.Fatal(err)
	}
	if !bytes.Equal(f.read(disk), want) {
		f.t.Fatalf("the disk restored from %s differs", snap)
	}
}

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(r.Uint32())
	}
	return p
}

const diskSize = 16 << 20

func TestSnapshotRestoreIncremental(t *testing.T) {
	f := newFixture(t)
	if err := f.e.CreateDisk(ctx, "d-1", diskSize, ""); err != nil {
		t.Fatal(err)
	}
	f.write("d-1", randBytes(1, 3<<20), 0)
	f.write("d-1", []byte("hello"), 10<<20)
	img1 := f.read("d-1")
	reports := f.snapshot("d-1", "s-1")
	last := reports[len(reports)-1]
	if last.Total != 4 { // chunks 0,1,2 and 10 changed
		t.Errorf("first snapshot: %d chunks to do, want 4 (%+v)", last.Total, reports)
	}

	// A 1% change: only the touched chunk is read and stored.
	f.write("d-1", []byte("changed"), 5<<20+123)
	img2 := f.read("d-1")
	f.blobs.ResetCalls()
	reports = f.snapshot("d-1", "s-2")
	if got := reports[len(reports)-1].Total; got != 1 {
		t.Errorf("incremental: %d chunks to do, want 1", got)
	}
	if puts := f.blobs.Calls(blobtest.OpPut); puts != 2 { // one chunk, one manifest
		t.Errorf("incremental: %d puts, want 2", puts)
	}

	// Overwrite, then roll back to each snapshot.
	f.write("d-1", bytes.Repeat([]byte{0xee}, 4<<20), 0)
	for _, tc := range []struct {
		id   string
		want []byte
	}{{"s-1", img1}, {"s-2", img2}} {
		if err := f.e.RestoreDisk(ctx, "d-1", tc.id); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(f.read("d-1"), tc.want) {
			t.Fatalf("after restoring %s the disk differs", tc.id)
		}
	}
	// A new disk from a snapshot, larger than the snapshot.
	if err := f.e.CreateDisk(ctx, "d-2", 2*diskSize, "s-1"); err != nil {
		t.Fatal(err)
	}
	got := f.read("d-2")
	if !bytes.Equal(got[:diskSize], img1) || !chunk.IsZero(got[diskSize:]) {
		t.Fatal("disk from snapshot differs")
	}
	// The restored disk's next snapshot builds on its base.
	f.write("d-2", []byte("x"), 20<<20)
	reports = f.snapshot("d-2", "s-3")
	if got := reports[len(reports)-1].Total; got != 1 {
		t.Errorf("snapshot after restore: %d chunks, want 1", got)
	}
	checked, err := f.e.Verify(ctx, "s-3")
	if err != nil || checked.Chunks != 5 || checked.Objects != 5 {
		t.Errorf("verify s-3: %+v, %v", checked, err)
	}
}

func TestRestartResumesAndKeepsData(t *testing.T) {
	f := newFixture(t)
	f.e.CreateDisk(ctx, "d-1", diskSize, "")
	f.write("d-1", randBytes(2, 2<<20), 1<<20)
	want := f.read("d-1")
	f.snapshot("d-1", "s-1")
	v, _ := f.e.Volume("d-1")
	v.Flush()
	f.reopen()
	if !bytes.Equal(f.read("d-1"), want) {
		t.Fatal("volume changed across a restart")
	}
	// A resumed StartSnapshot of a stored snapshot reports done at once.
	f.snapshot("d-1", "s-1")
	// Restore, restart before hydration could finish: reads still right.
	f.write("d-1", randBytes(3, 1<<20), 0)
	f.e.RestoreDisk(ctx, "d-1", "s-1")
	f.reopen()
	if !bytes.Equal(f.read("d-1"), want) {
		t.Fatal("restored volume wrong after restart")
	}
}

func TestCollectorKeepsLiveChunks(t *testing.T) {
	f := newFixture(t)
	f.e.CreateDisk(ctx, "d-1", diskSize, "")
	f.write("d-1", randBytes(4, 4<<20), 0)
	f.snapshot("d-1", "s-1")
	img1 := f.read("d-1")
	f.write("d-1", randBytes(5, 2<<20), 0)
	f.snapshot("d-1", "s-2")
	img2 := f.read("d-1")
	count := func() int {
		n := 0
		f.e.chunks.List(ctx, func(chunk.ID) error { n++; return nil })
		return n
	}
	if n := count(); n != 6 {
		t.Fatalf("%d chunks stored, want 6", n)
	}
	if removed, err := f.e.Collect(ctx); err != nil || removed != 0 {
		t.Fatalf("collect with everything live: removed %d, %v", removed, err)
	}
	// s-1 deleted: its two overwritten chunks go; s-2 and the disk's
	// parent table keep the rest.
	f.e.DeleteSnapshot(ctx, "s-1")
	if removed, err := f.e.Collect(ctx); err != nil || removed != 2 {
		t.Fatalf("collect after deleting s-1: removed %d, %v", removed, err)
	}
	f.e.RestoreDisk(ctx, "d-1", "s-2")
	if !bytes.Equal(f.read("d-1"), img2) {
		t.Fatal("s-2 damaged by the collector")
	}
	_ = img1
	// Deleting s-2 keeps the chunks the disk's parent table names.
	f.e.DeleteSnapshot(ctx, "s-2")
	f.e.Collect(ctx)
	f.write("d-1", []byte("y"), 15<<20)
	f.snapshot("d-1", "s-3")
	if _, err := f.e.Verify(ctx, "s-3"); err != nil {
		t.Fatalf("s-3 refers to a collected chunk: %v", err)
	}
}

// TestCollectorRacesUploads: collections running while disks are
// snapshotted never take a chunk a stored manifest needs.
func TestCollectorRacesUploads(t *testing.T) {
	f := newFixture(t)
	const disks = 3
	for d := 0; d < disks; d++ {
		id := "d-" + string(rune('a'+d))
		f.e.CreateDisk(ctx, id, diskSize, "")
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				if _, err := f.e.Collect(ctx); err != nil {
					t.Error(err)
				}
			}
		}
	}()
	for round := 0; round < 4; round++ {
		for d := 0; d < disks; d++ {
			id := "d-" + string(rune('a'+d))
			f.write(id, randBytes(uint64(round*10+d), 1<<20), int64(round)<<20)
			f.snapshot(id, id+"-s"+string(rune('0'+round)))
			if round > 0 {
				f.e.DeleteSnapshot(ctx, id+"-s"+string(rune('0'+round-1)))
			}
		}
	}
	close(stop)
	wg.Wait()
	err := f.blobs.List(ctx, "manifests/", func(name string) error {
		_, err := f.e.Verify(ctx, strings.TrimPrefix(name, "manifests/"))
		return err
	})
	if err != nil {
		t.Fatalf("a live snapshot lost a chunk: %v", err)
	}
}

func TestCorruptChunkIsAnError(t *testing.T) {
	f := newFixture(t)
	f.e.CreateDisk(ctx, "d-1", diskSize, "")
	f.write("d-1", randBytes(6, 1<<20), 0)
	f.snapshot("d-1", "s-1")
	var name string
	f.blobs.List(ctx, "chunks/", func(n string) error { name = n; return nil })
	if err := f.blobs.FlipBit(ctx, name, 1000); err != nil {
		t.Fatal(err)
	}
	if _, err := f.e.Verify(ctx, "s-1"); !errors.Is(err, chunk.ErrCorrupt) {
		t.Fatalf("verify of a flipped bit: %v", err)
	}
	f.write("d-1", bytes.Repeat([]byte{1}, 1<<20), 0)
	if err := f.e.RestoreDisk(ctx, "d-1", "s-1"); err != nil {
		t.Fatal(err)
	}
	v, _ := f.e.Volume("d-1")
	if _, err := v.ReadAt(make([]byte, 4096), 0); !errors.Is(err, chunk.ErrCorrupt) {
		t.Fatalf("reading a corrupt chunk through a restored disk: %v", err)
	}
}

func TestUploadFailureIsReported(t *testing.T) {
	f := newFixture(t)
	f.e.CreateDisk(ctx, "d-1", diskSize, "")
	f.write("d-1", randBytes(7, 1<<20), 0)
	f.blobs.Fail(blobtest.OpPut, errors.New("disk full"))
	done := f.startSnapshot("d-1", "s-1")
	if err := <-done; err == nil {
		t.Fatal("upload succeeded with a failing store")
	}
	f.blobs.Clear()
	// The next snapshot carries the failed one's changes.
	f.write("d-1", []byte("z"), 3<<20)
	reports := f.snapshot("d-1", "s-2")
	if got := reports[len(reports)-1].Total; got != 2 {
		t.Errorf("after a failed upload: %d chunks, want 2", got)
	}
	var _ blob.Backend = f.blobs
}

// TestInstantAccessBeforeUpload: a disk can be made from a snapshot whose
// upload has not finished, from its local sealed layer.
func TestInstantAccessBeforeUpload(t *testing.T) {
	f := newFixture(t)
	f.e.CreateDisk(ctx, "d-1", diskSize, "")
	f.write("d-1", randBytes(8, 2<<20), 3<<20)
	want := f.read("d-1")
	// Hold the upload: chunk puts block until released.
	release := make(chan struct{})
	f.blobs.SetFault(blobtest.OpPut, func(string) error { <-release; return nil })
	done := f.startSnapshot("d-1", "s-ia")
	f.write("d-1", bytes.Repeat([]byte{9}, 1<<20), 3<<20) // after the seal
	if err := f.e.CreateDisk(ctx, "d-2", diskSize, "s-ia"); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(f.read("d-2"), want) {
		t.Fatal("instant-access disk differs from the snapshot")
	}
	close(release)
	f.blobs.Clear()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestResumeAfterInterruptedUpload: the service stops in the middle of an
// upload; after a restart, StartSnapshot of the same snapshot (what
// ecs.Resume does) finishes it from the sealed layer, byte for byte.
func TestResumeAfterInterruptedUpload(t *testing.T) {
	f := newFixture(t)
	f.e.CreateDisk(ctx, "d-1", diskSize, "")
	f.write("d-1", randBytes(9, 5<<20), 0)
	want := f.read("d-1")
	var puts atomic.Int32
	f.blobs.SetFault(blobtest.OpPut, func(string) error {
		if puts.Add(1) > 2 {
			return errors.New("service stopping")
		}
		return nil
	})
	done := f.startSnapshot("d-1", "s-1")
	if err := <-done; err == nil {
		t.Fatal("the interrupted upload reported success")
	}
	f.write("d-1", bytes.Repeat([]byte{1}, 1<<20), 0) // written after the seal
	f.blobs.Clear()
	f.reopen()
	f.snapshot("d-1", "s-1")
	if err := f.e.CreateDisk(ctx, "d-2", diskSize, "s-1"); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(f.read("d-2"), want) {
		t.Fatal("the resumed snapshot differs from the disk at its seal")
	}
}

// TestBaseReadsEachChunkOnce: concurrent reads of parts of one chunk (as
// NBD clients issue them) fetch, decompress and verify it once.
func TestBaseReadsEachChunkOnce(t *testing.T) {
	blobs := blobtest.NewFaulty(mem.New())
	cs, err := chunk.NewStore(blobs, chunk.DefaultCompression)
	if err != nil {
		t.Fatal(err)
	}
	data := randBytes(10, ChunkSize)
	id, _, err := cs.Put(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	m := manifest.New(4*ChunkSize, ChunkSize, "")
	m.Set(0, id)
	b := &base{m: m, chunks: cs}
	blobs.ResetCalls()
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			p := make([]byte, ChunkSize/16)
			if err := b.ReadAt(p, int64(i)*int64(len(p))); err != nil {
				t.Error(err)
			}
			if !bytes.Equal(p, data[i*len(p):(i+1)*len(p)]) {
				t.Errorf("part %d differs", i)
			}
		}(i)
	}
	wg.Wait()
	if n := blobs.Calls(blobtest.OpGet); n != 1 {
		t.Errorf("%d fetches of one chunk, want 1", n)
	}
}

// StoredSnapshots lists the snapshots whose manifest is stored.
func TestStoredSnapshots(t *testing.T) {
	f := newFixture(t)
	if err := f.e.CreateDisk(ctx, "d-1", diskSize, ""); err != nil {
		t.Fatal(err)
	}
	f.write("d-1", []byte("x"), 0)
	f.snapshot("d-1", "s-1")
	f.snapshot("d-1", "s-2")
	if err := f.e.DeleteSnapshot(ctx, "s-1"); err != nil {
		t.Fatal(err)
	}
	got, err := f.e.StoredSnapshots(ctx)
	if err != nil || !slices.Equal(got, []string{"s-2"}) {
		t.Fatalf("StoredSnapshots = %v, %v; want [s-2]", got, err)
	}
}

// TestVerifyCountsDamagedChunks: Verify reads on past a damaged object,
// counts every chunk it damages (shared objects once read), and reports
// the first as a ChunkProblem whose public text says what is wrong.
func TestVerifyCountsDamagedChunks(t *testing.T) {
	f := newFixture(t)
	f.e.CreateDisk(ctx, "d-1", diskSize, "")
	for k := range 4 {
		f.write("d-1", randBytes(uint64(40+k), 1<<20), int64(k)<<20)
	}
	f.write("d-1", randBytes(40, 1<<20), 4<<20) // chunk 4 shares chunk 0's object
	f.snapshot("d-1", "s-1")
	m := mustManifest(t, f, "s-1")
	id0, id2 := m.Pieces(0, nil)[0].ID, m.Pieces(2, nil)[0].ID
	if err := f.blobs.FlipBit(ctx, "chunks/"+id0.String()[:2]+"/"+id0.String(), 4000); err != nil {
		t.Fatal(err)
	}
	if err := f.blobs.Delete(ctx, "chunks/"+id2.String()[:2]+"/"+id2.String()); err != nil {
		t.Fatal(err)
	}
	v, err := f.e.Verify(ctx, "s-1")
	var p *ChunkProblem
	if !errors.As(err, &p) || p.Index != 0 || p.ID != id0 || !errors.Is(err, chunk.ErrCorrupt) {
		t.Fatalf("Verify = %v; want the corrupt object of chunk 0 first", err)
	}
	if v != (Verified{Chunks: 2, Objects: 2, Damaged: 3}) {
		t.Errorf("Verified = %+v; want chunks 1 and 3 intact (2 objects), chunks 0, 2 and 4 damaged", v)
	}
	if pub := p.Public(); !strings.Contains(pub, "chunk 0:") || !strings.Contains(pub, "corrupt") {
		t.Errorf("Public() = %q", pub)
	}
	missing := &ChunkProblem{Index: 2, ID: id2, Err: fmt.Errorf("blob/local: get: open /srv/data/x: %w", blob.ErrNotFound)}
	if pub := missing.Public(); !strings.Contains(pub, "missing from the store") || strings.Contains(pub, "/srv") {
		t.Errorf("Public() of a missing object = %q", pub)
	}
	other := &ChunkProblem{Index: 2, ID: id2, Err: errors.New("open /srv/data/x: permission denied")}
	if pub := other.Public(); strings.Contains(pub, "/srv") || strings.Contains(pub, "permission") {
		t.Errorf("Public() of an unreadable object = %q; it must not carry the host's error", pub)
	}
}
