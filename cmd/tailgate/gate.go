package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tailgate-ci/tailgate/internal/deploy"
	"github.com/tailgate-ci/tailgate/internal/experiment"
	"github.com/tailgate-ci/tailgate/internal/gate"
	"github.com/tailgate-ci/tailgate/internal/latency"
	"github.com/tailgate-ci/tailgate/internal/rules"
	perfrules "github.com/tailgate-ci/tailgate/perf-rules"
)

func init() {
	register(command{
		name:    "gate",
		summary: "build base and head, run interleaved ABBA rounds and decide pass/fail on p99 and p50",
		run:     runGate,
	})
}

const gateUsage = `usage: tailgate gate [flags]

Builds the service at --base and --head, starts one instance of each (plus
the rules' neighbours), warms both up, then runs rounds in a seeded ABBA
order with A/A rounds for the noise floor, and evaluates the gate (rules
section gate) at its checkpoints: an inconclusive checkpoint runs more
rounds, up to gate.max_rounds. Writes to --out: result.json (the versioned
result document), rounds/round-NNN-ARM.hist (each round's histogram,
written as the round ends), the services' logs and rules.yaml.

--base-fixes/--head-fixes apply fixes of the rules (section fixes) to an arm:
--base HEAD --head HEAD --head-fixes all gates the service with every fix
against the service as built.

Exit status: 0 pass, 3 fail, 4 inconclusive, 1 invalid run or error, 2 usage.

flags:
`

// liveFlags are the flags gate, experiment and soak share.
type liveFlags struct {
	rulesPath string
	repo      string
	out       string
	seed      int64
	rate      float64
	roundDur  time.Duration
	roundWarm time.Duration
	warmup    time.Duration
	maxLag    time.Duration
	lagReruns int
	priority  string
	windows   bool
	sharedNbs bool
	slo       time.Duration
	maxRounds int
	set       map[string]bool
}

func (l *liveFlags) register(fs *flag.FlagSet, roundFlags bool) {
	fs.StringVar(&l.rulesPath, "rules", "", "perf-rules file (default: the embedded "+perfrules.BidderName+")")
	fs.StringVar(&l.repo, "repo", ".", "repository to build the service from")
	fs.StringVar(&l.out, "out", "", "results directory (default: tailgate-<command>-<UTC time>)")
	fs.Int64Var(&l.seed, "seed", 0, "schedule seed (default: gate.seed, else 1); recorded in the result")
	fs.Func("rate", "requests per second (default: the rules' load.rate)", func(s string) error {
		v, err := rules.ParseRate(s)
		l.rate = v
		return err
	})
	dur := func(dst *time.Duration) func(string) error {
		return func(s string) error {
			d, err := time.ParseDuration(s)
			if err != nil || d < 0 {
				return fmt.Errorf("%q is not a non-negative duration like 8s", s)
			}
			*dst = d
			return nil
		}
	}
	if roundFlags {
		fs.Func("round-duration", "measured part of each round (default: gate.round_duration, 8s)", dur(&l.roundDur))
		fs.Func("round-warmup", "unrecorded lead-in of each round (default: gate.warmup, 2s)", dur(&l.roundWarm))
		fs.Func("slo", "p99 threshold, overriding gate.slo (default 25ms)", dur(&l.slo))
		fs.IntVar(&l.maxRounds, "max-rounds", 0, "most base/head pairs, overriding gate.max_rounds (gate.min_rounds is lowered to it when larger)")
	}
	fs.Func("warmup", "warm-up of each service after its start (default: load.warmup)", dur(&l.warmup))
	fs.Func("max-lag", "largest load-generator send lag of a valid round (default: gate.max_lag, 1ms); recorded", dur(&l.maxLag))
	fs.IntVar(&l.lagReruns, "lag-reruns", 0, "rounds that may run again when invalid only for the load generator's own lag (default: gate.lag_reruns, 0); opt-in: it keeps the calmer attempts of an arm whose overload makes the generator lag")
	fs.StringVar(&l.priority, "attacker-priority", experiment.PriorityRealtime, "load generator threads once the services run: rt (SCHED_RR 1), nice (-19, and the session autogroup) or none; root")
	fs.BoolVar(&l.windows, "windows", false, "also write every round's request windows (large)")
	fs.BoolVar(&l.sharedNbs, "shared-neighbours", false, "keep every arm's neighbours running all the time (default: each arm's run only during its own warm-up and rounds)")
}

// parseLive parses args with fs and the shared flags.
func parseLive(name string, fs *flag.FlagSet, l *liveFlags, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageErrorf("%s: %v", name, err)
	}
	if fs.NArg() > 0 {
		return usageErrorf("%s: unexpected arguments %q", name, fs.Args())
	}
	l.set = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { l.set[f.Name] = true })
	if l.set["max-lag"] && l.maxLag == 0 {
		return usageErrorf("%s: --max-lag must be positive", name)
	}
	if l.lagReruns < 0 {
		return usageErrorf("%s: --lag-reruns %d: want 0 or more", name, l.lagReruns)
	}
	switch l.priority {
	case experiment.PriorityRealtime, experiment.PriorityNice, experiment.PriorityNone:
	default:
		return usageErrorf("%s: --attacker-priority %q: want rt, nice or none", name, l.priority)
	}
	return nil
}

// loadLiveRules reads the rules (or the embedded default) and applies the
// flag overrides; it returns the raw file for the results directory.
func loadLiveRules(name string, l *liveFlags) (*rules.Rules, []byte, error) {
	r, raw, err := readRules(name, l.rulesPath)
	if err != nil {
		return nil, nil, err
	}
	if l.set["max-lag"] {
		r.Gate.MaxLag = l.maxLag
	}
	if l.set["lag-reruns"] {
		r.Gate.LagReruns = l.lagReruns
	}
	if l.set["round-duration"] {
		r.Gate.RoundDuration = l.roundDur
	}
	if l.set["round-warmup"] {
		r.Gate.Warmup = l.roundWarm
	}
	if l.set["slo"] {
		if l.slo <= 0 {
			return nil, nil, usageErrorf("%s: --slo must be positive", name)
		}
		r.Gate.SLO = l.slo
	}
	if l.set["max-rounds"] {
		if l.maxRounds < 2 {
			return nil, nil, usageErrorf("%s: --max-rounds must be at least 2", name)
		}
		r.Gate.MaxRounds = l.maxRounds
		if r.Gate.MinRounds > l.maxRounds || (r.Gate.MinRounds == 0 && gate.DefaultMinRounds > l.maxRounds) {
			r.Gate.MinRounds = l.maxRounds
		}
	}
	if err := r.Gate.Config().Validate(); err != nil {
		return nil, nil, usageErrorf("%s: %v", name, err)
	}
	return r, raw, nil
}

func (l *liveFlags) seedOr(r *rules.Rules) int64 {
	if l.set["seed"] {
		return l.seed
	}
	return r.Gate.Config().WithDefaults().Seed
}

func (l *liveFlags) fleetOptions(out string, stderr io.Writer) experiment.FleetOptions {
	o := experiment.FleetOptions{Repo: l.repo, LogDir: out, Rate: l.rate, Progress: stderr, AttackerPriority: l.priority,
		SharedNeighbours: l.sharedNbs}
	if l.set["warmup"] {
		o.Warmup = l.warmup
		if o.Warmup == 0 {
			o.Warmup = -1
		}
	}
	if l.windows {
		o.WindowsDir = filepath.Join(out, "rounds")
	}
	return o
}

// prepareOut creates the results directory (refusing a non-empty one) with
// its rounds/ subdirectory and the rules used.
func prepareOut(name, out string, raw []byte) (string, error) {
	if out == "" {
		out = "tailgate-" + name + "-" + time.Now().UTC().Format("20060102-150405")
	}
	if ents, err := os.ReadDir(out); err == nil && len(ents) > 0 {
		return "", usageErrorf("%s: --out %s already holds results; give a new directory", name, out)
	}
	if err := os.MkdirAll(filepath.Join(out, "rounds"), 0o755); err != nil {
		return "", fmt.Errorf("%s: create results directory: %w", name, err)
	}
	if err := os.WriteFile(filepath.Join(out, "rules.yaml"), raw, 0o644); err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}

// histRecorder writes each round's raw histogram as it ends, before any
// analysis (and, for a round over the lag rule only, its lag-free one).
func histRecorder(out string) experiment.RecordFunc {
	return func(s experiment.Slot, m *experiment.Measured) error {
		enc, err := latency.Encode(m.Hist)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(out, "rounds", s.FileName("hist")), []byte(enc+"\n"), 0o644); err != nil {
			return err
		}
		if !m.Valid && m.LagOnly && m.LagFree != nil {
			// The lag bracket's other end: latency from the actual send.
			enc, err := latency.Encode(m.LagFree)
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(out, "rounds", s.FileName("lagfree.hist")), []byte(enc+"\n"), 0o644)
		}
		return nil
	}
}

func writeDocument(out string, doc *experiment.Document) error {
	b, err := doc.Marshal()
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(out, "result.json"), b, 0o644)
}

func runGate(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	var l liveFlags
	var base, head, baseFixes, headFixes string
	fs := flag.NewFlagSet("gate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, gateUsage); fs.PrintDefaults() }
	l.register(fs, true)
	fs.StringVar(&base, "base", "HEAD~1", "git ref of the base (the PR's target)")
	fs.StringVar(&head, "head", "", "git ref of the head (default: the working tree, uncommitted changes included)")
	fs.StringVar(&baseFixes, "base-fixes", "", "comma-separated fixes of the rules (section fixes) applied to the base arm, or all")
	fs.StringVar(&headFixes, "head-fixes", "", "comma-separated fixes applied to the head arm, or all; e.g. --base HEAD --head HEAD --head-fixes all gates the fixes themselves")
	if err := parseLive("gate", fs, &l, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	r, raw, err := loadLiveRules("gate", &l)
	if err != nil {
		return err
	}
	if r.Service.Bin != "" {
		if l.set["base"] || l.set["head"] {
			return usageErrorf("gate: --base/--head need service.build; %s gives a prebuilt service.bin", r.Path)
		}
		base, head = "", ""
	}
	bf, err := parseFixList("gate", "--base-fixes", baseFixes, r)
	if err != nil {
		return err
	}
	hf, err := parseFixList("gate", "--head-fixes", headFixes, r)
	if err != nil {
		return err
	}
	out, err := prepareOut("gate", l.out, raw)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "results: %s (rules %s)\n", out, r.Path)
	cfg := r.Gate.Config()
	start := time.Now()
	fleet, err := experiment.StartFleet(ctx, r, []experiment.ArmSpec{
		{Name: gate.ArmBase, Ref: base, Fixes: bf}, {Name: gate.ArmHead, Ref: head, Fixes: hf},
	}, l.fleetOptions(out, stderr))
	if err != nil {
		return fmt.Errorf("gate: %w", err)
	}
	defer fleet.Close()
	deployed := time.Since(start)
	doc, runErr := experiment.RunGate(ctx, experiment.GateRun{
		Config: cfg, Seed: l.seedOr(r), Driver: fleet, Record: histRecorder(out), Progress: stderr, LagReruns: r.Gate.LagReruns,
	})
	if doc == nil {
		return fmt.Errorf("gate: %w", runErr)
	}
	doc.Tool = "tailgate"
	doc.Service = r.Service.Build + r.Service.Bin
	doc.Base = &experiment.Ref{Name: deploy.RefName(base), Commit: fleet.Commit(gate.ArmBase), Fixes: bf}
	doc.Head = &experiment.Ref{Name: deploy.RefName(head), Commit: fleet.Commit(gate.ArmHead), Fixes: hf}
	doc.Rate = rateOf(r, l)
	doc.Notes = append(doc.Notes, fleet.Notes()...)
	doc.Notes = append(doc.Notes, fmt.Sprintf("time to verdict %s (build+deploy+warm-up %s, rounds %s)",
		time.Since(start).Round(time.Second), deployed.Round(time.Second), (time.Since(start)-deployed).Round(time.Second)))
	if doc.Gate == nil {
		res := gate.Result{Verdict: gate.Invalid, Reasons: []string{fmt.Sprintf("interrupted: %v", runErr)}}
		doc.Gate = &res
	}
	if err := writeDocument(out, doc); err != nil && runErr == nil {
		runErr = err
	}
	printGate(stdout, doc, out)
	if runErr != nil {
		return fmt.Errorf("gate: %w", runErr)
	}
	if doc.Gate.Verdict == gate.Pass {
		return nil
	}
	return withExit(gate.ExitCode(doc.Gate.Verdict), errSilent)
}

// parseFixList reads a --base-fixes/--head-fixes value: "" (none), "all"
// (every fix of the rules) or comma-separated fix names, each checked.
func parseFixList(cmd, flagName, v string, r *rules.Rules) ([]string, error) {
	v = strings.TrimSpace(v)
	switch v {
	case "":
		return nil, nil
	case "all":
		if len(r.Fixes) == 0 {
			return nil, usageErrorf("%s: %s all: %s declares no fixes", cmd, flagName, r.Path)
		}
		return r.FixNames(), nil
	}
	var out []string
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if _, ok := r.FixByName(f); !ok {
			return nil, usageErrorf("%s: %s: unknown fix %q (%s has: %s)", cmd, flagName, f, r.Path, strings.Join(r.FixNames(), ", "))
		}
		out = append(out, f)
	}
	return out, nil
}

func rateOf(r *rules.Rules, l liveFlags) float64 {
	if l.rate > 0 {
		return l.rate
	}
	return r.Load.Rate.PerSecond()
}

func printGate(w io.Writer, doc *experiment.Document, out string) {
	res := doc.Gate
	printRounds(w, doc)
	fmt.Fprintf(w, "gate: %s after %d pairs (checkpoint %d/%d)\n", strings.ToUpper(string(res.Verdict)), res.Pairs, res.Checkpoint, res.Checkpoints)
	for _, r := range res.Reasons {
		fmt.Fprintf(w, "  - %s\n", r)
	}
	for _, n := range doc.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
	fmt.Fprintf(w, "result: %s\n", filepath.Join(out, "result.json"))
}

func printRounds(w io.Writer, doc *experiment.Document) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "order\tblock\tarm\trequests\tp50\tp99\tmax\terrors\tvalid\t")
	for _, r := range doc.Rounds {
		valid := "yes"
		switch {
		case r.FloorOnly:
			valid = "no (left out of the floor)"
		case !r.Valid:
			valid = "NO"
		}
		fmt.Fprintf(tw, "%d\t%d\t%s\t%d\t%s\t%s\t%s\t%d\t%s\t\n", r.Order, r.Block, r.Arm, r.Requests,
			fmtUs(r.P50.Microseconds()), fmtUs(r.P99.Microseconds()), fmtUs(r.Max.Microseconds()), r.Errors, valid)
	}
	tw.Flush()
}

// readRules parses the perf-rules file at path, or the embedded default
// (perf-rules/bidder.yaml) when path is empty, and returns it with its raw
// bytes for the results directory. Errors name the command and the file.
func readRules(cmd, path string) (*rules.Rules, []byte, error) {
	if path == "" {
		r, err := rules.Parse(perfrules.BidderName, perfrules.Bidder)
		if err != nil {
			return nil, nil, usageErrorf("%s: bad rules: %v", cmd, err)
		}
		return r, perfrules.Bidder, nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, usageErrorf("%s: read rules: %v", cmd, err)
	}
	r, err := rules.Parse(path, raw)
	if err != nil {
		return nil, nil, usageErrorf("%s: bad rules: %v", cmd, err)
	}
	return r, raw, nil
}
