package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// fioJobs are run in this order against each server, on the first GiB of
// the export: the sequential write fills it, so that the reads read data.
var fioJobs = []struct{ name, rw, bs string }{
	{"seq-write-1M", "write", "1M"},
	{"seq-read-1M", "read", "1M"},
	{"rand-read-4K", "randread", "4k"},
	{"rand-write-4K", "randwrite", "4k"},
}

// runFio measures NBD throughput of snapstack (a data disk of a running
// instance) and of nbdkit's file plugin (a sparse file of the same size
// in the same directory), with the same fio jobs (ioengine=nbd, queue
// depth 16, writes end with a flush; MB/s over the wall time of fio),
// with the page cache warm (-fio-cold evicts the files before each job), alternating which server goes first.
func runFio(cfg *config, res *results) error {
	dir := filepath.Join(cfg.work, "fio")
	os.RemoveAll(dir)
	defer os.RemoveAll(dir)
	defer os.Remove(dir + ".log")
	s, err := startServer(cfg, dir, 0)
	if err != nil {
		return err
	}
	defer s.stop()
	_, disks, err := s.runInstance(cfg.diskGiB)
	if err != nil {
		return err
	}
	file := filepath.Join(cfg.work, "nbdkit.img")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		return err
	}
	defer os.Remove(file)
	if err := os.Truncate(file, int64(cfg.diskGiB)<<30); err != nil {
		return err
	}
	port := freePort()
	_, p, _ := cutPort(port)
	kit := exec.Command("nbdkit", "-f", "-i", "127.0.0.1", "-p", p, "file", file)
	kit.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := kit.Start(); err != nil {
		return fmt.Errorf("nbdkit: %w", err)
	}
	defer func() { kit.Process.Signal(syscall.SIGTERM); kit.Wait() }()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := dialNBD(port, ""); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nbdkit did not start")
		}
	}
	targets := []struct {
		tool, uri string
		pid       int
	}{{"snapstack", s.uri(disks[0]), s.pid}, {"nbdkit", "nbd://" + port + "/", kit.Process.Pid}}
	for r := 0; r < cfg.fioRounds; r++ {
		for i := range targets {
			t := targets[(i+r)%len(targets)]
			for _, j := range fioJobs {
				if cfg.fioCold {
					prepareStep([]string{cfg.work}) // the files leave the page cache
				} else {
					prepareStep(nil) // sync: no write-back carries over
				}
				cpu0, _ := procStat(t.pid)
				var bw, iops, moved float64
				run := func() (err error) { bw, iops, moved, err = fio(t.uri, j.rw, j.bs, cfg.fioSeconds); return err }
				var err error
				if t.tool == "snapstack" && r == 0 {
					err = profiled("fio-"+j.name, run) // -profile fio-rand-read-4K ...
				} else {
					err = run()
				}
				if err != nil {
					return fmt.Errorf("fio %s %s: %w", t.tool, j.name, err)
				}
				cpu1, _ := procStat(t.pid)
				res.add("fio/"+t.tool+"/"+j.name+"/MBps", bw/1e6)
				res.add("fio/"+t.tool+"/"+j.name+"/iops", iops)
				res.add("fio/"+t.tool+"/"+j.name+"/cpuPerGB", (cpu1-cpu0).Seconds()/(moved/1e9))
				logf("fio round %d %s %s: %.0f MB/s, %.3f server CPU-s/GB", r+1, t.tool, j.name, bw/1e6, (cpu1-cpu0).Seconds()/(moved/1e9))
			}
		}
	}
	return nil
}

func cutPort(addr string) (string, string, bool) {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			return addr[:i], addr[i+1:], true
		}
	}
	return addr, "", false
}

// fio runs one job for the given seconds (writes end with a flush, which
// is counted) and returns its bytes per second and IOPS over the wall time,
// and the bytes moved.
func fio(uri, rw, bs string, seconds int) (bw, iops, moved float64, err error) {
	args := []string{"--name=j", "--ioengine=nbd", "--uri=" + uri, "--rw=" + rw, "--bs=" + bs, "--iodepth=16",
		"--size=1g", "--time_based", fmt.Sprintf("--runtime=%d", seconds), "--output-format=json"}
	if rw == "write" || rw == "randwrite" {
		args = append(args, "--end_fsync=1")
	}
	t0 := time.Now()
	out, err := exec.Command("fio", args...).Output()
	wall := time.Since(t0).Seconds()
	if err != nil {
		return 0, 0, 0, fmt.Errorf("%v: %s", err, out)
	}
	var r struct {
		Jobs []struct {
			Read, Write struct {
				IOBytes  float64 `json:"io_bytes"`
				TotalIOs float64 `json:"total_ios"`
			}
		}
	}
	if i := bytes.Index(out, []byte("\n{")); i >= 0 && out[0] != '{' {
		out = out[i+1:] // the nbd engine prints a line before the JSON
	}
	if err := json.Unmarshal(out, &r); err != nil || len(r.Jobs) != 1 {
		return 0, 0, 0, fmt.Errorf("fio output: %v: %.300s", err, out)
	}
	j := r.Jobs[0]
	if rw == "write" || rw == "randwrite" {
		return j.Write.IOBytes / wall, j.Write.TotalIOs / wall, j.Write.IOBytes, nil
	}
	return j.Read.IOBytes / wall, j.Read.TotalIOs / wall, j.Read.IOBytes, nil
}
