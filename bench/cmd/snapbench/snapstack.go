package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	ecs4 "github.com/alibabacloud-go/ecs-20140526/v4/client"
	"github.com/alibabacloud-go/tea/tea"
)

// meter times one step of a tool: wall time, CPU (user+system) and peak
// RSS of the process that does the work.
type meter struct {
	res  *results
	tool string
}

// serverStep runs fn as step of the snapstack process pid; extra CPU
// (the NBD client's) is added by fn through the returned pointer.
func (m meter) serverStep(step string, pid int, fn func(extraCPU *time.Duration) error) error {
	resetHWM(pid)
	cpu0, _ := procStat(pid)
	var extra time.Duration
	t0 := time.Now()
	if err := profiled(step, func() error { return fn(&extra) }); err != nil {
		return fmt.Errorf("%s %s: %w", m.tool, step, err)
	}
	wall := time.Since(t0)
	cpu1, hwm := procStat(pid)
	m.res.add(m.tool+"/"+step+"/wall", wall.Seconds())
	m.res.add(m.tool+"/"+step+"/cpu", (cpu1 - cpu0 + extra).Seconds())
	m.res.add(m.tool+"/"+step+"/rss", float64(hwm)/(1<<20))
	return nil
}

// childStep runs a command as the step and records its own rusage.
func (m meter) childStep(step string, cmd *exec.Cmd, after func() error) error {
	t0 := time.Now()
	out, err := cmd.CombinedOutput()
	if err == nil && after != nil {
		err = after()
	}
	wall := time.Since(t0)
	if err != nil {
		return fmt.Errorf("%s %s: %v\n%s", m.tool, step, err, tail(out))
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	m.res.add(m.tool+"/"+step+"/wall", wall.Seconds())
	m.res.add(m.tool+"/"+step+"/cpu", time.Duration(ru.Utime.Nano()+ru.Stime.Nano()).Seconds())
	m.res.add(m.tool+"/"+step+"/rss", float64(ru.Maxrss)/1024)
	return nil
}

func tail(b []byte) string {
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// copyOut reads a disk over NBD into a new file and makes it durable; it
// returns the CPU nbdcopy used.
func copyOut(uri, out string) (time.Duration, error) {
	os.Remove(out)
	cmd := exec.Command("nbdcopy", "--destination-is-zero", uri, out)
	if b, err := cmd.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("nbdcopy %s: %v: %s", uri, err, b)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), fsyncFile(out)
}

// runSnapstack is run k of snapstack through its real path: a disk of a
// running instance written over NBD, snapshots through the API, restores
// by CreateDisk and by ResetDisk read back over NBD.
func runSnapstack(cfg *config, res *results, k int) error {
	dir := filepath.Join(cfg.work, fmt.Sprintf("snapstack-%d", k))
	os.RemoveAll(dir)
	defer os.RemoveAll(dir)
	defer os.Remove(dir + ".log")
	s, err := startServer(cfg, dir, 0)
	if err != nil {
		return err
	}
	defer s.stop()
	m := meter{res: res, tool: "snapstack"}
	inst, disks, err := s.runInstance(cfg.diskGiB)
	if err != nil {
		return err
	}
	disk := disks[0]
	vol := filepath.Join(dir, "volumes", disk)
	if err := nbdcopy(cfg.img("base.img"), s.uri(disk)); err != nil {
		return err
	}
	roots := []string{cfg.work, cfg.images}
	store := storeDir(dir)

	var full, incr string
	prepareStep(roots, vol)
	if err := m.serverStep("full", s.pid, func(*time.Duration) error {
		var call time.Duration
		full, call, _, err = s.snapshot(disk)
		res.add("snapstack/full/call", call.Seconds())
		return err
	}); err != nil {
		return err
	}
	stored := dirBytes(store)
	res.add("snapstack/full/stored", float64(stored))

	if err := writeExtents(s.nbdAddr, disk, cfg.img("day1.img"), cfg.dayLog); err != nil {
		return err
	}
	prepareStep(roots, vol)
	if err := m.serverStep("incr", s.pid, func(*time.Duration) error {
		var call time.Duration
		incr, call, _, err = s.snapshot(disk)
		res.add("snapstack/incr/call", call.Seconds())
		return err
	}); err != nil {
		return err
	}
	res.add("snapstack/incr/stored", float64(dirBytes(store)-stored))
	stored = dirBytes(store)

	out := filepath.Join(cfg.work, "snapstack-restore.img")
	defer os.Remove(out)
	prepareStep(roots, store)
	var nd string
	if err := m.serverStep("restore", s.pid, func(extra *time.Duration) error {
		var err error
		if nd, err = s.diskFrom(incr); err != nil {
			return err
		}
		if err := s.attach(inst, nd); err != nil {
			return err
		}
		*extra, err = copyOut(s.uri(nd), out)
		return err
	}); err != nil {
		return err
	}
	if err := verify(out, cfg.img("day1.img")); err != nil {
		return fmt.Errorf("snapstack restore: %w", err)
	}
	os.Remove(out)
	// That disk may still be hydrating in the background: let it finish
	// (untimed) so that it does not compete with the next step.
	if err := waitHydrated(filepath.Join(dir, "volumes", nd)); err != nil {
		return err
	}

	// The restore made durable on the host: CreateDisk from the same
	// snapshot until the volume no longer needs the chunk store (every
	// cluster copied into the volume and fsynced, the base dropped from
	// volume.json); then the disk is read back, untimed, and compared.
	prepareStep(roots, store)
	var hd string
	if err := m.serverStep("hydrate", s.pid, func(*time.Duration) error {
		var err error
		if hd, err = s.diskFrom(incr); err != nil {
			return err
		}
		return waitHydrated(filepath.Join(dir, "volumes", hd))
	}); err != nil {
		return err
	}
	if err := s.attach(inst, hd); err != nil {
		return err
	}
	if _, err := copyOut(s.uri(hd), out); err != nil {
		return err
	}
	if err := verify(out, cfg.img("day1.img")); err != nil {
		return fmt.Errorf("snapstack hydrated restore: %w", err)
	}
	os.Remove(out)

	// Second VM: a new disk holding vm2.img, snapshotted into the same store.
	d2, err := s.c.CreateDisk(&ecs4.CreateDiskRequest{RegionId: tea.String(region), ZoneId: tea.String(zone),
		Size: tea.Int32(int32(cfg.diskGiB)), DiskCategory: tea.String("cloud_auto")})
	if err != nil {
		return err
	}
	vm2 := tea.StringValue(d2.Body.DiskId)
	if err := s.attach(inst, vm2); err != nil {
		return err
	}
	if err := nbdcopy(cfg.img("vm2.img"), s.uri(vm2)); err != nil {
		return err
	}
	prepareStep(roots, filepath.Join(dir, "volumes", vm2))
	if err := m.serverStep("vm2", s.pid, func(*time.Duration) error {
		_, _, _, err := s.snapshot(vm2)
		return err
	}); err != nil {
		return err
	}
	res.add("snapstack/vm2/stored", float64(dirBytes(store)-stored))

	// ResetDisk to the full snapshot (the instance must be stopped), then
	// read the disk back over NBD as after the restore.
	if _, err := s.c.StopInstance(&ecs4.StopInstanceRequest{InstanceId: tea.String(inst)}); err != nil {
		return err
	}
	if err := s.waitInstance(inst, "Stopped"); err != nil {
		return err
	}
	t0 := time.Now()
	if _, err := s.c.ResetDisk(&ecs4.ResetDiskRequest{DiskId: tea.String(disk), SnapshotId: tea.String(full)}); err != nil {
		return fmt.Errorf("ResetDisk: %w", err)
	}
	res.add("snapstack/reset/call", time.Since(t0).Seconds())
	if _, err := s.c.StartInstance(&ecs4.StartInstanceRequest{InstanceId: tea.String(inst)}); err != nil {
		return err
	}
	if err := s.waitInstance(inst, "Running"); err != nil {
		return err
	}
	if err := s.waitDisk(disk, "In_use"); err != nil {
		return err
	}
	prepareStep(roots, store)
	if err := m.serverStep("reset-read", s.pid, func(extra *time.Duration) error {
		*extra, err = copyOut(s.uri(disk), out)
		return err
	}); err != nil {
		return err
	}
	return verify(out, cfg.img("base.img"))
}

// diskFrom creates a cloud_auto disk from a snapshot and returns its ID.
func (s *server) diskFrom(snapshot string) (string, error) {
	d, err := s.c.CreateDisk(&ecs4.CreateDiskRequest{RegionId: tea.String(region), ZoneId: tea.String(zone),
		SnapshotId: tea.String(snapshot), DiskCategory: tea.String("cloud_auto")})
	if err != nil {
		return "", err
	}
	return tea.StringValue(d.Body.DiskId), nil
}

// waitHydrated polls a volume's volume.json (every 5 ms) until it names
// no base snapshot: the restore is then local and durable.
func waitHydrated(volDir string) error {
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		raw, err := os.ReadFile(filepath.Join(volDir, "volume.json"))
		if err == nil {
			var st struct {
				Base string `json:"base"`
			}
			if json.Unmarshal(raw, &st) == nil && st.Base == "" {
				return nil
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("%s: not hydrated after 10 minutes", volDir)
}

// attach attaches an Available disk to the instance and waits for In_use.
func (s *server) attach(inst, disk string) error {
	if err := s.waitDisk(disk, "Available"); err != nil {
		return err
	}
	if _, err := s.c.AttachDisk(&ecs4.AttachDiskRequest{InstanceId: tea.String(inst), DiskId: tea.String(disk)}); err != nil {
		return fmt.Errorf("AttachDisk: %w", err)
	}
	return s.waitDisk(disk, "In_use")
}

// verify fails unless the restored file holds the image byte for byte.
func verify(restored, image string) error {
	ok, err := sameContent(restored, image)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%s differs from %s", restored, image)
	}
	return nil
}
