package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	ecs4 "github.com/alibabacloud-go/ecs-20140526/v4/client"
	"github.com/alibabacloud-go/tea/tea"
)

// runLatency measures the CreateSnapshot round trip on a disk of the
// image's size and on a 1 TiB sparse disk holding the same data. Before
// each call 16 random 64 KiB clusters are written and flushed, so every
// seal has a head to flush; each snapshot is left to finish before the
// next (not timed).
func runLatency(cfg *config, res *results) error {
	dir := filepath.Join(cfg.work, "latency")
	os.RemoveAll(dir)
	defer os.RemoveAll(dir)
	defer os.Remove(dir + ".log")
	s, err := startServer(cfg, dir, 0)
	if err != nil {
		return err
	}
	defer s.stop()
	_, disks, err := s.runInstance(cfg.diskGiB, 1024)
	if err != nil {
		return err
	}
	names := map[string]string{disks[0]: "image", disks[1]: "1tib"}
	for _, d := range disks {
		if err := nbdcopy(cfg.img("base.img"), s.uri(d)); err != nil {
			return err
		}
		if _, _, _, err := s.snapshot(d); err != nil { // the first upload, not timed
			return err
		}
	}
	rng := rand.New(rand.NewPCG(7, 7))
	buf := make([]byte, 64<<10)
	for i := 0; i < cfg.latencyN; i++ {
		for j, d := range disks {
			d = disks[(i+j)%2] // alternate which size goes first
			c, err := dialNBD(s.nbdAddr, d)
			if err != nil {
				return err
			}
			for w := 0; w < 16; w++ {
				for b := range buf {
					buf[b] = byte(rng.Uint32())
				}
				if err := c.WriteAt(buf, rng.Int64N(c.size/int64(len(buf)))*int64(len(buf))); err != nil {
					return err
				}
			}
			if err := c.Flush(); err != nil {
				return err
			}
			c.Close()
			prepareStep(nil)
			id, call, _, err := s.snapshot(d)
			if err != nil {
				return fmt.Errorf("%s: %w", id, err)
			}
			res.add("latency/"+names[d]+"/call", call.Seconds())
		}
	}
	return nil
}

// runAPI creates cfg.apiSnapshots snapshots as fast as the API takes them
// (several workers over many disks: a disk takes one snapshot at a time),
// then measures DescribeSnapshots over them. Every request is signed by
// the tea SDK (ACS3-HMAC-SHA256) and verified by the service.
func runAPI(cfg *config, res *results) error {
	dir := filepath.Join(cfg.work, "api")
	os.RemoveAll(dir)
	defer os.RemoveAll(dir)
	defer os.Remove(dir + ".log")
	perDisk := 256
	ndisks := (cfg.apiSnapshots + perDisk - 1) / perDisk
	s, err := startServer(cfg, dir, perDisk)
	if err != nil {
		return err
	}
	defer s.stop()
	var disks []string
	for len(disks) < ndisks {
		sizes := make([]int, min(16, ndisks-len(disks)))
		for i := range sizes {
			sizes[i] = 1
		}
		_, d, err := s.runInstance(sizes...)
		if err != nil {
			return err
		}
		disks = append(disks, d...)
	}
	const workers = 4
	var made, busy atomic.Int64
	var mu sync.Mutex
	var lat []float64
	errc := make(chan error, workers)
	t0 := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []string
			for i := w; i < len(disks); i += workers {
				mine = append(mine, disks[i])
			}
			count := map[string]int{}
			for i, full := 0, 0; made.Load() < int64(cfg.apiSnapshots) && full < len(mine); i++ {
				d := mine[i%len(mine)]
				if count[d] >= perDisk {
					full++
					continue
				}
				full = 0
				c0 := time.Now()
				_, err := s.c.CreateSnapshot(&ecs4.CreateSnapshotRequest{DiskId: tea.String(d)})
				var te *tea.SDKError
				switch {
				case err == nil:
					made.Add(1)
					count[d]++
					mu.Lock()
					lat = append(lat, time.Since(c0).Seconds())
					mu.Unlock()
				case errors.As(err, &te) && strings.Contains(tea.StringValue(te.Code), "CreatingSnapshot"):
					busy.Add(1) // the disk's previous snapshot is still uploading
				default:
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(t0)
	select {
	case err := <-errc:
		return fmt.Errorf("CreateSnapshot: %w", err)
	default:
	}
	res.add("api/create/rate", float64(made.Load())/elapsed.Seconds())
	res.add("api/create/p50", percentile(lat, 50))
	res.add("api/create/p99", percentile(lat, 99))
	res.note("api/create", fmt.Sprintf("%d snapshots on %d disks by %d workers in %.1f s; %d calls answered DiskCreatingSnapshot (previous snapshot of the disk still uploading)",
		made.Load(), len(disks), workers, elapsed.Seconds(), busy.Load()))
	return describe(s, res, disks[0])
}

// describe times DescribeSnapshots over the snapshots made by runAPI.
func describe(s *server, res *results, disk string) error {
	call := func(name string, req *ecs4.DescribeSnapshotsRequest) (*ecs4.DescribeSnapshotsResponse, error) {
		req.RegionId = tea.String(region)
		t0 := time.Now()
		r, err := s.c.DescribeSnapshots(req)
		if err != nil {
			return nil, fmt.Errorf("DescribeSnapshots %s: %w", name, err)
		}
		res.add("api/describe-"+name+"/latency", time.Since(t0).Seconds())
		return r, nil
	}
	var last string
	for i := 0; i < 30; i++ {
		r, err := call("page100", &ecs4.DescribeSnapshotsRequest{PageSize: tea.Int32(100)})
		if err != nil {
			return err
		}
		last = tea.StringValue(r.Body.Snapshots.Snapshot[0].SnapshotId)
		if i == 0 {
			res.add("api/describe/total", float64(tea.Int32Value(r.Body.TotalCount)))
		}
		if _, err := call("disk", &ecs4.DescribeSnapshotsRequest{DiskId: tea.String(disk), PageSize: tea.Int32(100)}); err != nil {
			return err
		}
		if _, err := call("id", &ecs4.DescribeSnapshotsRequest{SnapshotIds: tea.String(`["` + last + `"]`)}); err != nil {
			return err
		}
	}
	// Every snapshot, page by page with NextToken.
	for i := 0; i < 3; i++ {
		t0, n, pages := time.Now(), 0, 0
		req := &ecs4.DescribeSnapshotsRequest{RegionId: tea.String(region), MaxResults: tea.Int32(100)}
		for {
			r, err := s.c.DescribeSnapshots(req)
			if err != nil {
				return fmt.Errorf("DescribeSnapshots walk: %w", err)
			}
			n += len(r.Body.Snapshots.Snapshot)
			pages++
			if tea.StringValue(r.Body.NextToken) == "" {
				break
			}
			req.NextToken = r.Body.NextToken
		}
		res.add("api/describe-all/seconds", time.Since(t0).Seconds())
		res.add("api/describe-all/pages", float64(pages))
		res.add("api/describe-all/snapshots", float64(n))
	}
	return nil
}
