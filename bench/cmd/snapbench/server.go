package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	openapi "github.com/alibabacloud-go/darabonba-openapi/v2/client"
	ecs4 "github.com/alibabacloud-go/ecs-20140526/v4/client"
	"github.com/alibabacloud-go/tea/tea"

	"github.com/snapstack/snapstack/internal/api"
	"github.com/snapstack/snapstack/internal/app"
	"github.com/snapstack/snapstack/internal/ecs"
)

const (
	benchKey    = "LTAIbenchkey0001"
	benchSecret = "bench-secret-0001"
	region      = "cn-hangzhou"
	zone        = "cn-hangzhou-i"
)

// server is one snapstack: the real binary (default) or, with -inproc,
// the same service started in this process so that -cpuprofile sees it.
type server struct {
	addr, nbdAddr, dir string
	pid                int
	cmd                *exec.Cmd
	app                *app.App
	c                  *ecs4.Client
}

// startServer serves a fresh (or existing) data directory.
func startServer(cfg *config, dir string, quota int) (*server, error) {
	s := &server{dir: dir, addr: freePort(), nbdAddr: freePort()}
	if cfg.inproc {
		logf, err := os.Create(dir + ".log")
		if err != nil {
			return nil, err
		}
		ecfg := ecs.DefaultConfig()
		ecfg.TransitionDelay = 0
		if quota > 0 {
			ecfg.SnapshotQuotaPerDisk = quota
		}
		s.app, err = app.Start(context.Background(), app.Config{Listen: s.addr, NBDListen: s.nbdAddr, DataDir: dir,
			ECS: ecfg, API: api.DefaultOptions(), AccessKeyID: benchKey, AccessKeySecret: benchSecret,
			Log: slog.New(slog.NewTextHandler(logf, nil)), Announce: logf})
		if err != nil {
			return nil, err
		}
		s.pid = os.Getpid()
	} else {
		args := []string{"serve", "--listen", s.addr, "--nbd-listen", s.nbdAddr, "--data", dir, "--transition-delay", "0s"}
		if quota > 0 {
			args = append(args, "--snapshot-quota", strconv.Itoa(quota))
		}
		s.cmd = exec.Command(cfg.bin, args...)
		s.cmd.Env = append(os.Environ(), "SNAPSTACK_ACCESS_KEY_ID="+benchKey, "SNAPSTACK_ACCESS_KEY_SECRET="+benchSecret)
		logf, err := os.Create(dir + ".log")
		if err != nil {
			return nil, err
		}
		s.cmd.Stdout, s.cmd.Stderr = logf, logf
		if err := s.cmd.Start(); err != nil {
			return nil, err
		}
		s.pid = s.cmd.Process.Pid
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if r, err := http.Get("http://" + s.addr + "/healthz"); err == nil {
			r.Body.Close()
			if r.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("snapstack not healthy after 30 s (log: %s.log)", dir)
		}
	}
	c, err := ecs4.NewClient(&openapi.Config{AccessKeyId: tea.String(benchKey), AccessKeySecret: tea.String(benchSecret),
		Endpoint: tea.String(s.addr), Protocol: tea.String("http"), RegionId: tea.String(region),
		ReadTimeout: tea.Int(120000), ConnectTimeout: tea.Int(10000)})
	if err != nil {
		s.stop()
		return nil, err
	}
	s.c = c
	return s, nil
}

// stop shuts the service down (SIGTERM) and waits for it.
func (s *server) stop() {
	if s.app != nil {
		s.app.Close()
		return
	}
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { s.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			s.cmd.Process.Kill()
			<-done
		}
	}
}

func freePort() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func (s *server) uri(disk string) string { return "nbd://" + s.nbdAddr + "/" + disk }

// runInstance runs an instance with cloud_auto data disks of the given
// sizes (GiB) and returns it and its data disks, In_use and exported.
func (s *server) runInstance(sizes ...int) (string, []string, error) {
	req := &ecs4.RunInstancesRequest{RegionId: tea.String(region), ZoneId: tea.String(zone),
		ImageId: tea.String("ubuntu_22_04_x64_20G_alibase_20240101.vhd"), InstanceType: tea.String("ecs.g7.large")}
	for _, g := range sizes {
		req.DataDisk = append(req.DataDisk, &ecs4.RunInstancesRequestDataDisk{Size: tea.Int32(int32(g)), Category: tea.String("cloud_auto")})
	}
	run, err := s.c.RunInstances(req)
	if err != nil {
		return "", nil, fmt.Errorf("RunInstances: %w", err)
	}
	inst := tea.StringValue(run.Body.InstanceIdSets.InstanceIdSet[0])
	if err := s.waitInstance(inst, "Running"); err != nil {
		return "", nil, err
	}
	d, err := s.c.DescribeDisks(&ecs4.DescribeDisksRequest{RegionId: tea.String(region), InstanceId: tea.String(inst),
		DiskType: tea.String("data"), PageSize: tea.Int32(100)})
	if err != nil {
		return "", nil, fmt.Errorf("DescribeDisks: %w", err)
	}
	var disks []string
	for _, x := range d.Body.Disks.Disk {
		disks = append(disks, tea.StringValue(x.DiskId))
		if err := s.waitDisk(tea.StringValue(x.DiskId), "In_use"); err != nil {
			return "", nil, err
		}
	}
	return inst, disks, nil
}

func (s *server) waitInstance(inst, status string) error {
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		r, err := s.c.DescribeInstances(&ecs4.DescribeInstancesRequest{RegionId: tea.String(region), InstanceIds: tea.String(`["` + inst + `"]`)})
		if err == nil && len(r.Body.Instances.Instance) == 1 && tea.StringValue(r.Body.Instances.Instance[0].Status) == status {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("instance %s not %s: %v", inst, status, err)
		}
	}
}

func (s *server) waitDisk(disk, status string) error {
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		r, err := s.c.DescribeDisks(&ecs4.DescribeDisksRequest{RegionId: tea.String(region), DiskIds: tea.String(`["` + disk + `"]`)})
		if err == nil && len(r.Body.Disks.Disk) == 1 && tea.StringValue(r.Body.Disks.Disk[0].Status) == status {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("disk %s not %s: %v", disk, status, err)
		}
	}
}

// snapshot calls CreateSnapshot and polls DescribeSnapshots until the
// snapshot is accomplished; it returns the snapshot, the call's round
// trip and the time to accomplished.
func (s *server) snapshot(disk string) (id string, call, total time.Duration, err error) {
	t0 := time.Now()
	r, err := s.c.CreateSnapshot(&ecs4.CreateSnapshotRequest{DiskId: tea.String(disk)})
	if err != nil {
		return "", 0, 0, fmt.Errorf("CreateSnapshot: %w", err)
	}
	call = time.Since(t0)
	id = tea.StringValue(r.Body.SnapshotId)
	return id, call, 0, s.waitSnapshot(id, t0, &total)
}

// pollInterval is how long to wait before the next status poll of a step
// that has run for elapsed: 5 ms, or 1% of elapsed when that is longer.
// The time measured is late by at most one interval, so by at most 1% (or
// 5 ms); a fixed 5 ms poll would send about 1,000 signed requests during
// a 5 s upload, whose CPU on both sides (SDK signing, verification,
// SQLite, rendering) the upload would share on a 2-core machine.
func pollInterval(elapsed time.Duration) time.Duration {
	return max(5*time.Millisecond, elapsed/100)
}

func (s *server) waitSnapshot(id string, t0 time.Time, total *time.Duration) error {
	req := &ecs4.DescribeSnapshotsRequest{RegionId: tea.String(region), SnapshotIds: tea.String(`["` + id + `"]`)}
	for deadline := time.Now().Add(30 * time.Minute); ; time.Sleep(pollInterval(time.Since(t0))) {
		r, err := s.c.DescribeSnapshots(req)
		if err == nil && len(r.Body.Snapshots.Snapshot) == 1 {
			switch st := tea.StringValue(r.Body.Snapshots.Snapshot[0].Status); st {
			case "accomplished":
				if total != nil {
					*total = time.Since(t0)
				}
				return nil
			case "failed":
				return fmt.Errorf("snapshot %s failed", id)
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("snapshot %s not accomplished: %v", id, err)
		}
	}
}

// nbdcopy runs nbdcopy (holes and zero blocks of the source are skipped:
// the destination is new and empty).
func nbdcopy(src, dst string) error {
	out, err := exec.Command("nbdcopy", "--destination-is-zero", src, dst).CombinedOutput()
	if err != nil {
		return fmt.Errorf("nbdcopy %s %s: %v: %s", src, dst, err, out)
	}
	return nil
}

// storeDir is where a snapstack data directory keeps chunks and manifests.
func storeDir(data string) string { return filepath.Join(data, "store") }
