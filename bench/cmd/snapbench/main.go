// Command snapbench measures snapstack beside the tools a user would pick
// instead, on the workload of ../shared/bench (a seeded mixed disk image,
// a 1% day of changes, a 95%-identical second VM), in one run:
//
//   - full snapshot, 1% incremental, restore to a file (durable), second-VM
//     dedup and stored bytes, for snapstack through its real path (the
//     binary, the official tea SDK, disks written and read over NBD) and
//     for restic and borg, alternating the tools from run to run;
//   - the CreateSnapshot round trip at the image's size and at 1 TiB;
//   - NBD throughput with fio against nbdkit's file plugin;
//   - API throughput (CreateSnapshot calls per second, DescribeSnapshots
//     over 10,000 snapshots) with signature checks on;
//   - the Go micro-benchmarks of the hot paths (go test -bench).
//
// The medians (min–max) go into a generated section of docs/benchmarks.md.
// bench/run.sh prepares the images and runs it; see docs/benchmarks.md.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

type config struct {
	repo, bin, images, work, doc, jsonOut, cpuprofile string
	inproc, fioCold                                   bool
	runs, latencyN, apiSnapshots, fioRounds           int
	fioSeconds                                        int
	tools, phases                                     []string

	imgSize int64
	diskGiB int
	dayLog  []extent
	command string
}

func (c *config) img(name string) string { return filepath.Join(c.images, name) }

func main() {
	cfg := &config{}
	flag.StringVar(&cfg.repo, "repo", ".", "snapstack module root")
	flag.StringVar(&cfg.bin, "bin", "", "snapstack binary (default: go build ./cmd/snapstack into -work)")
	flag.StringVar(&cfg.images, "images", "/tmp/bench/img", "directory with base.img, day1.img, day1.log, vm2.img (diskgen)")
	flag.StringVar(&cfg.work, "work", "/tmp/bench/run", "scratch directory (repos, data directories, restores)")
	flag.StringVar(&cfg.doc, "doc", "docs/benchmarks.md", "report to update (the generated section), \"\" for none")
	flag.StringVar(&cfg.jsonOut, "json", "", "also write the raw samples here (default: -work/results.json)")
	flag.StringVar(&cfg.cpuprofile, "cpuprofile", "", "write a CPU profile of this process (with -inproc it includes the service)")
	flag.StringVar(&prof.what, "profile", "all", "what -cpuprofile covers: all, a snapstack step (full, incr, restore, hydrate, reset-read, vm2) a phase (latency, api) or a fio job of snapstack (fio-seq-write-1M, fio-rand-read-4K ...)")
	flag.BoolVar(&cfg.inproc, "inproc", false, "run the service inside this process instead of the binary (for -cpuprofile)")
	flag.IntVar(&cfg.runs, "runs", 3, "runs of each tool on the workload")
	flag.IntVar(&cfg.latencyN, "latency-n", 15, "CreateSnapshot round trips per disk size")
	flag.IntVar(&cfg.apiSnapshots, "api-snapshots", 10000, "snapshots to create for the API throughput")
	flag.IntVar(&cfg.fioRounds, "fio-rounds", 3, "rounds of the fio jobs per server")
	flag.IntVar(&cfg.fioSeconds, "fio-seconds", 8, "seconds per fio job")
	flag.BoolVar(&cfg.fioCold, "fio-cold", false, "evict the served files from the page cache before each fio job")
	tools := flag.String("tools", "snapstack,restic,borg-lz4,borg-zstd3", "tools of the workload phase")
	phases := flag.String("phases", "workload,latency,api,fio,micro", "phases to run")
	render := flag.String("render", "", "only re-render the report from this results JSON")
	merge := flag.String("merge", "", "start from this results JSON (re-run some -phases into an earlier run)")
	flag.Parse()
	cfg.tools, cfg.phases = strings.Split(*tools, ","), strings.Split(*phases, ",")
	cfg.command = "snapbench " + strings.Join(os.Args[1:], " ")
	if c := os.Getenv("SNAPBENCH_COMMAND"); c != "" {
		cfg.command = strings.TrimSpace(c) // set by bench/run.sh
	}
	if err := run(cfg, *render, *merge); err != nil {
		fmt.Fprintln(os.Stderr, "snapbench:", err)
		os.Exit(1)
	}
}

func run(cfg *config, render, merge string) error {
	if err := setup(cfg); err != nil {
		return err
	}
	if render != "" {
		res, err := loadResults(render)
		if err != nil {
			return err
		}
		return writeReport(cfg, res)
	}
	res := newResults()
	if merge != "" {
		var err error
		if res, err = loadResults(merge); err != nil {
			return err
		}
	}
	if res.Notes["command"] == "" {
		res.note("command", cfg.command)
		res.note("date", time.Now().UTC().Format("2006-01-02 15:04 MST"))
		res.note("machine", strings.Join(machine(), "\n"))
	}
	prof.file = cfg.cpuprofile
	if prof.start("all") {
		defer prof.stop()
	}
	if cfg.jsonOut == "" {
		cfg.jsonOut = filepath.Join(cfg.work, "results.json")
	}
	phase := func(name string, fn func() error) error {
		if !slices.Contains(cfg.phases, name) {
			return nil
		}
		t0 := time.Now()
		logf("phase %s", name)
		err := fn()
		logf("phase %s done in %.0f s (err: %v)", name, time.Since(t0).Seconds(), err)
		res.save(cfg.jsonOut)
		return err
	}
	steps := []struct {
		name string
		fn   func() error
	}{
		{"workload", func() error { return runWorkload(cfg, res) }},
		{"latency", func() error { return profiled("latency", func() error { return runLatency(cfg, res) }) }},
		{"api", func() error { return profiled("api", func() error { return runAPI(cfg, res) }) }},
		{"fio", func() error { return runFio(cfg, res) }},
		{"micro", func() error { return runMicro(cfg, res) }},
	}
	for _, s := range steps {
		if err := phase(s.name, s.fn); err != nil {
			return err
		}
	}
	return writeReport(cfg, res)
}

// setup checks the images and tools, builds the binary and reads the
// day log.
func setup(cfg *config) error {
	var err error
	if cfg.repo, err = filepath.Abs(cfg.repo); err != nil {
		return err
	}
	for _, p := range []*string{&cfg.images, &cfg.work} {
		if *p, err = filepath.Abs(*p); err != nil {
			return err
		}
	}
	if cfg.doc != "" && !filepath.IsAbs(cfg.doc) {
		cfg.doc = filepath.Join(cfg.repo, cfg.doc)
	}
	fi, err := os.Stat(cfg.img("base.img"))
	if err != nil {
		return fmt.Errorf("%v (generate the images with bench/run.sh or diskgen)", err)
	}
	cfg.imgSize = fi.Size()
	cfg.diskGiB = int(max(1, (cfg.imgSize+(1<<30)-1)>>30))
	if cfg.dayLog, err = readDayLog(cfg.img("day1.log")); err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.work, 0o755); err != nil {
		return err
	}
	for _, t := range cfg.tools {
		if p, ok := peerByName(t); ok {
			if _, err := exec.LookPath(p.check); err != nil {
				return fmt.Errorf("%s is not installed (apt-get install restic borgbackup)", p.check)
			}
		} else if t != "snapstack" {
			return fmt.Errorf("unknown tool %q", t)
		}
	}
	// In process, run with the Ps that `snapstack serve` gives itself
	// (twice the default), so that profiles show the binary's behaviour.
	if cfg.inproc && os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(2 * runtime.GOMAXPROCS(0))
	}
	if cfg.bin == "" && !cfg.inproc {
		cfg.bin = filepath.Join(cfg.work, "snapstack")
		cmd := exec.Command("go", "build", "-o", cfg.bin, "./cmd/snapstack")
		cmd.Dir = cfg.repo
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build ./cmd/snapstack: %v\n%s", err, out)
		}
	}
	return nil
}

// runWorkload runs every tool cfg.runs times, rotating their order from
// run to run so that drift of the machine hits them all.
func runWorkload(cfg *config, res *results) error {
	for k := 1; k <= cfg.runs; k++ {
		n := len(cfg.tools)
		for i := 0; i < n; i++ {
			t := cfg.tools[(i+k-1)%n]
			t0 := time.Now()
			var err error
			if p, ok := peerByName(t); ok {
				err = runPeer(cfg, res, p, k)
			} else {
				err = runSnapstack(cfg, res, k)
			}
			if err != nil {
				return err
			}
			logf("run %d %s: %.0f s", k, t, time.Since(t0).Seconds())
			res.save(cfg.jsonOut)
		}
	}
	return nil
}

// runMicro runs the Go micro-benchmarks of the hot paths and keeps their
// output for the report.
func runMicro(cfg *config, res *results) error {
	cmd := exec.Command("go", "test", "-run", "^$", "-bench", ".", "-benchtime", "1s", "-count", "1",
		"./internal/chunk", "./internal/manifest", "./internal/volume", "./internal/nbd", "./internal/signature")
	cmd.Dir = cfg.repo
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go test -bench: %v\n%s", err, out)
	}
	res.note("micro", string(out))
	return nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}
