package main

import (
	"fmt"
	"math"
	"os"
	"syscall"
)

var nan = math.NaN()

// target is one speed or size goal of the data plane (issue 3, measured
// as issue 6 asks) and how it fared.
type target struct {
	goal, measured string
	met            bool
	known          bool // false when the run did not measure it
}

func verdict(t target) string {
	switch {
	case !t.known:
		return "not measured"
	case t.met:
		return "**met**"
	}
	return "**missed**"
}

// targetsTable checks the targets of issues 3 and 6 (ratios from this run).
func targetsTable(cfg *config, res *results, w func(string, ...any)) {
	var ts []target
	speed := func(step string, want float64) {
		r := med(res, "restic/"+step+"/wall") / med(res, "snapstack/"+step+"/wall")
		ts = append(ts, target{goal: fmt.Sprintf("%s ≥ %gx restic", stepNames[step], want),
			measured: fmt.Sprintf("%.2fx (restic %s s, snapstack %s s)", r, num(med(res, "restic/"+step+"/wall")), num(med(res, "snapstack/"+step+"/wall"))),
			met:      r >= want, known: !math.IsNaN(r)})
	}
	speed("full", 4)
	speed("incr", 30)

	// Proportional: the incremental's time per changed chunk is at most
	// twice the full snapshot's time per data chunk.
	_, touched := dayStats(cfg)
	data := dataChunks(cfg.img("base.img"))
	fi, ff := med(res, "snapstack/incr/wall"), med(res, "snapstack/full/wall")
	share, work := fi/ff, float64(touched)/float64(data)
	ts = append(ts, target{goal: "1% incremental proportional to the change",
		measured: fmt.Sprintf("%.1f%% of the full time for %d of %d data chunks (%.1f%%); stored +%s MB for %d changed chunks",
			100*share, touched, data, 100*work, num(med(res, "snapstack/incr/stored")/1e6), touched),
		met: share <= 2*work, known: !math.IsNaN(share)})
	speed("restore", 2.5)
	// The same target, snapstack's restore counted until it is durable in
	// the volume (what a restored disk needs), not copied to a file.
	r := med(res, "restic/restore/wall") / med(res, "snapstack/hydrate/wall")
	ts = append(ts, target{goal: "restore (durable) ≥ 2.5x restic, snapstack until hydrated",
		measured: fmt.Sprintf("%.2fx (restic restore + fsync %s s, snapstack CreateDisk until hydrated %s s)", r, num(med(res, "restic/restore/wall")), num(med(res, "snapstack/hydrate/wall"))),
		met:      r >= 2.5, known: !math.IsNaN(r)})

	var ss, rs float64
	for _, st := range []string{"full", "incr", "vm2"} {
		ss += med(res, "snapstack/"+st+"/stored")
		rs += med(res, "restic/"+st+"/stored")
	}
	ts = append(ts, target{goal: "stored bytes ≤ restic (full + incremental + vm2)",
		measured: fmt.Sprintf("snapstack %s MB, restic %s MB (%.2fx)", num(ss/1e6), num(rs/1e6), ss/rs), met: ss <= rs, known: !math.IsNaN(ss / rs)})

	for _, d := range []struct{ name, label string }{{"image", "image-size disk"}, {"1tib", "1 TiB disk"}} {
		s, ok := res.get("latency/" + d.name + "/call")
		ts = append(ts, target{goal: "CreateSnapshot < 5 ms, " + d.label,
			measured: fmt.Sprintf("median %s ms (p90 %s ms)", num(s.Med*1e3), num(percentile(res.Samples["latency/"+d.name+"/call"], 90)*1e3)),
			met:      ok && s.Med < 0.005, known: ok})
	}
	worst, job := math.Inf(1), ""
	for _, j := range fioJobs {
		r := med(res, "fio/snapstack/"+j.name+"/MBps") / med(res, "fio/nbdkit/"+j.name+"/MBps")
		if r < worst || math.IsNaN(r) {
			worst, job = r, j.name
		}
	}
	ts = append(ts, target{goal: "NBD ≥ 0.9x nbdkit (every fio job)", measured: fmt.Sprintf("worst %.2fx (%s)", worst, job),
		met: worst >= 0.9, known: !math.IsNaN(worst) && !math.IsInf(worst, 1)})

	w("#### Targets of issues 3 and 6 (ratios from this run)")
	w("")
	w("| target | measured | verdict |")
	w("|---|---|---|")
	for _, t := range ts {
		if !t.known {
			t.measured = "—" // the phase did not run
		}
		w("| %s | %s | %s |", t.goal, t.measured, verdict(t))
	}
	w("")
}

// dataChunks counts the 1 MiB chunks of a file that hold a data extent
// (SEEK_DATA), the chunks a full snapshot must read.
func dataChunks(path string) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	fd := int(f.Fd())
	seen := map[int64]bool{}
	for off := int64(0); ; {
		d, err := syscall.Seek(fd, off, 3)
		if err != nil {
			break
		}
		h, err := syscall.Seek(fd, d, 4)
		if err != nil {
			break
		}
		for k := d >> 20; k <= (h-1)>>20; k++ {
			seen[k] = true
		}
		off = h
	}
	return len(seen)
}
