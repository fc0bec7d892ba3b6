// Command calib is the bidder's calibration harness (bidder/README.md): it
// starts `bidder serve` with a set of fixes, the neighbours (`bidder chaos
// cpu`, `bidder chaos pageout`), drives the bidder open-loop at a constant
// rate with bidder/reqgen requests through vegeta's library, and prints one
// markdown row: coordinated-omission-corrected p50/p99/p99.9 (latency from
// each request's intended send time) and the contributors' counters scraped
// from /metrics before and after the measured window.
//
//	go build -o /tmp/bidder ./cmd/bidder
//	go run ./bidder/calib --bin /tmp/bidder --index /var/tmp/bidder.idx --fixes gc,locks
//
// It is a development tool: tailgate's own load generator (internal/load)
// is the production path.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/tailgate-ci/tailgate/bidder/reqgen"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "calib:", err)
		os.Exit(1)
	}
}

type options struct {
	bin, index, addr, fixes, logDir string
	users, cpuThreads               int
	rate                            int
	duration, warmup, pageoutEvery  time.Duration
	neighbours                      string
	seed                            int64
	serveArgs, launchArgs           string
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("calib", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.bin, "bin", "", "bidder binary (go build -o /tmp/bidder ./cmd/bidder)")
	fs.StringVar(&o.index, "index", "", "index file (bidder index build --out PATH --size 1GiB)")
	fs.StringVar(&o.addr, "addr", "127.0.0.1:18181", "bidder listen address")
	fs.StringVar(&o.fixes, "fixes", "none", "fixes for bidder serve (placement runs it under bidder launch)")
	fs.StringVar(&o.logDir, "logs", os.TempDir(), "directory for the bidder and neighbour logs")
	fs.IntVar(&o.users, "users", 2_000_000, "bidder --users and reqgen user population")
	fs.IntVar(&o.rate, "rate", 1500, "requests per second (open loop)")
	fs.DurationVar(&o.duration, "duration", 30*time.Second, "measured window")
	fs.DurationVar(&o.warmup, "warmup", 5*time.Second, "unmeasured warm-up at the same rate")
	fs.StringVar(&o.neighbours, "neighbours", "cpu,pageout", "neighbours to run: cpu, pageout (comma-separated, or none)")
	fs.IntVar(&o.cpuThreads, "cpu-threads", 1, "bidder chaos cpu --threads")
	fs.DurationVar(&o.pageoutEvery, "pageout-every", time.Second, "bidder chaos pageout --every")
	fs.Int64Var(&o.seed, "seed", 1, "reqgen seed")
	fs.StringVar(&o.serveArgs, "serve-args", "", "extra bidder serve flags (space-separated)")
	fs.StringVar(&o.launchArgs, "launch-args", "", "extra bidder launch flags for the placement fix (space-separated)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.bin == "" || o.index == "" {
		return fmt.Errorf("--bin and --index are required")
	}

	// The bidder.
	serve := []string{"serve", "--addr", o.addr, "--index", o.index, "--users", strconv.Itoa(o.users), "--fixes", o.fixes}
	serve = append(serve, strings.Fields(o.serveArgs)...)
	argv := serve
	if strings.Contains(o.fixes, "placement") || o.fixes == "all" {
		argv = append(append([]string{"launch"}, strings.Fields(o.launchArgs)...), append([]string{"--"}, serve...)...)
	}
	tag := strings.ReplaceAll(o.fixes, ",", "+")
	bidder, err := start(o.bin, argv, fmt.Sprintf("%s/calib-bidder-%s.log", o.logDir, tag))
	if err != nil {
		return err
	}
	defer stopProc(bidder)
	base := "http://" + o.addr
	t0 := time.Now()
	if err := waitHealthy(ctx, base+"/healthz", 5*time.Minute, bidder); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "calib: bidder pid %d healthy after %v\n", bidder.Process.Pid, time.Since(t0).Round(time.Millisecond))

	// The neighbours.
	for _, n := range strings.Split(o.neighbours, ",") {
		var nargv []string
		switch strings.TrimSpace(n) {
		case "", "none":
			continue
		case "cpu":
			nargv = []string{"chaos", "cpu", "--threads", strconv.Itoa(o.cpuThreads)}
		case "pageout":
			nargv = []string{"chaos", "pageout", "--pid", strconv.Itoa(bidder.Process.Pid), "--every", o.pageoutEvery.String()}
		default:
			return fmt.Errorf("unknown neighbour %q", n)
		}
		p, err := start(o.bin, nargv, fmt.Sprintf("%s/calib-%s-%s.log", o.logDir, n, tag))
		if err != nil {
			return err
		}
		defer stopProc(p)
	}

	gen := reqgen.New(o.seed, reqgen.Options{Users: o.users})
	var next atomic.Uint64
	targeter := func(t *vegeta.Target) error {
		t.Method, t.URL = http.MethodPost, base+"/openrtb2/bid"
		t.Header = http.Header{"Content-Type": {"application/json"}}
		t.Body = gen.AppendJSONAt(nil, next.Add(1)-1)
		return nil
	}
	if o.warmup > 0 {
		if _, err := attack(ctx, targeter, o.rate, o.warmup); err != nil {
			return err
		}
	}
	before, err := scrape(base + "/metrics")
	if err != nil {
		return err
	}
	res, err := attack(ctx, targeter, o.rate, o.duration)
	if err != nil {
		return err
	}
	after, err := scrape(base + "/metrics")
	if err != nil {
		return err
	}
	d := func(name string) float64 { return after[name] - before[name] }
	q := func(p float64) string {
		return fmt.Sprintf("%.1f", float64(res.hist.ValueAtQuantile(p))/1000) // ValueAtQuantile takes 0-100
	}
	fmt.Fprintf(stdout, "| %s | %d | %s | %s | %s | %.0f | %.2f | %.2f | %.3f | %.0f | %d/%d | %.0f | %v |\n",
		o.fixes, o.rate, q(50), q(99), q(99.9),
		d("go_gc_cycles_total"), d("go_sched_pauses_total_gc_seconds_sum")*1000,
		d("go_cpu_classes_gc_mark_assist_cpu_seconds"), d("go_sync_mutex_wait_total_seconds"),
		d("process_major_faults_total"), res.ok, res.n, res.achieved, res.maxLag.Round(time.Microsecond))
	fmt.Fprintf(stderr, "calib: codes %v, errors %d, max %.1f ms, VmLck %.0f bytes, bidder CPU %.0f µs/request, reconcile %.1f ms avg\n",
		res.codes, res.errors, float64(res.hist.Max())/1000, after["process_locked_bytes"],
		d("process_cpu_seconds_total")*1e6/float64(max(res.n, 1)),
		d("bidder_ledger_reconcile_seconds_total")*1000/max(d("bidder_ledger_reconciles_total"), 1))
	return nil
}

type result struct {
	hist          *hdr.Histogram
	n, ok, errors int
	codes         map[uint16]int
	achieved      float64
	maxLag        time.Duration
}

// attack runs a constant-rate attack and records each request's latency
// from its intended send time t0 + seq/rate (coordinated omission), in µs.
func attack(ctx context.Context, tr vegeta.Targeter, rate int, dur time.Duration) (*result, error) {
	a := vegeta.NewAttacker(vegeta.Timeout(5*time.Second), vegeta.KeepAlive(true), vegeta.Connections(10_000))
	r := &result{hist: hdr.New(1, 60_000_000, 3), codes: map[uint16]int{}}
	per := time.Second / time.Duration(rate)
	var t0, last time.Time
	results := a.Attack(tr, vegeta.ConstantPacer{Freq: rate, Per: time.Second}, dur, "calib")
	for res := range results {
		if ctx.Err() != nil {
			a.Stop()
		}
		if t0.IsZero() {
			t0 = res.Timestamp.Add(-time.Duration(res.Seq) * per)
		}
		intended := t0.Add(time.Duration(res.Seq) * per)
		lag := res.Timestamp.Sub(intended)
		r.maxLag = max(r.maxLag, lag)
		end := res.Timestamp.Add(res.Latency)
		if end.After(last) {
			last = end
		}
		lat := max(res.Latency, end.Sub(intended))
		r.hist.RecordValue(min(lat.Microseconds(), 60_000_000))
		r.n++
		r.codes[res.Code]++
		if res.Code == 200 || res.Code == 204 {
			r.ok++
		}
		if res.Error != "" {
			r.errors++
		}
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if span := last.Sub(t0).Seconds(); span > 0 {
		r.achieved = float64(r.n) / span
	}
	return r, nil
}

func scrape(url string) (map[string]float64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if v, err := strconv.ParseFloat(val, 64); err == nil {
			m[name] = v
		}
	}
	return m, sc.Err()
}

func start(bin string, args []string, logPath string) (*exec.Cmd, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s %v: %w", bin, args, err)
	}
	go func() { cmd.Wait(); f.Close() }()
	return cmd, nil
}

func stopProc(cmd *exec.Cmd) {
	if cmd.Process == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if cmd.ProcessState != nil || syscall.Kill(cmd.Process.Pid, 0) != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Kill()
}

func waitHealthy(ctx context.Context, url string, timeout time.Duration, p *exec.Cmd) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		if p.ProcessState != nil {
			return fmt.Errorf("bidder exited: %v", p.ProcessState)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("bidder not healthy at %s after %v", url, timeout)
}
