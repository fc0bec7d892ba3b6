//go:build linux && amd64

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/tailgate-ci/tailgate/bidder/reqgen"
	"github.com/tailgate-ci/tailgate/bpf"
	"github.com/tailgate-ci/tailgate/internal/gate"
	"github.com/tailgate-ci/tailgate/internal/latency"
	"github.com/tailgate-ci/tailgate/internal/load"
	"github.com/tailgate-ci/tailgate/internal/rules"
	perfrules "github.com/tailgate-ci/tailgate/perf-rules"
)

// TestProfileOverheadBidder measures what the collectors cost the
// bidder: rounds at the default rules' rate (load.rate; TAILGATE_OVERHEAD_RATE
// overrides it) with every collector
// on and off, interleaved ABBA on one host, reporting p50, p99, achieved
// rate and bidder CPU per arm. It is a measurement, not a check, and takes
// about TAILGATE_OVERHEAD_ROUNDS × 4 × (round + lead-in), 17 s by default, so it runs only with
// TAILGATE_OVERHEAD=1 (and root); TAILGATE_OVERHEAD_COLLECTORS picks the
// kernel collectors (default all), TAILGATE_OVERHEAD_GO=1 adds the Go
// runtime uprobes (bpf/gort: GC, assists, park/ready, execute, ServeHTTP;
// `tailgate profile --go`) to the "on" arm (TAILGATE_OVERHEAD_GO_KINDS
// picks them: --go-kinds), and TAILGATE_OVERHEAD_ROUNDS
// sets the ABBA pairs (default 2); TAILGATE_OVERHEAD_ROUND and
// TAILGATE_OVERHEAD_WARMUP set each round's measured length (default 15s)
// and unrecorded lead-in (default 2s, during which `tailgate profile` has
// attached). The "on" rounds run as a gate does, without the kernel's BPF
// run-time statistics (they cost every program run two clock reads); one
// more round after the blocks, with `--program-stats` and not counted in
// either arm, reports what each program costs. Shorter rounds, more of them, pair the arms closer in time:
// on a shared host the per-block change is mostly the host's mood, which
// drifts over tens of seconds.
//
//	TAILGATE_OVERHEAD=1 go test ./cmd/tailgate -run ProfileOverhead -v -timeout 30m
//	TAILGATE_OVERHEAD=1 TAILGATE_OVERHEAD_GO=1 go test ./cmd/tailgate -run ProfileOverhead -v -timeout 30m
func TestProfileOverheadBidder(t *testing.T) {
	if os.Getenv("TAILGATE_OVERHEAD") != "1" {
		t.Skip("long measurement: set TAILGATE_OVERHEAD=1 to run")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: loads BPF programs")
	}
	def, err := rules.Parse(perfrules.BidderName, perfrules.Bidder)
	if err != nil {
		t.Fatal(err)
	}
	rate := def.Load.Rate.PerSecond() // perf-rules/bidder.yaml's load.rate
	if v, err := strconv.ParseFloat(os.Getenv("TAILGATE_OVERHEAD_RATE"), 64); err == nil && v > 0 {
		rate = v
	}
	roundDur, roundWarmup := 15*time.Second, 2*time.Second
	for env, d := range map[string]*time.Duration{"TAILGATE_OVERHEAD_ROUND": &roundDur, "TAILGATE_OVERHEAD_WARMUP": &roundWarmup} {
		if v := os.Getenv(env); v != "" {
			x, err := time.ParseDuration(v)
			if err != nil || x <= 0 {
				t.Fatalf("%s=%q: want a positive duration such as 4s", env, v)
			}
			*d = x
		}
	}
	pairs := 2
	if v, err := strconv.Atoi(os.Getenv("TAILGATE_OVERHEAD_ROUNDS")); err == nil && v > 0 {
		pairs = v
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bidder")
	if out, err := exec.Command("go", "build", "-o", bin, "../bidder").CombinedOutput(); err != nil {
		t.Fatalf("build bidder: %v\n%s", err, out)
	}
	idx := filepath.Join(dir, "bidder.idx")
	if out, err := exec.Command(bin, "index", "build", "--out", idx, "--size", "256MiB").CombinedOutput(); err != nil {
		t.Fatalf("index build: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	const users = 2_000_000
	srv := exec.Command(bin, "serve", "--addr", addr, "--index", idx, "--users", strconv.Itoa(users))
	srv.Stdout, srv.Stderr = os.Stderr, os.Stderr
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("bidder not healthy after 2m: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	targeter, err := load.ReqgenTargeter("http://"+addr+"/openrtb2/bid", 1, reqgen.Options{Users: users})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// Warm-up: heap, GC pacing and page cache settle.
	if _, err := load.Run(ctx, load.Config{Rate: rate, Duration: 15 * time.Second, Targeter: targeter}); err != nil {
		t.Fatalf("warm-up: %v", err)
	}

	type arm struct {
		hist     *hdrhistogram.Histogram
		reqs     int64
		secs     float64
		cpu      float64 // bidder CPU seconds
		selfCPU  float64 // the `tailgate profile` process (event consumer) CPU seconds
		recCPU   float64 // of which while recording (summary.json consumer.recording_cpu_sec)
		events   uint64
		perKind  map[bpf.Kind]uint64
		goEvents map[string]uint64 // per bpf/gort kind
		lost     uint64
		invalids int
	}
	arms := map[bool]*arm{false: {hist: latency.New()}, true: {hist: latency.New(), perKind: map[bpf.Kind]uint64{}, goEvents: map[string]uint64{}}}
	withGo := os.Getenv("TAILGATE_OVERHEAD_GO") == "1"
	collectorsFlag := os.Getenv("TAILGATE_OVERHEAD_COLLECTORS")
	if collectorsFlag == "" {
		collectorsFlag = "all"
	}
	tailgate := filepath.Join(dir, "tailgate")
	if out, err := exec.Command("go", "build", "-o", tailgate, ".").CombinedOutput(); err != nil {
		t.Fatalf("build tailgate: %v\n%s", err, out)
	}
	startProfile := func(profDir string, extra ...string) *exec.Cmd {
		args := []string{"profile", "--pid", strconv.Itoa(srv.Process.Pid),
			"--duration", (roundDur + roundWarmup).String(), "--out", profDir, "--collectors", collectorsFlag}
		if withGo {
			args = append(args, "--go")
			if k := os.Getenv("TAILGATE_OVERHEAD_GO_KINDS"); k != "" {
				args = append(args, "--go-kinds", k)
			}
		}
		prof := exec.Command(tailgate, append(args, extra...)...)
		prof.Stderr = os.Stderr
		stdout, err := prof.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := prof.Start(); err != nil {
			t.Fatal(err)
		}
		// The first line is printed once the collectors are attached.
		sc := bufio.NewScanner(stdout)
		if !sc.Scan() || !strings.HasPrefix(sc.Text(), "profiling pid") {
			t.Fatalf("tailgate profile did not start: %q", sc.Text())
		}
		go io.Copy(io.Discard, stdout)
		return prof
	}
	order := []bool{false, true, true, false}
	// Per ABBA block, each arm's rounds pooled: the unit of the paired
	// comparison (rounds of one block share the host's mood).
	type block struct {
		hist [2]*hdrhistogram.Histogram
		cpu  [2]float64 // bidder CPU seconds
		reqs [2]int64
	}
	blocks := make([]block, pairs)
	for p := 0; p < pairs; p++ {
		blocks[p].hist = [2]*hdrhistogram.Histogram{latency.New(), latency.New()}
		for _, on := range order {
			a := arms[on]
			// The collectors run in a separate `tailgate profile`
			// process, as they would beside a gate run, so their
			// consumer does not share a Go runtime with the load
			// generator; its CPU is reported on its own.
			var prof *exec.Cmd
			profDir := filepath.Join(dir, fmt.Sprintf("profile-%d-%d", p, len(order)))
			if on {
				prof = startProfile(profDir)
			}
			cpu0 := procCPU(t, srv.Process.Pid)
			res, err := load.Run(ctx, load.Config{Rate: rate, Duration: roundDur, Warmup: roundWarmup, Targeter: targeter})
			if err != nil {
				t.Fatalf("round: %v", err)
			}
			roundCPU := procCPU(t, srv.Process.Pid) - cpu0
			a.cpu += roundCPU
			blocks[p].cpu[b2i(on)] += roundCPU
			if prof != nil {
				if err := prof.Wait(); err != nil {
					t.Fatalf("tailgate profile: %v", err)
				}
				a.selfCPU += (prof.ProcessState.UserTime() + prof.ProcessState.SystemTime()).Seconds()
				sum := readProfileSummary(t, profDir)
				a.recCPU += sum.Consumer.RecordingCPUSec
				for k, n := range sum.Events {
					kind, _ := bpf.ParseKind(k)
					a.perKind[kind] += n
					a.events += n
				}
				for _, m := range []map[string]uint64{sum.Lost, sum.MapFull} {
					for _, n := range m {
						a.lost += n
					}
				}
				a.lost += sum.Decode + sum.Unread
				if withGo {
					if sum.Go == nil || len(sum.Go.Targets) == 0 {
						t.Fatalf("TAILGATE_OVERHEAD_GO=1 but the Go probes did not attach: %+v", sum.Go)
					}
					for k, n := range sum.Go.Events {
						a.goEvents[k] += n
					}
					for _, m := range []map[string]uint64{sum.Go.Lost, sum.Go.MapFull} {
						for _, n := range m {
							a.lost += n
						}
					}
					a.lost += sum.Go.Decode + sum.Go.Unread
				}
			}
			if err := latency.Merge(a.hist, res.Hist); err != nil {
				t.Fatal(err)
			}
			if err := latency.Merge(blocks[p].hist[b2i(on)], res.Hist); err != nil {
				t.Fatal(err)
			}
			a.reqs += res.Requests
			blocks[p].reqs[b2i(on)] += res.Requests
			a.secs += res.End.Sub(res.Start).Seconds()
			// Per round, because one starved round (a neighbour's burst on
			// a shared host) can dominate a merged percentile.
			t.Logf("round collectors=%v: p50 %v p99 %v max send lag %v valid %v",
				on, latency.Quantile(res.Hist, 0.5), latency.Quantile(res.Hist, 0.99), res.Validity.MaxLag, res.Validity.Valid)
			if !res.Validity.Valid {
				a.invalids++
				t.Logf("collectors %v: invalid round: %v", on, res.Validity.Reasons)
			}
		}
	}
	row := func(name string, a *arm) string {
		return fmt.Sprintf("%-4s p50 %v p99 %v rate %.1f/s bidder CPU %.1f%% (%.0f µs/req) consumer CPU %.1f%% (%.1f%% while recording) events %d lost %d invalid rounds %d",
			name, latency.Quantile(a.hist, 0.5), latency.Quantile(a.hist, 0.99), float64(a.reqs)/a.secs,
			100*a.cpu/a.secs, 1e6*a.cpu/float64(a.reqs), 100*a.selfCPU/a.secs, 100*a.recCPU/a.secs, a.events, a.lost, a.invalids)
	}
	off, on := arms[false], arms[true]
	pct := func(x, y float64) float64 { return 100 * (y - x) / x }
	t.Logf("%d ABBA pairs of %v rounds (after %v lead-ins) at %.0f/s (shared 2-core host), on = kernel collectors %s, Go uprobes %v:\n%s\n%s\ndelta: p50 %+.1f%% p99 %+.1f%% rate %+.2f%% bidder CPU %+.1f%%",
		pairs, roundDur, roundWarmup, rate, collectorsFlag, withGo, row("off", off), row("on", on),
		pct(float64(latency.Quantile(off.hist, 0.5)), float64(latency.Quantile(on.hist, 0.5))),
		pct(float64(latency.Quantile(off.hist, 0.99)), float64(latency.Quantile(on.hist, 0.99))),
		pct(float64(off.reqs)/off.secs, float64(on.reqs)/on.secs),
		pct(off.cpu/off.secs, on.cpu/on.secs))
	// Paired, per ABBA block: the change of each quantile and of the
	// bidder's CPU per request. A block's p99 rests on ~50 requests per
	// arm, so its ratio is very noisy (sd of the log ratio ~0.6), and the
	// mean of per-block percent changes is biased upwards by that noise
	// alone (E[Y/X] > 1 for X, Y alike): the estimate judged against the
	// budget is the geometric mean of the per-block ratios, with a 95 %
	// Student t interval on their logs, next to the pooled change (every
	// block's requests merged per arm) with a 95 % bootstrap interval over
	// blocks. The arithmetic mean is printed for comparison with older
	// reports.
	for _, q := range []float64{0.5, 0.99} {
		ratios := make([]float64, pairs)
		for i, b := range blocks {
			ratios[i] = float64(latency.Quantile(b.hist[1], q)) / float64(latency.Quantile(b.hist[0], q))
		}
		pooled := func(idx []int) float64 {
			var h [2]*hdrhistogram.Histogram
			for arm := range h {
				h[arm] = latency.New()
				for _, i := range idx {
					if err := latency.Merge(h[arm], blocks[i].hist[arm]); err != nil {
						t.Fatal(err)
					}
				}
			}
			return float64(latency.Quantile(h[1], q)) / float64(latency.Quantile(h[0], q))
		}
		t.Logf("p%g change per ABBA block (on vs off): %s", 100*q, fmtRatios(ratios))
		t.Logf("p%g change: %s", 100*q, pairedSummary(ratios, pooled))
	}
	{
		ratios := make([]float64, pairs)
		for i, b := range blocks {
			ratios[i] = (b.cpu[1] / float64(b.reqs[1])) / (b.cpu[0] / float64(b.reqs[0]))
		}
		pooled := func(idx []int) float64 {
			var cpu, reqs [2]float64
			for _, i := range idx {
				for arm := 0; arm < 2; arm++ {
					cpu[arm] += blocks[i].cpu[arm]
					reqs[arm] += float64(blocks[i].reqs[arm])
				}
			}
			return (cpu[1] / reqs[1]) / (cpu[0] / reqs[0])
		}
		t.Logf("bidder CPU per request change per ABBA block: %s", fmtRatios(ratios))
		t.Logf("bidder CPU per request change: %s", pairedSummary(ratios, pooled))
	}
	for _, k := range bpf.AllKinds {
		t.Logf("  %-9s %8.0f events/s", k, float64(on.perKind[k])/on.secs)
	}
	if withGo {
		kinds := make([]string, 0, len(on.goEvents))
		for k := range on.goEvents {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		for _, k := range kinds {
			t.Logf("  go %-9s %8.0f events/s", k, float64(on.goEvents[k])/on.secs)
		}
	}
	// The programs' own cost: one more round with the kernel's run-time
	// statistics on, counted in neither arm.
	costDir := filepath.Join(dir, "profile-cost")
	prof := startProfile(costDir, "--program-stats")
	res, err := load.Run(ctx, load.Config{Rate: rate, Duration: roundDur, Warmup: roundWarmup, Targeter: targeter})
	if err != nil {
		t.Fatalf("cost round: %v", err)
	}
	if err := prof.Wait(); err != nil {
		t.Fatalf("tailgate profile --program-stats: %v", err)
	}
	sum := readProfileSummary(t, costDir)
	secs := sum.DurationSec
	t.Logf("BPF programs (a separate %v round with --program-stats, p50 %v): %.2f s CPU = %.2f%% of one CPU (all processes' events)",
		roundDur+roundWarmup, latency.Quantile(res.Hist, 0.5), sum.BPFCPUSec, 100*sum.BPFCPUSec/secs)
	progs := map[string]programCost{}
	for name, c := range sum.BPFPrograms {
		progs[name] = c
	}
	if sum.Go != nil {
		for name, c := range sum.Go.Programs { // uprobe programs: runs are probe hits
			progs["go:"+name] = c
		}
	}
	names := make([]string, 0, len(progs))
	for name := range progs {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool { return progs[names[i]].RuntimeNs > progs[names[j]].RuntimeNs })
	for _, name := range names {
		c := progs[name]
		if c.Runs == 0 {
			continue
		}
		t.Logf("  prog %-28s %9.0f runs/s %7.0f ns/run %5.2f%% of a CPU", name, float64(c.Runs)/secs,
			float64(c.RuntimeNs)/float64(c.Runs), 100*float64(c.RuntimeNs)/1e9/secs)
	}
}

// readProfileSummary reads the summary.json `tailgate profile` wrote into dir.
func readProfileSummary(t *testing.T, dir string) profileSummary {
	t.Helper()
	var sum profileSummary
	b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &sum); err != nil {
		t.Fatal(err)
	}
	return sum
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// pairedSummary describes per-block on/off ratios: their geometric mean
// with a 95 % Student t interval on the logs, the arithmetic mean of the
// percent changes, and the pooled ratio (pooled(all blocks)) with a 95 %
// percentile bootstrap interval over blocks (2,000 resamples, fixed seed).
func pairedSummary(ratios []float64, pooled func(idx []int) float64) string {
	logs := make([]float64, len(ratios))
	var arith float64
	for i, r := range ratios {
		logs[i] = math.Log(r)
		arith += 100 * (r - 1) / float64(len(ratios))
	}
	mean, lo, hi := meanCI95(logs)
	pct := func(l float64) float64 { return 100 * (math.Exp(l) - 1) }
	all := make([]int, len(ratios))
	for i := range all {
		all[i] = i
	}
	rng := rand.New(rand.NewPCG(1, 2))
	boot := make([]float64, 2000)
	idx := make([]int, len(ratios))
	for b := range boot {
		for i := range idx {
			idx[i] = rng.IntN(len(ratios))
		}
		boot[b] = pooled(idx)
	}
	sort.Float64s(boot)
	return fmt.Sprintf("geometric mean %+.1f%%, 95%% CI [%+.1f%%, %+.1f%%]; pooled %+.1f%%, bootstrap 95%% CI [%+.1f%%, %+.1f%%]; (arithmetic mean of the changes %+.1f%%)",
		pct(mean), pct(lo), pct(hi), 100*(pooled(all)-1), 100*(boot[len(boot)/40]-1), 100*(boot[len(boot)-1-len(boot)/40]-1), arith)
}

// meanCI95 is the mean of x and its two-sided 95 % Student t interval.
func meanCI95(x []float64) (mean, lo, hi float64) {
	n := float64(len(x))
	for _, v := range x {
		mean += v / n
	}
	if len(x) < 2 {
		return mean, math.Inf(-1), math.Inf(1)
	}
	var ss float64
	for _, v := range x {
		ss += (v - mean) * (v - mean)
	}
	half := gate.TQuantile(0.975, n-1) * math.Sqrt(ss/(n-1)/n)
	return mean, mean - half, mean + half
}

func fmtRatios(r []float64) string {
	parts := make([]string, len(r))
	for i, v := range r {
		parts[i] = fmt.Sprintf("%+.1f%%", 100*(v-1))
	}
	return strings.Join(parts, " ")
}

// procCPU returns utime+stime of pid in seconds.
func procCPU(t *testing.T, pid int) float64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	fs := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseFloat(fs[14-3], 64)
	st, _ := strconv.ParseFloat(fs[15-3], 64)
	return (ut + st) / 100 // USER_HZ
}

// The overhead benchmark's summary: ratios of a constant change give it
// back exactly; a symmetric noise around no change gives a geometric mean
// near 0 while the arithmetic mean of percent changes is biased upwards.
func TestPairedSummary(t *testing.T) {
	const n = 30
	flat := make([]float64, n)
	for i := range flat {
		flat[i] = 1.1
	}
	pooled := func(idx []int) float64 { return 1.1 }
	if got, want := pairedSummary(flat, pooled), "geometric mean +10.0%, 95% CI [+10.0%, +10.0%]; pooled +10.0%, bootstrap 95% CI [+10.0%, +10.0%]; (arithmetic mean of the changes +10.0%)"; got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	noisy := make([]float64, n)
	for i := range noisy {
		noisy[i] = math.Exp(0.6 * float64(i%2*2-1)) // ×1.82 and ×0.55 alternately
	}
	idxPooled := func(idx []int) float64 {
		var l float64
		for _, i := range idx {
			l += math.Log(noisy[i])
		}
		return math.Exp(l / float64(len(idx)))
	}
	got := pairedSummary(noisy, idxPooled)
	if !strings.HasPrefix(got, "geometric mean +0.0%") || !strings.Contains(got, "arithmetic mean of the changes +18.5%") {
		t.Fatalf("got %s", got)
	}
}
