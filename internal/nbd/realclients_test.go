package nbd

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Tests against real NBD clients (qemu, libnbd tools, fio), each skipped
// when its binary is missing.

const clientDevSize = 64 << 20

// needBinary skips the test if name is not installed.
func needBinary(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed", name)
	}
	return p
}

// clientServer serves a 64 MiB memory device as "disk" and returns its URI.
func clientServer(t *testing.T) (*memDevice, string) {
	ex := newMemExports()
	dev := ex.add("disk", newMemDevice(clientDevSize), false)
	_, addr := startServer(t, ex)
	return dev, "nbd://" + addr + "/disk"
}

// run runs a client with a timeout and returns its standard output.
func run(t *testing.T, env []string, name string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = t.TempDir() // fio and friends may leave state files behind
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %q: %v\nstdout:\n%s\nstderr:\n%s", name, args, err, out, stderr.Bytes())
	}
	return out
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func TestClientNbdinfo(t *testing.T) {
	bin := needBinary(t, "nbdinfo")
	_, uri := clientServer(t)
	out := run(t, nil, bin, "--json", uri)
	var info struct {
		Exports []struct {
			Name     string `json:"export-name"`
			Size     int64  `json:"export-size"`
			ReadOnly bool   `json:"is_read_only"`
			Min      int64  `json:"block_size_minimum"`
			Pref     int64  `json:"block_size_preferred"`
			Max      int64  `json:"block_size_maximum"`
			Flush    bool   `json:"can_flush"`
			FUA      bool   `json:"can_fua"`
			Trim     bool   `json:"can_trim"`
			Zero     bool   `json:"can_zero"`
			Multi    bool   `json:"can_multi_conn"`
		} `json:"exports"`
	}
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatalf("nbdinfo output: %v\n%s", err, out)
	}
	if len(info.Exports) != 1 {
		t.Fatalf("nbdinfo: %d exports\n%s", len(info.Exports), out)
	}
	e := info.Exports[0]
	if e.Name != "disk" || e.Size != clientDevSize || e.ReadOnly || e.Min != 1 || e.Pref != 4096 || e.Max != MaxPayload {
		t.Fatalf("nbdinfo: %+v\n%s", e, out)
	}
	if !e.Flush || !e.FUA || !e.Trim || !e.Zero || !e.Multi {
		t.Fatalf("nbdinfo capabilities: %+v\n%s", e, out)
	}
}

func TestClientQemuIO(t *testing.T) {
	bin := needBinary(t, "qemu-io")
	dev, uri := clientServer(t)
	run(t, nil, bin, "-f", "raw",
		"-c", "write -P 0xab 0 1M",
		"-c", "read -P 0xab 0 1M",
		"-c", "write -z 1M 64k",
		"-c", "discard 2M 64k",
		"-c", "flush", uri)
	data := dev.snapshot()
	if !bytes.Equal(data[:1<<20], bytes.Repeat([]byte{0xab}, 1<<20)) {
		t.Fatal("device lacks the 0xab pattern")
	}
	if dev.flushes.Load() == 0 {
		t.Fatal("qemu-io flush did not reach the device")
	}
}

func TestClientNbdcopy(t *testing.T) {
	bin := needBinary(t, "nbdcopy")
	dev, uri := clientServer(t)
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.raw"), filepath.Join(dir, "out.raw")
	src := randomBytes(t, 16<<20)
	if err := os.WriteFile(in, src, 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, nil, bin, in, uri)
	if !bytes.Equal(dev.snapshot()[:len(src)], src) {
		t.Fatal("device differs from the copied file")
	}
	run(t, nil, bin, uri, out)
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, dev.snapshot()) {
		t.Fatal("file copied out differs from the device")
	}
}

func TestClientQemuImgConvert(t *testing.T) {
	bin := needBinary(t, "qemu-img")
	dev, uri := clientServer(t)
	dev.WriteAt(randomBytes(t, 3<<20), 5<<20) // data, holes around it
	dev.WriteAt([]byte("tail"), clientDevSize-100)
	out := filepath.Join(t.TempDir(), "out.raw")
	run(t, nil, bin, "convert", "-f", "raw", "-O", "raw", uri, out)
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, dev.snapshot()) {
		t.Fatalf("qemu-img convert output (%d bytes) differs from the device", len(got))
	}
}

func TestClientNbdsh(t *testing.T) {
	bin := needBinary(t, "nbdsh")
	dev, uri := clientServer(t)
	script := `
assert h.get_size() == 64 * 1024 * 1024
assert h.can_flush() and h.can_fua() and h.can_trim() and h.can_zero() and h.can_multi_conn()
assert not h.is_read_only()
buf = b"\x5a" * 65536
h.pwrite(buf, 4096, nbd.CMD_FLAG_FUA)
assert h.pread(65536, 4096) == buf
h.trim(4096, 4096, nbd.CMD_FLAG_FUA)
assert h.pread(4096, 4096) == bytes(4096)
h.zero(8192, 8192, nbd.CMD_FLAG_FUA | nbd.CMD_FLAG_NO_HOLE)
assert h.pread(16384, 4096) == bytes(12288) + b"\x5a" * 4096
h.pwrite(b"end", 64 * 1024 * 1024 - 3)
assert h.pread(3, 64 * 1024 * 1024 - 3) == b"end"
h.flush()
print("ok")
`
	out := run(t, []string{"PATH=/usr/bin:" + os.Getenv("PATH")}, bin, "-u", uri, "-c", script)
	if !bytes.Contains(out, []byte("ok")) {
		t.Fatalf("nbdsh output %q", out)
	}
	data := dev.snapshot()
	want := make([]byte, 4096+65536)
	copy(want[4096:], buf5a(65536))
	clear(want[4096:16384])
	if !bytes.Equal(data[:len(want)], want) || !bytes.Equal(data[clientDevSize-3:], []byte("end")) {
		t.Fatal("device content differs from the nbdsh operations")
	}
	if n := dev.flushes.Load(); n < 4 {
		t.Fatalf("%d device flushes, want at least 4 (3 FUA + flush)", n)
	}
}

func buf5a(n int) []byte { return bytes.Repeat([]byte{0x5a}, n) }

func TestClientFio(t *testing.T) {
	bin := needBinary(t, "fio")
	dev, uri := clientServer(t)
	out := run(t, nil, bin, "--name=nbd", "--ioengine=nbd", "--uri="+uri,
		"--rw=randwrite", "--bs=4k", "--size=32M", "--iodepth=16", "--time_based", "--runtime=2",
		"--verify=crc32c", "--verify_fatal=1", "--verify_state_save=0", "--output-format=json")
	if i := bytes.IndexByte(out, '{'); i > 0 {
		out = out[i:] // fio prints "fio: connected to NBD server" first
	}
	var res struct {
		Jobs []struct {
			Error int `json:"error"`
			Write struct {
				IOs int64 `json:"total_ios"`
			} `json:"write"`
			Read struct {
				IOs int64 `json:"total_ios"`
			} `json:"read"`
		} `json:"jobs"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("fio output: %v\n%s", err, out)
	}
	if len(res.Jobs) != 1 || res.Jobs[0].Error != 0 || res.Jobs[0].Write.IOs == 0 || res.Jobs[0].Read.IOs == 0 {
		t.Fatalf("fio: %+v\n%s", res.Jobs, out)
	}
	t.Logf("fio: %d writes, %d verify reads", res.Jobs[0].Write.IOs, res.Jobs[0].Read.IOs)
	if bytes.Equal(dev.snapshot()[:32<<20], make([]byte, 32<<20)) {
		t.Fatal("fio wrote nothing to the device")
	}
}
