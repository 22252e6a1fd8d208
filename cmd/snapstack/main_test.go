package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/snapstack/snapstack/internal/nbd"
)

// The process-level contract: the binary starts on a data directory,
// prints a new root key once, answers /healthz, stops on SIGTERM, and a
// restart keeps the key without printing it again.

func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "snapstack")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type proc struct {
	cmd    *exec.Cmd
	stdout *syncBuffer
}

// syncBuffer is a bytes.Buffer that the process's output is copied into
// while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func serve(t *testing.T, bin, data, addr string, extra ...string) *proc {
	t.Helper()
	return serveWith(t, bin, data, addr, []string{"SNAPSTACK_ACCESS_KEY_ID=", "SNAPSTACK_ACCESS_KEY_SECRET="},
		append([]string{"--nbd-listen", freePort(t)}, extra...)...)
}

// serveWith starts the binary with extra environment and flags and waits
// for /healthz.
func serveWith(t *testing.T, bin, data, addr string, env []string, extra ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve", "--listen", addr, "--data", data}, extra...)...)
	cmd.Env = append(os.Environ(), env...)
	p := &proc{cmd: cmd, stdout: &syncBuffer{}}
	cmd.Stdout, cmd.Stderr = p.stdout, &syncBuffer{}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitHealthy(t, addr, cmd)
	return p
}

func healthy(addr string) bool {
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

func (p *proc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\nstderr: %s", err, p.cmd.Stderr)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
}

func TestServeLifecycle(t *testing.T) {
	bin := buildBinary(t)
	data := filepath.Join(t.TempDir(), "data")
	addr := freePort(t)

	p := serve(t, bin, data, addr, "--admin")
	p.stop(t)
	out := p.stdout.String()
	var keyID, secret string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == "AccessKeyId:" {
			keyID = f[1]
		}
		if len(f) == 2 && f[0] == "AccessKeySecret:" {
			secret = f[1]
		}
	}
	if keyID == "" || secret == "" {
		t.Fatalf("first start did not print the root key:\n%s", out)
	}
	fi, err := os.Stat(filepath.Join(data, "root-key.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", err, fi)
	}

	p = serve(t, bin, data, addr, "--admin")
	if strings.Contains(p.stdout.String(), secret) {
		t.Error("the key was printed again on restart")
	}
	// The admin client signs with the stored key; an unknown disk is the
	// service's answer, which proves the signature was accepted.
	cmd := exec.Command(bin, "admin", "--endpoint", "http://"+addr, "--data", data, "set", "disk", "d-none", "InArrears", "true")
	cmd.Env = append(os.Environ(), "SNAPSTACK_ACCESS_KEY_ID=", "SNAPSTACK_ACCESS_KEY_SECRET=")
	got, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(got), "InvalidDiskId.NotFound") {
		t.Errorf("admin on unknown disk: %v %s", err, got)
	}
	cmd = exec.Command(bin, "admin", "--endpoint", "http://"+addr, "--data", data, "collect")
	cmd.Env = append(os.Environ(), "SNAPSTACK_ACCESS_KEY_ID=", "SNAPSTACK_ACCESS_KEY_SECRET=")
	if got, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(got), "removed 0 unreferenced chunks, and 0 registry blobs (0 bytes)") {
		t.Errorf("admin collect: %v %s", err, got)
	}
	cmd = exec.Command(bin, "admin", "--endpoint", "http://"+addr, "--data", data, "verify", "s-none")
	cmd.Env = append(os.Environ(), "SNAPSTACK_ACCESS_KEY_ID=", "SNAPSTACK_ACCESS_KEY_SECRET=")
	if got, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(got), "InvalidSnapshotId.NotFound") {
		t.Errorf("admin verify of an unknown snapshot: %v %s", err, got)
	}
	if logs := fmt.Sprint(p.cmd.Stderr); strings.Contains(logs, secret) {
		t.Error("the secret appears in the log")
	}
	p.stop(t)
}

func TestConfigFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "snapstack.json")
	os.WriteFile(path, []byte(`{"listen":"127.0.0.1:1","data":"/d","snapshot_quota_per_disk":64,"require_in_use_disk":true,
		"transition_delay":"5s","regions":[{"id":"cn-shanghai","zones":["cn-shanghai-a"]}],
		"dsw":{"registry_credentials":{"r.example":{"username":"u","password":"p"}},"insecure_registries":["10.0.0.5:5000"]}}`), 0o600)
	c, err := parseServeFlags([]string{"--config", path, "--listen", "127.0.0.1:2"})
	if err != nil {
		t.Fatal(err)
	}
	if c.listen != "127.0.0.1:2" || c.data != "/d" || c.ecs.SnapshotQuotaPerDisk != 64 || !c.ecs.RequireInUseDisk ||
		c.ecs.TransitionDelay != 5*time.Second || c.ecs.DefaultRegion != "cn-shanghai" || c.ecs.Regions[0].IDCode != "uf" ||
		c.dsw.RegistryCredentials["r.example"].Password != "p" || c.dsw.InsecureRegistries[0] != "10.0.0.5:5000" {
		t.Errorf("config = %+v", c)
	}
	if _, err := parseServeFlags([]string{"--region", "bad"}); err == nil {
		t.Error("a malformed --region was accepted")
	}
}

func TestCompressionFlag(t *testing.T) {
	path := filepath.Join(t.TempDir(), "snapstack.json")
	os.WriteFile(path, []byte(`{"compression":"zstd"}`), 0o600)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, ""}, // the store's default, s2
		{[]string{"--compression", "zstd"}, "zstd"},
		{[]string{"--config", path}, "zstd"},
		{[]string{"--config", path, "--compression", "s2"}, "s2"},
	} {
		c, err := parseServeFlags(tc.args)
		if err != nil {
			t.Errorf("parseServeFlags(%q): %v", tc.args, err)
		} else if c.compression != tc.want {
			t.Errorf("parseServeFlags(%q): compression %q, want %q", tc.args, c.compression, tc.want)
		}
	}
	if _, err := parseServeFlags([]string{"--compression", "lz4"}); err == nil || !strings.Contains(err.Error(), "lz4") {
		t.Errorf("--compression lz4: %v; want an error naming it", err)
	}
}

func TestNBDLimitFlags(t *testing.T) {
	path := filepath.Join(t.TempDir(), "snapstack.json")
	os.WriteFile(path, []byte(`{"nbd_max_conns":64,"nbd_buffer_mib":256,"nbd_reply_timeout":"90s"}`), 0o600)
	for _, tc := range []struct {
		args []string
		want nbd.Limits
	}{
		{nil, nbd.Limits{}}, // the server's defaults
		{[]string{"--nbd-max-conns", "8", "--nbd-buffer-mib", "100", "--nbd-reply-timeout", "1m"},
			nbd.Limits{MaxConns: 8, Memory: 100 << 20, ReplyTimeout: time.Minute}},
		{[]string{"--config", path}, nbd.Limits{MaxConns: 64, Memory: 256 << 20, ReplyTimeout: 90 * time.Second}},
		{[]string{"--config", path, "--nbd-buffer-mib", "512"}, nbd.Limits{MaxConns: 64, Memory: 512 << 20, ReplyTimeout: 90 * time.Second}},
	} {
		c, err := parseServeFlags(tc.args)
		if err != nil {
			t.Errorf("parseServeFlags(%q): %v", tc.args, err)
		} else if c.nbdLimits != tc.want {
			t.Errorf("parseServeFlags(%q): limits %+v, want %+v", tc.args, c.nbdLimits, tc.want)
		}
	}
	for _, args := range [][]string{{"--nbd-max-conns", "-1"}, {"--nbd-buffer-mib", "-5"}, {"--nbd-reply-timeout", "-1s"},
		{"--nbd-buffer-mib", "17592186044416"}} { // 2^44 MiB: wraps to 0 once shifted
		if _, err := parseServeFlags(args); err == nil {
			t.Errorf("parseServeFlags(%q) accepted a limit out of range", args)
		}
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"nbd_buffer_mib":-3}`), 0o600)
	if _, err := parseServeFlags([]string{"--config", bad}); err == nil || !strings.Contains(err.Error(), "nbd_buffer_mib") {
		t.Errorf("nbd_buffer_mib -3 in the config file: %v; want an error naming it", err)
	}
}
