package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// row is the summary of one library, configuration and client count over
// every round: one line of the table and one JSON line.
type row struct {
	Lib     string `json:"lib"`
	Version string `json:"version"`
	Config  string `json:"config"`
	Clients int    `json:"clients"`
	Nodes   int    `json:"nodes"`
	Size    int    `json:"size"`
	Rounds  int    `json:"rounds"`
	// Settings are the library's settings that have a flag.
	Settings string `json:"settings,omitempty"`
	// Medians over the rounds.
	OpsPerSec float64 `json:"ops_per_s"`
	P50us     float64 `json:"p50_us"`
	P99us     float64 `json:"p99_us"`
	// Per round, in round order.
	RoundOpsPerSec []float64 `json:"round_ops_per_s"`
	RoundP50us     []uint64  `json:"round_p50_us"`
	RoundP99us     []uint64  `json:"round_p99_us"`
	// raftkit's median divided by this library's median, for the same
	// configuration and client count; absent when raftkit was not
	// measured. Throughput above 1 and latency below 1 favour raftkit.
	RatioOps *float64 `json:"ratio_ops,omitempty"`
	RatioP50 *float64 `json:"ratio_p50,omitempty"`
	RatioP99 *float64 `json:"ratio_p99,omitempty"`
	// The run's settings and machine.
	DurationS  float64 `json:"duration_s"`
	WarmupS    float64 `json:"warmup_s"`
	Date       string  `json:"date"`
	Go         string  `json:"go"`
	CPUs       int     `json:"cpus"`
	GOMAXPROCS int     `json:"gomaxprocs"`
}

type report struct {
	started time.Time
	args    string
	cpu     string
	rows    []row
}

func (r *runner) report(started time.Time, args string) *report {
	rep := &report{started: started, args: args, cpu: cpuModel()}
	versions := moduleVersions()
	for _, cfg := range r.configs {
		for _, n := range r.clients {
			base, haveBase := r.results[key{"raftkit", cfg, n}]
			for _, lib := range r.libs {
				res, ok := r.results[key{lib.name, cfg, n}]
				if !ok {
					continue
				}
				rw := row{
					Lib: lib.name, Version: versions[lib.module], Config: cfg, Clients: n,
					Nodes: 3, Size: payloadSize, Rounds: len(res),
					DurationS: r.duration.Seconds(), WarmupS: r.warmup.Seconds(),
					Date: started.UTC().Format(time.RFC3339), Go: runtime.Version(),
					CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0),
				}
				switch {
				case lib.name == "etcd":
					rw.Settings = fmt.Sprint("tick=", etcdTick)
				case lib.name == "hashicorp" && cfg == "durable":
					rw.Settings = fmt.Sprint("log_cache=", hcLogCache)
				}
				var p50s, p99s []float64
				for _, x := range res {
					rw.RoundOpsPerSec = append(rw.RoundOpsPerSec, round1(x.opsPerSec))
					rw.RoundP50us = append(rw.RoundP50us, x.p50)
					rw.RoundP99us = append(rw.RoundP99us, x.p99)
					p50s = append(p50s, float64(x.p50))
					p99s = append(p99s, float64(x.p99))
				}
				rw.OpsPerSec = round1(median(rw.RoundOpsPerSec))
				rw.P50us, rw.P99us = median(p50s), median(p99s)
				if haveBase {
					var bOps, b50, b99 []float64
					for _, x := range base {
						bOps = append(bOps, x.opsPerSec)
						b50 = append(b50, float64(x.p50))
						b99 = append(b99, float64(x.p99))
					}
					rw.RatioOps = ratio(median(bOps), rw.OpsPerSec)
					rw.RatioP50 = ratio(median(b50), rw.P50us)
					rw.RatioP99 = ratio(median(b99), rw.P99us)
				}
				rep.rows = append(rep.rows, rw)
			}
		}
	}
	return rep
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ratio(a, b float64) *float64 {
	if b == 0 {
		return nil
	}
	r := float64(int64(a/b*1000+0.5)) / 1000
	return &r
}

func round1(v float64) float64 { return float64(int64(v*10+0.5)) / 10 }

func (rep *report) printTable(w io.Writer) {
	var first row
	if len(rep.rows) > 0 {
		first = rep.rows[0]
	}
	fmt.Fprintf(w, "\n3 nodes in one process, %d-byte writes, each acknowledged once committed and applied on the leader\n", payloadSize)
	fmt.Fprintf(w, "date %s, %s %s/%s, %d CPUs (%s), GOMAXPROCS %d\n",
		rep.started.UTC().Format(time.RFC3339), runtime.Version(), runtime.GOOS, runtime.GOARCH,
		runtime.NumCPU(), rep.cpu, runtime.GOMAXPROCS(0))
	fmt.Fprintf(w, "command: go run . %s\n", rep.args)
	fmt.Fprintf(w, "settings: -etcd-tick %v -hashicorp-log-cache %d\n", etcdTick, hcLogCache)
	fmt.Fprintf(w, "medians of %d round(s) of %gs (after %gs warm-up); ratio = raftkit / library (ops: >1 raftkit faster; p50, p99: <1 raftkit lower)\n\n",
		first.Rounds, first.DurationS, first.WarmupS)
	var buf strings.Builder
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "config\tclients\tlibrary\tversion\tops/s\tp50 µs\tp99 µs\tratio ops\tratio p50\tratio p99\tops/s per round\t")
	prev := ""
	for _, r := range rep.rows {
		group := fmt.Sprint(r.Config, r.Clients)
		if prev != "" && group != prev {
			fmt.Fprintln(tw, "\t\t\t\t\t\t\t\t\t\t\t")
		}
		prev = group
		var rounds []string
		for _, o := range r.RoundOpsPerSec {
			rounds = append(rounds, fmt.Sprintf("%.0f", o))
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n",
			r.Config, r.Clients, r.Lib, r.Version, thousands(r.OpsPerSec), num(r.P50us), num(r.P99us),
			fmtRatio(r.RatioOps, "×"), fmtRatio(r.RatioP50, ""), fmtRatio(r.RatioP99, ""), strings.Join(rounds, " "))
	}
	_ = tw.Flush()
	for _, line := range strings.Split(strings.TrimRight(buf.String(), "\n"), "\n") {
		fmt.Fprintln(w, strings.TrimRight(line, " "))
	}
	rep.printTargets(w)
}

// printTargets checks the figures against issue 14's targets.
func (rep *report) printTargets(w io.Writer) {
	type target struct {
		config  string
		clients int
		what    string
		ok      func(r row) (float64, bool)
		goal    string
	}
	ops := func(r row) (float64, bool) { return val(r.RatioOps), val(r.RatioOps) >= 5 }
	p50 := func(r row) (float64, bool) { return val(r.RatioP50), val(r.RatioP50) <= 1 }
	p99 := func(r row) (float64, bool) { return val(r.RatioP99), val(r.RatioP99) <= 1 }
	targets := []target{
		{"memory", 256, "throughput", ops, "≥ 5×"},
		{"durable", 256, "throughput", ops, "≥ 5×"},
		{"memory", 1, "p50", p50, "≤ 1"},
		{"durable", 1, "p50", p50, "≤ 1"},
		{"memory", 256, "p99", p99, "≤ 1"},
		{"durable", 256, "p99", p99, "≤ 1"},
	}
	var lines []string
	for _, t := range targets {
		for _, r := range rep.rows {
			if r.Lib == "raftkit" || r.Config != t.config || r.Clients != t.clients || r.RatioOps == nil {
				continue
			}
			v, ok := t.ok(r)
			verdict := "met"
			if !ok {
				verdict = "NOT met"
			}
			lines = append(lines, fmt.Sprintf("  %s clients=%d %s raftkit/%s = %.2f (target %s): %s",
				t.config, t.clients, t.what, r.Lib, v, t.goal, verdict))
		}
	}
	if len(lines) > 0 {
		fmt.Fprintln(w, "\ntargets (issue 14):")
		for _, l := range lines {
			fmt.Fprintln(w, l)
		}
	}
	fmt.Fprintln(w)
}

func val(p *float64) float64 {
	if p == nil {
		return 0
	}
	return *p
}

func fmtRatio(p *float64, suffix string) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf("%.2f%s", *p, suffix)
}

func num(v float64) string {
	if v == float64(int64(v)) {
		return fmt.Sprint(int64(v))
	}
	return fmt.Sprintf("%.1f", v)
}

// thousands formats v rounded to an integer with comma separators.
func thousands(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func (rep *report) printJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	for _, r := range rep.rows {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return nil
}

// moduleVersions returns the version of every module in the binary; a
// module replaced by a local directory is "local".
func moduleVersions() map[string]string {
	out := map[string]string{}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return out
	}
	for _, d := range bi.Deps {
		v := d.Version
		if d.Replace != nil {
			v = d.Replace.Version
			if p := d.Replace.Path; strings.HasPrefix(p, ".") || strings.HasPrefix(p, "/") {
				v = "local" // a directory: this checkout
			}
		}
		out[d.Path] = v
	}
	return out
}

// cpuModel returns the CPU's model name (Linux), or "unknown CPU".
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
