package bidder

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// latencyBuckets are the upper bounds (seconds) of bidder_request_duration_seconds.
var latencyBuckets = []float64{
	0.0005, 0.001, 0.002, 0.005, 0.01, 0.015, 0.025, 0.04, 0.06, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5,
}

// pauseBuckets are the bounds runtime histograms are folded into.
var pauseBuckets = []float64{
	1e-6, 1e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 1,
}

var statusCodes = []int{200, 204, 400, 405, 413, 500, 503}

// Metrics holds the bidder's own counters; runtime and process figures are
// read when /metrics is scraped.
type Metrics struct {
	latency    []atomic.Int64 // per latencyBuckets, plus +Inf
	latencySum atomic.Int64   // nanoseconds
	latencyN   atomic.Int64
	codes      []atomic.Int64 // per statusCodes, plus other
	nobid      map[string]*atomic.Int64
	bids       atomic.Int64
	panics     atomic.Int64
}

func newMetrics() *Metrics {
	m := &Metrics{
		latency: make([]atomic.Int64, len(latencyBuckets)+1),
		codes:   make([]atomic.Int64, len(statusCodes)+1),
		nobid:   map[string]*atomic.Int64{},
	}
	for _, r := range []string{NoBidNoMatch, NoBidPaced, NoBidDeadline, NoBidInternal} {
		m.nobid[r] = new(atomic.Int64)
	}
	return m
}

func (m *Metrics) observe(code int, d time.Duration) {
	s := d.Seconds()
	i := 0
	for i < len(latencyBuckets) && s > latencyBuckets[i] {
		i++
	}
	m.latency[i].Add(1)
	m.latencySum.Add(int64(d))
	m.latencyN.Add(1)
	j := 0
	for j < len(statusCodes) && statusCodes[j] != code {
		j++
	}
	m.codes[j].Add(1)
}

// runtimeSamples are the runtime/metrics the bidder exports.
var runtimeSamples = []string{
	"/sched/pauses/total/gc:seconds",
	"/sync/mutex/wait/total:seconds",
	"/gc/cycles/total:gc-cycles",
	"/gc/heap/live:bytes",
	"/gc/gogc:percent",
	"/gc/gomemlimit:bytes",
	"/cpu/classes/gc/mark/assist:cpu-seconds",
	"/cpu/classes/gc/total:cpu-seconds",
	"/sched/latencies:seconds",
	"/memory/classes/total:bytes",
}

// ProcessStats are the process figures /metrics reports.
type ProcessStats struct {
	MajorFaults, MinorFaults int64
	CPUSeconds               float64 // user + system
	LockedBytes              int64   // VmLck
	RSSBytes                 int64   // VmRSS
}

// ReadProcessStats reads fault counts (getrusage) and VmLck/VmRSS
// (/proc/self/status).
func ReadProcessStats() ProcessStats {
	var ps ProcessStats
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		ps.MajorFaults, ps.MinorFaults = ru.Majflt, ru.Minflt
		ps.CPUSeconds = float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
	}
	ps.LockedBytes, ps.RSSBytes = statusKB("VmLck")*1024, statusKB("VmRSS")*1024
	return ps
}

// LockedBytes returns the process's VmLck in bytes (0 if unknown).
func LockedBytes() int64 { return statusKB("VmLck") * 1024 }

func statusKB(field string) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != field {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		if err != nil {
			return 0
		}
		return n
	}
	return 0
}

// WriteMetrics writes the Prometheus text exposition of the bidder.
func (b *Bidder) WriteMetrics(w io.Writer) error {
	bw := bufio.NewWriter(w)
	m := b.metrics

	fmt.Fprintln(bw, "# HELP bidder_request_duration_seconds Server-side latency of POST /openrtb2/bid.")
	fmt.Fprintln(bw, "# TYPE bidder_request_duration_seconds histogram")
	var cum int64
	for i, le := range latencyBuckets {
		cum += m.latency[i].Load()
		fmt.Fprintf(bw, "bidder_request_duration_seconds_bucket{le=\"%g\"} %d\n", le, cum)
	}
	cum += m.latency[len(latencyBuckets)].Load()
	fmt.Fprintf(bw, "bidder_request_duration_seconds_bucket{le=\"+Inf\"} %d\n", cum)
	fmt.Fprintf(bw, "bidder_request_duration_seconds_sum %g\n", time.Duration(m.latencySum.Load()).Seconds())
	fmt.Fprintf(bw, "bidder_request_duration_seconds_count %d\n", m.latencyN.Load())

	fmt.Fprintln(bw, "# HELP bidder_requests_total Bid requests by HTTP status.")
	fmt.Fprintln(bw, "# TYPE bidder_requests_total counter")
	for i, c := range statusCodes {
		fmt.Fprintf(bw, "bidder_requests_total{code=\"%d\"} %d\n", c, m.codes[i].Load())
	}
	fmt.Fprintf(bw, "bidder_requests_total{code=\"other\"} %d\n", m.codes[len(statusCodes)].Load())
	fmt.Fprintln(bw, "# TYPE bidder_bids_total counter")
	fmt.Fprintf(bw, "bidder_bids_total %d\n", m.bids.Load())
	fmt.Fprintln(bw, "# TYPE bidder_nobids_total counter")
	for _, r := range []string{NoBidNoMatch, NoBidPaced, NoBidDeadline, NoBidInternal} {
		fmt.Fprintf(bw, "bidder_nobids_total{reason=%q} %d\n", r, m.nobid[r].Load())
	}
	fmt.Fprintln(bw, "# TYPE bidder_panics_total counter")
	fmt.Fprintf(bw, "bidder_panics_total %d\n", m.panics.Load())

	samples := make([]metrics.Sample, len(runtimeSamples))
	for i, n := range runtimeSamples {
		samples[i].Name = n
	}
	metrics.Read(samples)
	for _, s := range samples {
		name := promName(s.Name)
		switch s.Value.Kind() {
		case metrics.KindFloat64Histogram:
			writeRuntimeHistogram(bw, name, s.Name, s.Value.Float64Histogram())
		case metrics.KindUint64:
			kind := "gauge"
			if strings.Contains(s.Name, "/total:") || strings.HasSuffix(s.Name, "/total:gc-cycles") {
				kind = "counter"
			}
			fmt.Fprintf(bw, "# HELP %s runtime/metrics %s\n# TYPE %s %s\n%s %d\n", name, s.Name, name, kind, name, s.Value.Uint64())
		case metrics.KindFloat64:
			fmt.Fprintf(bw, "# HELP %s runtime/metrics %s\n# TYPE %s counter\n%s %g\n", name, s.Name, name, name, s.Value.Float64())
		}
	}

	ps := ReadProcessStats()
	fmt.Fprintln(bw, "# HELP process_major_faults_total Major page faults of the process (getrusage ru_majflt).")
	fmt.Fprintln(bw, "# TYPE process_major_faults_total counter")
	fmt.Fprintf(bw, "process_major_faults_total %d\n", ps.MajorFaults)
	fmt.Fprintln(bw, "# TYPE process_cpu_seconds_total counter")
	fmt.Fprintf(bw, "process_cpu_seconds_total %g\n", ps.CPUSeconds)
	fmt.Fprintln(bw, "# TYPE process_minor_faults_total counter")
	fmt.Fprintf(bw, "process_minor_faults_total %d\n", ps.MinorFaults)
	fmt.Fprintln(bw, "# HELP process_locked_bytes Locked memory of the process (VmLck in /proc/self/status).")
	fmt.Fprintln(bw, "# TYPE process_locked_bytes gauge")
	fmt.Fprintf(bw, "process_locked_bytes %d\n", ps.LockedBytes)
	fmt.Fprintln(bw, "# TYPE process_resident_memory_bytes gauge")
	fmt.Fprintf(bw, "process_resident_memory_bytes %d\n", ps.RSSBytes)

	n, total := b.ledger.ReconcileStats()
	fmt.Fprintln(bw, "# HELP bidder_ledger_reconciles_total Pacing ledger reconciliations.")
	fmt.Fprintln(bw, "# TYPE bidder_ledger_reconciles_total counter")
	fmt.Fprintf(bw, "bidder_ledger_reconciles_total %d\n", n)
	fmt.Fprintln(bw, "# TYPE bidder_ledger_reconcile_seconds_total counter")
	fmt.Fprintf(bw, "bidder_ledger_reconcile_seconds_total %g\n", total.Seconds())

	fmt.Fprintln(bw, "# TYPE bidder_index_bytes gauge")
	fmt.Fprintf(bw, "bidder_index_bytes %d\n", len(b.index.Bytes()))
	fmt.Fprintln(bw, "# TYPE bidder_index_locked gauge")
	fmt.Fprintf(bw, "bidder_index_locked %d\n", boolInt(b.index.Locked()))
	fmt.Fprintln(bw, "# TYPE bidder_users gauge")
	fmt.Fprintf(bw, "bidder_users %d\n", b.store.Len())
	fmt.Fprintln(bw, "# TYPE bidder_startup_seconds gauge")
	fmt.Fprintf(bw, "bidder_startup_seconds %g\n", b.startup.Seconds())
	fmt.Fprintln(bw, "# TYPE bidder_gomaxprocs gauge")
	fmt.Fprintf(bw, "bidder_gomaxprocs %d\n", runtime.GOMAXPROCS(0))
	fmt.Fprintln(bw, "# HELP bidder_fix_enabled Whether each fix is switched on.")
	fmt.Fprintln(bw, "# TYPE bidder_fix_enabled gauge")
	for _, f := range AllFixes {
		fmt.Fprintf(bw, "bidder_fix_enabled{fix=%q} %d\n", f, boolInt(b.cfg.Fixes.Enabled(f)))
	}
	return bw.Flush()
}

func boolInt(v bool) int {
	if v {
		return 1
	}
	return 0
}

// promName turns "/sync/mutex/wait/total:seconds" into
// "go_sync_mutex_wait_total_seconds".
func promName(runtimeName string) string {
	path, unit, _ := strings.Cut(strings.TrimPrefix(runtimeName, "/"), ":")
	r := strings.NewReplacer("/", "_", "-", "_")
	name := "go_" + r.Replace(path)
	switch unit {
	case "seconds", "bytes":
		name += "_" + unit
	case "cpu-seconds":
		name += "_cpu_seconds"
	case "percent":
		name += "_percent"
	}
	return name
}

// writeRuntimeHistogram folds a runtime histogram into pauseBuckets; a
// runtime bucket counts under the first bound at or above its upper edge.
func writeRuntimeHistogram(w io.Writer, name, src string, h *metrics.Float64Histogram) {
	fmt.Fprintf(w, "# HELP %s runtime/metrics %s\n# TYPE %s histogram\n", name, src, name)
	counts := make([]uint64, len(pauseBuckets)+1)
	var sum float64
	var total uint64
	for i, c := range h.Counts {
		if c == 0 {
			continue
		}
		hi := h.Buckets[i+1]
		lo := h.Buckets[i]
		mid := hi
		if math.IsInf(hi, 1) {
			mid = lo
		}
		if !math.IsInf(lo, -1) && !math.IsInf(hi, 1) {
			mid = (lo + hi) / 2
		}
		sum += mid * float64(c)
		total += c
		j := 0
		for j < len(pauseBuckets) && hi > pauseBuckets[j] {
			j++
		}
		counts[j] += c
	}
	var cum uint64
	for j, le := range pauseBuckets {
		cum += counts[j]
		fmt.Fprintf(w, "%s_bucket{le=\"%g\"} %d\n", name, le, cum)
	}
	fmt.Fprintf(w, "%s_bucket{le=\"+Inf\"} %d\n%s_sum %g\n%s_count %d\n", name, total, name, sum, name, total)
}
