package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/tailgate-ci/tailgate/bidder/reqgen"
	"github.com/tailgate-ci/tailgate/internal/deploy"
	"github.com/tailgate-ci/tailgate/internal/experiment"
	"github.com/tailgate-ci/tailgate/internal/latency"
	"github.com/tailgate-ci/tailgate/internal/load"
	"github.com/tailgate-ci/tailgate/internal/rules"
	perfrules "github.com/tailgate-ci/tailgate/perf-rules"
)

func init() {
	register(command{
		name:    "run",
		summary: "deploy the service and measure its latency at a constant rate",
		run:     runRun,
	})
}

// RunSchemaVersion is the version of summary.json; bump it when a field
// changes meaning or disappears (adding fields is compatible).
const RunSchemaVersion = 1

// runProgressEvery is how often a non-terminal (CI log) gets a progress
// line; a terminal gets a live line every second.
const runProgressEvery = 5 * time.Second

const runUsage = `usage: tailgate run [flags]

Builds the service named by the rules at --ref, runs its prepare commands,
starts it (and its neighbours), warms it up at the rate for --warmup, then
drives it at a constant rate for --rounds rounds (each an unrecorded
--round-warmup, then --duration recorded), and writes the results
directory: per-round histograms (.hist, V2 compressed), run.hlog, request
windows, summary.json. After the warm-up the load generator's threads are
raised (--attacker-priority, as tailgate gate) so the pacer is not woken late
behind the service and its neighbours. An invalid run (attacker lag, rate shortfall, errors,
a crash) exits 1; bad flags or rules exit 2.

flags:
`

// runOptions are the parsed flags of `tailgate run`.
type runOptions struct {
	rulesPath string
	repo      string
	ref       string
	out       string
	vegeta    bool
	rate      float64
	duration  time.Duration
	warmup    time.Duration
	roundWarm time.Duration
	rounds    int
	env       []string
	priority  string
	set       map[string]bool
}

func parseRunFlags(args []string, stderr io.Writer) (*runOptions, error) {
	o := &runOptions{set: map[string]bool{}}
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, runUsage)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.rulesPath, "rules", "", "perf-rules file (default: the embedded "+perfrules.BidderName+")")
	fs.StringVar(&o.repo, "repo", ".", "repository to build the service from")
	fs.StringVar(&o.ref, "ref", "", "git ref to build (default: the working tree, uncommitted changes included)")
	fs.StringVar(&o.out, "out", "", "results directory (default: tailgate-run-<UTC time>)")
	fs.BoolVar(&o.vegeta, "vegeta", false, "also write each round's results in vegeta's gob encoding (for vegeta report/plot)")
	fs.Func("rate", "requests per second, e.g. 1500 or 1500/s (default: the rules' load.rate)", func(s string) error {
		v, err := rules.ParseRate(s)
		o.rate = v
		return err
	})
	durFlag := func(dst *time.Duration, positive bool) func(string) error {
		return func(s string) error {
			d, err := time.ParseDuration(s)
			if err != nil {
				return fmt.Errorf("%q is not a duration: want a number with a unit, like 30s", s)
			}
			if d < 0 || (positive && d == 0) {
				return fmt.Errorf("%s: must be positive", s)
			}
			*dst = d
			return nil
		}
	}
	fs.Func("duration", "measured length of each round, e.g. 20s (default: the rules' load.duration)", durFlag(&o.duration, true))
	fs.Func("warmup", "unrecorded warm-up after the start, before the first round (default: the rules' load.warmup)", durFlag(&o.warmup, false))
	fs.Func("round-warmup", "unrecorded lead-in of each round (default: the rules' load.round_warmup)", durFlag(&o.roundWarm, false))
	fs.IntVar(&o.rounds, "rounds", 0, "number of rounds (default: the rules' load.rounds)")
	fs.Func("env", "KEY=VALUE added to the service's environment, after the rules' env (repeatable), e.g. BIDDER_FIXES=gc", func(s string) error {
		k, _, ok := strings.Cut(s, "=")
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return fmt.Errorf("%q: want KEY=VALUE", s)
		}
		o.env = append(o.env, s)
		return nil
	})
	fs.StringVar(&o.priority, "attacker-priority", experiment.PriorityRealtime, "load generator threads once the service and its neighbours run: rt (SCHED_RR 1), nice (-19, and the session autogroup) or none; needs root (as tailgate gate)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usageErrorf("run: %v", err)
	}
	if fs.NArg() > 0 {
		return nil, usageErrorf("run: unexpected arguments %q", fs.Args())
	}
	fs.Visit(func(f *flag.Flag) { o.set[f.Name] = true })
	switch o.priority {
	case experiment.PriorityRealtime, experiment.PriorityNice, experiment.PriorityNone:
	default:
		return nil, usageErrorf("run: --attacker-priority %q: want rt, nice or none", o.priority)
	}
	if o.set["rounds"] && o.rounds < 1 {
		return nil, usageErrorf("run: --rounds %d: want at least 1", o.rounds)
	}
	return o, nil
}

// loadRunRules returns the rules from --rules, or the embedded default, with
// the flag overrides applied.
func loadRunRules(o *runOptions) (*rules.Rules, []byte, error) {
	r, raw, err := readRules("run", o.rulesPath)
	if err != nil {
		return nil, nil, err
	}
	if o.set["rate"] {
		r.Load.Rate = rules.Rate(o.rate)
	}
	if o.set["duration"] {
		r.Load.Duration = o.duration
	}
	if o.set["warmup"] {
		r.Load.Warmup = o.warmup
	}
	if o.set["round-warmup"] {
		r.Load.RoundWarmup = o.roundWarm
	}
	if o.set["rounds"] {
		r.Load.Rounds = o.rounds
	}
	return r, raw, nil
}

func runRun(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	o, err := parseRunFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	r, raw, err := loadRunRules(o)
	if err != nil {
		return err
	}
	if r.Service.Bin != "" && o.ref != "" {
		return usageErrorf("run: --ref needs service.build in the rules; %s gives a prebuilt service.bin", r.Path)
	}
	out := o.out
	if out == "" {
		out = "tailgate-run-" + time.Now().UTC().Format("20060102-150405")
	}
	if err := makeResultsDir(out); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "rules.yaml"), raw, 0o644); err != nil {
		return fmt.Errorf("run: %w", err)
	}
	fmt.Fprintf(stderr, "results: %s (rules %s)\n", out, r.Path)

	port := r.Service.Port
	if port == 0 {
		if port, err = deploy.FreePort(); err != nil {
			return fmt.Errorf("run: pick a port: %w", err)
		}
	}
	// The targets are checked before anything is built: a malformed file
	// is the user's to fix and costs no deploy.
	if _, err := makeTargeter(r, map[string]string{rules.VarPort: strconv.Itoa(port)}, 0); err != nil {
		return usageErrorf("run: %v", err)
	}
	plan, err := deploy.NewPlan(ctx, r, deploy.PlanOptions{
		Repo: o.repo, Ref: o.ref, Port: port, LogDir: out, Progress: stderr,
	})
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	defer plan.Close()
	plan.Env = o.env
	if err := plan.Prepare(ctx); err != nil {
		return fmt.Errorf("run: %w", err)
	}
	svc, err := plan.Start(ctx)
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	defer svc.Stop(context.Background())
	for _, w := range svc.Warnings() {
		fmt.Fprintln(stderr, "warning:", w)
	}
	vars := plan.Vars()
	bin := plan.Bin

	if err := preflight(r, vars); err != nil {
		return fmt.Errorf("run: %w", err)
	}

	sum := &runSummary{
		SchemaVersion: RunSchemaVersion,
		Command:       "tailgate run",
		Rules:         r.Path,
		Ref:           deploy.RefName(o.ref),
		Commit:        plan.Commit,
		Env:           o.env,
		Dirty:         plan.Dirty,
		Service:       serviceSummary{Name: plan.Name(), Binary: bin, PID: svc.PID(), Port: port, Log: "service.log", Warnings: svc.Warnings()},
		Load: loadSummary{
			Targets: r.Load.Targets.Kind, Rate: r.Load.Rate.PerSecond(), Duration: r.Load.Duration.String(),
			Warmup: r.Load.Warmup.String(), RoundWarmup: r.Load.RoundWarmup.String(), Rounds: r.Load.Rounds, Timeout: r.Load.Timeout.String(),
			Timeouts: r.Load.Timeouts, MaxErrorRate: r.Load.MaxErrorRate, Seed: r.Load.Seed,
		},
		Started: time.Now().UTC(),
	}
	rr := &roundRunner{r: r, vars: vars, out: out, vegeta: o.vegeta, svc: svc, stderr: stderr,
		live: isTerminal(stderr), priority: o.priority}
	runErr := rr.runRounds(ctx, sum)
	rr.restorePriority()
	svc.Stop(context.Background())
	if err := svc.ExitErr(); err != nil && !sum.hasReason("exited") {
		sum.Invalid = append(sum.Invalid, err.Error())
	}
	sum.Finished = time.Now().UTC()
	if err := rr.finish(sum); err != nil && runErr == nil {
		runErr = err
	}
	sum.Valid = runErr == nil && len(sum.Invalid) == 0
	if err := writeJSON(filepath.Join(out, "summary.json"), sum); err != nil && runErr == nil {
		runErr = err
	}
	printRunSummary(stdout, sum, out)
	if runErr != nil {
		return fmt.Errorf("run: %w", runErr)
	}
	if !sum.Valid {
		return withExit(ExitError, fmt.Errorf("run invalid (not a pass): %s", strings.Join(sum.Invalid, "; ")))
	}
	return nil
}

// makeResultsDir creates dir, refusing to mix results into a non-empty one.
func makeResultsDir(dir string) error {
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return usageErrorf("run: --out %s already holds results; give a new directory", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("run: create results directory: %w", err)
	}
	return nil
}

// warmupSeedOffset shifts the warm-up's reqgen seed, so the warm-up does
// not pre-warm exactly the requests the rounds then measure.
const warmupSeedOffset = 1_000_003

// makeTargeter builds the rules' targeter; each call starts a fresh
// sequence, so every round replays the same requests (rounds, and arms of
// an experiment, are compared on identical input). seedOffset shifts the
// reqgen seed.
func makeTargeter(r *rules.Rules, vars map[string]string, seedOffset int64) (vegeta.Targeter, error) {
	t := r.Load.Targets
	switch t.Kind {
	case rules.TargetsReqgen:
		return load.ReqgenTargeter(rules.Expand(t.URL, vars), r.Load.Seed+seedOffset, reqgen.Options{Users: t.Users})
	case rules.TargetsFile:
		return load.FileTargeter(r.Resolve(t.File), t.Format)
	}
	return nil, fmt.Errorf("unknown targets kind %q", t.Kind)
}

// preflight connects to the first target's host, so an unreachable service
// is named as such rather than surfacing as a 100% error rate.
func preflight(r *rules.Rules, vars map[string]string) error {
	tr, err := makeTargeter(r, vars, 0)
	if err != nil {
		return err
	}
	var tgt vegeta.Target
	if err := tr(&tgt); err != nil {
		return fmt.Errorf("first target: %w", err)
	}
	u, err := url.Parse(tgt.URL)
	if err != nil {
		return fmt.Errorf("first target %q: %w", tgt.URL, err)
	}
	host := u.Host
	if u.Port() == "" {
		if u.Scheme == "https" {
			host = net.JoinHostPort(u.Hostname(), "443")
		} else {
			host = net.JoinHostPort(u.Hostname(), "80")
		}
	}
	c, err := net.DialTimeout("tcp", host, 2*time.Second)
	if err != nil {
		return fmt.Errorf("load target %s is unreachable: %w", tgt.URL, err)
	}
	c.Close()
	return nil
}

// roundRunner runs the rounds and writes their raw results.
type roundRunner struct {
	r      *rules.Rules
	vars   map[string]string
	out    string
	vegeta bool
	svc    *deploy.Service
	stderr io.Writer
	live   bool
	// priority is --attacker-priority; restore puts the session's
	// autogroup nice back (raisePriority).
	priority string
	restore  func()
	raised   bool

	hlogFile *os.File
	hlog     *latency.HlogWriter
	hists    []*hdrhistogram.Histogram
}

func (rr *roundRunner) runRounds(ctx context.Context, sum *runSummary) error {
	l := rr.r.Load
	f, err := os.Create(filepath.Join(rr.out, "run.hlog"))
	if err != nil {
		return fmt.Errorf("create hlog: %w", err)
	}
	rr.hlogFile = f
	rr.hlog, err = latency.NewHlogWriter(f, time.Now(), "tailgate run: corrected latency in microseconds, one interval per round")
	if err != nil {
		return err
	}
	maxErr := l.MaxErrorRate
	if maxErr == 0 {
		maxErr = -1 // load: negative tolerates no error; 0 means its default
	}
	if err := rr.warmup(ctx, sum); err != nil {
		return err
	}
	if len(sum.Invalid) > 0 {
		return nil
	}
	rr.raisePriority(sum)
	rr.probeHost(ctx, sum)
	for i := 1; i <= l.Rounds; i++ {
		if i > 1 && rr.raised {
			// Threads the Go runtime started since run at the default
			// priority (SCHED_RESET_ON_FORK): raise them too.
			if _, restore, err := experiment.RaiseAttackerPriority(rr.priority, 0); err == nil {
				restore()
			}
		}
		if err := rr.svc.ExitErr(); err != nil {
			sum.Invalid = append(sum.Invalid, err.Error())
			return nil
		}
		tr, err := makeTargeter(rr.r, rr.vars, 0)
		if err != nil {
			return err
		}
		base := fmt.Sprintf("round-%02d", i)
		cfg := load.Config{
			Rate: l.Rate.PerSecond(), Duration: l.Duration, Warmup: l.RoundWarmup, Timeout: l.Timeout,
			Targeter: tr, Name: "tailgate-" + base, MaxErrorRate: maxErr, TimeoutsAsErrors: l.TimeoutsAsErrors(),
			Procs:       l.Procs,
			WindowsPath: filepath.Join(rr.out, base+".windows"),
			Progress:    rr.progress(i, l.Rounds),
		}
		if rr.vegeta {
			cfg.VegetaPath = filepath.Join(rr.out, base+".vegeta.gob")
		}
		if !rr.live {
			fmt.Fprintf(rr.stderr, "round %d/%d: %s lead-in + %s at %.6g/s\n", i, l.Rounds, l.RoundWarmup, l.Duration, cfg.Rate)
		}
		stopWatch := func() int { return 0 }
		if rr.raised {
			stopWatch = experiment.WatchAttackerThreads(rr.priority, 0)
		}
		res, err := load.Run(ctx, cfg)
		if n := stopWatch(); n > 0 && res != nil {
			res.Validity.Notes = append(res.Validity.Notes, fmt.Sprintf("load generator: %d thread(s) the Go runtime started during the round raised within %v", n, experiment.ThreadWatchEvery))
		}
		if rr.live {
			fmt.Fprint(rr.stderr, "\r\x1b[K")
		}
		if res != nil {
			if werr := rr.recordRound(sum, i, base, res, cfg); werr != nil && err == nil {
				err = werr
			}
		}
		if err != nil {
			sum.Invalid = append(sum.Invalid, fmt.Sprintf("round %d: %v", i, err))
			return err
		}
		rs := &sum.Rounds[len(sum.Rounds)-1]
		fmt.Fprintf(rr.stderr, "round %d/%d: %d requests, p99 %s, %s\n", i, l.Rounds, rs.Requests,
			fmtUs(rs.Latency.P99us), validWord(rs.Valid, rs.Reasons))
		if !rs.Valid {
			for _, reason := range rs.Reasons {
				sum.Invalid = append(sum.Invalid, fmt.Sprintf("round %d: %s", i, reason))
			}
		}
		if err := rr.svc.ExitErr(); err != nil {
			// The crash happened during this round: its figures are not the
			// service's; stop here.
			sum.Invalid = append(sum.Invalid, err.Error())
			return nil
		}
	}
	return nil
}

// raisePriority raises the load generator's threads (--attacker-priority)
// once the service, its neighbours and the warm-up's threads exist, as
// tailgate gate does: the service and its neighbours keep the priority
// they were forked with, and on a small busy host the pacer otherwise wakes
// late behind them and the rounds are invalid (max lag over 1 ms). Failure
// is a warning, recorded in the summary: the rounds' validity still says
// whether the lag was kept.
func (rr *roundRunner) raisePriority(sum *runSummary) {
	note, restore, err := experiment.RaiseAttackerPriority(rr.priority, 0)
	rr.restore = restore
	if err != nil {
		if note != "" {
			note += "; "
		}
		note += fmt.Sprintf("load generator priority unchanged (%v): expect invalid rounds on a busy host", err)
		fmt.Fprintln(rr.stderr, "warning:", note)
	} else {
		rr.raised = rr.priority != experiment.PriorityNone
		if rr.raised {
			note += "; threads created later are raised before each round"
		}
		fmt.Fprintln(rr.stderr, note)
	}
	sum.Attacker = note
}

// probeHost measures the host's wake-up floor beside the running service
// and its neighbours (load.ProbeWakeups, as the gate's fleet does), at the
// load generator's priority, and records it: when it is above the max-lag
// rule, invalid rounds are the host's doing.
func (rr *roundRunner) probeHost(ctx context.Context, sum *runSummary) {
	realtime := rr.raised && rr.priority != experiment.PriorityNice
	st, err := load.ProbeWakeups(ctx, experiment.DefaultHostProbe, time.Millisecond, load.DefaultMaxLag, realtime)
	if err != nil {
		sum.Host = fmt.Sprintf("host wake-up floor not measured: %v", err)
	} else {
		sum.Host = st.Note()
	}
	fmt.Fprintln(rr.stderr, sum.Host)
}

func (rr *roundRunner) restorePriority() {
	if rr.restore != nil {
		rr.restore()
		rr.restore = nil
	}
}

// warmup drives the freshly started service at the rate for load.warmup,
// recording nothing, so the first round does not measure cold caches, an
// unpaced GC or a cold page cache. A crash during it invalidates the run.
func (rr *roundRunner) warmup(ctx context.Context, sum *runSummary) error {
	l := rr.r.Load
	if l.Warmup <= 0 {
		return nil
	}
	tr, err := makeTargeter(rr.r, rr.vars, warmupSeedOffset)
	if err != nil {
		return err
	}
	if !rr.live {
		fmt.Fprintf(rr.stderr, "warm-up: %s at %.6g/s\n", l.Warmup, l.Rate.PerSecond())
	}
	_, err = load.Run(ctx, load.Config{
		Rate: l.Rate.PerSecond(), Duration: l.Warmup, Timeout: l.Timeout, Targeter: tr,
		Name: "tailgate-warmup", Progress: rr.progress(0, l.Rounds), Procs: l.Procs,
	})
	if rr.live {
		fmt.Fprint(rr.stderr, "\r\x1b[K")
	}
	if err != nil {
		sum.Invalid = append(sum.Invalid, fmt.Sprintf("warm-up: %v", err))
		return err
	}
	if err := rr.svc.ExitErr(); err != nil {
		sum.Invalid = append(sum.Invalid, "during the warm-up: "+err.Error())
	}
	return nil
}

// recordRound writes the round's raw histogram and hlog interval first (so
// they exist whatever happens next), then adds its summary.
func (rr *roundRunner) recordRound(sum *runSummary, i int, base string, res *load.Result, cfg load.Config) error {
	var errs []error
	enc, err := latency.Encode(res.Hist)
	if err == nil {
		err = os.WriteFile(filepath.Join(rr.out, base+".hist"), []byte(enc+"\n"), 0o644)
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("write %s.hist: %w", base, err))
	}
	if err := rr.hlog.WriteInterval(res.Hist, res.Start, res.End, base); err != nil {
		errs = append(errs, err)
	}
	rr.hists = append(rr.hists, res.Hist)

	v := res.Validity
	rs := roundSummary{
		Index: i, Valid: v.Valid, Reasons: append([]string(nil), v.Reasons...),
		Requests: res.Requests, Errors: res.Errors, Timeouts: res.Timeouts, Codes: map[string]int64{},
		TargetRate: v.TargetRate, AchievedRate: v.AchievedRate, ErrorRate: v.ErrorRate,
		MaxLagUs: v.MaxLag.Microseconds(), LateRequests: v.LateRequests,
		HostSleepers: v.HostSleepers, HostMaxLateUs: v.HostMaxLate.Microseconds(), HostLate: v.HostLate, HostWakeups: v.HostWakeups,
		HostWitness: v.HostWitness, OwnMaxLagUs: v.OwnMaxLag.Microseconds(), HostExcused: v.HostExcused,
		Notes: append([]string(nil), v.Notes...),
		Start: res.Start.UTC(), End: res.End.UTC(), StartMono: res.StartMono, EndMono: res.EndMono,
		Latency:     quantiles(res.Hist),
		Uncorrected: quantiles(res.Uncorrected),
		Histogram:   base + ".hist",
		Windows:     base + ".windows",
	}
	if cfg.VegetaPath != "" {
		rs.Vegeta = base + ".vegeta.gob"
	}
	for c, n := range res.Codes {
		rs.Codes[strconv.Itoa(int(c))] = n
	}
	if err := rr.svc.NeighbourErr(); err != nil {
		rs.Valid = false
		rs.Reasons = append(rs.Reasons, err.Error())
	}
	sum.Rounds = append(sum.Rounds, rs)
	return errors.Join(errs...)
}

// finish closes the hlog and computes the totals over the rounds run.
func (rr *roundRunner) finish(sum *runSummary) error {
	var errs []error
	if rr.hlogFile != nil {
		if err := rr.hlogFile.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close hlog: %w", err))
		}
	}
	if len(rr.hists) == 0 {
		return errors.Join(errs...)
	}
	all := latency.New()
	tot := &totalSummary{}
	for i, h := range rr.hists {
		if err := latency.Merge(all, h); err != nil {
			errs = append(errs, err)
		}
		rs := sum.Rounds[i]
		tot.Requests += rs.Requests
		tot.Errors += rs.Errors
		tot.AchievedRate += rs.AchievedRate
	}
	tot.AchievedRate /= float64(len(rr.hists))
	tot.Rounds = len(rr.hists)
	tot.Latency = quantiles(all)
	sum.Total = tot
	return errors.Join(errs...)
}

func (rr *roundRunner) progress(round, rounds int) func(load.Progress) {
	var lastPrinted time.Duration
	return func(p load.Progress) {
		phase := fmt.Sprintf("round %d/%d measuring", round, rounds)
		switch {
		case round == 0:
			phase = "warm-up"
		case p.Warmup:
			phase = fmt.Sprintf("round %d/%d lead-in", round, rounds)
		}
		line := fmt.Sprintf("%s %s/%s: %d requests, %.0f/s, %d errors, p99 %s, max lag %s",
			phase, p.Elapsed.Round(time.Second), p.Total, p.Requests, p.Rate, p.Errors,
			p.P99.Round(10*time.Microsecond), p.MaxLag.Round(time.Microsecond))
		if rr.live {
			fmt.Fprint(rr.stderr, "\r\x1b[K"+line)
			return
		}
		if p.Elapsed-lastPrinted >= runProgressEvery {
			fmt.Fprintln(rr.stderr, line)
			lastPrinted = p.Elapsed
		}
	}
}

// summary.json

type runSummary struct {
	SchemaVersion int    `json:"schema_version"`
	Command       string `json:"command"`
	Rules         string `json:"rules"`
	Ref           string `json:"ref"`
	Commit        string `json:"commit,omitempty"`
	Dirty         bool   `json:"dirty,omitempty"`
	// Env is what --env added to the service's environment.
	Env     []string       `json:"env,omitempty"`
	Service serviceSummary `json:"service"`
	Load    loadSummary    `json:"load"`
	// Attacker is the load generator's priority (--attacker-priority).
	Attacker string `json:"attacker,omitempty"`
	// Host is the host's wake-up floor, measured before the rounds.
	Host     string    `json:"host_floor,omitempty"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// Valid is false when any round was invalid, the service or a
	// neighbour died, or the run was interrupted; Invalid says why.
	Valid   bool           `json:"valid"`
	Invalid []string       `json:"invalid_reasons,omitempty"`
	Rounds  []roundSummary `json:"rounds"`
	// Total pools every round that ran.
	Total *totalSummary `json:"total,omitempty"`
}

func (s *runSummary) hasReason(sub string) bool {
	for _, r := range s.Invalid {
		if strings.Contains(r, sub) {
			return true
		}
	}
	return false
}

type serviceSummary struct {
	Name     string   `json:"name"`
	Binary   string   `json:"binary"`
	PID      int      `json:"pid"`
	Port     int      `json:"port"`
	Log      string   `json:"log"`
	Warnings []string `json:"warnings,omitempty"`
}

type loadSummary struct {
	Targets      string  `json:"targets"`
	Rate         float64 `json:"rate_per_second"`
	Duration     string  `json:"duration"`
	Warmup       string  `json:"warmup"`
	RoundWarmup  string  `json:"round_warmup"`
	Rounds       int     `json:"rounds"`
	Timeout      string  `json:"timeout"`
	Timeouts     string  `json:"timeouts"` // latency (censored) or error
	MaxErrorRate float64 `json:"max_error_rate"`
	Seed         int64   `json:"seed"`
}

// latencySummary holds quantiles in microseconds.
type latencySummary struct {
	Count   int64 `json:"count"`
	P50us   int64 `json:"p50_us"`
	P90us   int64 `json:"p90_us"`
	P99us   int64 `json:"p99_us"`
	P999us  int64 `json:"p99_9_us"`
	MaxUs   int64 `json:"max_us"`
	MeanUs  int64 `json:"mean_us"`
	StdevUs int64 `json:"stdev_us"`
}

type roundSummary struct {
	Index        int              `json:"index"`
	Valid        bool             `json:"valid"`
	Reasons      []string         `json:"invalid_reasons,omitempty"`
	Requests     int64            `json:"requests"`
	Errors       int64            `json:"errors"`
	Timeouts     int64            `json:"timeouts"`
	Codes        map[string]int64 `json:"codes"`
	TargetRate   float64          `json:"target_rate"`
	AchievedRate float64          `json:"achieved_rate"`
	ErrorRate    float64          `json:"error_rate"`
	MaxLagUs     int64            `json:"max_lag_us"`
	LateRequests int64            `json:"late_requests"`
	// Bare sleepers beside the load generator (1 ms ticks; one pinned to
	// each CPU, or one unpinned): their latest wake-up, and how many of
	// their wake-ups were later than the max lag. Send lag they share is
	// the host's.
	HostSleepers  int   `json:"host_sleepers"`
	HostMaxLateUs int64 `json:"host_max_late_us"`
	HostLate      int64 `json:"host_late_wakeups"`
	HostWakeups   int64 `json:"host_wakeups"`
	// With the sleeper a witness (SCHED_RR above a real-time load
	// generator), send lag inside its stalls is the host's: own_max_lag_us
	// is the largest part of a send's lag outside them (what the max-lag
	// rule judges), host_excused the late sends the stalls explain.
	HostWitness bool      `json:"host_witness"`
	OwnMaxLagUs int64     `json:"own_max_lag_us"`
	HostExcused int64     `json:"host_excused"`
	Notes       []string  `json:"notes,omitempty"`
	Start       time.Time `json:"start"`
	End         time.Time `json:"end"`
	StartMono   int64     `json:"start_monotonic_ns"`
	EndMono     int64     `json:"end_monotonic_ns"`
	// Latency is coordinated-omission corrected (from the intended send
	// time); Uncorrected is from the actual send, for comparison only.
	Latency     latencySummary `json:"latency"`
	Uncorrected latencySummary `json:"uncorrected_latency"`
	Histogram   string         `json:"histogram"`
	Windows     string         `json:"windows"`
	Vegeta      string         `json:"vegeta,omitempty"`
}

type totalSummary struct {
	Rounds       int            `json:"rounds"`
	Requests     int64          `json:"requests"`
	Errors       int64          `json:"errors"`
	AchievedRate float64        `json:"achieved_rate"`
	Latency      latencySummary `json:"latency"`
}

func quantiles(h *hdrhistogram.Histogram) latencySummary {
	if h == nil {
		return latencySummary{}
	}
	us := func(q float64) int64 { return latency.Quantile(h, q).Microseconds() }
	return latencySummary{
		Count: h.TotalCount(),
		P50us: us(0.50), P90us: us(0.90), P99us: us(0.99), P999us: us(0.999),
		MaxUs: latency.Max(h).Microseconds(), MeanUs: int64(h.Mean()), StdevUs: int64(h.StdDev()),
	}
}

func writeJSON(path string, v any) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // reasons say "lag 3ms > 1ms"; keep them readable
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("encode %s: %w", filepath.Base(path), err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return nil
}

func fmtUs(us int64) string {
	switch {
	case us >= 1_000_000:
		return fmt.Sprintf("%.2fs", float64(us)/1e6)
	case us >= 1000:
		return fmt.Sprintf("%.2fms", float64(us)/1e3)
	}
	return fmt.Sprintf("%dµs", us)
}

func validWord(ok bool, reasons []string) string {
	if ok {
		return "valid"
	}
	return "INVALID: " + strings.Join(reasons, "; ")
}

// printRunSummary prints the table: one row per round and the pooled total.
func printRunSummary(w io.Writer, s *runSummary, out string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "round\trequests\tp50\tp90\tp99\tp99.9\tmax\trate/s\terrors\tvalid\t")
	for _, r := range s.Rounds {
		valid := "yes"
		if !r.Valid {
			valid = "NO"
		}
		l := r.Latency
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s\t%s\t%.1f\t%d\t%s\t\n", r.Index, r.Requests,
			fmtUs(l.P50us), fmtUs(l.P90us), fmtUs(l.P99us), fmtUs(l.P999us), fmtUs(l.MaxUs), r.AchievedRate, r.Errors, valid)
	}
	if t := s.Total; t != nil {
		valid := "yes"
		if !s.Valid {
			valid = "NO"
		}
		l := t.Latency
		fmt.Fprintf(tw, "all\t%d\t%s\t%s\t%s\t%s\t%s\t%.1f\t%d\t%s\t\n", t.Requests,
			fmtUs(l.P50us), fmtUs(l.P90us), fmtUs(l.P99us), fmtUs(l.P999us), fmtUs(l.MaxUs), t.AchievedRate, t.Errors, valid)
	}
	tw.Flush()
	if s.Valid {
		fmt.Fprintf(w, "run valid: %d rounds at %.6g/s; results in %s\n", len(s.Rounds), s.Load.Rate, out)
		return
	}
	fmt.Fprintf(w, "run INVALID (not a pass); results in %s\n", out)
	for _, r := range s.Invalid {
		fmt.Fprintf(w, "  - %s\n", firstLine(r))
	}
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}
