package main

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// prepareStep applies the method of ../shared/bench/BASELINE.md before a
// timed step: sync, evict every file under the roots from the page cache,
// read the step's inputs back in, sync again. The source is warm, the disk
// idle.
func prepareStep(roots []string, inputs ...string) {
	syscall.Sync()
	for _, r := range roots {
		walkFiles(r, func(p string) { evict(p) })
	}
	for _, in := range inputs {
		walkFiles(in, func(p string) { warm(p) })
	}
	syscall.Sync()
}

func walkFiles(root string, fn func(string)) {
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			fn(p)
		}
		return nil
	})
}

// evict drops a file's clean pages (posix_fadvise DONTNEED, what
// dd iflag=nocache does).
func evict(path string) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	const fadvDontNeed = 4
	syscall.Syscall6(syscall.SYS_FADVISE64, f.Fd(), 0, 0, fadvDontNeed, 0, 0)
}

// warm reads the data extents of a file into the page cache.
func warm(path string) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	fd := int(f.Fd())
	const seekData, seekHole = 3, 4
	for off := int64(0); ; {
		d, err := syscall.Seek(fd, off, seekData)
		if err != nil {
			return
		}
		h, err := syscall.Seek(fd, d, seekHole)
		if err != nil {
			return
		}
		for o := d; o < h; o += int64(len(buf)) {
			if _, err := f.ReadAt(buf[:min(int64(len(buf)), h-o)], o); err != nil && err != io.EOF {
				return
			}
		}
		off = h
	}
}

// fsyncFile makes a file durable (what `sync FILE` does).
func fsyncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// dirBytes is the sum of the apparent sizes of the files under dir.
func dirBytes(dir string) int64 {
	var n int64
	walkFiles(dir, func(p string) {
		if fi, err := os.Stat(p); err == nil {
			n += fi.Size()
		}
	})
	return n
}

// sameContent reports whether file a begins with the content of file b
// and holds only zeroes after it (a restored disk may be larger than the
// image written into it).
func sameContent(a, b string) (bool, error) {
	fa, err := os.Open(a)
	if err != nil {
		return false, err
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return false, err
	}
	defer fb.Close()
	ba, bb := make([]byte, 4<<20), make([]byte, 4<<20)
	for off := int64(0); ; off += int64(len(ba)) {
		na, ea := io.ReadFull(fa, ba)
		nb, _ := io.ReadFull(fb, bb)
		if !bytes.Equal(ba[:nb], bb[:nb]) || (na < nb) {
			return false, nil
		}
		for _, c := range ba[nb:na] {
			if c != 0 {
				return false, nil
			}
		}
		if ea != nil {
			return true, nil
		}
	}
}

// procStat reads the user+system CPU time of a process and its peak RSS
// (VmHWM) in bytes.
func procStat(pid int) (cpu time.Duration, hwm int64) {
	if raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		// Fields after the command name (which may hold spaces).
		f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+2:]))
		if len(f) > 12 {
			u, _ := strconv.ParseInt(f[11], 10, 64)
			s, _ := strconv.ParseInt(f[12], 10, 64)
			cpu = time.Duration(u+s) * 10 * time.Millisecond // USER_HZ = 100
		}
	}
	if raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, line := range strings.Split(string(raw), "\n") {
			if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				hwm = kb << 10
			}
		}
	}
	return cpu, hwm
}

// resetHWM resets a process's peak RSS to its current RSS, so that the
// next procStat reports the peak of one step.
func resetHWM(pid int) {
	os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// machine describes the host for the report.
func machine() []string {
	cpu := "?"
	var flags []string
	if raw, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(raw), "\n") {
			k, v, _ := strings.Cut(line, ":")
			switch strings.TrimSpace(k) {
			case "model name":
				cpu = strings.TrimSpace(v)
			case "flags":
				for _, f := range strings.Fields(v) {
					switch f {
					case "sha_ni", "avx2", "avx512f", "aes", "vaes":
						flags = append(flags, f)
					}
				}
			}
		}
	}
	mem := "?"
	if raw, err := os.ReadFile("/proc/meminfo"); err == nil {
		f := strings.Fields(string(raw))
		if len(f) > 1 {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			mem = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
		}
	}
	var uts syscall.Utsname
	syscall.Uname(&uts)
	kernel := cstr(uts.Release[:])
	lines := []string{
		fmt.Sprintf("CPU: %d × %s (flags: %s)", runtime.NumCPU(), cpu, strings.Join(uniq(flags), " ")),
		"memory: " + mem + "; kernel " + kernel + "; " + runtime.Version(),
		"file system of the work directory: " + firstLine("sh", "-c", "findmnt -n -o FSTYPE,SOURCE,OPTIONS -T /tmp | cut -c1-80"),
	}
	for _, t := range [][]string{{"restic", "version"}, {"borg", "--version"}, {"nbdkit", "--version"}, {"fio", "--version"}, {"nbdcopy", "--version"}} {
		lines = append(lines, t[0]+": "+firstLine(t...))
	}
	return lines
}

func firstLine(args ...string) string {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil && len(out) == 0 {
		return "not installed"
	}
	s, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return s
}

func cstr(b []int8) string {
	var s []byte
	for _, c := range b {
		if c == 0 {
			break
		}
		s = append(s, byte(c))
	}
	return string(s)
}

func uniq(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
