package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	openapi "github.com/alibabacloud-go/darabonba-openapi/v2/client"
	ecs4 "github.com/alibabacloud-go/ecs-20140526/v4/client"
	"github.com/alibabacloud-go/tea/tea"
)

// TestKill9KeepsFlushedWrites: a client writes blocks over NBD and flushes
// after each; the server is killed with SIGKILL mid-stream; after a
// restart every block whose flush was acknowledged holds its data.
func TestKill9KeepsFlushedWrites(t *testing.T) {
	nbdsh, err := exec.LookPath("nbdsh")
	if err != nil {
		t.Skip("nbdsh not installed (scripts/test.sh installs it)")
	}
	bin := buildBinary(t)
	data := filepath.Join(t.TempDir(), "data")
	addr, nbdAddr := freePort(t), freePort(t)
	env := []string{"SNAPSTACK_ACCESS_KEY_ID=crashkey", "SNAPSTACK_ACCESS_KEY_SECRET=crashsecret"}
	p := serveWith(t, bin, data, addr, env, "--nbd-listen", nbdAddr, "--transition-delay", "0s")

	c, err := ecs4.NewClient(&openapi.Config{AccessKeyId: tea.String("crashkey"), AccessKeySecret: tea.String("crashsecret"),
		Endpoint: tea.String(addr), Protocol: tea.String("http"), RegionId: tea.String("cn-hangzhou")})
	if err != nil {
		t.Fatal(err)
	}
	run, err := c.RunInstances(&ecs4.RunInstancesRequest{RegionId: tea.String("cn-hangzhou"), ImageId: tea.String("ubuntu_22_04_x64_20G_alibase_20240101.vhd"),
		InstanceType: tea.String("ecs.g7.large"), DataDisk: []*ecs4.RunInstancesRequestDataDisk{{Size: tea.Int32(1), Category: tea.String("cloud_auto")}}})
	if err != nil {
		t.Fatal(err)
	}
	inst := tea.StringValue(run.Body.InstanceIdSets.InstanceIdSet[0])
	disks, err := c.DescribeDisks(&ecs4.DescribeDisksRequest{RegionId: tea.String("cn-hangzhou"), InstanceId: tea.String(inst), DiskType: tea.String("data")})
	if err != nil || len(disks.Body.Disks.Disk) != 1 {
		t.Fatalf("data disk: %v", err)
	}
	diskID := tea.StringValue(disks.Body.Disks.Disk[0].DiskId)
	uri := "nbd://" + nbdAddr + "/" + diskID

	// The writer: generation g of block b is 1024 little-endian copies of g.
	script := `
import struct
gen = 1
while True:
    for b in range(0, 512, 5):
        h.pwrite(struct.pack('<I', gen) * 1024, b * 4096)
        h.flush()
        print("ack", b, gen, flush=True)
    gen += 1
`
	w := exec.Command(nbdsh, "-u", uri, "-c", script)
	w.Env = append(os.Environ(), "PATH=/usr/bin:"+os.Getenv("PATH"))
	stdout, _ := w.StdoutPipe()
	w.Stderr = &syncBuffer{}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { w.Process.Kill(); w.Wait() }()
	acked := map[int]int{}
	sc := bufio.NewScanner(stdout)
	for n := 0; n < 600 && sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		b, _ := strconv.Atoi(f[1])
		g, _ := strconv.Atoi(f[2])
		acked[b] = g
	}
	if len(acked) == 0 {
		t.Fatalf("the writer acknowledged nothing: %s", w.Stderr)
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Wait()

	// Fresh ports: once the killed server's were free, any process's
	// outgoing connection may have taken them as its local port.
	nbdAddr = freePort(t)
	serveWith(t, bin, data, freePort(t), env, "--nbd-listen", nbdAddr, "--transition-delay", "0s")
	uri = "nbd://" + nbdAddr + "/" + diskID
	check := `
import struct
for b in range(0, 512, 5):
    buf = h.pread(4096, b * 4096)
    g = struct.unpack('<I', buf[:4])[0]
    whole = buf == struct.pack('<I', g) * 1024
    print(b, g, whole)
`
	r := exec.Command(nbdsh, "-u", uri, "-c", check)
	r.Env = w.Env
	out, err := r.CombinedOutput()
	if err != nil {
		t.Fatalf("read back: %v\n%s", err, out)
	}
	got := map[int]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var b, g int
		var whole string
		fmt.Sscan(line, &b, &g, &whole)
		if whole != "True" {
			t.Fatalf("block %d torn after the crash", b)
		}
		got[b] = g
	}
	for b, g := range acked {
		if got[b] < g {
			t.Errorf("block %d: generation %d after restart, %d was acknowledged", b, got[b], g)
		}
	}
}

func waitHealthy(t *testing.T, addr string, cmd *exec.Cmd) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if ok := healthy(addr); ok {
			return
		}
		// A process that exited (a zombie until its Wait) will not become
		// healthy: say why at once.
		if stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", cmd.Process.Pid)); bytes.Contains(stat, []byte(") Z ")) {
			t.Fatalf("exited before it was healthy\nstderr: %s", cmd.Stderr)
		}
		if time.Now().After(deadline) {
			t.Fatalf("not healthy\nstderr: %s", cmd.Stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
