package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
)

// results collects every sample of the run, by name ("snapstack/full/wall",
// "restic/full/rss", "api/describe-page/latency" ...), in the order taken.
type results struct {
	mu      sync.Mutex
	Samples map[string][]float64 `json:"samples"`
	Notes   map[string]string    `json:"notes"`
	Order   []string             `json:"order"`
}

func newResults() *results {
	return &results{Samples: map[string][]float64{}, Notes: map[string]string{}}
}

// add records one sample.
func (r *results) add(name string, v float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.Samples[name]; !ok {
		r.Order = append(r.Order, name)
	}
	r.Samples[name] = append(r.Samples[name], v)
}

// note records a free-form remark shown in the report.
func (r *results) note(name, text string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Notes[name] = text
}

// get returns the summary of a series; ok is false when it is empty.
func (r *results) get(name string) (summary, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.Samples[name]
	if len(s) == 0 {
		return summary{}, false
	}
	return summarize(s), true
}

// save writes the raw samples as JSON.
func (r *results) save(path string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// load reads samples saved by save (to re-render a report).
func loadResults(path string) (*results, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r := newResults()
	return r, json.Unmarshal(b, r)
}

// summary is the median and range of a series.
type summary struct {
	Med, Min, Max float64
	N             int
}

func summarize(s []float64) summary {
	c := slices.Clone(s)
	slices.Sort(c)
	n := len(c)
	med := c[n/2]
	if n%2 == 0 {
		med = (c[n/2-1] + c[n/2]) / 2
	}
	return summary{Med: med, Min: c[0], Max: c[n-1], N: n}
}

// percentile returns the p-th percentile (0..100) of s, nearest rank.
func percentile(s []float64, p float64) float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	c := slices.Clone(s)
	slices.Sort(c)
	i := int(math.Ceil(p/100*float64(len(c)))) - 1
	return c[max(0, min(i, len(c)-1))]
}

// num formats a value with a precision that suits its magnitude.
func num(v float64) string {
	a := math.Abs(v)
	switch {
	case math.IsNaN(v):
		return "—"
	case a == 0:
		return "0"
	case a >= 1000:
		return commas(int64(math.Round(v)))
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	case a >= 0.01:
		return fmt.Sprintf("%.3f", v)
	}
	return fmt.Sprintf("%.4f", v)
}

func commas(n int64) string {
	s := fmt.Sprint(n)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

// medRange renders "median (min–max)", or only the value for one sample.
func (s summary) medRange(scale float64) string {
	if s.N == 1 || s.Min == s.Max {
		return num(s.Med * scale)
	}
	return fmt.Sprintf("%s (%s–%s)", num(s.Med*scale), num(s.Min*scale), num(s.Max*scale))
}

// ratio renders a/b as "4.2x", or a dash.
func ratio(a, b float64) string {
	if b == 0 || math.IsNaN(a) || math.IsNaN(b) {
		return "—"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

// profiler writes CPU profiles of this process: of the whole run
// (-profile all), or of the first occurrence of steps or phases
// (-profile restore, -profile full,incr ...; with several, FILE.<name>
// each). With -inproc the service runs in this process, so the profile
// shows where snapstack spends the step.
type profiler struct {
	mu     sync.Mutex
	file   string
	what   string
	active bool
	done   map[string]bool
}

var prof = &profiler{}

// start begins profiling if name is what was asked for and it has not
// been profiled yet; it reports whether it did.
func (p *profiler) start(name string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	names := strings.Split(p.what, ",")
	if p.file == "" || p.done[name] || p.active || !slices.Contains(names, name) {
		return false
	}
	file := p.file
	if len(names) > 1 {
		file += "." + name
	}
	if p.done == nil {
		p.done = map[string]bool{}
	}
	p.done[name] = true
	f, err := os.Create(file)
	if err != nil {
		logf("cpuprofile: %v", err)
		return false
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		logf("cpuprofile: %v", err)
		f.Close()
		return false
	}
	p.active = true
	logf("cpu profile of %s started (%s)", name, file)
	return true
}

// stop ends the profile started by start.
func (p *profiler) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.active {
		return
	}
	pprof.StopCPUProfile()
	p.active = false
	logf("cpu profile written")
}

// profiled runs fn under the profile if name is the one asked for.
func profiled(name string, fn func() error) error {
	if prof.start(name) {
		defer prof.stop()
	}
	return fn()
}
