package experiment

// The live Driver: one running instance of the service per arm, deployed
// from perf-rules (internal/deploy) and driven by internal/load.
//
// Why one instance per arm, started once: a start of the bundled bidder
// loads 2 M user profiles and needs a 15 s warm-up before its GC pacing
// and page cache settle; restarting per round would either cost that every
// round or measure a cold service. Kept running, every arm is warmed once
// and each round's own lead-in (gate.warmup) re-warms connections after
// the arm sat idle while the others were measured. The idle arms keep
// their neighbours (rules), but paused: each arm's neighbours (a CPU hog,
// a page-out loop) run only during that arm's warm-up and rounds, so every
// round sees exactly the neighbours the rules describe for one service, as
// a single-service run does. Left running, ten experiment arms would put
// ten CPU hogs on the host and every round would measure the other arms'
// neighbours, not its own (FleetOptions.SharedNeighbours keeps the old
// behaviour).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/tailgate-ci/tailgate/bidder/reqgen"
	"github.com/tailgate-ci/tailgate/internal/deploy"
	"github.com/tailgate-ci/tailgate/internal/latency"
	"github.com/tailgate-ci/tailgate/internal/load"
	"github.com/tailgate-ci/tailgate/internal/rules"
)

// Load generator priorities (FleetOptions.AttackerPriority), applied to
// tailgate's own threads once every arm is started, so the services keep
// the priority they were forked with. On a small shared host the pacer
// otherwise wakes late behind the service, its neighbours and other jobs,
// and the round is invalid (max lag over the rule). Measured on the 2-core
// reference box at load average ~30: default priority 17–125 ms max lag
// per 1 s round, nice -19 (+ session autogroup) 6–30 ms, SCHED_RR 0.2–4.5
// ms with most rounds under 1 ms.
const (
	// PriorityRealtime: SCHED_RR priority 1 with SCHED_RESET_ON_FORK (the
	// default; needs root or CAP_SYS_NICE).
	PriorityRealtime = "rt"
	// PriorityNice: nice AttackerNice for every thread, and the session's
	// autogroup raised to it (restored by Close).
	PriorityNice = "nice"
	// PriorityNone leaves the priority alone.
	PriorityNone = "none"
)

// DefaultAttackerNice is the nice value of PriorityNice.
const DefaultAttackerNice = -19

// ArmSpec is one service instance of a live run.
type ArmSpec struct {
	// Name is the arm (gate.ArmBase, gate.ArmHead) or variant name.
	Name string
	// Ref is the git ref to build ("" = the working tree).
	Ref string
	// Fixes are applied with rules.Combine (env, args, placement).
	Fixes []string
}

// FleetOptions configure StartFleet. Zero values mean the rules' settings.
type FleetOptions struct {
	// Repo is a directory of the repository to build from (default ".").
	Repo string
	// LogDir receives <arm>-service.log etc.; WindowsDir, if set, each
	// round's request windows (<order>-<arm>.windows).
	LogDir, WindowsDir string
	// Rate overrides load.rate.
	Rate float64
	// RoundDuration and RoundWarmup are the measured part and the lead-in
	// of each round (default: the rules' gate section, then gate defaults;
	// a negative RoundWarmup means none).
	RoundDuration, RoundWarmup time.Duration
	// Warmup overrides load.warmup (once per arm after its start); give a
	// negative value for none.
	Warmup time.Duration
	// AttackerPriority is PriorityRealtime (""), PriorityNice or
	// PriorityNone; AttackerNice is the nice of PriorityNice (0: default).
	AttackerPriority string
	AttackerNice     int
	// SharedNeighbours keeps every arm's neighbours running all the time
	// instead of only during the arm's own warm-up and rounds.
	SharedNeighbours bool
	// HostProbe is how long the fleet, once every arm is up and idle,
	// measures the host's wake-up floor (load.ProbeWakeups, recorded in
	// Notes); 0 means DefaultHostProbe, negative none.
	HostProbe time.Duration
	Progress  io.Writer
}

// DefaultHostProbe is FleetOptions.HostProbe's default: 3,000 wake-ups at
// 1 ms, enough to see a floor above a 1 ms max-lag rule on most hosts that
// have one, short against a gate's minutes.
const DefaultHostProbe = 3 * time.Second

// Fleet is the running arms of a live gate, experiment or soak; it
// implements Driver.
type Fleet struct {
	r     *rules.Rules
	o     FleetOptions
	arms  map[string]*liveArm
	order []string
	notes []string
	// restoreAutogroup puts the session's autogroup nice back (Close).
	restoreAutogroup func()
	// raised is set once the load generator's threads were raised; each
	// round raises the threads created since (raiseNice, raiseRT).
	raised    bool
	raiseNice int
	raiseRT   bool
}

type liveArm struct {
	spec ArmSpec
	plan *deploy.Plan
	svc  *deploy.Service
	vars map[string]string
	// nbs are the neighbours' pids (children started with the service),
	// paused while another arm is measured; paused says they are.
	nbs    []int
	paused bool
}

// StartFleet builds each distinct ref once, then prepares, starts and warms
// up every arm in order, and finally raises the load generator's priority.
// On error everything started is stopped.
func StartFleet(ctx context.Context, r *rules.Rules, arms []ArmSpec, o FleetOptions) (f *Fleet, err error) {
	if len(arms) == 0 {
		return nil, errors.New("start fleet: no arms")
	}
	gc := r.Gate.Config().WithDefaults()
	if o.RoundDuration == 0 {
		o.RoundDuration = gc.RoundDuration
	}
	switch {
	case o.RoundWarmup == 0:
		o.RoundWarmup = gc.Warmup
	case o.RoundWarmup < 0: // none (soak windows run back to back)
		o.RoundWarmup = 0
	}
	if o.Rate == 0 {
		o.Rate = r.Load.Rate.PerSecond()
	}
	if o.Warmup == 0 {
		o.Warmup = r.Load.Warmup
	}
	if o.LogDir == "" {
		o.LogDir = "."
	}
	f = &Fleet{r: r, o: o, arms: map[string]*liveArm{}}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	built := map[string]*deploy.Plan{}
	for _, a := range arms {
		if f.arms[a.Name] != nil {
			return f, fmt.Errorf("start fleet: duplicate arm %q", a.Name)
		}
		delta, err := r.Combine(a.Fixes)
		if err != nil {
			return f, fmt.Errorf("arm %s: %w", a.Name, err)
		}
		prefix := safe(a.Name) + "-"
		var plan *deploy.Plan
		if first := built[a.Ref]; first != nil {
			// Same ref: reuse the binary, new work directory and port.
			plan, err = clonePlan(first, prefix)
		} else {
			plan, err = deploy.NewPlan(ctx, r, deploy.PlanOptions{Repo: o.Repo, Ref: a.Ref, LogDir: o.LogDir, LogPrefix: prefix, Progress: o.Progress})
			if err == nil {
				built[a.Ref] = plan
			}
		}
		if err != nil {
			return f, fmt.Errorf("arm %s: %w", a.Name, err)
		}
		la := &liveArm{spec: a, plan: plan}
		f.arms[a.Name] = la
		f.order = append(f.order, a.Name)
		la.vars = plan.Vars()
		plan.Env = rules.ExpandAll(delta.Env, la.vars)
		plan.Args = rules.ExpandAll(delta.Args, la.vars)
		if err := plan.Prepare(ctx); err != nil {
			return f, fmt.Errorf("arm %s: %w", a.Name, err)
		}
		spec := plan.Spec()
		if len(delta.Placement) > 0 {
			// The launcher is started with tailgate's own privileges and
			// drops them itself (bidder launch --user): it needs root to
			// set priority, affinity and memory policy.
			launcher := rules.ExpandAll(delta.Placement, la.vars)
			spec.Args = append(append([]string(nil), launcher[1:]...), spec.Args...)
			spec.Path = launcher[0]
			spec.User = "root"
		}
		logf(o.Progress, "arm %s: start %s %s (fixes: %s)", a.Name, spec.Path, strings.Join(spec.Args, " "), VariantName(a.Fixes))
		before, _ := childPIDs()
		svc, err := deploy.Start(ctx, spec)
		if err != nil {
			return f, fmt.Errorf("arm %s: %w", a.Name, err)
		}
		la.svc = svc
		if len(spec.Neighbours) > 0 && !o.SharedNeighbours {
			la.nbs, err = newChildren(before, svc.PID())
			if err != nil || len(la.nbs) != len(spec.Neighbours) {
				return f, fmt.Errorf("arm %s: find its %d neighbours' pids to pause them between its rounds: found %v (%v); use shared neighbours", a.Name, len(spec.Neighbours), la.nbs, err)
			}
		}
		for _, w := range svc.Warnings() {
			f.notes = append(f.notes, fmt.Sprintf("arm %s: %s", a.Name, w))
		}
		if o.Warmup > 0 {
			logf(o.Progress, "arm %s: warm-up %s at %.6g/s", a.Name, o.Warmup, o.Rate)
			tr, err := f.targeter(la, warmupSeedOffset)
			if err != nil {
				return f, err
			}
			wr, err := load.Run(ctx, load.Config{Rate: o.Rate, Duration: o.Warmup, Timeout: r.Load.Timeout, Targeter: tr,
				Name: "tailgate-warmup-" + a.Name, MaxLag: time.Hour, Procs: r.Load.Procs})
			if err != nil {
				return f, fmt.Errorf("arm %s: warm-up: %w", a.Name, err)
			}
			logf(o.Progress, "arm %s: warm-up done: %d requests, %d errors, p50 %s, p99 %s", a.Name, wr.Requests, wr.Errors,
				fmtDur(latency.Quantile(wr.Hist, 0.5)), fmtDur(latency.Quantile(wr.Hist, 0.99)))
			if err := svc.ExitErr(); err != nil {
				return f, fmt.Errorf("arm %s: during the warm-up: %w", a.Name, err)
			}
		}
		// Its neighbours rest until its first round; the next arm starts
		// and warms up beside its own neighbours only.
		if err := f.pause(la, true); err != nil {
			return f, fmt.Errorf("arm %s: %w", a.Name, err)
		}
	}
	if len(f.order) > 1 {
		if o.SharedNeighbours {
			f.notes = append(f.notes, "neighbours: every arm's neighbours run all the time (shared)")
		} else {
			f.notes = append(f.notes, "neighbours: each arm's neighbours run only during its own warm-up and rounds (paused with SIGSTOP otherwise)")
		}
	}
	switch o.AttackerPriority {
	case "", PriorityRealtime, PriorityNice:
		nice := o.AttackerNice
		if nice == 0 {
			nice = DefaultAttackerNice
		}
		msg, err := f.raisePriority(nice, o.AttackerPriority != PriorityNice)
		if msg != "" {
			f.notes = append(f.notes, msg)
		}
		if err != nil {
			f.notes = append(f.notes, fmt.Sprintf("load generator priority unchanged (%v): expect invalid rounds on a busy host", err))
		} else {
			f.raised, f.raiseNice, f.raiseRT = true, nice, o.AttackerPriority != PriorityNice
			f.notes = append(f.notes, "load generator threads created later are raised before each round")
		}
	case PriorityNone:
		f.notes = append(f.notes, "load generator at its default priority")
	default:
		return f, fmt.Errorf("start fleet: attacker priority %q: want %s, %s or %s", o.AttackerPriority, PriorityRealtime, PriorityNice, PriorityNone)
	}
	lag := fmt.Sprintf("max lag <= %s", r.Gate.Lag())
	if fr := r.Gate.MaxLateFraction; fr > 0 {
		lag = fmt.Sprintf("the load generator's own lag <= %s for all but %.3g%% of the requests", r.Gate.Lag(), 100*fr)
	}
	timeouts := "timeouts are latencies (lower bounds), not errors"
	if r.Load.TimeoutsAsErrors() {
		timeouts = "timeouts count as errors"
	}
	f.notes = append(f.notes, fmt.Sprintf("rounds: %s lead-in + %s measured at %.6g/s; valid rounds need %s, error rate <= %g (%s)",
		o.RoundWarmup, o.RoundDuration, o.Rate, lag, r.ErrorRate(), timeouts))
	if o.HostProbe >= 0 {
		d := o.HostProbe
		if d == 0 {
			d = DefaultHostProbe
		}
		logf(o.Progress, "host: measuring the wake-up floor for %s (every arm idle)", d)
		st, err := load.ProbeWakeups(ctx, d, time.Millisecond, r.Gate.Lag(), f.raiseRT)
		if err != nil {
			if ctx.Err() != nil {
				return f, ctx.Err()
			}
			f.notes = append(f.notes, fmt.Sprintf("host wake-up floor not measured: %v", err))
		} else {
			logf(o.Progress, "host: %s", st.String())
			f.notes = append(f.notes, st.Note())
		}
	}
	return f, nil
}

// warmupSeedOffset shifts the warm-up's reqgen seed, so the warm-up does
// not pre-warm exactly the requests the rounds measure.
const warmupSeedOffset = 1_000_003

func clonePlan(first *deploy.Plan, prefix string) (*deploy.Plan, error) {
	wd, err := os.MkdirTemp("", "tailgate-work-")
	if err != nil {
		return nil, fmt.Errorf("make work directory: %w", err)
	}
	if err := deploy.PrepareDir(wd, first.Rules.Service.User); err != nil {
		os.RemoveAll(wd)
		return nil, err
	}
	port := first.Rules.Service.Port
	if port != 0 {
		os.RemoveAll(wd)
		return nil, fmt.Errorf("service.port %d is fixed: arms need a port each (leave service.port out)", port)
	}
	if port, err = deploy.FreePort(); err != nil {
		os.RemoveAll(wd)
		return nil, fmt.Errorf("pick a port: %w", err)
	}
	return &deploy.Plan{Rules: first.Rules, Bin: first.Bin, Workdir: wd, Port: port, Commit: first.Commit, Dirty: first.Dirty,
		LogDir: first.LogDir, LogPrefix: prefix, Progress: first.Progress}, nil
}

func safe(s string) string {
	return strings.Map(func(c rune) rune {
		if c == '/' || c == ' ' || c == os.PathSeparator {
			return '_'
		}
		return c
	}, s)
}

func (f *Fleet) targeter(a *liveArm, seedOffset int64) (vegeta.Targeter, error) {
	t := f.r.Load.Targets
	switch t.Kind {
	case rules.TargetsReqgen:
		return load.ReqgenTargeter(rules.Expand(t.URL, a.vars), f.r.Load.Seed+seedOffset, reqgen.Options{Users: t.Users})
	case rules.TargetsFile:
		if a.plan.Port != f.arms[f.order[0]].plan.Port && len(f.order) > 1 {
			return nil, errors.New("a targets file names its own URLs: experiments with several arms need kind: reqgen")
		}
		return load.FileTargeter(f.r.Resolve(t.File), t.Format)
	}
	return nil, fmt.Errorf("unknown targets kind %q", t.Kind)
}

// Round runs one round on arm service. A dead service or neighbour makes
// the round invalid (with an empty histogram if it was dead before).
func (f *Fleet) Round(ctx context.Context, service string, s Slot) (*Measured, error) {
	a := f.arms[service]
	if a == nil {
		return nil, fmt.Errorf("no arm %q in the fleet", service)
	}
	if err := a.svc.ExitErr(); err != nil {
		return &Measured{Hist: latency.New(), Invalid: []string{"service exited before the round: " + firstLine(err.Error())}}, nil
	}
	if f.raised {
		// Threads the Go runtime started since the last raise run at the
		// default priority (SCHED_RESET_ON_FORK); one of them holding a P
		// behind a CPU hog delays the pacer or a stop-the-world by a
		// scheduler slice (measured: max send lag ~3 ms at 1000/s).
		if _, err := f.raisePriority(f.raiseNice, f.raiseRT); err != nil {
			return nil, fmt.Errorf("raise the load generator's new threads: %w", err)
		}
	}
	// Only the measured arm's neighbours run during its round.
	for _, name := range f.order {
		if other := f.arms[name]; other != a {
			if err := f.pause(other, true); err != nil {
				return nil, err
			}
		}
	}
	if err := f.pause(a, false); err != nil {
		return nil, err
	}
	tr, err := f.targeter(a, 0)
	if err != nil {
		return nil, err
	}
	maxErr := f.r.ErrorRate()
	if maxErr == 0 {
		maxErr = -1 // load: negative tolerates none; 0 means its default
	}
	cfg := load.Config{
		Rate: f.o.Rate, Duration: f.o.RoundDuration, Warmup: f.o.RoundWarmup, Timeout: f.r.Load.Timeout,
		Targeter: tr, Name: fmt.Sprintf("tailgate-%s-%d", s.Arm, s.Index), MaxErrorRate: maxErr, MaxLag: f.r.Gate.Lag(),
		MaxLateFraction: f.r.Gate.MaxLateFraction, TimeoutsAsErrors: f.r.Load.TimeoutsAsErrors(),
		Procs: f.r.Load.Procs,
	}
	if f.o.WindowsDir != "" {
		cfg.WindowsPath = filepath.Join(f.o.WindowsDir, s.FileName("windows"))
	}
	stopWatch := func() int { return 0 }
	if f.raised {
		stopWatch = watchThreads(f.raiseNice, f.raiseRT)
	}
	res, err := load.Run(ctx, cfg)
	raisedLate := stopWatch()
	if err != nil {
		return nil, err
	}
	m := &Measured{Hist: res.Hist, Requests: res.Requests, Errors: res.Errors, Timeouts: res.Timeouts, Valid: res.Validity.Valid, LagOnly: res.Validity.LagOnly, OwnLagOnly: res.Validity.OwnLagOnly, LagFree: res.Uncorrected,
		Invalid: append([]string(nil), res.Validity.Reasons...), MaxLag: res.Validity.MaxLag, Start: res.Start, End: res.End,
		Notes: append([]string(nil), res.Validity.Notes...)}
	if raisedLate > 0 {
		m.Notes = append(m.Notes, fmt.Sprintf("load generator: %d thread(s) the Go runtime started during the round raised within %v", raisedLate, ThreadWatchEvery))
	}
	if err := a.svc.NeighbourErr(); err != nil {
		m.Valid, m.LagOnly, m.OwnLagOnly = false, false, false
		m.Invalid = append(m.Invalid, firstLine(err.Error()))
	}
	if err := a.svc.ExitErr(); err != nil {
		m.Valid, m.LagOnly, m.OwnLagOnly = false, false, false
		m.Invalid = append(m.Invalid, "service exited during the round: "+firstLine(err.Error()))
	}
	return m, nil
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}

// Commit is the commit an arm was built from ("" if unknown).
func (f *Fleet) Commit(arm string) string {
	if a := f.arms[arm]; a != nil {
		return a.plan.Commit
	}
	return ""
}

// PID is the process id of an arm's service.
func (f *Fleet) PID(arm string) int {
	if a := f.arms[arm]; a != nil && a.svc != nil {
		return a.svc.PID()
	}
	return 0
}

// MetricsURL is the arm's health URL with the path /metrics (the bidder's
// Prometheus endpoint).
func (f *Fleet) MetricsURL(arm string) string {
	a := f.arms[arm]
	if a == nil {
		return ""
	}
	h := rules.Expand(f.r.Service.Health, a.vars)
	if i := strings.Index(h, "://"); i >= 0 {
		if j := strings.Index(h[i+3:], "/"); j >= 0 {
			return h[:i+3+j] + "/metrics"
		}
		return h + "/metrics"
	}
	return ""
}

// Notes are facts about the run for the result document (priorities,
// deploy warnings, validity rules).
func (f *Fleet) Notes() []string { return f.notes }

// Close stops every arm and removes the work directories.
func (f *Fleet) Close() error {
	var errs []error
	if f.restoreAutogroup != nil {
		f.restoreAutogroup()
		f.restoreAutogroup = nil
	}
	for _, name := range f.order {
		// A stopped neighbour would hold its SIGTERM until the kill.
		if err := f.pause(f.arms[name], false); err != nil {
			errs = append(errs, err)
		}
	}
	for i := len(f.order) - 1; i >= 0; i-- {
		a := f.arms[f.order[i]]
		if a.svc != nil {
			a.svc.Stop(context.Background())
		}
	}
	for _, name := range f.order {
		if err := f.arms[name].plan.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// RaiseAttackerPriority raises this process's threads (the load
// generator) as priority says (PriorityRealtime or "", PriorityNice with
// nice, 0 meaning DefaultAttackerNice; PriorityNone changes nothing). Call
// it after the services and their neighbours are started, so they keep the
// priority they were forked with. It returns what it did, for the run's
// notes, and a restore func (never nil) that puts the session's autogroup
// nice back; thread priorities stay raised.
func RaiseAttackerPriority(priority string, nice int) (string, func(), error) {
	f := &Fleet{}
	restore := func() {
		if f.restoreAutogroup != nil {
			f.restoreAutogroup()
			f.restoreAutogroup = nil
		}
	}
	if nice == 0 {
		nice = DefaultAttackerNice
	}
	switch priority {
	case "", PriorityRealtime, PriorityNice:
		msg, err := f.raisePriority(nice, priority != PriorityNice)
		return msg, restore, err
	case PriorityNone:
		return "load generator at its default priority", restore, nil
	}
	return "", restore, fmt.Errorf("attacker priority %q: want %s, %s or %s", priority, PriorityRealtime, PriorityNice, PriorityNone)
}

// ThreadWatchEvery is how often a thread watcher (WatchAttackerThreads) looks
// for new threads.
const ThreadWatchEvery = 20 * time.Millisecond

// watchThreads raises, until stop is called, every thread of this process
// that appears after it starts. The raise uses SCHED_RESET_ON_FORK (so no
// process tailgate starts inherits a real-time policy), which also starts
// the threads the Go runtime adds during a round — when a thread blocks in
// a system call, or a service's slowdown fills the load generator with
// connections — at the default priority: the pacer or a stop-the-world
// running on one of them waits behind the service and its neighbours for
// the rest of the round. Raised at most ThreadWatchEvery after they
// appear. stop returns how many it raised.
func watchThreads(nice int, realtime bool) (stop func() int) {
	known, _ := threadIDs()
	return watchThreadsAfter(known, nice, realtime)
}

// threadIDs lists this process's threads.
func threadIDs() (map[int]bool, error) {
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return nil, err
	}
	out := map[int]bool{}
	for _, e := range ents {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			out[tid] = true
		}
	}
	return out, nil
}

// watchThreadsAfter is watchThreads with the threads to leave alone given
// (known is taken over). A thread ID the kernel reuses within one watch is
// not raised again; with a 2^22 pid_max that takes millions of thread or
// process starts in a round.
func watchThreadsAfter(known map[int]bool, nice int, realtime bool) (stop func() int) {
	if known == nil {
		known = map[int]bool{}
	}
	scan := func() int {
		tids, err := threadIDs()
		if err != nil {
			return 0
		}
		n := 0
		for tid := range tids {
			if known[tid] {
				continue
			}
			known[tid] = true // raised, or gone: either way not again
			if setThreadPriority(tid, nice, realtime) == nil {
				n++
			}
		}
		return n
	}
	done := make(chan struct{})
	result := make(chan int, 1)
	go func() {
		t := time.NewTicker(ThreadWatchEvery)
		defer t.Stop()
		n := 0
		for {
			select {
			case <-done:
				result <- n + scan()
				return
			case <-t.C:
				n += scan()
			}
		}
	}()
	var once sync.Once
	var n int
	return func() int {
		once.Do(func() { close(done); n = <-result })
		return n
	}
}

// WatchAttackerThreads is watchThreads for a load generator raised by
// RaiseAttackerPriority with the same arguments (a no-op for
// PriorityNone).
func WatchAttackerThreads(priority string, nice int) (stop func() int) {
	if priority == PriorityNone {
		return func() int { return 0 }
	}
	if nice == 0 {
		nice = DefaultAttackerNice
	}
	return watchThreads(nice, priority != PriorityNice)
}

// pause stops (SIGSTOP) or resumes (SIGCONT) an arm's neighbours.
func (f *Fleet) pause(a *liveArm, stop bool) error {
	if len(a.nbs) == 0 || a.paused == stop {
		return nil
	}
	if err := signalPIDs(a.nbs, stop); err != nil {
		return fmt.Errorf("arm %s: %w", a.spec.Name, err)
	}
	a.paused = stop
	return nil
}

// newChildren lists the children of this process not in before, other than
// the service: the neighbours deploy.Start just started.
func newChildren(before map[int]bool, service int) ([]int, error) {
	after, err := childPIDs()
	if err != nil {
		return nil, err
	}
	var out []int
	for p := range after {
		if !before[p] && p != service {
			out = append(out, p)
		}
	}
	sort.Ints(out)
	return out, nil
}

// raisePriority raises this process's threads (the load generator) to
// nice (or SCHED_RR with realtime) and, where the kernel groups threads by
// session (autogroup), the session's group to nice too, remembering the
// group's old value for Close. Linux nice is per thread; threads created
// later inherit it from their creator (with realtime they fall back to
// SCHED_OTHER: SCHED_RESET_ON_FORK).
func (f *Fleet) raisePriority(nice int, realtime bool) (string, error) {
	var msgs []string
	if old, ok := autogroupNice(); ok && old > nice {
		if err := setAutogroupNice(nice); err != nil {
			msgs = append(msgs, fmt.Sprintf("autogroup nice unchanged (%v)", err))
		} else {
			f.restoreAutogroup = func() { setAutogroupNice(old) }
			msgs = append(msgs, fmt.Sprintf("session autogroup nice %d (was %d; the services share it)", nice, old))
		}
	}
	tids, err := threadIDs()
	if err != nil {
		return "", err
	}
	n := 0
	var errs []error
	for tid := range tids {
		if err := setThreadPriority(tid, nice, realtime); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	if n == 0 && len(errs) > 0 {
		return strings.Join(msgs, "; "), fmt.Errorf("set thread priority: %w", errs[0])
	}
	what := fmt.Sprintf("nice %d", nice)
	if realtime {
		what = "SCHED_RR priority 1"
	}
	msgs = append(msgs, fmt.Sprintf("load generator: %d threads at %s; services forked before at their own priority", n, what))
	return strings.Join(msgs, "; "), nil
}
