//go:build linux && amd64

package tail

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tailgate-ci/tailgate/bidder/reqgen"
	"github.com/tailgate-ci/tailgate/bpf"
	"github.com/tailgate-ci/tailgate/bpf/gort"
	"github.com/tailgate-ci/tailgate/internal/load"
	"github.com/tailgate-ci/tailgate/internal/symbol"
	"golang.org/x/sys/unix"
)

func monoNow() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

// Live-run sizes: small enough for a ~30 s test on 2 shared cores, large
// enough that the bidder's contributors show (the pacing ledger's campaign
// walk does not depend on the user count; the GC's live heap does).
const (
	liveUsers    = 500_000
	liveIndex    = "64MiB"
	liveRate     = 150
	liveDuration = 20 * time.Second
	liveWarmup   = 2 * time.Second
	// The baseline's two request-path contributors are scaled together
	// so that both reach the slowest 1 % on hosts of different speed.
	//
	// Lock wait: a reconciliation holds the GlobalLedger's mutex for its
	// walk of every campaign's history, W; about rate×W requests queue
	// behind each walk and wait up to W. The slowest 1 % (34 requests
	// here) has room for both contributors only when the lock's victims
	// are fewer than that and wait longer than the GC's victims take.
	// With 100 k campaigns and a walk a second (the bidder's defaults),
	// W was 21 ms here and about 10 ms on the CI host (its mutex-wait
	// total, 0.15 s, implies it): there the GC's victims (20–45 ms) filled
	// the whole slowest 1 % and lock wait was absent from it; 200 k and
	// 300 k campaigns a second (W 30 and 43 ms, ~100–200 victims) turned
	// it around, GC 0.02–1 % of the slowest 1 %. 600 k campaigns
	// reconciled every 10 s: W 83–90 ms here, two walks in the run,
	// ~25 victims; three runs gave lock wait 93, 80 and 76 %, GC 2.9, 12.7
	// and 10.1 % of the slowest 1 %, ranks 1 and 2 or 3 by excess. A host
	// whose walk is twice as fast would still keep victims waiting up to
	// ~40 ms (an inference, not measured).
	liveCampaigns = 600_000
	liveReconcile = 10 * time.Second
	// liveGOGC compresses the baseline's GC into the short run. The
	// calibrated baseline (1000/s, 2 M users: ~360 MB live, ~37 MB/s
	// allocated, GOGC=100) starts a cycle about every 10 s. Scaled down
	// to 2 shared cores (150/s, 500 k users: ~185 MB of pointer-heavy
	// profiles, ~4.5 MB/s), GOGC=100 would cycle every ~40 s, longer
	// than the run. With 100 k campaigns, whether GC reached the slowest
	// 1 % depended on GOGC: 25, 2–3 cycles, GC 0 %; 10, 7 cycles, 4 %;
	// 5, 15 cycles, 7.6 % and 0.03 %; 2, 44 cycles, mark phases 14–16 %
	// of the time, GC 9.5–50 % (mostly mark-assist waits). The 600 k
	// campaigns' ledger (~340 MB, no pointers) triples the heap the
	// pacer scales to, so GOGC=1 keeps the cycles near that (33–36 in
	// 22 s, mark phases 14 %). That is more GC than the calibrated
	// baseline has, but the same mechanism (a pointer-heavy live heap
	// re-marked while requests allocate, assists and assist waits on
	// the request goroutines, stop-the-world pauses), and no fix is
	// switched on. Both runs use it, so the locks run compares lock wait
	// at equal GC pressure.
	liveGOGC = "1"
)

// ledgerFuncs are the pacing ledger's functions of the baseline (the
// GlobalLedger's mutex is the hot lock).
var ledgerFuncs = []string{"bidder.(*GlobalLedger).TrySpend", "bidder.(*GlobalLedger).Reconcile"}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("live join needs the BPF collectors: run as root (CI does)")
	}
	if testing.Short() {
		t.Skip("live bidder run skipped in -short")
	}
}

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// bidderBin builds cmd/bidder and its index once per test binary run.
func bidderBin(t *testing.T) (bin, index string) {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "tail-live-")
		if buildErr != nil {
			return
		}
		bin := filepath.Join(buildDir, "bidder")
		out, err := exec.Command("go", "build", "-o", bin, "github.com/tailgate-ci/tailgate/cmd/bidder").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("build bidder: %v\n%s", err, out)
			return
		}
		out, err = exec.Command(bin, "index", "build", "--out", filepath.Join(buildDir, "bidder.idx"), "--size", liveIndex, "--campaigns", strconv.Itoa(liveCampaigns)).CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("build index: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(buildDir, "bidder"), filepath.Join(buildDir, "bidder.idx")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startBidder starts `bidder serve` with fixes and waits for /healthz.
func startBidder(t *testing.T, fixes string) (*exec.Cmd, string) {
	t.Helper()
	bin, index := bidderBin(t)
	url := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	cmd := exec.Command(bin, "serve", "--addr", strings.TrimPrefix(url, "http://"), "--index", index,
		"--users", strconv.Itoa(liveUsers), "--fixes", fixes, "--reconcile", liveReconcile.String())
	cmd.Env = append(os.Environ(), "GOGC="+liveGOGC)
	logf, err := os.Create(filepath.Join(t.TempDir(), "bidder.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		logf.Close()
	})
	deadline := time.Now().Add(90 * time.Second)
	for {
		resp, err := http.Get(url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return cmd, url
			}
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("bidder exited during start-up:\n%s", b)
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("bidder not healthy after 90s: %v", err)
		}
	}
}

// scrape reads the numeric samples of GET /metrics ("name{labels}" -> value).
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// liveRun is one profiled, loaded run of the bidder.
type liveRun struct {
	pid      int
	windows  []load.Window
	goEvents []gort.Event
	kernel   []bpf.Event
	before   map[string]float64 // /metrics at the start of the load
	after    map[string]float64 // and at its end
	from, to int64              // CLOCK_MONOTONIC: start of the first scrape, end of the last
	// fromIn and toIn: the end of the first scrape and the start of the
	// last, inside which every event falls between the two snapshots.
	fromIn, toIn int64
	goStats      gort.Stats
	kernelStats  bpf.Stats
	res          *symbol.Resolver
	result       *load.Result
	alive        bool
	proc         *os.Process // the bidder
}

// profileRun starts the bidder with fixes, attaches the Go and kernel
// collectors (kernel ones best effort), drives it at rate for dur and
// returns everything the join needs. The bidder is still running.
func profileRun(t *testing.T, fixes string, rate float64, dur time.Duration, kernel bool) *liveRun {
	t.Helper()
	cmd, url := startBidder(t, fixes)
	pid := cmd.Process.Pid
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	gs, err := gort.Start(ctx, gort.Options{PID: pid})
	if errors.Is(err, gort.ErrNotSupported) {
		t.Skipf("go collectors not supported here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	var goEvents []gort.Event
	var kernelEvents []bpf.Event
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for e := range gs.Events() {
			goEvents = append(goEvents, e)
		}
	}()
	var ks *bpf.Session
	if kernel {
		ks, err = bpf.Start(ctx, bpf.Options{PIDs: []int{pid}, BestEffort: true, NoFollowChildren: true,
			Collectors: []bpf.Kind{bpf.OffCPU, bpf.RunQueue, bpf.PageFault, bpf.BlockIO, bpf.OnCPU}})
		if err != nil {
			// Degrade, never lie: the Go events alone still give the
			// park, GC and request figures; kernel components stay 0.
			t.Logf("kernel collectors unavailable, joining Go events only: %v", err)
			ks = nil
		}
	}
	if ks != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for e := range ks.Events() {
				kernelEvents = append(kernelEvents, e)
			}
		}()
	}

	targeter, err := load.ReqgenTargeter(url+"/openrtb2/bid", 1, reqgen.Options{Users: liveUsers})
	if err != nil {
		t.Fatal(err)
	}
	windowsPath := filepath.Join(t.TempDir(), "windows.bin")
	r := &liveRun{pid: pid}
	// The warm-up is part of the attack; /metrics is read around the
	// whole attack, the same interval the probes cover.
	r.from = monoNow()
	r.before = scrape(t, url)
	r.fromIn = monoNow()
	r.result, err = load.Run(ctx, load.Config{Rate: rate, Duration: dur, Warmup: liveWarmup, Timeout: 5 * time.Second,
		Targeter: targeter, Name: "tail-live", WindowsPath: windowsPath})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	r.toIn = monoNow()
	r.after = scrape(t, url)
	r.to = monoNow()
	r.res = symbol.NewResolver()
	if err := r.res.Prime(pid); err != nil {
		t.Logf("prime symbols: %v", err)
	}
	r.goStats, err = gs.Stop()
	if err != nil {
		t.Errorf("stop go collectors: %v", err)
	}
	if ks != nil {
		r.kernelStats, err = ks.Stop()
		if err != nil {
			t.Errorf("stop kernel collectors: %v", err)
		}
	}
	wg.Wait()
	r.goEvents, r.kernel = goEvents, kernelEvents
	r.alive = cmd.Process.Signal(syscall.Signal(0)) == nil
	r.proc = cmd.Process
	r.windows, err = load.ReadWindows(windowsPath)
	if err != nil {
		t.Fatal(err)
	}
	v := r.result.Validity
	for _, m := range []string{"go_gc_cycles_total", "go_gc_heap_live_bytes", "go_sched_pauses_total_gc_seconds_sum", "go_sync_mutex_wait_total_seconds", "go_cpu_classes_gc_mark_assist_cpu_seconds", "go_cpu_classes_gc_total_cpu_seconds", "bidder_ledger_reconciles_total", "bidder_ledger_reconcile_seconds_total"} {
		t.Logf("  %s: %g -> %g", m, r.before[m], r.after[m])
	}
	n, mark := markPhases(r.goEvents)
	t.Logf("GC mark phases: %d, %v of %v (%.0f%%)", n, mark, time.Duration(r.to-r.from), 100*mark.Seconds()/time.Duration(r.to-r.from).Seconds())
	t.Logf("fixes=%q: %d requests, %d errors, valid=%v %v, go events %v (lost %d), kernel events %v (lost %d)",
		fixes, r.result.Requests, r.result.Errors, v.Valid, v.Reasons, r.goStats.Events, r.goStats.TotalLost(), r.kernelStats.Events, r.kernelStats.TotalLost())
	return r
}

// markPhases sums the GC mark phases among evs: from the end of a
// sweep-termination pause to the start of the next mark-termination one.
func markPhases(evs []gort.Event) (n int, d time.Duration) {
	var stw []gort.Event
	for _, e := range evs {
		if e.IsGCSTW() {
			stw = append(stw, e)
		}
	}
	sort.Slice(stw, func(i, j int) bool { return stw[i].StartNs < stw[j].StartNs })
	for i := 0; i+1 < len(stw); i++ {
		if stw[i].Reason == gort.STWGCSweepTerm && stw[i+1].Reason == gort.STWGCMarkTerm && stw[i+1].StartNs > stw[i].EndNs {
			n++
			d += time.Duration(stw[i+1].StartNs - stw[i].EndNs)
		}
	}
	return n, d
}

// frames symbolizes a stack of the run's bidder as function names.
func (r *liveRun) frames(stack []uint64) []string {
	fs := r.res.User(r.pid, stack)
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.Func
	}
	return out
}

func logSummary(t *testing.T, name string, s Summary) {
	t.Helper()
	t.Logf("%s: slow >= %v (%d requests, %d with server windows), fast <= %v (%d)", name,
		s.SlowThreshold, s.Slow.Requests, s.Slow.Server, s.FastThreshold, s.Fast.Requests)
	for _, c := range s.Slow.Top() {
		t.Logf("  %-14s slow %5.1f%% (%v/req)  fast %5.1f%% (%v/req)  excess %v/req  enrichment %.1f", c, 100*s.Slow.Share(c), s.Slow.PerRequest(c),
			100*s.Fast.Share(c), s.Fast.PerRequest(c), s.Excess(c), s.Enrichment(c))
	}
}

// lockUnderLedger is the slow group's lock-wait time whose parked stack
// passes through a pacing-ledger function, and the total lock-wait
// evidence time.
func lockUnderLedger(r *liveRun, s Summary) (ledger, total time.Duration, top []string) {
	for i, st := range s.SlowStacks[LockWait] {
		fs := r.frames(st.Stack)
		total += st.Time
		if i == 0 {
			top = fs
		}
		for _, f := range fs {
			if strings.HasSuffix(f, ledgerFuncs[0]) || strings.HasSuffix(f, ledgerFuncs[1]) {
				ledger += st.Time
				break
			}
		}
	}
	return ledger, total, top
}

// TestLiveBidderBreakdown is the acceptance run of the join: the baseline
// bidder under constant-rate load, profiled with the Go and kernel
// collectors. The slowest 1 % must show lock wait parked under the pacing
// ledger's function, and GC (pauses and assists, at least 1 % of their
// time) among its top 4 components by excess over the fast half; with the
// locks fix the lock-wait share of slow requests must drop by at least
// 80 %. Both runs use liveGOGC (see there).
func TestLiveBidderBreakdown(t *testing.T) {
	needRoot(t)
	base := profileRun(t, "none", liveRate, liveDuration, true)
	if v := base.result.Validity; !v.Valid && base.alive {
		// A round the host disturbed (the load generator itself late) is
		// no evidence either way: one more, and the acceptance is judged
		// on that one, valid or not. In such a spell the pacing ledger's
		// reconcile, descheduled while it holds the lock, can grow long
		// enough that its victims alone make the slowest 1 %.
		t.Logf("baseline round invalid (%v): running it once more", v.Reasons)
		base.proc.Kill()
		base = profileRun(t, "none", liveRate, liveDuration, true)
	}
	if !base.alive {
		t.Fatal("the bidder died under the probes")
	}
	// The client-side join: nearly every client window must find its
	// server window.
	bds := Join(Input{Client: base.windows, Go: base.goEvents, Kernel: base.kernel, PID: uint32(base.pid)})
	matched := 0
	for _, b := range bds {
		if b.Server {
			matched++
		}
	}
	t.Logf("baseline: %d of %d client windows matched to a ServeHTTP window", matched, len(bds))
	if matched*100 < len(bds)*95 {
		t.Errorf("only %d of %d client windows matched to a server window", matched, len(bds))
	}
	logSummary(t, "baseline by client latency", Summarize(bds, 0.99, 0.5))
	// The acceptance figures rank requests by their server-side time: on
	// this shared 2-core host the load generator's own send lag (run
	// validity says so) dominates the client-side tail, and that time is
	// outside the service, where no probe can explain it.
	s := Summarize(Join(Input{Go: base.goEvents, Kernel: base.kernel, PID: uint32(base.pid)}), 0.99, 0.5)
	logSummary(t, "baseline", s)
	ledger, lockTotal, top := lockUnderLedger(base, s)
	t.Logf("baseline slow lock-wait evidence %v, %v under the ledger; top stack %v", lockTotal, ledger, top)
	if s.Slow.Time[LockWait] == 0 {
		t.Errorf("no lock wait in the slowest 1%%")
	}
	if ledger*2 < lockTotal {
		t.Errorf("slow lock wait under %v: %v of %v, want most of it", ledgerFuncs, ledger, lockTotal)
	}
	// "Top components" rank by what a component adds to a slow request
	// over a fast one (Summary.Excess, the contributors' ranking key):
	// every request spends its own work on-CPU. The GC's pauses and
	// assists count together, and the GC must also be a real part of the
	// slow requests' time, not a trace.
	ranks := tailRanks(s)
	t.Logf("baseline tail ranking by excess per slow request: %v", ranks)
	gcRank, lockRank := rankOf(ranks, "gc"), rankOf(ranks, LockWait.String())
	gcShare := s.Slow.Share(GCSTW) + s.Slow.Share(GCAssist)
	if gcRank > 4 {
		t.Errorf("GC is not among the top 4 components of the slowest 1%% (rank %d)", gcRank)
	}
	if gcShare < minGCShare {
		t.Errorf("GC is %.2f%% of the slowest 1%%'s time, want at least %.0f%%", 100*gcShare, 100*minGCShare)
	}
	if lockRank > 4 {
		t.Errorf("lock wait is not among the top 4 components of the slowest 1%% (rank %d)", lockRank)
	}

	t.Run("crosscheck-baseline", func(t *testing.T) { crossCheck(t, base) })

	fixed := profileRun(t, "locks", liveRate, liveDuration, true)
	t.Run("crosscheck-locks", func(t *testing.T) { crossCheck(t, fixed) })
	if !fixed.alive {
		t.Fatal("the bidder died under the probes")
	}
	fs := Summarize(Join(Input{Go: fixed.goEvents, Kernel: fixed.kernel, PID: uint32(fixed.pid)}), 0.99, 0.5)
	logSummary(t, "locks fix", fs)
	for i, st := range fs.SlowStacks[LockWait] {
		if i == 3 {
			break
		}
		t.Logf("locks fix: slow lock wait %v (%d parks) at %v", st.Time, st.Count, fixed.frames(st.Stack))
	}
	before, after := s.Slow.Share(LockWait), fs.Slow.Share(LockWait)
	t.Logf("lock-wait share of the slowest 1%%: baseline %.2f%%, locks fix %.2f%% (drop %.1f%%)", 100*before, 100*after, 100*(1-after/before))
	if after > 0.2*before {
		t.Errorf("lock-wait share of slow requests dropped from %.2f%% to %.2f%%: less than 80%%", 100*before, 100*after)
	}
}

// lockFloor is the smallest lock-wait discrepancy crossCheck tolerates,
// and the smallest allowance for runtime-internal lock time, which
// /sync/mutex/wait/total:seconds counts and no park shows (see crossCheck).
const lockFloor = 10 * time.Millisecond

// runtimeLockAllowance is how much runtime-internal lock time the metric
// may add on a host whose bare sleeper woke up to hostMaxLate late: one
// wait as long as that stall, counted 8× by the runtime's 1-in-8 sampling.
func runtimeLockAllowance(hostMaxLate time.Duration) time.Duration {
	return max(lockFloor, 8*hostMaxLate)
}

// minGCShare is the least share of the slowest 1 %'s time the GC (pauses
// and assists) must have to count as one of its components.
const minGCShare = 0.01

// rankedComponent is one entry of tailRanks.
type rankedComponent struct {
	Name   string
	Excess time.Duration
}

func (r rankedComponent) String() string { return fmt.Sprintf("%s %v", r.Name, r.Excess) }

// tailRanks ranks the components with time in the slow group and a
// positive excess per slow request (Summary.TopExcess), with gc-stw and
// gc-assist merged into one "gc" entry.
func tailRanks(s Summary) []rankedComponent {
	var out []rankedComponent
	gc := rankedComponent{Name: "gc", Excess: s.Excess(GCSTW) + s.Excess(GCAssist)}
	if s.Slow.Time[GCSTW]+s.Slow.Time[GCAssist] > 0 && gc.Excess > 0 {
		out = append(out, gc)
	}
	for _, c := range s.TopExcess() {
		if c != GCSTW && c != GCAssist {
			out = append(out, rankedComponent{c.String(), s.Excess(c)})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Excess > out[j].Excess })
	return out
}

// rankOf is name's 1-based rank in ranks, or NumComponents+1 (below any
// rank) if absent.
func rankOf(ranks []rankedComponent, name string) int {
	for i, r := range ranks {
		if r.Name == name {
			return i + 1
		}
	}
	return int(NumComponents) + 1
}

// crossCheck compares the uprobe-derived totals of a run with the
// bidder's runtime/metrics over the same interval (the probes cover it).
//
// GC pauses: /sched/pauses/total/gc:seconds records, for every GC
// stop-the-world, the time from stopTheWorldWithSema's start to the `now`
// passed to startTheWorldWithSema — what the STW events' AccountedEndNs
// reads — so the pause count must match exactly, up to pauses that fell
// inside a /metrics request (before or after its snapshot: in CI a GC
// during the first scrape once made it 89 against 88), and the total
// within ±15 %. The bidder folds the runtime
// histogram (buckets 1/16 of a power of two wide) into a sum of bucket
// midpoints, a few percent of error at most.
//
// Lock wait: /sync/mutex/wait/total:seconds is not an exact total. The
// runtime times only every 8th transition out of running per goroutine
// (gTrackingPeriod) and multiplies by 8, and it adds runtime-internal lock
// waits, which no park shows. "Consistent" therefore means: the metric
// equals the parks' blocked time (park to runtime.ready, sync.Mutex and
// RWMutex reasons, readied inside the interval) within four standard
// errors of that 1-in-8 sampling, computed from the parks themselves
// (sqrt(7·Σd²)), plus 10 % of slack for the edges of the interval, and
// never less than lockFloor.
//
// The metric also counts runtime-internal lock waits (sched.lock,
// mheap.lock, GC work buffers; Go ≥ 1.22), which no park shows, sampled
// the same 1-in-8 way and so counted in steps of 8× one wait. So the
// check is one-sided beyond the sampling tolerance: the metric may exceed
// the parks by runtimeLockAllowance, the parks may not exceed the metric.
// A run whose mutex is gone (the locks fix) has almost no parks and a
// metric of mostly those runtime waits: measured here 0.3 ms with one
// 0.04 ms park, 1 ms with 27 parks; in CI 19 ms with 3 parks on a host
// whose bare sleeper woke up to 9.8 ms late. One runtime lock holder
// descheduled for the host's worst stall, sampled, shows up as 8× that
// stall, which is what the allowance admits (never less than lockFloor):
// still far below the baseline's hundreds of ms.
func crossCheck(t *testing.T, r *liveRun) {
	t.Helper()
	var stw time.Duration
	var stwN, stwEdge int
	var lock, lockSq float64
	var parks int
	for _, e := range r.goEvents {
		switch {
		case e.IsGCSTW() && int64(e.StartNs) >= r.fromIn && int64(e.EndNs) <= r.toIn:
			stw += e.AccountedDuration()
			stwN++
		case e.IsGCSTW() && int64(e.EndNs) >= r.from && int64(e.StartNs) <= r.to:
			// During a scrape: before or after its snapshot, unknowable.
			stwEdge++
		case e.Kind == gort.Block && parkComponent(e.WaitReason) == LockWait && e.ReadyNs != 0 &&
			int64(e.ReadyNs) >= r.from && int64(e.ReadyNs) <= r.to:
			d := float64(e.ReadyNs-e.StartNs) / 1e9
			lock += d
			lockSq += d * d
			parks++
		}
	}
	const pause = "go_sched_pauses_total_gc_seconds"
	mCount := r.after[pause+"_count"] - r.before[pause+"_count"]
	mSum := r.after[pause+"_sum"] - r.before[pause+"_sum"]
	t.Logf("GC stop-the-world: uprobes %d pauses (+%d during a scrape), %v; runtime/metrics %d pauses, %v",
		stwN, stwEdge, stw, int(mCount), time.Duration(mSum*1e9))
	if mCount < float64(stwN) || mCount > float64(stwN+stwEdge) {
		t.Errorf("uprobes saw %d GC pauses between the snapshots (and %d during a scrape), runtime/metrics counted %v", stwN, stwEdge, mCount)
	}
	if mSum > 0 && math.Abs(stw.Seconds()-mSum) > 0.15*mSum {
		t.Errorf("GC stop-the-world total: uprobes %v, runtime/metrics %v: more than 15%% apart", stw, time.Duration(mSum*1e9))
	}

	const mw = "go_sync_mutex_wait_total_seconds"
	metric := r.after[mw] - r.before[mw]
	se := math.Sqrt(7 * lockSq)
	tol := max(4*se+0.1*max(lock, metric), lockFloor.Seconds())
	runtimeLocks := runtimeLockAllowance(r.result.Validity.HostMaxLate).Seconds()
	t.Logf("lock wait: uprobes %d parks, %.3fs blocked; runtime/metrics %.3fs; sampling s.e. %.3fs, tolerance %.3fs, runtime-internal allowance %.3fs (host stalled up to %v)",
		parks, lock, metric, se, tol, runtimeLocks, r.result.Validity.HostMaxLate)
	if lock-metric > tol {
		t.Errorf("lock wait: uprobes %.3fs, more than runtime/metrics %.3fs by over %.3fs", lock, metric, tol)
	}
	if metric-lock > tol+runtimeLocks {
		t.Errorf("lock wait: runtime/metrics %.3fs, more than uprobes %.3fs by over %.3fs (+%.3fs for runtime-internal locks)", metric, lock, tol, runtimeLocks)
	}
}
