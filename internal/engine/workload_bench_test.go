package engine

import (
	"bytes"
	"crypto/sha256"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"syscall"
	"testing"
	"time"

	"github.com/snapstack/snapstack/internal/blob/local"
	"github.com/snapstack/snapstack/internal/chunk"
	"github.com/snapstack/snapstack/internal/ecs"
	"github.com/snapstack/snapstack/internal/volume"
)

// BenchmarkWorkload runs the shared benchmark workload (../shared/bench:
// a 4 GiB mixed image, then a 1% day of changes) through the engine on a
// local chunk directory: full snapshot, incremental snapshot, restore
// until durable. Set SNAPSTACK_BENCH_IMAGES to the directory holding
// base.img and day1.img (diskgen gen / clone / day) and run with
// -bench Workload -benchtime 1x (SNAPSTACK_BENCH_FULL_PROFILE,
// SNAPSTACK_BENCH_INCR_PROFILE and SNAPSTACK_BENCH_RESTORE_PROFILE name
// CPU profile files; SNAPSTACK_BENCH_COMPRESSION names the compression,
// s2 by default). Reported: seconds per step and stored
// bytes; loading the images into the disk is not timed.
func BenchmarkWorkload(b *testing.B) {
	dir := os.Getenv("SNAPSTACK_BENCH_IMAGES")
	if dir == "" {
		b.Skip("SNAPSTACK_BENCH_IMAGES not set")
	}
	work := b.TempDir()
	for i := 0; i < b.N; i++ {
		runWorkload(b, dir, filepath.Join(work, time.Now().Format("150405.000")))
	}
}

func runWorkload(b *testing.B, images, work string) {
	b.StopTimer()
	blobs, err := local.New(filepath.Join(work, "store"))
	if err != nil {
		b.Fatal(err)
	}
	e, err := New(filepath.Join(work, "volumes"), blobs, benchCompression(b), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	base := filepath.Join(images, "base.img")
	fi, err := os.Stat(base)
	if err != nil {
		b.Fatal(err)
	}
	if err := e.CreateDisk(ctx, "d-bench", fi.Size(), ""); err != nil {
		b.Fatal(err)
	}
	v, _ := e.Volume("d-bench")
	loadImage(b, v, base, "")

	if prof := os.Getenv("SNAPSTACK_BENCH_FULL_PROFILE"); prof != "" {
		f, _ := os.Create(prof)
		pprof.StartCPUProfile(f)
		defer f.Close()
	}
	cpu0 := cpuTime()
	full := timeSnapshot(b, e, "s-full")
	fullCPU := cpuTime() - cpu0
	pprof.StopCPUProfile()
	fullBytes := dirBytes(filepath.Join(work, "store"))
	loadImage(b, v, filepath.Join(images, "day1.img"), base)
	if prof := os.Getenv("SNAPSTACK_BENCH_INCR_PROFILE"); prof != "" {
		f, _ := os.Create(prof)
		pprof.StartCPUProfile(f)
		defer f.Close()
	}
	cpu1 := cpuTime()
	incr := timeSnapshot(b, e, "s-day1")
	b.ReportMetric((cpuTime() - cpu1).Seconds(), "incr-cpu-s")
	pprof.StopCPUProfile()
	incrBytes := dirBytes(filepath.Join(work, "store")) - fullBytes

	// As bench/'s harness: the restore's input, the chunk store, is read
	// into the page cache first.
	warm(b, filepath.Join(work, "store"))
	if prof := os.Getenv("SNAPSTACK_BENCH_RESTORE_PROFILE"); prof != "" {
		f, _ := os.Create(prof)
		pprof.StartCPUProfile(f)
		defer f.Close()
	}
	cpu0 = cpuTime()
	start := time.Now()
	if err := e.CreateDisk(ctx, "d-restored", fi.Size(), "s-day1"); err != nil {
		b.Fatal(err)
	}
	r, _ := e.Volume("d-restored")
	for r.BaseID() != "" {
		time.Sleep(5 * time.Millisecond)
	}
	restore := time.Since(start)
	restoreCPU := cpuTime() - cpu0
	pprof.StopCPUProfile()
	if got, want := volumeHash(b, r), fileHash(b, filepath.Join(images, "day1.img")); got != want {
		b.Fatal("restored disk differs from day1.img")
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(full.Seconds(), "full-s")
	b.ReportMetric(fullCPU.Seconds(), "full-cpu-s")
	b.ReportMetric(incr.Seconds(), "incr-s")
	b.ReportMetric(restore.Seconds(), "restore-s")
	b.ReportMetric(restoreCPU.Seconds(), "restore-cpu-s")
	b.ReportMetric(float64(fullBytes)/1e6, "full-MB")
	b.ReportMetric(float64(incrBytes)/1e6, "incr-MB")
	b.ReportMetric(float64(ms.Sys)/(1<<20), "sys-MiB")
}

func timeSnapshot(b *testing.B, e *Engine, id string) time.Duration {
	done := make(chan error, 1)
	start := time.Now()
	if err := e.StartSnapshot(ctx, ecs.SnapshotJob{SnapshotID: id, DiskID: "d-bench"}, func(p ecs.Progress) {
		if p.Finished {
			done <- p.Err
		}
	}); err != nil {
		b.Fatal(err)
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

// loadImage writes the 64 KiB clusters of path that hold data (and, with
// prev, differ from prev) into v.
func loadImage(b *testing.B, v *volume.Volume, path, prev string) {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var p *os.File
	if prev != "" {
		if p, err = os.Open(prev); err != nil {
			b.Fatal(err)
		}
		defer p.Close()
	}
	buf, old := make([]byte, volume.ClusterSize), make([]byte, volume.ClusterSize)
	for off := int64(0); off < v.Size(); off += volume.ClusterSize {
		n, err := f.ReadAt(buf, off)
		if err != nil && err != io.EOF {
			b.Fatal(err)
		}
		if p != nil {
			p.ReadAt(old, off)
			if bytes.Equal(buf[:n], old[:n]) {
				continue
			}
		} else if chunk.IsZero(buf[:n]) {
			continue
		}
		if _, err := v.WriteAt(buf[:n], off); err != nil {
			b.Fatal(err)
		}
	}
	if err := v.Flush(); err != nil {
		b.Fatal(err)
	}
}

func dirBytes(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

func volumeHash(b *testing.B, v *volume.Volume) [32]byte {
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for off := int64(0); off < v.Size(); off += int64(len(buf)) {
		if _, err := v.ReadAt(buf, off); err != nil {
			b.Fatal(err)
		}
		h.Write(buf)
	}
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}

func fileHash(b *testing.B, path string) [32]byte {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	io.Copy(h, f)
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}

// cpuTime is the user+system CPU time of this process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// warm reads every file under dir, so that it is in the page cache.
func warm(b *testing.B, dir string) {
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(io.Discard, f)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
}

// benchCompression is the compression SNAPSTACK_BENCH_COMPRESSION names.
func benchCompression(b *testing.B) chunk.Compression {
	c, err := chunk.ParseCompression(os.Getenv("SNAPSTACK_BENCH_COMPRESSION"))
	if err != nil {
		b.Fatal(err)
	}
	return c
}
