// Command loadbench measures tailgate's load generator (internal/load) on
// loopback: the highest open-loop rate it sustains against a trivial
// handler with send lag <= 1 ms, wrk's closed-loop throughput against the
// same handler in the same run, and the heap a round needs beyond its
// histograms. The figures and how to read them are in
// internal/load/BENCHMARKS.md.
//
//	go run ./internal/load/cmd/loadbench [-duration 3s] [-wrk-conns 32] ...
//
//	go run ./internal/load/cmd/loadbench jitter [-duration 20s] [-hog] [-rt=false]
//
// jitter measures the host's wake-up lateness, the floor under any send lag.
//
// The handler runs in a child process (`loadbench serve`), so the load
// generator and wrk hit the same server and neither shares a Go runtime
// with it.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/tailgate-ci/tailgate/internal/experiment"
	"github.com/tailgate-ci/tailgate/internal/latency"
	"github.com/tailgate-ci/tailgate/internal/load"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "loadbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "serve" {
		return serve(ctx, args[1:], stdout)
	}
	if len(args) > 0 && args[0] == "jitter" {
		return jitter(ctx, args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("loadbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		duration   = fs.Duration("duration", 3*time.Second, "measured duration of each probe round")
		warmup     = fs.Duration("warmup", 500*time.Millisecond, "warm-up of each probe round")
		start      = fs.Float64("start", 1000, "first rate probed (req/s)")
		maxRate    = fs.Float64("max", 200000, "highest rate probed (req/s)")
		steps      = fs.Int("steps", 6, "bisection steps after bracketing")
		wrkThreads = fs.Int("wrk-threads", 2, "wrk -t")
		wrkConns   = fs.Int("wrk-conns", 32, "wrk -c")
		wrkDur     = fs.Duration("wrk-duration", 5*time.Second, "wrk -d")
		memRate    = fs.Float64("mem-rate", 2000, "rate of the memory rounds (req/s)")
		memDurs    = fs.String("mem-durations", "3s,9s", "durations of the memory rounds (comma-separated)")
		skipSearch = fs.Bool("skip-search", false, "only measure memory")
		priority   = fs.String("attacker-priority", "none", "raise the load generator's threads once the handler runs, as tailgate gate: rt (SCHED_RR 1), nice (-19) or none; wrk and the handler keep the default")
		cpuProfile = fs.String("cpuprofile", "", "write a CPU profile of the load generator (whole run) to this file")
		traceOut   = fs.String("trace", "", "write a Go execution trace of the load generator (whole run) to this file (go tool trace)")
		procs      = fs.Int("procs", 0, "load.Config.Procs of the probes and memory rounds: the generator's GOMAXPROCS during a round (0: unchanged)")
		headroom   = fs.Int64("gc-headroom", 0, "load.Config.GCHeadroom of the probes: bytes the generator's Go memory may grow in a round before its GC runs (0: the default, 512 MiB; -1: GOGC as set)")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	probeGCHeadroom = *headroom
	probeProcs = *procs
	if fs.NArg() != 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}

	srv, err := startServer(ctx)
	if err != nil {
		return err
	}
	defer srv.stop()
	url := "http://" + srv.addr + "/"
	if *priority != experiment.PriorityNone {
		note, restore, err := experiment.RaiseAttackerPriority(*priority, 0)
		defer restore()
		if err != nil {
			return fmt.Errorf("-attacker-priority %s: %w", *priority, err)
		}
		fmt.Fprintf(stdout, "# %s\n", note)
	}
	if *traceOut != "" {
		tf, err := os.Create(*traceOut)
		if err != nil {
			return err
		}
		defer tf.Close()
		if err := trace.Start(tf); err != nil {
			return err
		}
		defer trace.Stop()
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	fmt.Fprintf(stdout, "# loadbench %s, GOMAXPROCS=%d, NumCPU=%d, handler at %s (pid %d)\n",
		time.Now().UTC().Format(time.RFC3339), runtime.GOMAXPROCS(0), runtime.NumCPU(), url, srv.cmd.Process.Pid)
	fmt.Fprintf(stdout, "# load average at start: %s\n", loadavg())

	if !*skipSearch {
		wrk1, werr := runWrk(ctx, url, *wrkThreads, *wrkConns, *wrkDur)
		if werr != nil {
			fmt.Fprintf(stdout, "# wrk: %v\n", werr)
		} else {
			fmt.Fprintf(stdout, "wrk -t%d -c%d -d%s (before): %.0f req/s\n", *wrkThreads, *wrkConns, *wrkDur, wrk1)
		}

		fmt.Fprintf(stdout, "\n| criterion | rate (req/s) | achieved | max lag | own max lag | p99 lag | p50 lag | errors |\n|---|---|---|---|---|---|---|---|\n")
		strict := func(v load.Validity, errs int64) bool { return v.Valid && errs == 0 }
		relaxed := func(v load.Validity, errs int64) bool {
			return v.AchievedRate >= 0.99*v.TargetRate && v.Omitted == 0 && v.LagP99 <= time.Millisecond && errs == 0
		}
		median := func(v load.Validity, errs int64) bool {
			return v.AchievedRate >= 0.99*v.TargetRate && v.Omitted == 0 && v.LagP50 <= time.Millisecond && errs == 0
		}
		var best [3]float64
		for i, c := range []struct {
			name string
			ok   func(load.Validity, int64) bool
		}{
			{"valid (own max lag <= 1ms, >= 99% rate)", strict},
			{"p99 lag <= 1ms, >= 99% rate", relaxed},
			{"median lag <= 1ms, >= 99% rate (capacity)", median},
		} {
			b, err := search(ctx, url, *start, *maxRate, *steps, *warmup, *duration, c.ok, stdout)
			if err != nil {
				return err
			}
			best[i] = b.rate
			fmt.Fprintf(stdout, "| **%s** | **%.0f** | %.0f | %v | %v | %v | %v | %d |\n", c.name, b.rate, b.v.AchievedRate,
				b.v.MaxLag.Round(time.Microsecond), b.v.OwnMaxLag.Round(time.Microsecond), b.v.LagP99, b.v.LagP50, b.errs)
		}

		wrk2, werr2 := runWrk(ctx, url, *wrkThreads, *wrkConns, *wrkDur)
		if werr2 != nil {
			fmt.Fprintf(stdout, "# wrk: %v\n", werr2)
		} else {
			fmt.Fprintf(stdout, "\nwrk -t%d -c%d -d%s (after): %.0f req/s\n", *wrkThreads, *wrkConns, *wrkDur, wrk2)
		}
		if werr == nil && werr2 == nil {
			w := (wrk1 + wrk2) / 2
			fmt.Fprintf(stdout, "ratio to wrk (mean %.0f req/s): valid %.2f×, p99-lag %.2f×, median-lag %.2f×\n", w, best[0]/w, best[1]/w, best[2]/w)
		}
	}

	fmt.Fprintf(stdout, "\n| memory round | requests | live heap peak − baseline | minus histograms | retained after |\n|---|---|---|---|---|\n")
	for _, ds := range strings.Split(*memDurs, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(ds))
		if err != nil {
			return fmt.Errorf("-mem-durations: %w", err)
		}
		if err := memRound(ctx, url, *memRate, d, stdout); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "# load average at end: %s\n", loadavg())
	return nil
}

type probe struct {
	rate float64
	v    load.Validity
	errs int64
}

// probeGCHeadroom is -gc-headroom, probeProcs -procs.
var (
	probeGCHeadroom int64
	probeProcs      int
)

// search brackets the highest rate that passes ok by doubling from start,
// then bisects (geometrically) for steps rounds.
func search(ctx context.Context, url string, start, max float64, steps int, warmup, dur time.Duration,
	ok func(load.Validity, int64) bool, log io.Writer) (probe, error) {
	try := func(rate float64) (probe, bool, error) {
		res, err := load.Run(ctx, load.Config{Rate: rate, Duration: dur, Warmup: warmup, Timeout: 5 * time.Second,
			Targeter: vegeta.NewStaticTargeter(vegeta.Target{Method: "GET", URL: url}), GCHeadroom: probeGCHeadroom, Procs: probeProcs})
		if err != nil {
			return probe{}, false, err
		}
		p := probe{rate: rate, v: res.Validity, errs: res.Errors}
		pass := ok(res.Validity, res.Errors)
		fmt.Fprintf(log, "#   probe %8.0f/s: pass=%v achieved %.0f max lag %v own %v (witness %v, host max late %v) p99 lag %v p50 lag %v late %d excused %d omitted %d errors %d p99 %v\n",
			rate, pass, p.v.AchievedRate, p.v.MaxLag.Round(time.Microsecond), p.v.OwnMaxLag.Round(time.Microsecond), p.v.HostWitness,
			p.v.HostMaxLate.Round(time.Microsecond), p.v.LagP99, p.v.LagP50, p.v.LateRequests, p.v.HostExcused,
			p.v.Omitted, p.errs, latency.Quantile(res.Hist, 0.99))
		return p, pass, nil
	}
	var best probe
	lo, hi := 0.0, 0.0
	for r := start; r <= max; r *= 2 {
		p, pass, err := try(r)
		if err != nil {
			return best, err
		}
		if !pass {
			hi = r
			break
		}
		lo, best = r, p
	}
	if hi == 0 {
		return best, nil // passed up to max
	}
	if lo == 0 {
		lo = hi / 64
	}
	for i := 0; i < steps; i++ {
		mid := math.Round(math.Sqrt(lo * hi))
		if mid <= lo || mid >= hi {
			break
		}
		p, pass, err := try(mid)
		if err != nil {
			return best, err
		}
		if pass {
			lo, best = mid, p
		} else {
			hi = mid
		}
	}
	return best, nil
}

var liveHeap = []metrics.Sample{{Name: "/gc/heap/live:bytes"}}

func readLive() uint64 {
	metrics.Read(liveHeap)
	return liveHeap[0].Value.Uint64()
}

// memRound runs one round with windows and vegeta output (the full
// streaming path) and reports the live heap: the peak of
// /gc/heap/live:bytes (the heap marked live by each GC during the round)
// over the baseline before it, then that minus the round's histograms, and
// what is still live after the round once its result is dropped.
func memRound(ctx context.Context, url string, rate float64, d time.Duration, out io.Writer) error {
	dir, err := os.MkdirTemp("", "loadbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	runtime.GC()
	runtime.GC()
	base := readLive()
	var (
		peak uint64
		mu   sync.Mutex
		done = make(chan struct{})
		wg   sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if v := readLive(); v > peak {
					mu.Lock()
					peak = v
					mu.Unlock()
				}
			}
		}
	}()
	res, err := load.Run(ctx, load.Config{Rate: rate, Duration: d, Warmup: 500 * time.Millisecond, Timeout: 5 * time.Second,
		Targeter:    vegeta.NewStaticTargeter(vegeta.Target{Method: "GET", URL: url}),
		WindowsPath: filepath.Join(dir, "windows.bin"), VegetaPath: filepath.Join(dir, "results.gob"),
		// The live heap is what each GC cycle marks: the collector must
		// run as usual for the peak to mean anything.
		GCHeadroom: -1, Procs: probeProcs})
	close(done)
	wg.Wait()
	if err != nil {
		return err
	}
	// Hist, Uncorrected and the lag histogram (2 significant digits).
	fmt.Fprintf(out, "#   validity %+v\n", res.Validity)
	hists := uint64(res.Hist.ByteSize() + res.Uncorrected.ByteSize() + 18_496)
	n := res.Requests
	res = nil
	runtime.GC()
	runtime.GC()
	after := readLive()
	mu.Lock()
	grow := int64(peak) - int64(base)
	mu.Unlock()
	fmt.Fprintf(out, "| %.0f/s × %s | %d | %s | %s | %s |\n", rate, d, n, kib(grow), kib(grow-int64(hists)), kib(int64(after)-int64(base)))
	return nil
}

func kib(b int64) string { return fmt.Sprintf("%.0f KiB", float64(b)/1024) }

var wrkRate = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)

// runWrk runs wrk against url and returns its requests per second.
func runWrk(ctx context.Context, url string, threads, conns int, d time.Duration) (float64, error) {
	path, err := exec.LookPath("wrk")
	if err != nil {
		return 0, fmt.Errorf("wrk not installed (apt-get install -y wrk): %w", err)
	}
	cmd := exec.CommandContext(ctx, path, "-t"+strconv.Itoa(threads), "-c"+strconv.Itoa(conns),
		"-d"+strconv.Itoa(int(math.Ceil(d.Seconds())))+"s", url)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("wrk: %w: %s", err, out)
	}
	return parseWrk(out)
}

// parseWrk extracts "Requests/sec:" from wrk's report.
func parseWrk(out []byte) (float64, error) {
	m := wrkRate.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("wrk output has no Requests/sec line: %q", out)
	}
	return strconv.ParseFloat(string(m[1]), 64)
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// server is the child process serving the trivial handler.
type server struct {
	cmd  *exec.Cmd
	addr string
}

func startServer(ctx context.Context) (*server, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("start handler: %w", err)
	}
	cmd := exec.CommandContext(ctx, exe, "serve")
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("start handler: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start handler: %w", err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("start handler: no address: %w", err)
	}
	return &server{cmd: cmd, addr: strings.TrimSpace(strings.TrimPrefix(line, "listening on "))}, nil
}

func (s *server) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
}

// trivial is the handler both generators hit: drain the body, write "ok".
func trivial(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	w.Write([]byte("ok"))
}

// serve runs the trivial handler until ctx ends, printing its address.
func serve(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	fmt.Fprintf(stdout, "listening on %s\n", ln.Addr())
	srv := &http.Server{Handler: http.HandlerFunc(trivial), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}
