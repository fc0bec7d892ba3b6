package main

// `tailgate demo`: the whole pipeline on the bundled bidder with the
// embedded default rules, sized to finish in about a quarter of an hour on
// the 2-core reference machine. It only wires the existing pieces: the
// experiment fleet and runner (internal/experiment), `tailgate profile`
// (runProfile, called in-process), the gate (experiment.RunGate), the soak
// (experiment.RunSoak) and the report set (internal/report).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/tailgate-ci/tailgate/internal/deploy"
	"github.com/tailgate-ci/tailgate/internal/experiment"
	"github.com/tailgate-ci/tailgate/internal/flame"
	"github.com/tailgate-ci/tailgate/internal/gate"
	"github.com/tailgate-ci/tailgate/internal/report"
	"github.com/tailgate-ci/tailgate/internal/rules"
	perfrules "github.com/tailgate-ci/tailgate/perf-rules"
)

func init() {
	register(command{
		name:    "demo",
		summary: "the whole pipeline on the bundled bidder: experiment, profiles, gate, soak, reports into ./tailgate-out",
		run:     runDemo,
	})
}

// Demo defaults: sized so that the whole demo fits in about 15 minutes on
// the 2-core reference machine (demoBudget prints the estimate).
const (
	DefaultDemoOut        = "tailgate-out"
	DefaultDemoBlocks     = 4               // experiment rounds per variant
	DefaultDemoRound      = 6 * time.Second // measured part of a round
	DefaultDemoLeadIn     = 1 * time.Second // unrecorded lead-in of a round
	DefaultDemoArmWarmup  = 5 * time.Second // per service, after its start
	DefaultDemoGateMin    = 4               // gate: base/head pairs at the first checkpoint
	DefaultDemoGateMax    = 6               // gate: cap on pairs
	DefaultDemoGateEvery  = 2               // gate: pairs between checkpoints
	DefaultDemoGateAA     = 2               // gate: A/A pairs
	DefaultDemoSoak       = 90 * time.Second
	DefaultDemoSoakWindow = 15 * time.Second
	// DemoBudgetLimit is the time the defaults must fit in.
	DemoBudgetLimit = 15 * time.Minute
)

// Cost model of the time budget, from a smoke run of the demo on the
// 2-core reference machine (--blocks 2, 2 s rounds, 2 s warm-ups): build
// and start of the 10 services took 72 s (a warm build ~10 s, then ~5 s
// per service for its 1 GiB index, 2 M-profile load and health check,
// beyond its warm-up); profiling two rounds and analysing them took 6 s
// beyond the rounds; the report set with the PDF took 1 s. The constants
// keep a margin (cold build cache, a busier host).
const (
	demoBuildCost    = 30 * time.Second // go build of the bidder
	demoStartCost    = 8 * time.Second  // per service: index, start, health
	demoProfileCost  = 10 * time.Second // per profiled variant: attach, settle, stop, analysis
	demoReportCost   = 20 * time.Second // report set and the PDF
	demoMarkerFile   = "demo.json"
	demoProfileLabel = "allfixes" // flame-graph label of the all-fixes side
)

const demoUsage = `usage: sudo tailgate demo [flags]

Runs everything tailgate does on the bundled bidder (cmd/bidder) with the
embedded default rules (` + perfrules.BidderName + `):

  1. builds the bidder and its 1 GiB index and starts one instance per
     variant (baseline, each fix, all fixes, all but one), each with the
     rules' neighbours (a CPU hog and a page-out job);
  2. the experiment: --blocks rounds of every variant in seeded, mirrored
     order; per-fix isolation and leave-one-out attribution with CIs;
  3. eBPF profiles of one round of the baseline and of all fixes (root);
  4. the gate: baseline (base) against all fixes (head), ABBA rounds with
     A/A rounds and checkpoints;
  5. a short soak of all fixes at the peak rate;
  6. the report set: comment.md, report.html, fixes/*.md, cumulative.md,
     writeup.html/pdf, flame/ into --out.

Every figure in the reports comes from this run. The schedule is seeded
(--seed, recorded in demo.json and the result documents). A round whose
load generator lagged more than gate.max_lag is invalid: the reports say so
and the demo never calls such a run a pass. Without root there are no
profiles (the reports say why).

Exit status: 0 the gate passed, 3 failed, 4 inconclusive, 1 invalid run
or error, 2 usage.

flags:
`

// demoOptions are the parsed flags of `tailgate demo`.
type demoOptions struct {
	rulesPath  string
	repo       string
	out        string
	seed       int64
	seedSet    bool
	blocks     int
	round      time.Duration
	leadIn     time.Duration
	armWarmup  time.Duration
	gateMin    int
	gateMax    int
	gateAA     int
	soak       time.Duration
	soakWindow time.Duration
	maxLag     time.Duration
	priority   string
	noProfiles bool
	noPDF      bool
	chromium   string
	dryRun     bool
}

func parseDemoFlags(args []string, stderr io.Writer) (*demoOptions, error) {
	o := &demoOptions{}
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, demoUsage); fs.PrintDefaults() }
	fs.StringVar(&o.rulesPath, "rules", "", "perf-rules file (default: the embedded "+perfrules.BidderName+"; it must declare fixes)")
	fs.StringVar(&o.repo, "repo", ".", "repository to build the service from")
	fs.StringVar(&o.out, "out", DefaultDemoOut, "output directory (a previous demo's output there is replaced)")
	fs.Func("seed", "schedule seed (default: gate.seed, else 1); recorded", func(s string) error {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not an integer", s)
		}
		o.seed, o.seedSet = v, true
		return nil
	})
	fs.IntVar(&o.blocks, "blocks", DefaultDemoBlocks, "experiment rounds per variant (even, at least 2)")
	fs.DurationVar(&o.round, "round-duration", DefaultDemoRound, "measured part of every round")
	fs.DurationVar(&o.leadIn, "round-warmup", DefaultDemoLeadIn, "unrecorded lead-in of every round")
	fs.DurationVar(&o.armWarmup, "warmup", DefaultDemoArmWarmup, "warm-up of each service after its start (0: none)")
	fs.IntVar(&o.gateMin, "gate-min-rounds", DefaultDemoGateMin, "gate: base/head pairs at the first checkpoint")
	fs.IntVar(&o.gateMax, "gate-max-rounds", DefaultDemoGateMax, "gate: most base/head pairs")
	fs.IntVar(&o.gateAA, "gate-aa-rounds", DefaultDemoGateAA, "gate: A/A pairs for the noise floor")
	fs.DurationVar(&o.soak, "soak", DefaultDemoSoak, "soak of all fixes (0: none)")
	fs.DurationVar(&o.soakWindow, "soak-window", DefaultDemoSoakWindow, "soak window")
	fs.DurationVar(&o.maxLag, "max-lag", 0, "largest load-generator send lag of a valid round (default: gate.max_lag, 1ms); recorded")
	fs.StringVar(&o.priority, "attacker-priority", experiment.PriorityRealtime, "load generator threads: rt, nice or none")
	fs.BoolVar(&o.noProfiles, "no-profiles", false, "skip the eBPF profiles")
	fs.BoolVar(&o.dryRun, "dry-run", false, "print the plan and the time budget, run nothing")
	fs.BoolVar(&o.noPDF, "no-pdf", false, "do not print the write-up to PDF")
	fs.StringVar(&o.chromium, "chromium", "", "headless Chromium for the PDF (default: chromium on PATH)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usageErrorf("demo: %v", err)
	}
	if fs.NArg() > 0 {
		return nil, usageErrorf("demo: unexpected arguments %q", fs.Args())
	}
	switch {
	case o.out == "":
		return nil, usageErrorf("demo: --out must name a directory")
	case o.blocks < 2 || o.blocks%2 != 0:
		return nil, usageErrorf("demo: --blocks %d: want an even number, at least 2 (blocks run in mirrored couples)", o.blocks)
	case o.round <= 0:
		return nil, usageErrorf("demo: --round-duration %v: must be positive", o.round)
	case o.leadIn < 0 || o.armWarmup < 0:
		return nil, usageErrorf("demo: --round-warmup and --warmup must not be negative")
	case o.gateMin < 2:
		return nil, usageErrorf("demo: --gate-min-rounds %d: want at least 2", o.gateMin)
	case o.gateMax < o.gateMin:
		return nil, usageErrorf("demo: --gate-max-rounds %d: want at least --gate-min-rounds (%d)", o.gateMax, o.gateMin)
	case o.gateAA < 1:
		return nil, usageErrorf("demo: --gate-aa-rounds %d: want at least 1 (the noise floor)", o.gateAA)
	case o.soak < 0:
		return nil, usageErrorf("demo: --soak %v: must not be negative", o.soak)
	case o.soak > 0 && (o.soakWindow <= 0 || o.soak < o.soakWindow):
		return nil, usageErrorf("demo: --soak %v must hold at least one --soak-window %v", o.soak, o.soakWindow)
	case o.maxLag < 0:
		return nil, usageErrorf("demo: --max-lag must be positive")
	}
	switch o.priority {
	case experiment.PriorityRealtime, experiment.PriorityNice, experiment.PriorityNone:
	default:
		return nil, usageErrorf("demo: --attacker-priority %q: want rt, nice or none", o.priority)
	}
	return o, nil
}

// demoPhase is one line of the time budget.
type demoPhase struct {
	Name     string        `json:"name"`
	Estimate time.Duration `json:"estimate_ns"`
	Actual   time.Duration `json:"actual_ns,omitempty"`
	What     string        `json:"what"`
}

// Phase names.
const (
	phaseBuild      = "build+start"
	phaseExperiment = "experiment"
	phaseProfiles   = "profiles"
	phaseGate       = "gate"
	phaseSoak       = "soak"
	phaseReport     = "report"
)

// demoBudget estimates each phase's wall time from the options, the number
// of experiment variants and whether profiles are taken. The gate is
// costed at its cap (max rounds), so the total is an upper estimate.
func demoBudget(o *demoOptions, variants int, profiles bool) []demoPhase {
	round := o.leadIn + o.round
	ph := []demoPhase{
		{Name: phaseBuild, Estimate: demoBuildCost + time.Duration(variants)*(demoStartCost+o.armWarmup) + experiment.DefaultHostProbe,
			What: fmt.Sprintf("build, then %d services × (start ~%s + warm-up %s), host wake-up floor %s", variants, demoStartCost, o.armWarmup, experiment.DefaultHostProbe)},
		{Name: phaseExperiment, Estimate: time.Duration(variants*o.blocks) * round,
			What: fmt.Sprintf("%d variants × %d blocks × %s rounds", variants, o.blocks, round)},
	}
	if profiles {
		ph = append(ph, demoPhase{Name: phaseProfiles, Estimate: 2 * (round + demoProfileCost),
			What: fmt.Sprintf("one profiled %s round of the baseline and of all fixes", round)})
	}
	gateRounds := 2*o.gateMax + 2*o.gateAA
	ph = append(ph, demoPhase{Name: phaseGate, Estimate: time.Duration(gateRounds) * round,
		What: fmt.Sprintf("at most %d rounds (%d–%d base/head pairs + %d A/A pairs) × %s", gateRounds, o.gateMin, o.gateMax, o.gateAA, round)})
	if o.soak > 0 {
		windows := int(o.soak / o.soakWindow)
		ph = append(ph, demoPhase{Name: phaseSoak, Estimate: demoStartCost + o.armWarmup + experiment.DefaultHostProbe + o.soak + time.Duration(windows)*o.leadIn,
			What: fmt.Sprintf("one service, %d windows of %s (each after a %s lead-in)", windows, o.soakWindow, o.leadIn)})
	}
	ph = append(ph, demoPhase{Name: phaseReport, Estimate: demoReportCost, What: "comment, HTML, notes, cumulative, write-up and PDF"})
	return ph
}

func budgetTotal(ph []demoPhase, actual bool) time.Duration {
	var t time.Duration
	for _, p := range ph {
		if actual {
			t += p.Actual
		} else {
			t += p.Estimate
		}
	}
	return t
}

func printBudget(w io.Writer, ph []demoPhase) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "phase\testimate\t")
	for _, p := range ph {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", p.Name, p.Estimate.Round(time.Second), p.What)
	}
	fmt.Fprintf(tw, "total\t%s\t(upper estimate; the gate may stop at its first checkpoint)\n", budgetTotal(ph, false).Round(time.Second))
	tw.Flush()
}

// profilesUnavailable says why the demo takes no profiles ("" when it
// does): the collectors need root (or CAP_BPF + CAP_PERFMON).
func profilesUnavailable(euid int, skip bool) string {
	switch {
	case skip:
		return "skipped (--no-profiles)"
	case euid != 0:
		return fmt.Sprintf("not root (euid %d): the eBPF collectors need root, or CAP_BPF and CAP_PERFMON; run sudo tailgate demo", euid)
	}
	return ""
}

// withoutRoot adapts the rules to running without root, returning a note
// per change: privileged neighbours are left out (they act on the service
// with root's capabilities; the bidder's pageout needs CAP_SYS_NICE for
// process_madvise and would die at once, making every round invalid), and
// a placement launcher gets no --user (it cannot drop root it lacks).
func withoutRoot(r *rules.Rules, euid int) []string {
	if euid == 0 {
		return nil
	}
	var kept []rules.Neighbour
	var notes []string
	for _, n := range r.Service.Neighbours {
		if n.Privileged {
			notes = append(notes, fmt.Sprintf("not root (euid %d): privileged neighbour %q not started; its contributor is not exercised in this run", euid, n.Name))
			continue
		}
		kept = append(kept, n)
	}
	r.Service.Neighbours = kept
	// A placement launcher's --user USER drops root; without root it
	// cannot, and the service keeps our user anyway.
	for i := range r.Fixes {
		p := r.Fixes[i].Placement
		for j := 0; j+1 < len(p); j++ {
			if p[j] == "--user" {
				notes = append(notes, fmt.Sprintf("not root: fix %q runs its launcher without --user %s (it cannot drop root it does not have)", r.Fixes[i].Name, p[j+1]))
				r.Fixes[i].Placement = append(append(rules.Argv(nil), p[:j]...), p[j+2:]...)
				break
			}
		}
	}
	return notes
}

// demoFleet is what the demo needs of a running fleet (experiment.Fleet).
type demoFleet interface {
	experiment.Driver
	Commit(arm string) string
	PID(arm string) int
	MetricsURL(arm string) string
	Notes() []string
	Close() error
}

// demoDeps are the demo's effects, replaced in tests.
type demoDeps struct {
	startFleet func(ctx context.Context, r *rules.Rules, arms []experiment.ArmSpec, o experiment.FleetOptions) (demoFleet, error)
	// profile records a profile of pid into dir while round runs: it
	// returns the round's measurement and why there is no profile ("" if
	// there is one).
	profile func(ctx context.Context, pid int, dir string, log io.Writer, round func(context.Context) (*experiment.Measured, error)) (*experiment.Measured, string, error)
	// analyze runs `tailgate profile --analyze` with args.
	analyze func(ctx context.Context, args []string, stdout, stderr io.Writer) error
	euid    func() int
	now     func() time.Time
	sample  func(pid int, metricsURL string) func(ctx context.Context) (experiment.Sample, error)
}

func liveDemoDeps() demoDeps {
	return demoDeps{
		startFleet: func(ctx context.Context, r *rules.Rules, arms []experiment.ArmSpec, o experiment.FleetOptions) (demoFleet, error) {
			f, err := experiment.StartFleet(ctx, r, arms, o)
			if err != nil {
				return nil, err
			}
			return f, nil
		},
		profile: profileDuring,
		analyze: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			return runProfile(ctx, args, stdout, stderr, os.Getenv)
		},
		euid:   os.Geteuid,
		now:    time.Now,
		sample: experiment.ProcSampler,
	}
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	o, err := parseDemoFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	return demo(ctx, o, liveDemoDeps(), stdout, stderr)
}

// demoRecord is demo.json: how the demo ran, for repeating it and for the
// reader of tailgate-out.
type demoRecord struct {
	Schema     int               `json:"schema"`
	Started    time.Time         `json:"started"`
	Finished   time.Time         `json:"finished"`
	Rules      string            `json:"rules"`
	Seed       int64             `json:"seed"`
	LoadSeed   int64             `json:"load_seed"`
	Rate       float64           `json:"rate"`
	Options    map[string]string `json:"options"`
	Variants   []string          `json:"variants"`
	Phases     []demoPhase       `json:"phases"`
	Verdicts   map[string]string `json:"verdicts"`
	Invalid    []string          `json:"invalid,omitempty"`
	Profiles   string            `json:"profiles"`
	Notes      []string          `json:"notes,omitempty"`
	WallTimeNs time.Duration     `json:"wall_time_ns"`
}

// demoSchema is the version of demo.json.
const demoSchema = 1

// prepareDemoOut empties out when it holds a previous demo's output (its
// demo.json), refuses any other non-empty directory, and creates the
// subdirectories.
func prepareDemoOut(out string) error {
	ents, err := os.ReadDir(out)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("demo: %w", err)
	case len(ents) > 0:
		if _, err := os.Stat(filepath.Join(out, demoMarkerFile)); err != nil {
			return usageErrorf("demo: --out %s is not empty and holds no %s from an earlier demo; give a new or empty directory", out, demoMarkerFile)
		}
		for _, e := range ents {
			if err := os.RemoveAll(filepath.Join(out, e.Name())); err != nil {
				return fmt.Errorf("demo: clear %s: %w", out, err)
			}
		}
	}
	for _, d := range []string{"experiment/rounds", "gate/rounds", "soak/rounds", "windows", "profiles"} {
		if err := os.MkdirAll(filepath.Join(out, d), 0o755); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
	}
	return nil
}

// demoRules reads the rules and applies the demo's round sizes.
func demoRules(o *demoOptions) (*rules.Rules, []byte, error) {
	r, raw, err := readRules("demo", o.rulesPath)
	if err != nil {
		return nil, nil, err
	}
	if len(r.FixNames()) == 0 {
		return nil, nil, usageErrorf("demo: %s declares no fixes: the demo attributes the tail to them (add a fixes section)", r.Path)
	}
	if r.Service.Port != 0 {
		return nil, nil, usageErrorf("demo: %s: service.port %d is fixed: the demo runs one service per variant (leave service.port out)", r.Path, r.Service.Port)
	}
	r.Gate.RoundDuration = o.round
	r.Gate.Warmup = o.leadIn
	if o.leadIn == 0 {
		r.Gate.Warmup = 0
	}
	if o.maxLag > 0 {
		r.Gate.MaxLag = o.maxLag
	}
	if err := r.Gate.Config().Validate(); err != nil {
		return nil, nil, usageErrorf("demo: %v", err)
	}
	return r, raw, nil
}

// aliasDriver serves the gate's arms (base, head; A/A rounds are served by
// base) from the experiment fleet's variants.
type aliasDriver struct {
	d     experiment.Driver
	alias map[string]string
}

func (a aliasDriver) Round(ctx context.Context, service string, s experiment.Slot) (*experiment.Measured, error) {
	if to, ok := a.alias[service]; ok {
		service = to
	}
	return a.d.Round(ctx, service, s)
}

func safeFile(s string) string {
	return strings.Map(func(c rune) rune {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' {
			return c
		}
		return '_'
	}, s)
}

// demo runs the phases; every phase's outcome lands in the reports, an
// invalid or failed phase included.
func demo(ctx context.Context, o *demoOptions, deps demoDeps, stdout, stderr io.Writer) (retErr error) {
	r, raw, err := demoRules(o)
	if err != nil {
		return err
	}
	fixes := r.FixNames()
	all := experiment.VariantName(fixes)
	variants, err := experiment.Variants(fixes, experiment.ModeStandard)
	if err != nil {
		return usageErrorf("demo: %v", err)
	}
	seed := r.Gate.Config().WithDefaults().Seed
	if o.seedSet {
		seed = o.seed
	}
	euid := deps.euid()
	profWhy := profilesUnavailable(euid, o.noProfiles)
	dropped := withoutRoot(r, euid)
	phases := demoBudget(o, len(variants), profWhy == "")
	if o.dryRun {
		fmt.Fprintf(stdout, "tailgate demo (dry run): rules %s, %d fixes (%s), %d variants, %.6g req/s, schedule seed %d, load seed %d, results into %s\n",
			r.Path, len(fixes), strings.Join(fixes, ", "), len(variants), r.Load.Rate.PerSecond(), seed, r.Load.Seed, o.out)
		printBudget(stdout, phases)
		if profWhy != "" {
			fmt.Fprintf(stdout, "profiles: none: %s\n", profWhy)
		}
		for _, n := range dropped {
			fmt.Fprintf(stdout, "note: %s\n", n)
		}
		return nil
	}
	if err := prepareDemoOut(o.out); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(o.out, "rules.yaml"), raw, 0o644); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	start := deps.now()
	rec := &demoRecord{Schema: demoSchema, Started: start.UTC(), Rules: r.Path, Seed: seed, LoadSeed: r.Load.Seed,
		Rate: r.Load.Rate.PerSecond(), Verdicts: map[string]string{}, Profiles: "taken"}
	rec.Options = map[string]string{
		"blocks": strconv.Itoa(o.blocks), "round_duration": o.round.String(), "round_warmup": o.leadIn.String(),
		"warmup": o.armWarmup.String(), "gate_min_rounds": strconv.Itoa(o.gateMin), "gate_max_rounds": strconv.Itoa(o.gateMax),
		"gate_aa_rounds": strconv.Itoa(o.gateAA), "soak": o.soak.String(), "soak_window": o.soakWindow.String(),
		"max_lag": r.Gate.Lag().String(), "attacker_priority": o.priority,
	}
	for _, v := range variants {
		rec.Variants = append(rec.Variants, v.Name)
	}
	if profWhy != "" {
		rec.Profiles = "unavailable: " + profWhy
	}
	rec.Notes = append(rec.Notes, dropped...)
	fmt.Fprintf(stdout, "tailgate demo: rules %s, %d fixes (%s), %d variants, %.6g req/s, schedule seed %d, load seed %d\n",
		r.Path, len(fixes), strings.Join(fixes, ", "), len(variants), r.Load.Rate.PerSecond(), seed, r.Load.Seed)
	fmt.Fprintf(stdout, "results: %s\n", o.out)
	fmt.Fprintln(stdout, "time budget:")
	printBudget(stdout, phases)
	if profWhy != "" {
		fmt.Fprintf(stdout, "profiles: none: %s\n", profWhy)
	}
	for _, n := range dropped {
		fmt.Fprintf(stdout, "note: %s\n", n)
	}
	phaseStart := deps.now()
	done := func(name string) {
		now := deps.now()
		for i := range phases {
			if phases[i].Name == name {
				phases[i].Actual = now.Sub(phaseStart)
			}
		}
		fmt.Fprintf(stderr, "demo: %s done in %s (total %s)\n", name, now.Sub(phaseStart).Round(time.Second), now.Sub(start).Round(time.Second))
		phaseStart = now
	}
	defer func() {
		rec.Finished = deps.now().UTC()
		rec.WallTimeNs = rec.Finished.Sub(start)
		rec.Phases = phases
		if err := writeJSON(filepath.Join(o.out, demoMarkerFile), rec); err != nil && retErr == nil {
			retErr = err
		}
	}()

	// 1. Build and start every variant.
	expDir := filepath.Join(o.out, "experiment")
	arms := make([]experiment.ArmSpec, len(variants))
	for i, v := range variants {
		arms[i] = experiment.ArmSpec{Name: v.Name, Fixes: v.Fixes}
	}
	fo := experiment.FleetOptions{Repo: o.repo, LogDir: expDir, WindowsDir: filepath.Join(o.out, "windows"),
		Progress: stderr, AttackerPriority: o.priority, Warmup: o.armWarmup}
	if o.armWarmup == 0 {
		fo.Warmup = -1
	}
	fleet, err := deps.startFleet(ctx, r, arms, fo)
	if err != nil {
		return fmt.Errorf("demo: start the services: %w", err)
	}
	closed := false
	closeFleet := func() {
		if !closed {
			closed = true
			if err := fleet.Close(); err != nil {
				rec.Notes = append(rec.Notes, "stopping the services: "+err.Error())
			}
		}
	}
	defer closeFleet()
	done(phaseBuild)

	// 2. The experiment.
	cfg := r.Gate.Config()
	res, runErr := experiment.RunExperiment(ctx, experiment.ExperimentRun{
		Fixes: fixes, Mode: experiment.ModeStandard, Blocks: o.blocks, Seed: seed, Gate: cfg,
		Attribution: experiment.AttributionConfig{Seed: cfg.Seed, Bootstrap: cfg.Bootstrap},
		Driver:      fleet, Record: histRecorder(expDir), Progress: stderr, LagReruns: r.Gate.LagReruns,
	})
	if res == nil || res.Document == nil {
		if runErr == nil {
			runErr = errors.New("no result")
		}
		return fmt.Errorf("demo: experiment: %w", runErr)
	}
	expDoc := res.Document
	if runErr != nil && (ctx.Err() != nil || len(expDoc.Rounds) < len(expDoc.Schedule)) {
		return fmt.Errorf("demo: experiment: %w", runErr)
	}
	expDoc.Tool = "tailgate demo"
	expDoc.Service = r.Service.Build + r.Service.Bin
	expDoc.Base = &experiment.Ref{Name: deploy.RefName(""), Commit: fleet.Commit(experiment.Baseline)}
	expDoc.Rate = r.Load.Rate.PerSecond()
	expDoc.Notes = append(expDoc.Notes, fleet.Notes()...)
	rec.Invalid = append(rec.Invalid, res.Invalid...)
	if runErr != nil {
		// Every round ran, but too few complete blocks of valid rounds
		// are left to attribute: keep the rounds, report without the
		// experiment document (it needs an attribution).
		why := fmt.Sprintf("experiment: no attribution: %v", runErr)
		rec.Notes = append(rec.Notes, why)
		fmt.Fprintln(stdout, why)
		printRounds(stdout, expDoc)
		if err := writeJSON(filepath.Join(expDir, "rounds.json"), expDoc); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		if len(res.Invalid) == 0 {
			return fmt.Errorf("demo: %s", why)
		}
		expDoc = nil
	} else {
		if err := writeDocument(expDir, expDoc); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		if err := writeJSON(filepath.Join(expDir, "variants.json"), res); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		for _, v := range res.Variants {
			rec.Verdicts["experiment "+v.Variant] = string(v.Verdict)
		}
		printExperiment(stdout, res)
	}
	done(phaseExperiment)

	// 3. Profiles of one round of the baseline and of all fixes.
	profDir := filepath.Join(o.out, "profiles")
	if profWhy == "" {
		var notes []string
		profWhy, notes = demoProfiles(ctx, deps, fleet, profDir, filepath.Join(o.out, "windows"), all, stderr)
		rec.Notes = append(rec.Notes, notes...)
		if profWhy != "" {
			rec.Profiles = "unavailable: " + profWhy
		}
		done(phaseProfiles)
	}

	// 4. The gate: baseline (base) against all fixes (head).
	gcfg := cfg
	gcfg.MinRounds, gcfg.MaxRounds, gcfg.CheckpointEvery, gcfg.AARounds = o.gateMin, o.gateMax, DefaultDemoGateEvery, o.gateAA
	gateDir := filepath.Join(o.out, "gate")
	gateDoc, runErr := experiment.RunGate(ctx, experiment.GateRun{
		Config: gcfg, Seed: seed, Record: histRecorder(gateDir), Progress: stderr, LagReruns: r.Gate.LagReruns,
		Driver: aliasDriver{d: fleet, alias: map[string]string{gate.ArmBase: experiment.Baseline, gate.ArmHead: all}},
	})
	if gateDoc == nil {
		return fmt.Errorf("demo: gate: %w", runErr)
	}
	if runErr != nil && gateDoc.Gate == nil {
		return fmt.Errorf("demo: gate: %w", runErr)
	}
	gateDoc.Tool = "tailgate demo"
	gateDoc.Service = r.Service.Build + r.Service.Bin
	gateDoc.Base = &experiment.Ref{Name: experiment.Baseline, Commit: fleet.Commit(experiment.Baseline)}
	gateDoc.Head = &experiment.Ref{Name: all, Commit: fleet.Commit(all)}
	gateDoc.Rate = r.Load.Rate.PerSecond()
	gateDoc.Notes = append(gateDoc.Notes, fmt.Sprintf("demo: base is the %s variant, head the %s variant, both built from the working tree", experiment.Baseline, all))
	gateDoc.Notes = append(gateDoc.Notes, fleet.Notes()...)
	gateDoc.Notes = append(gateDoc.Notes, rec.Notes...)
	if profWhy != "" {
		gateDoc.Notes = append(gateDoc.Notes, "profiles unavailable: "+profWhy)
	}
	if err := writeDocument(gateDir, gateDoc); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	rec.Verdicts["gate"] = string(gateDoc.Gate.Verdict)
	rec.Invalid = append(rec.Invalid, gateInvalidRounds(gateDoc)...)
	printGate(stdout, gateDoc, gateDir)
	closeFleet()
	done(phaseGate)

	// 5. The soak of all fixes, alone with its neighbours.
	in := &report.Input{Gate: gateDoc}
	if expDoc != nil {
		in.Experiment = expDoc
	}
	if runErr != nil {
		return fmt.Errorf("demo: gate: %w", runErr)
	}
	if o.soak > 0 {
		soak, why, err := demoSoak(ctx, deps, o, r, fixes, stdout, stderr)
		if err != nil {
			return err
		}
		in.SoakUnavailable = why
		if soak != nil {
			rec.Verdicts["soak"] = string(soak.Verdict)
			bad := 0
			for _, w := range soak.Windows {
				if !w.Valid && !(w.LagBounded && soak.Verdict != gate.Invalid) {
					bad++
					rec.Invalid = append(rec.Invalid, fmt.Sprintf("soak window %d: %v", w.Index+1, w.Invalid))
				}
			}
			if bad == 0 {
				in.Soak = reportSoak(soak, all)
			} else {
				// The report's soak has no validity per window: rather
				// than show invalid windows as evidence, say so.
				in.SoakUnavailable = fmt.Sprintf("the soak is INVALID, not evidence: %d of %d windows invalid (first: %s); its windows are in soak/soak.json",
					bad, len(soak.Windows), firstInvalid(soak))
			}
		}
		done(phaseSoak)
	} else {
		in.SoakUnavailable = "skipped (--soak 0)"
	}

	// 6. The report set.
	if err := demoReport(ctx, o, r, in, profDir, profWhy, stdout); err != nil {
		return err
	}
	done(phaseReport)

	total := deps.now().Sub(start)
	phasesCopy := append([]demoPhase(nil), phases...)
	printDemoSummary(stdout, o.out, rec, gateDoc, in.Soak != nil, phasesCopy, total)
	if len(rec.Invalid) > 0 {
		return withExit(ExitError, fmt.Errorf("demo: the run is INVALID (not evidence, never a pass): %d invalid rounds or windows; see %s",
			len(rec.Invalid), filepath.Join(o.out, "report.html")))
	}
	if v := gateDoc.Gate.Verdict; v != gate.Pass {
		return withExit(gate.ExitCode(v), errSilent)
	}
	return nil
}

// Profile directories under <out>/profiles: the two recordings; the
// analysis (contributors.json, profiles.json, flame/) goes into the
// profiles directory itself, where the report reads it.
const (
	demoProfileBase = "baseline"
	demoProfileHead = "allfixes"
)

// demoProfiles records one round of the baseline and one of all fixes with
// `tailgate profile --go` (while the fleet drives the round, its request
// windows written beside), then runs `tailgate profile --analyze` with the
// baseline as base and all fixes as head: contributors of both and the
// slow-vs-fast and head-vs-base flame graphs. When the analysis fails, it
// falls back to whole-process flame graphs of the two recordings. It
// returns why there are no profiles ("" when there are) and notes for the
// reader.
func demoProfiles(ctx context.Context, deps demoDeps, fleet demoFleet, dir, windowsDir, all string, log io.Writer) (string, []string) {
	type taken struct {
		dir, windows string
		requests     int64
	}
	var got []taken
	var notes []string
	for i, v := range []string{experiment.Baseline, all} {
		pid := fleet.PID(v)
		if pid <= 0 {
			return fmt.Sprintf("variant %s has no running process", v), notes
		}
		vdir := filepath.Join(dir, []string{demoProfileBase, demoProfileHead}[i])
		slot := experiment.Slot{Order: 900 + i, Arm: "profile-" + v}
		m, why, err := deps.profile(ctx, pid, vdir, log, func(ctx context.Context) (*experiment.Measured, error) {
			return fleet.Round(ctx, v, slot)
		})
		if err != nil {
			return fmt.Sprintf("profile of %s: %v", v, err), notes
		}
		if why != "" {
			return why, notes
		}
		if m == nil || m.Requests == 0 {
			return fmt.Sprintf("profiled round of %s served no requests", v), notes
		}
		if !m.Valid {
			notes = append(notes, fmt.Sprintf("the profiled round of %s is invalid (%s); its profile is shown, no verdict uses it", v, strings.Join(m.Invalid, "; ")))
		}
		// The fleet names a round's windows file after its order and arm.
		win := filepath.Join(windowsDir, slot.FileName("windows"))
		if _, err := os.Stat(win); err != nil {
			win = ""
		}
		got = append(got, taken{vdir, win, m.Requests})
	}
	args := []string{"--analyze", "--in", got[1].dir, "--out", dir, "--base", got[0].dir, "--variant", flame.LabelHead}
	if got[0].windows != "" && got[1].windows != "" {
		args = append(args, "--windows", got[1].windows, "--base-windows", got[0].windows)
	} else {
		notes = append(notes, "no client windows of the profiled rounds: the analysis uses the server-side ServeHTTP windows")
	}
	var analysis bytes.Buffer
	aerr := deps.analyze(ctx, args, &analysis, log)
	if aerr == nil {
		os.WriteFile(filepath.Join(dir, "analysis.txt"), analysis.Bytes(), 0o644)
		if err := aliasProfileSets(filepath.Join(dir, report.ProfilesFile), all); err != nil {
			notes = append(notes, fmt.Sprintf("profiles.json: %v", err))
		}
		notes = append(notes, fmt.Sprintf("profiles: base = %s, head = %s (one profiled round each)", experiment.Baseline, all))
		return "", notes
	}
	fmt.Fprintf(log, "demo: the profile analysis failed: %v; drawing whole-process flame graphs instead\n", aerr)
	notes = append(notes, fmt.Sprintf("no contributor breakdown: the profile analysis failed: %v; the flame graphs are of the whole process", aerr))
	sets, err := writeVariantDiffs(dir, got[0].dir, got[1].dir, got[0].requests, got[1].requests)
	if err != nil {
		return fmt.Sprintf("flame graphs: %v (after the analysis failed: %v)", err, aerr), notes
	}
	if sets == 0 {
		return fmt.Sprintf("the analysis failed (%v) and the recordings hold no folded stacks of both variants", aerr), notes
	}
	return "", notes
}

// aliasProfileSets adds to the analysis's profiles.json the same
// contributor sets under the experiment's variant names: "base" is also
// the "baseline" variant and "head" the all-fixes one, so the per-fix
// notes find their "before" evidence.
func aliasProfileSets(path, all string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var pj map[string]json.RawMessage
	if err := json.Unmarshal(b, &pj); err != nil {
		return err
	}
	var sets []report.ContributorSet
	if raw, ok := pj["contributors"]; ok {
		if err := json.Unmarshal(raw, &sets); err != nil {
			return err
		}
	}
	have := map[string]bool{}
	for _, s := range sets {
		have[s.Variant] = true
	}
	for _, s := range append([]report.ContributorSet(nil), sets...) {
		alias := map[string]string{flame.LabelBase: experiment.Baseline, flame.LabelHead: all}[s.Variant]
		if alias != "" && !have[alias] {
			s.Variant = alias
			sets = append(sets, s)
		}
	}
	raw, err := json.Marshal(sets)
	if err != nil {
		return err
	}
	pj["contributors"] = raw
	return writeJSON(path, pj)
}

// writeVariantDiffs draws, for every collector both profile directories
// folded, the diff set "<kind>-allfixes-vs-baseline" (per request: each
// side divided by the requests of its round) under dir/flame, and writes
// dir/profiles.json with the sets' units and labels. It returns the number
// of sets written.
func writeVariantDiffs(dir, baseDir, headDir string, baseReq, headReq int64) (int, error) {
	folded, err := filepath.Glob(filepath.Join(baseDir, "*.folded"))
	if err != nil {
		return 0, err
	}
	sort.Strings(folded)
	units, labels := map[string]string{}, map[string][]string{}
	n := 0
	for _, bpath := range folded {
		kind := strings.TrimSuffix(filepath.Base(bpath), ".folded")
		hpath := filepath.Join(headDir, filepath.Base(bpath))
		if _, err := os.Stat(hpath); err != nil {
			continue
		}
		a, err := flame.ReadFoldedFile(bpath)
		if err != nil {
			return n, err
		}
		b, err := flame.ReadFoldedFile(hpath)
		if err != nil {
			return n, err
		}
		if a.Total() <= 0 || b.Total() <= 0 {
			continue
		}
		unit := kindUnit(kind)
		a.Unit, b.Unit = unit, unit
		a.Requests, b.Requests = baseReq, headReq
		name := kind + "-" + demoProfileLabel + "-vs-" + experiment.Baseline
		palette := flame.PaletteOffCPU
		if kind == "oncpu" {
			palette = flame.PaletteOnCPU
		}
		if _, _, err := flame.WriteDiffSet(filepath.Join(dir, "flame"), flame.DiffSet{Name: name, A: a, B: b,
			ALabel: experiment.Baseline, BLabel: demoProfileLabel, Norm: flame.NormPerRequest, Palette: palette,
			Title: kind + " (whole process, one round)"}); err != nil {
			return n, err
		}
		units[name] = unit
		labels[name] = []string{experiment.Baseline, demoProfileLabel}
		n++
	}
	if n == 0 {
		return 0, nil
	}
	pj := map[string]any{"units": units, "labels": labels}
	return n, writeJSON(filepath.Join(dir, report.ProfilesFile), pj)
}

// kindUnit is the unit of a `tailgate profile` folded file (foldUnit).
func kindUnit(kind string) string {
	switch kind {
	case "oncpu":
		return flame.DefaultUnit
	case "numa":
		return "events"
	}
	return "ns"
}

// lineSignal is an io.Writer that closes ready when a line starting with
// prefix was written, and keeps everything for the log.
type lineSignal struct {
	mu     sync.Mutex
	prefix string
	ready  chan struct{}
	closed bool
	buf    bytes.Buffer
	log    io.Writer
}

func (l *lineSignal) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	if l.log != nil {
		l.log.Write(p)
	}
	if !l.closed {
		for _, line := range strings.Split(l.buf.String(), "\n") {
			if strings.HasPrefix(line, l.prefix) {
				l.closed = true
				close(l.ready)
				break
			}
		}
	}
	return len(p), nil
}

// Profiling a round.
const (
	// profileAttachTimeout bounds the collectors' start.
	profileAttachTimeout = 90 * time.Second
	// profileSettle is left between the collectors' start and the round:
	// right after it the profiler loads the target's symbols.
	profileSettle = time.Second
	// profileStopTimeout bounds writing the profile after SIGINT.
	profileStopTimeout = 2 * time.Minute
)

// profileDuring runs `tailgate profile --go` on pid into dir in a child
// process of this same binary, runs round once the collectors are
// attached, then stops the profile with SIGINT (it then writes its files).
// A child process, because the profiler decodes and writes every event:
// in this process it would take the Go scheduler from the load generator,
// whose late sends would make the profiled round invalid. A profile that
// cannot start is a reason, not an error: the demo goes on without it.
func profileDuring(ctx context.Context, pid int, dir string, log io.Writer, round func(context.Context) (*experiment.Measured, error)) (*experiment.Measured, string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Sprintf("find the tailgate binary to profile with: %v", err), nil
	}
	sig := &lineSignal{prefix: "profiling pid", ready: make(chan struct{}), log: log}
	cmd := exec.Command(self, "profile", "--pid", strconv.Itoa(pid), "--duration", "1h", "--out", dir, "--go", "--best-effort")
	cmd.Stdout, cmd.Stderr = sig, log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Sprintf("start tailgate profile: %v", err), nil
	}
	errc := make(chan error, 1)
	go func() { errc <- cmd.Wait() }()
	stop := func(timeout time.Duration) error {
		cmd.Process.Signal(os.Interrupt)
		select {
		case err := <-errc:
			return err
		case <-time.After(timeout):
			cmd.Process.Kill()
			<-errc
			return fmt.Errorf("did not stop within %s after SIGINT; killed", timeout)
		}
	}
	select {
	case <-sig.ready:
	case err := <-errc:
		if err == nil {
			err = errors.New("exited before attaching")
		}
		return nil, fmt.Sprintf("the eBPF collectors did not start: %v (%s)", err, lastLine(sig.text())), nil
	case <-time.After(profileAttachTimeout):
		stop(5 * time.Second)
		return nil, fmt.Sprintf("the eBPF collectors did not attach within %s", profileAttachTimeout), nil
	case <-ctx.Done():
		stop(5 * time.Second)
		return nil, "", ctx.Err()
	}
	select {
	case <-time.After(profileSettle):
	case <-ctx.Done():
	}
	m, err := round(ctx)
	perr := stop(profileStopTimeout)
	if err != nil {
		return nil, "", err
	}
	if perr != nil {
		return m, fmt.Sprintf("the profile failed: %v", perr), nil
	}
	return m, "", nil
}

func (l *lineSignal) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// demoSoak starts the all-fixes service alone (with its neighbours) and
// soaks it. It returns the result, or why there is none.
func demoSoak(ctx context.Context, deps demoDeps, o *demoOptions, r *rules.Rules, fixes []string, stdout, stderr io.Writer) (*experiment.SoakResult, string, error) {
	dir := filepath.Join(o.out, "soak")
	const arm = "soak"
	fo := experiment.FleetOptions{Repo: o.repo, LogDir: dir, Progress: stderr, AttackerPriority: o.priority,
		Warmup: o.armWarmup, RoundDuration: o.soakWindow, RoundWarmup: o.leadIn}
	if o.leadIn == 0 {
		fo.RoundWarmup = -1
	}
	if o.armWarmup == 0 {
		fo.Warmup = -1
	}
	fleet, err := deps.startFleet(ctx, r, []experiment.ArmSpec{{Name: arm, Fixes: fixes}}, fo)
	if err != nil {
		return nil, fmt.Sprintf("the soak service did not start: %v", err), nil
	}
	defer fleet.Close()
	res, runErr := experiment.RunSoak(ctx, experiment.SoakRun{
		Duration: o.soak, Window: o.soakWindow, SLO: r.Gate.Config().WithDefaults().SLO,
		Arm: arm, Driver: fleet, Sample: deps.sample(fleet.PID(arm), fleet.MetricsURL(arm)),
		Record: histRecorder(dir), Progress: stderr,
	})
	if res == nil {
		return nil, "", fmt.Errorf("demo: soak: %w", runErr)
	}
	res.Service = r.Service.Build + r.Service.Bin
	res.Ref = &experiment.Ref{Name: deploy.RefName(""), Commit: fleet.Commit(arm)}
	res.Rate = r.Load.Rate.PerSecond()
	res.Notes = append(res.Notes, fleet.Notes()...)
	res.Notes = append(res.Notes, "fixes: "+experiment.VariantName(fixes))
	if o.leadIn > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("demo: each window follows an unrecorded %s lead-in (tailgate soak runs its windows back to back)", o.leadIn))
	}
	if err := writeJSON(filepath.Join(dir, "soak.json"), res); err != nil {
		return nil, "", fmt.Errorf("demo: %w", err)
	}
	printSoak(stdout, res, dir)
	if runErr != nil {
		return nil, "", fmt.Errorf("demo: soak: %w", runErr)
	}
	return res, "", nil
}

func firstInvalid(s *experiment.SoakResult) string {
	for _, w := range s.Windows {
		if !w.Valid {
			return strings.Join(w.Invalid, "; ")
		}
	}
	return ""
}

// reportSoak converts a soak result for internal/report: window starts as
// offsets from the soak's start.
func reportSoak(s *experiment.SoakResult, variant string) *report.SoakResult {
	out := &report.SoakResult{Variant: variant, Window: s.Window, SLO: s.SLO}
	var t0 time.Time
	if len(s.Windows) > 0 {
		t0 = s.Windows[0].Start
	}
	for i, w := range s.Windows {
		rw := report.SoakWindow{Start: w.Start.Sub(t0), Requests: w.Requests, Errors: w.Errors, P50: w.P50, P99: w.P99}
		if i > 0 && rw.Start <= out.Windows[i-1].Start {
			// Clock steps must not reorder windows: fall back to the index.
			rw.Start = time.Duration(i) * s.Window
		}
		if sm := w.Sample; sm != nil {
			if sm.RSSBytes > 0 {
				rw.RSSBytes = uint64(sm.RSSBytes)
			}
			if sm.HeapLiveBytes > 0 {
				rw.HeapBytes = uint64(sm.HeapLiveBytes)
			}
			if i > 0 && sm.GCCycles >= 0 {
				if prev := s.Windows[i-1].Sample; prev != nil && prev.GCCycles >= 0 && sm.GCCycles >= prev.GCCycles {
					rw.GCCycles = uint64(sm.GCCycles - prev.GCCycles)
				}
			}
		}
		out.Windows = append(out.Windows, rw)
	}
	return out
}

// demoReport writes the report set into o.out.
func demoReport(ctx context.Context, o *demoOptions, r *rules.Rules, in *report.Input, profDir, profWhy string, stdout io.Writer) error {
	if profWhy != "" {
		in.Profiles = report.Profiles{Unavailable: profWhy}
	} else {
		p, err := report.LoadProfiles(profDir)
		if err != nil {
			in.Profiles = report.Profiles{Unavailable: err.Error()}
		} else {
			in.Profiles = p
		}
	}
	for _, name := range r.FixNames() {
		f, _ := r.FixByName(name)
		in.Fixes = append(in.Fixes, report.FixInfo{Name: f.Name, Contributor: f.Contributor, Hypothesis: f.Description})
	}
	m, err := report.Write(ctx, o.out, in, report.Options{NoPDF: o.noPDF, Chromium: o.chromium})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	fmt.Fprintf(stdout, "report: wrote %d files to %s\n", len(m.Files), o.out)
	keys := make([]string, 0, len(m.Unavailable))
	for k := range m.Unavailable {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(stdout, "  unavailable: %s: %s\n", k, m.Unavailable[k])
	}
	return nil
}

// gateInvalidRounds lists the gate's rounds that make the demo invalid. A
// round over the lag rule only entered the verdict through the gate's lag
// bracket; it makes the run invalid only where the bracket did not agree
// (the gate's verdict is then invalid). An A/A round invalid only for the
// load generator's own lag was left out of the noise floor and fed
// nothing else (gate.Round.FloorOnly; the gate's reasons list it).
func gateInvalidRounds(doc *experiment.Document) []string {
	var out []string
	for _, rd := range doc.Rounds {
		if rd.Valid || rd.FloorOnly || (rd.LagBounded && doc.Gate.Verdict != gate.Invalid) {
			continue
		}
		out = append(out, fmt.Sprintf("gate round %d (%s #%d): %v", rd.Order, rd.Arm, rd.Index, rd.Invalid))
	}
	return out
}

// printDemoSummary prints the verdicts, the time taken per phase against
// the budget, and where to look.
func printDemoSummary(w io.Writer, out string, rec *demoRecord, gateDoc *experiment.Document, soak bool, phases []demoPhase, total time.Duration) {
	fmt.Fprintln(w)
	fmt.Fprintln(w, "== tailgate demo: summary ==")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "phase\testimate\ttook\t")
	for _, p := range phases {
		took := "-"
		if p.Actual > 0 {
			took = p.Actual.Round(time.Second).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t\n", p.Name, p.Estimate.Round(time.Second), took)
	}
	fmt.Fprintf(tw, "total\t%s\t%s\t\n", budgetTotal(phases, false).Round(time.Second), total.Round(time.Second))
	tw.Flush()
	g := gateDoc.Gate
	verdict := strings.ToUpper(string(g.Verdict))
	if len(rec.Invalid) > 0 {
		fmt.Fprintf(w, "result: INVALID: %d invalid rounds or windows; the run is not evidence and not a pass\n", len(rec.Invalid))
		if g.Verdict == gate.Pass {
			verdict = "pass on its own rounds, but the run as a whole is INVALID"
		}
	}
	fmt.Fprintf(w, "gate, %s (base) vs %s (head): %s after %d pairs; schedule seed %d\n",
		gateDoc.Base.Name, gateDoc.Head.Name, verdict, g.Pairs, gateDoc.ScheduleSeed)
	for _, reason := range g.Reasons {
		fmt.Fprintf(w, "  - %s\n", reason)
	}
	if v, ok := rec.Verdicts["experiment "+experiment.Baseline]; ok {
		fmt.Fprintf(w, "experiment: baseline alone %s, all fixes %s (against the SLO and the baseline's p50)\n",
			strings.ToUpper(v), strings.ToUpper(rec.Verdicts["experiment "+gateDoc.Head.Name]))
	}
	if v, ok := rec.Verdicts["soak"]; ok {
		fmt.Fprintf(w, "soak of all fixes: %s\n", strings.ToUpper(v))
	} else if !soak {
		fmt.Fprintln(w, "soak: none")
	}
	fmt.Fprintf(w, "profiles: %s\n", rec.Profiles)
	if len(rec.Invalid) > 0 {
		fmt.Fprintf(w, "invalid rounds (load generator send lag over %s, errors or a dead service); the first ones:\n", rec.Options["max_lag"])
		for i, s := range rec.Invalid {
			if i == 3 {
				fmt.Fprintf(w, "  ... and %d more (demo.json)\n", len(rec.Invalid)-3)
				break
			}
			fmt.Fprintf(w, "  - %s\n", s)
		}
	}
	fmt.Fprintln(w, "where to look:")
	for _, l := range [][2]string{
		{"report.html", "the HTML report: spectrum, p99 over time, contributors, waterfall, flame graphs"},
		{"comment.md", "the PR comment the GitHub Action would post"},
		{"writeup.pdf", "the write-up for the platform lead (writeup.html when no Chromium)"},
		{"fixes/", "one note per fix: hypothesis, evidence, isolation and cumulative results"},
		{"cumulative.md", "all fixes together, the soak and the p50 check"},
		{"experiment/", "the experiment's result document and rounds (gate/ and soak/ likewise)"},
		{demoMarkerFile, "seed, options, time per phase, verdicts: everything to repeat this run"},
	} {
		fmt.Fprintf(w, "  %-24s %s\n", filepath.Join(out, l[0]), l[1])
	}
}
