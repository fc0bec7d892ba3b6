// Package load owns tailgate's load generation: constant-rate (open-loop)
// attacks with vegeta v12 as a library, coordinated-omission-corrected
// latency recorded into one HdrHistogram per round, request windows
// streamed to a compact binary file on CLOCK_MONOTONIC (for joining with
// BPF events), optional results in vegeta's own encoding, and the validity
// verdict of a round: an attacker that could not keep the schedule, or a
// service that returned too many errors, makes the round invalid rather
// than a pass.
//
// Latency of hit k is measured from its intended send time, not from when
// vegeta got round to sending it. vegeta's ConstantPacer (Freq 1, Per
// interval) schedules tick k (0-based) at began + (k+1)·interval: Pace
// returns (hits+1)·interval − elapsed. Result.Seq numbers hits in the order
// workers take them, and the hit with seq k starts only after k+1 ticks have
// been sent, so its intended time is began + (k+1)·interval and
// Result.Timestamp >= intended (less minSleep: a hit due within 20 µs is
// sent at once). The corrected latency is max(Latency, End − intended),
// recorded with RecordValue only.
//
// The pacer wraps ConstantPacer: it learns vegeta's private start time,
// sleeps on a timerfd instead of time.Sleep (Go's timers oversleep by up to
// 1 ms, see clock_linux.go), and stops after the round's last scheduled
// hit, so a lagging attacker still sends every hit due in the window (late)
// rather than dropping its backlog. Nothing per request is kept in memory:
// results go straight into the histograms and the output files.
package load

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/tailgate-ci/tailgate/internal/latency"
)

// Defaults for the zero values of Config.
const (
	DefaultTimeout      = 10 * time.Second
	DefaultMaxLag       = time.Millisecond
	DefaultMinRateRatio = 0.99
	DefaultMaxErrorRate = 0.001
	DefaultWorkers      = 10
	DefaultConnections  = 10000
	// MaxRate bounds Config.Rate: at 1 ns intervals the schedule loses
	// meaning long before this.
	MaxRate = 1e7
	// endGrace is how long past the measured window a lagging attacker may
	// still send hits that were due inside it; hits still unsent then are
	// counted as omitted (and the round is invalid anyway: it lagged).
	endGrace = 200 * time.Millisecond
	// minSleep is the shortest wait the pacer sleeps for; a hit due sooner
	// is sent at once (a timerfd round trip costs tens of µs in a VM).
	minSleep = 20 * time.Microsecond
)

// ErrNotSupported is returned by Run where CLOCK_MONOTONIC stamps are not
// available (non-Linux).
var ErrNotSupported = errors.New("load: CLOCK_MONOTONIC request windows need Linux")

// Config describes one round. The zero value of each optional field means
// its default.
type Config struct {
	// Rate is the constant request rate per second (required).
	Rate float64
	// Duration is the measured part of the round (required).
	Duration time.Duration
	// Warmup runs at the same rate before the measured part; its requests
	// are sent but not recorded anywhere.
	Warmup time.Duration
	// Timeout bounds each request (default DefaultTimeout); a timed-out
	// request is recorded at its latency with status 0. That latency is a
	// lower bound (the request would have taken at least that long), so a
	// quantile at or above the timeout is one too; it never understates.
	Timeout time.Duration
	// TimeoutsAsErrors counts timed-out requests against MaxErrorRate as
	// well. Without it a timeout is a (censored) latency, not an error: a
	// service too slow to answer within the timeout fails its latency
	// objective instead of making the round invalid.
	TimeoutsAsErrors bool
	// Targeter supplies the requests (required); see ReqgenTargeter and
	// FileTargeter.
	Targeter vegeta.Targeter
	// Name is the attack name (vegeta's X-Vegeta-Attack header and the
	// "attack" field of vegeta results).
	Name string

	// WindowsPath, if set, receives the measured requests' windows.
	WindowsPath string
	// VegetaPath, if set, receives the measured results in vegeta's
	// encoding (VegetaFormat "gob", the default, "json" or "csv"), so
	// `vegeta report` and `vegeta plot` read them. Timestamp is the
	// intended send time and Latency the corrected latency, so vegeta's
	// figures agree with ours.
	VegetaPath   string
	VegetaFormat string

	// MaxLag is the largest send lag of a valid round (default 1 ms).
	MaxLag time.Duration
	// MaxLateFraction relaxes MaxLag by a bounded amount: a round whose
	// own lag exceeds MaxLag stays valid when the sends later than MaxLag
	// (beyond the host's stalls) are at most this fraction of its measured
	// requests (default 0: none may be). Latency runs from the intended
	// send time, so a late send only adds its lag to its own latency: with
	// a fraction f late, every quantile q measured lies between the q−f and
	// q+f quantiles of the round's other requests. A note
	// (NoteLateFraction) records each round that used it.
	MaxLateFraction float64
	// MinRateRatio is the smallest achieved/target rate of a valid round
	// (default 0.99).
	MinRateRatio float64
	// MaxErrorRate is the largest error fraction of a valid round (default
	// DefaultMaxErrorRate); give a negative number to tolerate no error.
	MaxErrorRate float64

	// Workers is vegeta's initial worker count (default 10); MaxWorkers
	// caps it (0: unlimited, as an open-loop attack needs). Connections is
	// the idle connections kept per host (default 10000); MaxConnections
	// caps open connections per host (0: unlimited).
	Workers, MaxWorkers         uint64
	Connections, MaxConnections int

	// GCHeadroom is how much this process's Go memory may grow during the
	// round before its garbage collector runs (default DefaultGCHeadroom;
	// see quietGC): the load generator's own GC cycles delay its sends.
	// Negative leaves the collector as GOGC/GOMEMLIMIT set it.
	GCHeadroom int64

	// Procs, if positive, is this process's GOMAXPROCS while the round
	// runs (0, the default, leaves it): fewer Ps cost the generator less
	// CPU, which the service shares on a small host, but make its sends
	// more exposed to a stalled vCPU (setProcs).
	Procs int

	// Progress, if set, is called about once a second from Run's goroutine
	// with a snapshot; it must return quickly.
	Progress func(Progress)
}

// Progress is a snapshot of a running round.
type Progress struct {
	Elapsed  time.Duration // since the attack began (warm-up included)
	Total    time.Duration // warm-up + duration
	Warmup   bool          // still in the warm-up
	Requests int64         // measured requests completed so far
	Errors   int64
	Rate     float64       // measured completions per second over the last interval
	P99      time.Duration // corrected p99 so far
	MaxLag   time.Duration
}

// MaxLagOnlyShare is the largest share of a round's requests that may have
// gone out late by the load generator's own lag for the round to count as
// invalid only for that lag (Validity.LagOnly): past it, the bursts the
// generator sends after its stalls change the service's load itself.
const MaxLagOnlyShare = 0.01

// Validity.Notes begin with one of these.
const (
	// NoteHostStalls: sends later than the max lag, all inside stalls of
	// the host (a valid round's caveat).
	NoteHostStalls = "host stalls:"
	// NoteTimeouts: requests that timed out, recorded as lower bounds.
	NoteTimeouts = "timeouts:"
	// NoteLateFraction: the generator's own lag went over MaxLag for at
	// most Config.MaxLateFraction of the requests (valid, bounded).
	NoteLateFraction = "late sends:"
)

// Validity says whether a round can be trusted, and if not, why.
type Validity struct {
	Valid        bool
	Reasons      []string
	MaxLag       time.Duration // largest send lag of a measured request
	LagP50       time.Duration // median send lag (µs resolution, 2 digits)
	LagP99       time.Duration // 99th percentile of the send lag
	LateRequests int64         // measured requests sent more than MaxLag late
	Omitted      int64         // scheduled in the window but never sent (attacker too slow)
	AchievedRate float64       // requests sent per second during the measured window
	TargetRate   float64       // the schedule's rate (1/interval)
	// ErrorRate is the errors held to MaxErrorRate (Result.Errors, less
	// the timeouts unless Config.TimeoutsAsErrors) / measured requests.
	ErrorRate float64
	// Bare sleepers woke every 1 ms beside the load generator during the
	// measured window: HostSleepers of them (one pinned to each CPU the
	// witness watches, or one unpinned), HostWakeups wake-ups in all, the
	// latest HostMaxLate late, HostLate of them later than MaxLag. Send
	// lag that they share is the host's timers and scheduling, not the
	// generator's.
	HostSleepers int
	HostWakeups  int64
	HostMaxLate  time.Duration
	HostLate     int64
	// HostWitness is true when those sleepers ran in their own process as
	// SCHED_RR one priority above the load generator's real-time priority,
	// so that nothing of the generator could delay it: its late wake-ups
	// are then stalls of the host (kernel, hypervisor), and the part of a
	// send's lag inside them is excused. OwnMaxLag is the largest part of
	// a send's lag that is not (MaxLag when there is no witness): the round
	// is invalid when it exceeds the max-lag rule. HostExcused counts the
	// sends later than the rule that the host's stalls explain; their
	// latency, measured from the intended send time, includes the stall
	// (conservative).
	HostWitness bool
	OwnMaxLag   time.Duration
	HostExcused int64
	// OwnLate counts the sends later than MaxLag that the host's stalls do
	// not explain (LateRequests − HostExcused): the ones Config.
	// MaxLateFraction bounds.
	OwnLate int64
	// LagOnly is true for an invalid round whose only fault is the load
	// generator's own send lag, on at most MaxLagOnlyShare of its requests
	// (the service answered, on time or not, with no excess errors, and
	// every scheduled request went out): the gate can bracket that lag,
	// and running the round again may give a valid one.
	LagOnly bool
	// OwnLagOnly is true for an invalid round whose only fault is the
	// load generator's own send lag, however many sends it delayed
	// (LagOnly with no cap on their share).
	OwnLagOnly bool
	// Notes are caveats of the round, each starting with a Note* prefix.
	Notes []string
}

// Result is one round's outcome. Hist holds the corrected latencies in µs
// (latency.New geometry); Uncorrected holds the same requests' service
// times (actual send to response), kept to show what coordinated omission
// would hide.
type Result struct {
	Hist        *hdrhistogram.Histogram
	Uncorrected *hdrhistogram.Histogram
	Requests    int64            // measured requests (intended within the window)
	Errors      int64            // transport errors, timeouts and non-2xx/3xx codes
	Timeouts    int64            // requests that hit Config.Timeout
	Codes       map[uint16]int64 // by HTTP status; 0 = no response
	// Start and End bound the measured window (after warm-up), in wall
	// time and on CLOCK_MONOTONIC.
	Start, End         time.Time
	StartMono, EndMono int64
	Interval           time.Duration // between intended sends
	Windows            int64         // windows written to Config.WindowsPath
	Validity           Validity
}

// normalize fills defaults and checks cfg.
func (cfg *Config) normalize() error {
	switch {
	case math.IsNaN(cfg.Rate) || cfg.Rate <= 0 || cfg.Rate > MaxRate:
		return fmt.Errorf("load config: rate %v/s: want a number in (0, %g]", cfg.Rate, MaxRate)
	case cfg.Duration <= 0:
		return fmt.Errorf("load config: duration %v: want > 0", cfg.Duration)
	case cfg.Warmup < 0:
		return fmt.Errorf("load config: warmup %v: want >= 0", cfg.Warmup)
	case cfg.Timeout < 0:
		return fmt.Errorf("load config: timeout %v: want >= 0", cfg.Timeout)
	case cfg.Targeter == nil:
		return errors.New("load config: no targeter")
	case cfg.MinRateRatio < 0 || cfg.MinRateRatio > 1:
		return fmt.Errorf("load config: min rate ratio %v: want [0,1]", cfg.MinRateRatio)
	case cfg.MaxLateFraction < 0 || cfg.MaxLateFraction >= 1 || math.IsNaN(cfg.MaxLateFraction):
		return fmt.Errorf("load config: max late fraction %v: want a fraction in [0,1)", cfg.MaxLateFraction)
	case cfg.MaxErrorRate > 1:
		return fmt.Errorf("load config: max error rate %v: want <= 1", cfg.MaxErrorRate)
	case cfg.MaxLag < 0:
		return fmt.Errorf("load config: max lag %v: want >= 0", cfg.MaxLag)
	}
	switch cfg.VegetaFormat {
	case "", "gob", "json", "csv":
	default:
		return fmt.Errorf("load config: vegeta format %q: want gob, json or csv", cfg.VegetaFormat)
	}
	if strings.ContainsAny(cfg.Name, "\r\n") {
		return fmt.Errorf("load config: name %q contains a line break", cfg.Name)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxLag == 0 {
		cfg.MaxLag = DefaultMaxLag
	}
	if cfg.MinRateRatio == 0 {
		cfg.MinRateRatio = DefaultMinRateRatio
	}
	switch {
	case cfg.MaxErrorRate == 0:
		cfg.MaxErrorRate = DefaultMaxErrorRate
	case cfg.MaxErrorRate < 0:
		cfg.MaxErrorRate = 0
	}
	if cfg.Workers == 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.Connections == 0 {
		cfg.Connections = DefaultConnections
	}
	if cfg.GCHeadroom == 0 {
		cfg.GCHeadroom = DefaultGCHeadroom
	}
	return nil
}

// interval returns the schedule's interval for rate (whole ns, >= 1).
func interval(rate float64) time.Duration {
	iv := time.Duration(math.Round(1e9 / rate))
	if iv < 1 {
		iv = 1
	}
	return iv
}

// Run performs one round: Warmup then Duration at cfg.Rate. It returns the
// round's result even when the round is invalid (see Result.Validity); an
// error means the round could not be run or recorded (bad config, an
// unwritable output, a cancelled context — then the partial result is
// returned too).
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	if !clockSupported {
		return nil, ErrNotSupported
	}
	growFDTable() // once per process: see fdtable_linux.go
	defer quietGC(cfg.GCHeadroom)()
	defer setProcs(cfg.Procs)()
	iv := interval(cfg.Rate)
	// Hit k (0-based) is due at (k+1)·iv after began, never at 0, so the
	// measured window is (Warmup, Warmup+Duration]: hits k = first..total-1
	// with Warmup < (k+1)·iv <= Warmup+Duration, Duration/iv of them.
	total := uint64(int64(cfg.Warmup+cfg.Duration) / int64(iv))
	first := uint64(int64(cfg.Warmup) / int64(iv))
	if total <= first {
		return nil, fmt.Errorf("load config: duration %v holds no request at %v/s (one every %v)", cfg.Duration, cfg.Rate, iv)
	}
	r := &runner{
		expected: int64(total - first),
		cfg:      cfg,
		iv:       iv,
		warm:     int64(cfg.Warmup),
		end:      int64(cfg.Warmup + cfg.Duration),
		clock:    calibrate(),
		res:      &Result{Hist: latency.New(), Uncorrected: latency.New(), Codes: map[uint16]int64{}, Interval: iv},
		pacer:    &monoPacer{inner: vegeta.ConstantPacer{Freq: 1, Per: iv}, total: total},
	}
	r.lags = hdrhistogram.New(latency.MinValue, latency.MaxValue, 2)
	if sl, err := newSleeper(iv); err == nil {
		r.pacer.sleep = sl
		defer sl.close() // after the attack: the pacer goroutine has exited
	}
	r.pacer.began.Store(math.MaxInt64)
	if err := r.openOutputs(); err != nil {
		r.closeOutputs()
		return nil, err
	}
	probe := startHostProbe(ctx)
	err := r.attack(ctx)
	r.bounds()
	pr := probe.finish()
	r.hostWakeups(pr.ws)
	r.ownLag(pr)
	if cerr := r.closeOutputs(); err == nil {
		err = cerr
	}
	r.validity()
	return r.res, err
}

// hostWakeups keeps what the bare sleeper beside the round saw during the
// measured window: how late the host itself woke a thread while the
// load generator sent (Validity.HostMaxLate).
func (r *runner) hostWakeups(ws []wakeup) {
	v := &r.res.Validity
	for _, w := range ws {
		if w.at <= r.res.StartMono || w.at > r.res.EndMono {
			continue
		}
		v.HostWakeups++
		v.HostMaxLate = max(v.HostMaxLate, w.late)
		if w.late > r.cfg.MaxLag {
			v.HostLate++
		}
	}
}

// maxLateKept bounds the late sends a round remembers for ownLag; later
// ones are never excused.
const maxLateKept = 1 << 16

// lateSend is a measured request sent later than the max-lag rule
// (CLOCK_MONOTONIC ns).
type lateSend struct{ intended, sent int64 }

// ownLag works out how much of each late send's lag the host's stalls
// explain. A witness wake-up due at `at` and made `late` after it says the
// host ran no thread of the witness's priority on that sleeper's CPU in
// [at, at+late]; the part of a send's lag [intended, sent] outside the
// times when every watched CPU was so stalled is the load generator's own.
// Every CPU, not any: a stall of one CPU can be the load generator's own
// doing — at a rate it cannot sustain, a sleeper pinned to a CPU the
// generator saturated (kernel and softirq work it caused) went 400 ms
// without a wake-up while the other CPU's woke on time
// (TestHonestAttackerWitnessed) — and it would then excuse itself.
// Without a witness nothing is excused.
func (r *runner) ownLag(pr probeResult) {
	v := &r.res.Validity
	v.HostWitness = pr.witness
	v.HostSleepers = pr.sleepers
	own := r.onTimeMax
	if r.lateDropped > own {
		own = r.lateDropped
	}
	stalls := commonStalls(pr.perSleeper)
	for _, ls := range r.lateSends {
		o := ls.sent - ls.intended
		if pr.witness {
			o -= covered(stalls, ls.intended, ls.sent)
		}
		if o <= int64(r.cfg.MaxLag) {
			v.HostExcused++
		}
		own = max(own, o)
	}
	v.OwnMaxLag = time.Duration(own)
	v.OwnLate = r.late - v.HostExcused
}

// minStall is the least lateness of a witness wake-up that counts as a
// stall of the host: below it is the witness's ordinary wake-up latency
// (tens of µs here), which excuses nothing.
const minStall = 200 * time.Microsecond

// mergeStalls turns wake-ups later than minStall into sorted, disjoint
// intervals [at, at+late].
func mergeStalls(ws []wakeup) [][2]int64 {
	var out [][2]int64
	for _, w := range ws {
		if w.late <= minStall {
			continue
		}
		a, b := w.at, w.at+int64(w.late)
		if n := len(out); n > 0 && a <= out[n-1][1] {
			out[n-1][1] = max(out[n-1][1], b)
			continue
		}
		out = append(out, [2]int64{a, b})
	}
	return out
}

// commonStalls is the stalls (mergeStalls) of each sleeper, intersected:
// the times when no watched CPU ran its sleeper.
func commonStalls(per [][]wakeup) [][2]int64 {
	if len(per) == 0 {
		return nil
	}
	out := mergeStalls(per[0])
	for _, ws := range per[1:] {
		out = intersectStalls(out, mergeStalls(ws))
	}
	return out
}

// intersectStalls intersects two sorted, disjoint interval lists.
func intersectStalls(a, b [][2]int64) [][2]int64 {
	var out [][2]int64
	for i, j := 0, 0; i < len(a) && j < len(b); {
		lo, hi := max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
		if lo < hi {
			out = append(out, [2]int64{lo, hi})
		}
		if a[i][1] < b[j][1] {
			i++
		} else {
			j++
		}
	}
	return out
}

// covered is the length of [from, to] inside the sorted, disjoint stalls.
func covered(stalls [][2]int64, from, to int64) int64 {
	i := sort.Search(len(stalls), func(i int) bool { return stalls[i][1] > from })
	var c int64
	for ; i < len(stalls) && stalls[i][0] < to; i++ {
		c += min(to, stalls[i][1]) - max(from, stalls[i][0])
	}
	return c
}

// runner is the state of one Run; everything but pacer is touched only by
// Run's goroutine.
type runner struct {
	cfg       Config
	expected  int64 // scheduled hits in the measured window
	iv        time.Duration
	warm, end int64 // measured window, ns after began
	clock     clockMap
	pacer     *monoPacer
	res       *Result

	ww      *WindowWriter
	wf      *os.File // the windows file, to patch StartMono into its header
	vf      *os.File
	vbw     *bufio.Writer
	venc    vegeta.Encoder
	lags    *hdrhistogram.Histogram // send lag, µs, 2 significant digits (~20 KB)
	sentIn  int64                   // hits whose actual send fell in the measured window
	maxLag  int64
	late    int64
	lastErr error
	// For ownLag: the late sends (up to maxLateKept), the largest lag of
	// one beyond that, and the largest lag of a send within the rule.
	lateSends   []lateSend
	lateDropped int64
	onTimeMax   int64
}

func (r *runner) openOutputs() error {
	if r.cfg.WindowsPath != "" {
		f, err := os.Create(r.cfg.WindowsPath)
		if err != nil {
			return fmt.Errorf("create windows file: %w", err)
		}
		r.wf = f
		// The attack has not begun, so StartMono is not known yet: it is
		// patched into the header when the round ends.
		ww, err := NewWindowWriter(struct{ io.Writer }{f}, WindowHeader{Interval: r.iv})
		if err != nil {
			return fmt.Errorf("%s: %w", r.cfg.WindowsPath, err)
		}
		r.ww = ww
	}
	if r.cfg.VegetaPath != "" {
		f, err := os.Create(r.cfg.VegetaPath)
		if err != nil {
			return fmt.Errorf("create vegeta results: %w", err)
		}
		r.vf = f
		r.vbw = bufio.NewWriterSize(f, 32<<10)
		switch r.cfg.VegetaFormat {
		case "", "gob":
			r.venc = vegeta.NewEncoder(r.vbw)
		case "json":
			r.venc = vegeta.NewJSONEncoder(r.vbw)
		case "csv":
			r.venc = vegeta.NewCSVEncoder(r.vbw)
		}
	}
	return nil
}

// closeOutputs flushes and closes the output files, patching the measured
// window's start into the windows header.
func (r *runner) closeOutputs() error {
	var errs []error
	if r.ww != nil {
		if err := r.ww.Flush(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.cfg.WindowsPath, err))
		}
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], uint64(r.res.StartMono))
		if _, err := r.wf.WriteAt(b[:], 32); err != nil {
			errs = append(errs, fmt.Errorf("%s: patch header: %w", r.cfg.WindowsPath, err))
		}
		r.res.Windows = r.ww.Count()
		r.ww = nil
	}
	if r.wf != nil {
		if err := r.wf.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close windows file: %w", err))
		}
		r.wf = nil
	}
	if r.vbw != nil {
		if err := r.vbw.Flush(); err != nil {
			errs = append(errs, fmt.Errorf("write vegeta results %s: %w", r.cfg.VegetaPath, err))
		}
		r.vbw = nil
	}
	if r.vf != nil {
		if err := r.vf.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close vegeta results: %w", err))
		}
		r.vf = nil
	}
	return errors.Join(errs...)
}

// resultQueue is how many results queueResults holds for the record loop:
// 4 s at 1000/s, 32 KiB of pointers.
const resultQueue = 4096

// queueResults takes vegeta's results as they come and holds them for the
// record loop. vegeta hands each result over an unbuffered channel, so a
// worker cannot take its next tick until the record loop has taken its
// last result: a record loop delayed for a moment (descheduled, a GC
// assist, the progress callback) holds every worker, and the pacer's next
// tick then waits for a new worker goroutine to be started and scheduled.
func queueResults(in <-chan *vegeta.Result) <-chan *vegeta.Result {
	out := make(chan *vegeta.Result, resultQueue)
	go func() {
		defer close(out)
		for res := range in {
			out <- res
		}
	}()
	return out
}

func (r *runner) attack(ctx context.Context) error {
	cfg := r.cfg
	// Our own transport (vegeta's options then configure it), so the
	// round's keep-alive connections — with their goroutines and buffers —
	// are closed when it ends instead of idling until the server drops
	// them: rounds must not leak into each other.
	tr := &http.Transport{
		Proxy:           http.ProxyFromEnvironment,
		DialContext:     (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig: &tls.Config{},
	}
	defer tr.CloseIdleConnections()
	opts := []func(*vegeta.Attacker){
		vegeta.Client(&http.Client{Transport: tr}),
		vegeta.Workers(cfg.Workers),
		vegeta.Connections(cfg.Connections),
		vegeta.MaxConnections(cfg.MaxConnections),
		vegeta.Timeout(cfg.Timeout),
		vegeta.KeepAlive(true),
		vegeta.HTTP2(false),
		// Read no body into memory: vegeta then drains it to io.Discard.
		// Results are not kept, and bodies would dominate the garbage.
		vegeta.MaxBody(0),
		vegeta.Redirects(vegeta.NoFollow),
	}
	if cfg.MaxWorkers > 0 {
		opts = append(opts, vegeta.MaxWorkers(cfg.MaxWorkers))
	}
	atk := vegeta.NewAttacker(opts...)
	sl := r.pacer.sleep // read before the pacer goroutine may drop it
	total := cfg.Warmup + cfg.Duration
	// The pacer stops after the last scheduled hit; the duration only
	// bounds how long a lagging attacker may keep catching up.
	results := queueResults(atk.Attack(cfg.Targeter, r.pacer, total+endGrace, cfg.Name))

	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var (
		done      = ctx.Done()
		ctxErr    error
		lastN     int64
		lastT     = time.Now()
		startWall = time.Now()
	)
	for {
		select {
		case res, ok := <-results:
			if !ok {
				return errors.Join(ctxErr, r.lastErr)
			}
			if err := r.record(res); err != nil && r.lastErr == nil {
				r.lastErr = err
				atk.Stop()
			}
		case <-tick.C:
			if cfg.Progress != nil {
				now := time.Now()
				el := now.Sub(startWall)
				n := r.res.Requests
				cfg.Progress(Progress{
					Elapsed:  el,
					Total:    total,
					Warmup:   el < cfg.Warmup,
					Requests: n,
					Errors:   r.res.Errors,
					Rate:     float64(n-lastN) / now.Sub(lastT).Seconds(),
					P99:      latency.Quantile(r.res.Hist, 0.99),
					MaxLag:   time.Duration(r.maxLag),
				})
				lastN, lastT = n, now
			}
		case <-done:
			ctxErr = fmt.Errorf("load round interrupted: %w", ctx.Err())
			done = nil
			atk.Stop()
			if sl != nil {
				sl.wake() // the pacer may be waiting out a long interval
			}
		}
	}
}

// record accounts one vegeta result.
func (r *runner) record(res *vegeta.Result) error {
	off := int64(res.Seq+1) * int64(r.iv) // intended, ns after began
	sent := r.clock.mono(res.Timestamp)
	// began is known from the pacer (see monoPacer); a hit never starts
	// more than minSleep before its due time, so a send stamp earlier than
	// that means the estimate of began is late: tighten it.
	began := r.pacer.began.Load()
	if b := sent - off + int64(minSleep); b < began {
		began = b
		r.pacer.lower(b)
	}

	sentOff := sent - began
	if sentOff >= r.warm && sentOff < r.end {
		r.sentIn++
	}
	if off <= r.warm || off > r.end {
		return nil // warm-up, or a tick past the end of the window
	}

	intended := began + off
	received := sent + int64(res.Latency)
	lag := sent - intended
	if lag > r.maxLag {
		r.maxLag = lag
	}
	if lag > int64(r.cfg.MaxLag) {
		r.late++
		if len(r.lateSends) < maxLateKept {
			r.lateSends = append(r.lateSends, lateSend{intended: intended, sent: sent})
		} else {
			r.lateDropped = max(r.lateDropped, lag)
		}
	} else {
		r.onTimeMax = max(r.onTimeMax, lag)
	}
	_ = r.lags.RecordValue(latency.Micros(time.Duration(lag))) // clamped: cannot fail
	corrected := res.Latency
	if c := time.Duration(received - intended); c > corrected {
		corrected = c
	}
	rs := r.res
	rs.Requests++
	rs.Codes[res.Code]++
	if res.Error != "" {
		rs.Errors++
		if isTimeout(res.Error) {
			rs.Timeouts++
		}
	}
	if err := latency.Record(rs.Hist, corrected); err != nil {
		return err
	}
	if err := latency.Record(rs.Uncorrected, res.Latency); err != nil {
		return err
	}
	if r.ww != nil {
		if err := r.ww.Write(Window{Seq: res.Seq, Intended: intended, Sent: sent, Received: received, Status: res.Code}); err != nil {
			return fmt.Errorf("%s: %w", r.cfg.WindowsPath, err)
		}
	}
	if r.venc != nil {
		// vegeta's view with the correction applied: the hit "started" at
		// its intended time and took the corrected latency; End() is
		// unchanged.
		res.Timestamp = r.clock.wall(intended)
		res.Latency = corrected
		res.Body, res.Headers = nil, nil
		if err := r.venc.Encode(res); err != nil {
			return fmt.Errorf("write vegeta results %s: %w", r.cfg.VegetaPath, err)
		}
	}
	return nil
}

// isTimeout recognises net/http's client timeout errors in vegeta's
// stringified Result.Error.
func isTimeout(msg string) bool {
	return strings.Contains(msg, "Client.Timeout exceeded") ||
		strings.Contains(msg, "context deadline exceeded") ||
		strings.Contains(msg, "i/o timeout")
}

// bounds sets the measured window's bounds.
func (r *runner) bounds() {
	rs := r.res
	began := r.pacer.began.Load()
	if began == math.MaxInt64 { // the attack never started
		began = r.clock.mono(time.Now())
	}
	rs.StartMono = began + r.warm
	rs.EndMono = began + r.end
	rs.Start = r.clock.wall(rs.StartMono)
	rs.End = r.clock.wall(rs.EndMono)
}

// validity computes the round's validity verdict.
func (r *runner) validity() {
	rs, cfg := r.res, r.cfg
	v := &rs.Validity
	v.TargetRate = 1e9 / float64(r.iv)
	v.AchievedRate = float64(r.sentIn) / cfg.Duration.Seconds()
	v.MaxLag = time.Duration(r.maxLag)
	v.LateRequests = r.late
	v.LagP50 = time.Duration(r.lags.ValueAtQuantile(50)) * time.Microsecond
	v.LagP99 = time.Duration(r.lags.ValueAtQuantile(99)) * time.Microsecond
	v.Omitted = r.expected - rs.Requests
	failed := rs.Errors
	if !cfg.TimeoutsAsErrors {
		failed -= rs.Timeouts
	}
	if rs.Requests > 0 {
		v.ErrorRate = float64(failed) / float64(rs.Requests)
	}
	if rs.Timeouts > 0 && !cfg.TimeoutsAsErrors {
		v.Notes = append(v.Notes, fmt.Sprintf(NoteTimeouts+" %d of %d requests (%.3f%%) got no answer within %v; each is recorded at its latency (>= %v), a lower bound, so any quantile at or above %v is one too",
			rs.Timeouts, rs.Requests, 100*float64(rs.Timeouts)/float64(rs.Requests), cfg.Timeout, cfg.Timeout, cfg.Timeout))
	}
	if rs.Requests == 0 {
		v.Reasons = append(v.Reasons, "no requests measured")
	}
	if v.Omitted > 0 {
		v.Reasons = append(v.Reasons, fmt.Sprintf("%d of %d scheduled requests were never sent", v.Omitted, r.expected))
	}
	host := ""
	if v.HostWakeups > 0 {
		who := "a bare sleeper"
		switch {
		case v.HostWitness && v.HostSleepers > 1:
			who = fmt.Sprintf("bare SCHED_RR sleepers above the load generator, one on each of %d CPUs,", v.HostSleepers)
		case v.HostWitness:
			who = "a bare SCHED_RR sleeper above the load generator"
		}
		host = fmt.Sprintf("%s woke up to %v late (%d of %d wake-ups > %v)",
			who, v.HostMaxLate.Round(time.Microsecond), v.HostLate, v.HostWakeups, cfg.MaxLag)
	}
	ownLate := v.OwnMaxLag > cfg.MaxLag
	bounded := ownLate && cfg.MaxLateFraction > 0 && rs.Requests > 0 && float64(v.OwnLate) <= cfg.MaxLateFraction*float64(rs.Requests)
	switch {
	case bounded:
		// Few enough late sends that no quantile moves by more than
		// MaxLateFraction (see Config.MaxLateFraction).
		f := 100 * float64(v.OwnLate) / float64(rs.Requests)
		note := fmt.Sprintf(NoteLateFraction+" %d of %d requests (%.3f%%; the rule allows %.3g%%) went out more than %v late by the load generator's own lag (up to %v); each one's latency includes its lag, so any quantile q measured here lies between the q-%.3g%% and q+%.3g%% quantiles of the round's other requests (all sent within %v or inside stalls of the host)",
			v.OwnLate, rs.Requests, f, 100*cfg.MaxLateFraction, cfg.MaxLag, v.OwnMaxLag.Round(time.Microsecond), f, f, cfg.MaxLag)
		if host != "" {
			note += "; " + host
		}
		v.Notes = append(v.Notes, note)
	case ownLate:
		reason := fmt.Sprintf("attacker lagged: max send lag %v > %v (%d of %d requests late)",
			v.MaxLag.Round(time.Microsecond), cfg.MaxLag, r.late, rs.Requests)
		if v.HostWitness && v.OwnMaxLag < v.MaxLag {
			reason += fmt.Sprintf(", %v of it outside the host's stalls", v.OwnMaxLag.Round(time.Microsecond))
		}
		if cfg.MaxLateFraction > 0 {
			reason += fmt.Sprintf(", %d of them (%.3f%%) by its own lag, over the %.3g%% the rule allows", v.OwnLate,
				100*float64(v.OwnLate)/float64(max(rs.Requests, 1)), 100*cfg.MaxLateFraction)
		}
		if host != "" {
			reason += "; " + host
			if !v.HostWitness {
				reason += ", not a witness above the load generator, so none of the lag is excused"
			}
		}
		v.Reasons = append(v.Reasons, reason)
	case v.MaxLag > cfg.MaxLag:
		v.Notes = append(v.Notes, fmt.Sprintf(NoteHostStalls+" %d of %d requests sent more than %v late (up to %v), all inside stalls of the host: %s; the load generator's own lag stayed within %v; those requests' latency includes the stall",
			r.late, rs.Requests, cfg.MaxLag, v.MaxLag.Round(time.Microsecond), host, v.OwnMaxLag.Round(time.Microsecond)))
	}
	// A rate short only because the last sends of the window went out
	// after its end (all sent, late by at most the max lag) is the lag's
	// doing, already judged above.
	rateByLag := false
	if ratio := v.AchievedRate / v.TargetRate; ratio < cfg.MinRateRatio {
		short := time.Duration((1 - ratio) * float64(cfg.Duration))
		rateByLag = ownLate && v.Omitted == 0 && short <= v.MaxLag+time.Duration(r.iv)
		reason := fmt.Sprintf("achieved rate %.1f/s is %.1f%% of the target %.1f/s (< %.0f%%)",
			v.AchievedRate, 100*ratio, v.TargetRate, 100*cfg.MinRateRatio)
		if rateByLag {
			reason += fmt.Sprintf(": every request was sent, the last %v of the window's after its end (the lag above)", short.Round(time.Millisecond))
		}
		v.Reasons = append(v.Reasons, reason)
	}
	if v.ErrorRate > cfg.MaxErrorRate {
		what := fmt.Sprintf("%d errors", failed)
		if rs.Timeouts > 0 && !cfg.TimeoutsAsErrors {
			what = fmt.Sprintf("%d errors besides %d timeouts", failed, rs.Timeouts)
		}
		v.Reasons = append(v.Reasons, fmt.Sprintf("error rate %.3f%% > %.3f%% (%s: %s)",
			100*v.ErrorRate, 100*cfg.MaxErrorRate, what, codesSummary(rs.Codes)))
	}
	v.Valid = len(v.Reasons) == 0
	lagReasons := 1
	if rateByLag {
		lagReasons = 2
	}
	// Beyond MaxLagOnlyShare of late sends the generator's bursts change
	// what the service sees too much to take the round as the service's.
	v.OwnLagOnly = ownLate && len(v.Reasons) == lagReasons && rs.Requests > 0
	v.LagOnly = v.OwnLagOnly && float64(v.OwnLate) <= MaxLagOnlyShare*float64(rs.Requests)
}

// codesSummary lists status counts, e.g. "0×3 503×12".
func codesSummary(codes map[uint16]int64) string {
	keys := make([]int, 0, len(codes))
	for c := range codes {
		keys = append(keys, int(c))
	}
	sort.Ints(keys)
	var b strings.Builder
	for i, c := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%d×%d", c, codes[uint16(c)])
	}
	return b.String()
}

// monoPacer wraps vegeta's ConstantPacer to learn when the attack began.
// vegeta keeps its start time private, but passes elapsed = time.Since(began)
// to every Pace call; now − elapsed, read right after, is a slightly late
// estimate of began, and the minimum over all calls converges on it
// (results tighten it further, see runner.record).
//
// It also stops the attack after the round's last scheduled hit, so a
// lagging attacker still sends every hit due in the window (late, which
// the lag check reports) instead of dropping the backlog at the deadline.
type monoPacer struct {
	inner vegeta.ConstantPacer
	total uint64
	sleep *sleeper // nil: let vegeta sleep (time.Sleep)
	began atomicMin
}

func (p *monoPacer) Pace(elapsed time.Duration, hits uint64) (time.Duration, bool) {
	p.lower(monoNow() - int64(elapsed))
	if hits >= p.total {
		return 0, true
	}
	wait, stop := p.inner.Pace(elapsed, hits)
	if stop || p.sleep == nil {
		return wait, stop
	}
	if wait < minSleep {
		// Closer than a wake-up could honour: send now, a few µs early,
		// rather than pay two syscalls to be late.
		return 0, false
	}
	// Sleep here, precisely, until the hit's intended time on the same
	// estimate of began that the windows use; vegeta's own time.Sleep then
	// gets 0 and returns at once. If the timerfd fails, fall back to
	// vegeta's sleep for the rest of the round.
	if err := p.sleep.tick(p.began.Load(), hits); err != nil {
		p.sleep = nil
		return wait, false
	}
	return 0, false
}

func (p *monoPacer) Rate(elapsed time.Duration) float64 { return p.inner.Rate(elapsed) }

func (p *monoPacer) lower(v int64) { p.began.lower(v) }

// atomicMin is an int64 that only decreases.
type atomicMin struct {
	mu sync.Mutex
	v  int64
}

func (a *atomicMin) Store(v int64) { a.mu.Lock(); a.v = v; a.mu.Unlock() }
func (a *atomicMin) Load() int64   { a.mu.Lock(); defer a.mu.Unlock(); return a.v }
func (a *atomicMin) lower(v int64) {
	a.mu.Lock()
	if v < a.v {
		a.v = v
	}
	a.mu.Unlock()
}
