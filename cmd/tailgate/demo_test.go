package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tailgate-ci/tailgate/internal/experiment"
	"github.com/tailgate-ci/tailgate/internal/gate"
	"github.com/tailgate-ci/tailgate/internal/latency"
	"github.com/tailgate-ci/tailgate/internal/report"
	"github.com/tailgate-ci/tailgate/internal/rules"
)

// TestDemoBudgetDefaults checks that the defaults fit the 15-minute budget
// with the embedded rules (4 fixes: 10 variants) and profiles, and that
// the estimate grows with the work.
func TestDemoBudgetDefaults(t *testing.T) {
	o, err := parseDemoFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := demoRules(o)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := experiment.Variants(r.FixNames(), experiment.ModeStandard)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 10 {
		t.Fatalf("embedded rules: %d variants, want 10 (4 fixes, leave-one-out)", len(vs))
	}
	ph := demoBudget(o, len(vs), true)
	total := budgetTotal(ph, false)
	if total > DemoBudgetLimit {
		t.Errorf("default budget %s is over %s:\n%s", total, DemoBudgetLimit, budgetText(ph))
	}
	more := *o
	more.blocks = 8
	if budgetTotal(demoBudget(&more, len(vs), true), false) <= total {
		t.Errorf("8 blocks do not cost more than 4")
	}
	if budgetTotal(demoBudget(o, len(vs), false), false) >= total {
		t.Errorf("skipping the profiles does not cost less")
	}
	// The rules' round sizes are the demo's.
	if r.Gate.RoundDuration != DefaultDemoRound || r.Gate.Warmup != DefaultDemoLeadIn {
		t.Errorf("rules gate rounds %s+%s, want %s+%s", r.Gate.Warmup, r.Gate.RoundDuration, DefaultDemoLeadIn, DefaultDemoRound)
	}
}

func budgetText(ph []demoPhase) string {
	var b bytes.Buffer
	printBudget(&b, ph)
	return b.String()
}

func TestDemoFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--blocks", "3"}, "even"},
		{[]string{"--blocks", "0"}, "even"},
		{[]string{"--round-duration", "0s"}, "positive"},
		{[]string{"--gate-min-rounds", "6", "--gate-max-rounds", "4"}, "at least --gate-min-rounds"},
		{[]string{"--gate-aa-rounds", "0"}, "noise floor"},
		{[]string{"--soak", "10s", "--soak-window", "20s"}, "at least one --soak-window"},
		{[]string{"--attacker-priority", "max"}, "want rt, nice or none"},
		{[]string{"--out", ""}, "--out"},
		{[]string{"extra"}, "unexpected"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, err := parseDemoFlags(tc.args, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) || exitCode(err) != ExitUsage {
				t.Errorf("err = %v (exit %d), want a usage error with %q", err, exitCode(err), tc.want)
			}
		})
	}
}

func TestDemoRulesErrors(t *testing.T) {
	dir := t.TempDir()
	nofix := filepath.Join(dir, "nofix.yaml")
	os.WriteFile(nofix, []byte("version: 1\nservice:\n  bin: /bin/true\n  health: http://127.0.0.1:{{port}}/\nload:\n  targets:\n    kind: reqgen\n    url: http://127.0.0.1:{{port}}/\n  rate: 10/s\n"), 0o644)
	o, _ := parseDemoFlags([]string{"--rules", nofix}, io.Discard)
	if _, _, err := demoRules(o); err == nil || !strings.Contains(err.Error(), "declares no fixes") {
		t.Errorf("rules without fixes: err = %v", err)
	}
	o, _ = parseDemoFlags([]string{"--rules", filepath.Join(dir, "missing.yaml")}, io.Discard)
	if _, _, err := demoRules(o); err == nil || exitCode(err) != ExitUsage {
		t.Errorf("missing rules: err = %v", err)
	}
}

func TestProfilesUnavailable(t *testing.T) {
	if why := profilesUnavailable(0, false); why != "" {
		t.Errorf("root: %q, want profiles", why)
	}
	if why := profilesUnavailable(1000, false); !strings.Contains(why, "not root") || !strings.Contains(why, "CAP_BPF") {
		t.Errorf("non-root: %q", why)
	}
	if why := profilesUnavailable(0, true); !strings.Contains(why, "--no-profiles") {
		t.Errorf("skipped: %q", why)
	}
}

func TestPrepareDemoOut(t *testing.T) {
	dir := t.TempDir()
	foreign := filepath.Join(dir, "foreign")
	os.MkdirAll(foreign, 0o755)
	os.WriteFile(filepath.Join(foreign, "thesis.tex"), []byte("x"), 0o644)
	if err := prepareDemoOut(foreign); err == nil || exitCode(err) != ExitUsage {
		t.Errorf("non-empty foreign directory: err = %v, want a usage error", err)
	}
	if _, err := os.Stat(filepath.Join(foreign, "thesis.tex")); err != nil {
		t.Errorf("foreign file removed: %v", err)
	}
	prev := filepath.Join(dir, "prev")
	os.MkdirAll(prev, 0o755)
	os.WriteFile(filepath.Join(prev, demoMarkerFile), []byte("{}"), 0o644)
	os.WriteFile(filepath.Join(prev, "report.html"), []byte("old"), 0o644)
	if err := prepareDemoOut(prev); err != nil {
		t.Fatalf("previous demo output: %v", err)
	}
	if _, err := os.Stat(filepath.Join(prev, "report.html")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("old report kept: %v", err)
	}
	for _, d := range []string{"experiment/rounds", "gate/rounds", "soak/rounds"} {
		if st, err := os.Stat(filepath.Join(prev, d)); err != nil || !st.IsDir() {
			t.Errorf("%s not created: %v", d, err)
		}
	}
}

func TestReportSoak(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := &experiment.SoakResult{Window: 15 * time.Second, SLO: 25 * time.Millisecond}
	for i, gc := range []float64{10, 13, 13, 20} {
		s.Windows = append(s.Windows, experiment.SoakWindow{Index: i, Start: t0.Add(time.Duration(i) * 15 * time.Second),
			Requests: 15000, P50: time.Millisecond, P99: time.Duration(10+i) * time.Millisecond,
			Sample: &experiment.Sample{RSSBytes: 1 << 30, HeapLiveBytes: 5e8, GCCycles: gc}})
	}
	rs := reportSoak(s, "gc+locks")
	if err := rs.Validate(); err != nil {
		t.Fatal(err)
	}
	if rs.Windows[2].Start != 30*time.Second || rs.Windows[3].GCCycles != 7 || rs.Windows[2].GCCycles != 0 || rs.Windows[0].GCCycles != 0 {
		t.Errorf("windows = %+v", rs.Windows)
	}
	if rs.Windows[1].P99 != 11*time.Millisecond || rs.Windows[1].RSSBytes != 1<<30 || rs.Variant != "gc+locks" {
		t.Errorf("window 1 = %+v", rs.Windows[1])
	}
}

// fakeFleet serves rounds from synthetic latency distributions: the
// baseline has a heavy tail that every fix cuts; lagArm's rounds are
// invalid as a lagging load generator makes them.
type fakeFleet struct {
	mu     sync.Mutex
	arms   []experiment.ArmSpec
	rounds map[string]int
	lagArm string
	// lagFirst's first round is invalid.
	lagFirst string
	// windows is FleetOptions.WindowsDir: each round leaves a windows
	// file there, as the live fleet does.
	windows string
	closed  bool
}

func (f *fakeFleet) Round(ctx context.Context, service string, s experiment.Slot) (*experiment.Measured, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var spec *experiment.ArmSpec
	for i := range f.arms {
		if f.arms[i].Name == service {
			spec = &f.arms[i]
		}
	}
	if spec == nil {
		return nil, fmt.Errorf("no arm %q", service)
	}
	f.rounds[service]++
	if f.windows != "" {
		name := fmt.Sprintf("round-%03d-%s.windows", s.Order, strings.ReplaceAll(s.Arm, "/", "_"))
		if err := os.WriteFile(filepath.Join(f.windows, name), []byte("windows\n"), 0o644); err != nil {
			return nil, err
		}
	}
	rng := rand.New(rand.NewPCG(uint64(len(service)), uint64(s.Order)))
	tail := 40.0 - 7.5*float64(len(spec.Fixes)) // ms at p99: 40 baseline, 10 with all four fixes
	h := latency.New()
	const n = 12000
	for i := 0; i < n; i++ {
		ms := 0.8 + 0.2*rng.Float64()
		if rng.Float64() < 0.02 {
			ms = tail * (0.9 + 0.2*rng.Float64())
		}
		latency.Record(h, time.Duration(ms*float64(time.Millisecond)))
	}
	m := &experiment.Measured{Hist: h, Requests: n, Valid: true, MaxLag: 200 * time.Microsecond}
	if service == f.lagArm || (service == f.lagFirst && f.rounds[service] == 1) {
		m.Valid, m.MaxLag = false, 4*time.Millisecond
		m.Invalid = []string{"attacker lagged: max send lag 4ms > 1ms"}
	}
	return m, nil
}

func (f *fakeFleet) Commit(string) string     { return "0123456789abcdef0123456789abcdef01234567" }
func (f *fakeFleet) PID(string) int           { return 4242 }
func (f *fakeFleet) MetricsURL(string) string { return "" }
func (f *fakeFleet) Notes() []string          { return []string{"fake fleet"} }
func (f *fakeFleet) Close() error             { f.closed = true; return nil }

type fakeDemo struct {
	// analyze, if set, stands in for `tailgate profile --analyze`;
	// otherwise the analysis fails as it does on recordings without events.
	analyze  func(args []string) error
	analyzed [][]string
	fleets   []*fakeFleet
	lagArm   string
	lagFirst string
	euid     int
	profiled []string
}

func (fd *fakeDemo) deps() demoDeps {
	return demoDeps{
		startFleet: func(ctx context.Context, r *rules.Rules, arms []experiment.ArmSpec, o experiment.FleetOptions) (demoFleet, error) {
			f := &fakeFleet{arms: arms, rounds: map[string]int{}, lagArm: fd.lagArm, lagFirst: fd.lagFirst, windows: o.WindowsDir}
			fd.fleets = append(fd.fleets, f)
			return f, nil
		},
		profile: func(ctx context.Context, pid int, dir string, log io.Writer, round func(context.Context) (*experiment.Measured, error)) (*experiment.Measured, string, error) {
			fd.profiled = append(fd.profiled, filepath.Base(dir))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, "", err
			}
			m, err := round(ctx)
			if err != nil {
				return nil, "", err
			}
			// A profile as `tailgate profile` folds it: more lock time in the baseline.
			lock := "900000000"
			if !strings.HasPrefix(filepath.Base(dir), "baseline") {
				lock = "100000000"
			}
			folded := "bidder;main.serve;sync.(*Mutex).Lock " + lock + "\nbidder;main.serve;runtime.gcAssistAlloc 300000000\n"
			if err := os.WriteFile(filepath.Join(dir, "offcpu.folded"), []byte(folded), 0o644); err != nil {
				return nil, "", err
			}
			return m, "", nil
		},
		analyze: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			fd.analyzed = append(fd.analyzed, args)
			if fd.analyze == nil {
				return errors.New("read profile: no *.events.jsonl")
			}
			return fd.analyze(args)
		},
		euid:   func() int { return fd.euid },
		now:    time.Now,
		sample: func(int, string) func(context.Context) (experiment.Sample, error) { return nil },
	}
}

func fastDemoArgs(out string) []string {
	return []string{"--out", out, "--round-duration", "1s", "--round-warmup", "0s", "--warmup", "0s",
		"--soak", "3s", "--soak-window", "1s", "--no-pdf", "--seed", "7"}
}

// TestDemoFake runs the whole demo against synthetic services: every phase
// runs, the reports are written from the run's data, the seed is recorded
// and all fixes pass against the baseline.
func TestDemoFake(t *testing.T) {
	out := filepath.Join(t.TempDir(), "tailgate-out")
	o, err := parseDemoFlags(fastDemoArgs(out), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	fd := &fakeDemo{}
	var stdout, stderr bytes.Buffer
	err = demo(context.Background(), o, fd.deps(), &stdout, &stderr)
	if err != nil {
		t.Fatalf("demo: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	if len(fd.fleets) != 2 || !fd.fleets[0].closed || !fd.fleets[1].closed {
		t.Fatalf("fleets: %d started, want the experiment's and the soak's, both closed", len(fd.fleets))
	}
	exp := fd.fleets[0]
	if len(exp.arms) != 10 {
		t.Errorf("experiment fleet: %d arms, want 10", len(exp.arms))
	}
	if got := exp.rounds[experiment.Baseline]; got < 4+1+4+2 { // experiment + profile + gate base and A/A
		t.Errorf("baseline served %d rounds", got)
	}
	if len(fd.profiled) != 2 {
		t.Errorf("profiled %v, want the baseline and all fixes", fd.profiled)
	}
	for _, f := range []string{"comment.md", "report.html", "cumulative.md", "writeup.html", "manifest.json",
		"experiment/result.json", "experiment/variants.json", "gate/result.json", "soak/soak.json", "rules.yaml",
		"fixes/gc.md", "fixes/locks.md", "fixes/mlock.md", "fixes/placement.md",
		"profiles/flame/offcpu-allfixes-vs-baseline-diff.folded", "profiles/profiles.json"} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: missing or empty (%v)", f, err)
		}
	}
	var rec demoRecord
	b, err := os.ReadFile(filepath.Join(out, demoMarkerFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Seed != 7 || rec.Verdicts["gate"] != "pass" || rec.Verdicts["soak"] == "" || rec.Profiles != "taken" || len(rec.Invalid) != 0 {
		t.Errorf("demo.json: seed %d verdicts %v profiles %q invalid %v", rec.Seed, rec.Verdicts, rec.Profiles, rec.Invalid)
	}
	if rec.Verdicts["experiment baseline"] != "fail" {
		t.Errorf("baseline (p99 ~40ms) judged %q against the 25ms SLO, want fail", rec.Verdicts["experiment baseline"])
	}
	var gdoc experiment.Document
	b, _ = os.ReadFile(filepath.Join(out, "gate/result.json"))
	if err := json.Unmarshal(b, &gdoc); err != nil || gdoc.ScheduleSeed != 7 {
		t.Errorf("gate/result.json: seed %d, err %v", gdoc.ScheduleSeed, err)
	}
	// The comment's figures are the run's: the gate's pooled head p99.
	comment, _ := os.ReadFile(filepath.Join(out, "comment.md"))
	if !strings.Contains(strings.ToLower(string(comment)), "pass") {
		t.Errorf("comment.md does not state the pass:\n%s", comment)
	}
	s := stdout.String()
	for _, want := range []string{"time budget:", "schedule seed 7", "gate, baseline (base) vs gc+locks+mlock+placement (head): PASS",
		"where to look:", filepath.Join(out, "report.html")} {
		if !strings.Contains(s, want) {
			t.Errorf("stdout lacks %q:\n%s", want, s)
		}
	}
}

// TestDemoInvalidNeverPasses: when the load generator lags in every round
// of all fixes, the demo still writes the whole report set, says the run is
// invalid, and does not exit 0 or print a pass.
func TestDemoInvalidNeverPasses(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	o, err := parseDemoFlags(fastDemoArgs(out), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	fd := &fakeDemo{lagArm: "gc+locks+mlock+placement"}
	var stdout, stderr bytes.Buffer
	err = demo(context.Background(), o, fd.deps(), &stdout, &stderr)
	if err == nil || exitCode(err) != ExitError || !strings.Contains(err.Error(), "INVALID") {
		t.Fatalf("err = %v (exit %d), want exit 1 naming the invalid run", err, exitCode(err))
	}
	s := stdout.String()
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(line, "gate") && strings.Contains(line, "PASS") {
			t.Errorf("an invalid run printed a gate pass: %q", line)
		}
	}
	if !strings.Contains(s, "result: INVALID") {
		t.Errorf("the summary does not lead with the invalid result:\n%s", s)
	}
	if !strings.Contains(s, "INVALID") {
		t.Errorf("stdout does not say INVALID:\n%s", s)
	}
	for _, f := range []string{"comment.md", "report.html", "manifest.json", demoMarkerFile} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("%s not written for an invalid run: %v", f, err)
		}
	}
	var m struct{ Verdict string }
	b, _ := os.ReadFile(filepath.Join(out, "manifest.json"))
	json.Unmarshal(b, &m)
	if m.Verdict != "invalid" {
		t.Errorf("manifest verdict %q, want invalid", m.Verdict)
	}
	comment, _ := os.ReadFile(filepath.Join(out, "comment.md"))
	if !strings.Contains(strings.ToLower(string(comment)), "invalid") {
		t.Errorf("comment.md does not say invalid:\n%s", comment)
	}
	if !strings.Contains(string(comment), "against the SLO of 25.0 ms") {
		t.Errorf("comment.md does not state the rule's SLO for a gate stopped at its first round:\n%s", comment)
	}
	writeup, _ := os.ReadFile(filepath.Join(out, "writeup.html"))
	if strings.Contains(string(writeup), "p0 of head") || strings.Contains(string(writeup), "SLO of 0 ms") {
		t.Errorf("writeup.html states a p0 or a zero SLO for a gate stopped at its first round")
	}
}

// TestDemoInvalidSoak: a soak with invalid windows is not shown as
// evidence; the reports say it is invalid.
func TestDemoInvalidSoak(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	o, err := parseDemoFlags(fastDemoArgs(out), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	fd := &fakeDemo{lagFirst: "soak"}
	var stdout, stderr bytes.Buffer
	err = demo(context.Background(), o, fd.deps(), &stdout, &stderr)
	if exitCode(err) != ExitError {
		t.Fatalf("err = %v (exit %d), want exit 1", err, exitCode(err))
	}
	var m struct{ Unavailable map[string]string }
	b, _ := os.ReadFile(filepath.Join(out, "manifest.json"))
	json.Unmarshal(b, &m)
	if !strings.Contains(m.Unavailable["soak"], "INVALID") {
		t.Errorf("manifest unavailable = %v, want the soak called invalid", m.Unavailable)
	}
	cum, _ := os.ReadFile(filepath.Join(out, "cumulative.md"))
	if !strings.Contains(string(cum), "INVALID") {
		t.Errorf("cumulative.md does not say the soak is invalid:\n%s", cum)
	}
}

// TestDemoNotRoot: without root there are no profiles, the reports say
// why, and everything else runs.
func TestDemoNotRoot(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	o, err := parseDemoFlags(fastDemoArgs(out), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	fd := &fakeDemo{euid: 1000}
	var stdout, stderr bytes.Buffer
	if err := demo(context.Background(), o, fd.deps(), &stdout, &stderr); err != nil {
		t.Fatalf("demo: %v\n%s", err, stderr.String())
	}
	if len(fd.profiled) != 0 {
		t.Errorf("profiled %v without root", fd.profiled)
	}
	if !strings.Contains(stdout.String(), `privileged neighbour "pageout" not started`) {
		t.Errorf("stdout does not say the pageout neighbour was left out:\n%s", stdout.String())
	}
	if !strings.Contains(stdout.String(), "profiles: none: not root (euid 1000)") {
		t.Errorf("stdout does not say why there are no profiles:\n%s", stdout.String())
	}
	var m struct{ Unavailable map[string]string }
	b, _ := os.ReadFile(filepath.Join(out, "manifest.json"))
	json.Unmarshal(b, &m)
	if !strings.Contains(m.Unavailable["profiles"], "not root") {
		t.Errorf("manifest unavailable = %v", m.Unavailable)
	}
	html, _ := os.ReadFile(filepath.Join(out, "report.html"))
	if !strings.Contains(string(html), "not root") {
		t.Errorf("report.html does not say why there are no profiles")
	}
}

// TestDemoOneLaggedRound: one invalid experiment round leaves a valid
// attribution and a passing gate, but the run is still reported invalid.
func TestDemoOneLaggedRound(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	o, err := parseDemoFlags(fastDemoArgs(out), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	fd := &fakeDemo{lagFirst: "gc"}
	var stdout, stderr bytes.Buffer
	err = demo(context.Background(), o, fd.deps(), &stdout, &stderr)
	if exitCode(err) != ExitError {
		t.Fatalf("err = %v (exit %d), want exit 1", err, exitCode(err))
	}
	s := stdout.String()
	if !strings.Contains(s, "result: INVALID: 1 invalid") || !strings.Contains(s, "pass on its own rounds, but the run as a whole is INVALID") {
		t.Errorf("summary:\n%s", s)
	}
	if _, err := os.Stat(filepath.Join(out, "experiment/result.json")); err != nil {
		t.Errorf("experiment document not written: %v", err)
	}
}

// TestDemoAnalysis: the profile analysis gets the all-fixes recording as
// head, the baseline's as base, each with its round's client windows; its
// contributor sets are also filed under the experiment's variant names.
func TestDemoAnalysis(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	o, err := parseDemoFlags(fastDemoArgs(out), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	fd := &fakeDemo{}
	fd.analyze = func(args []string) error {
		var dir string
		for i, a := range args {
			if a == "--out" {
				dir = args[i+1]
			}
		}
		pj := `{"contributors": [
 {"variant": "head", "slow_threshold_ns": 9000000, "fast_threshold_ns": 900000, "slow_requests": 60, "fast_requests": 3000,
  "contributors": [{"name": "lock", "slow_share": 0.1, "fast_share": 0.05, "events": 12, "time_ns": 5000000}]},
 {"variant": "base", "slow_threshold_ns": 38000000, "fast_threshold_ns": 900000, "slow_requests": 60, "fast_requests": 3000,
  "contributors": [{"name": "lock", "slow_share": 0.6, "fast_share": 0.05, "events": 300, "time_ns": 900000000}]}],
 "units": {}, "labels": {}}`
		return os.WriteFile(filepath.Join(dir, "profiles.json"), []byte(pj), 0o644)
	}
	var stdout, stderr bytes.Buffer
	if err := demo(context.Background(), o, fd.deps(), &stdout, &stderr); err != nil {
		t.Fatalf("demo: %v\n%s", err, stderr.String())
	}
	if len(fd.analyzed) != 1 {
		t.Fatalf("analysis ran %d times", len(fd.analyzed))
	}
	args := strings.Join(fd.analyzed[0], " ")
	for _, want := range []string{"--analyze", "--in " + filepath.Join(out, "profiles", "allfixes"), "--base " + filepath.Join(out, "profiles", "baseline"),
		"--windows " + filepath.Join(out, "windows", "round-901-profile-gc+locks+mlock+placement.windows"), "--variant head"} {
		if !strings.Contains(args, want) {
			t.Errorf("analysis args %q lack %q", args, want)
		}
	}
	p, err := report.LoadProfiles(filepath.Join(out, "profiles"))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"head", "base", "baseline", "gc+locks+mlock+placement"} {
		if p.Set(v) == nil {
			t.Errorf("profiles.json has no set %q: %+v", v, p.Contributors)
		}
	}
	if s := p.Set("baseline"); s != nil && s.SlowThreshold != 38*time.Millisecond {
		t.Errorf("baseline set is not the base set: %+v", s)
	}
}

func TestWithoutRoot(t *testing.T) {
	o, _ := parseDemoFlags(nil, io.Discard)
	r, _, err := demoRules(o)
	if err != nil {
		t.Fatal(err)
	}
	if notes := withoutRoot(r, 0); notes != nil || len(r.Service.Neighbours) != 2 {
		t.Fatalf("root: notes %v, %d neighbours; want none dropped of 2", notes, len(r.Service.Neighbours))
	}
	notes := withoutRoot(r, 1000)
	if len(notes) != 2 || len(r.Service.Neighbours) != 1 || r.Service.Neighbours[0].Name != "cpu" {
		t.Errorf("non-root: notes %v, neighbours %+v; want pageout dropped, cpu kept", notes, r.Service.Neighbours)
	}
	f, _ := r.FixByName("placement")
	if got := strings.Join(f.Placement, " "); got != "{{bin}} launch --" {
		t.Errorf("non-root placement launcher %q, want it without --user", got)
	}
}

// TestReadmeSampleComment keeps the README's sample PR comment identical to
// the golden file the report tests generate (no hand-written figures).
func TestReadmeSampleComment(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	golden, err := os.ReadFile(filepath.Join("..", "..", "internal", "report", "testdata", "comment.golden.md"))
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- comment.golden.md: begin -->\n", "<!-- comment.golden.md: end -->"
	_, rest, ok := strings.Cut(string(readme), begin)
	if !ok {
		t.Fatalf("README.md has no %q marker", strings.TrimSpace(begin))
	}
	embedded, _, ok := strings.Cut(rest, end)
	if !ok {
		t.Fatalf("README.md has no %q marker", end)
	}
	if embedded != string(golden) {
		t.Errorf("README.md's sample comment differs from internal/report/testdata/comment.golden.md; copy the golden file between the markers")
	}
}

func TestDemoDryRun(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	o, err := parseDemoFlags([]string{"--dry-run", "--out", out}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	fd := &fakeDemo{euid: 1000}
	var stdout bytes.Buffer
	if err := demo(context.Background(), o, fd.deps(), &stdout, io.Discard); err != nil {
		t.Fatal(err)
	}
	if len(fd.fleets) != 0 {
		t.Errorf("a dry run started %d fleets", len(fd.fleets))
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a dry run created %s", out)
	}
	for _, want := range []string{"10 variants", "experiment", "total", "profiles: none: not root", `neighbour "pageout" not started`} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("dry run output lacks %q:\n%s", want, stdout.String())
		}
	}
}

// The demo counts the gate's rounds as the gate does: an A/A round left
// out of the noise floor for the generator's own lag, or a lag-bracketed
// round of a gate with a verdict, does not make the run invalid; any other
// invalid round does.
func TestGateInvalidRounds(t *testing.T) {
	round := func(order int, arm string, valid, lagBounded, floorOnly bool) experiment.RoundRecord {
		var r experiment.RoundRecord
		r.Order, r.Arm, r.Valid, r.LagBounded, r.FloorOnly = order, arm, valid, lagBounded, floorOnly
		if !valid {
			r.Invalid = []string{"attacker lagged"}
		}
		return r
	}
	doc := &experiment.Document{Gate: &gate.Result{Verdict: gate.Pass}, Rounds: []experiment.RoundRecord{
		round(0, gate.ArmAA, false, false, true),
		round(1, gate.ArmBase, true, false, false),
		round(2, gate.ArmHead, false, true, false),
	}}
	if got := gateInvalidRounds(doc); len(got) != 0 {
		t.Errorf("floor-only A/A and bracketed rounds of a passing gate: %q, want none", got)
	}
	doc.Rounds = append(doc.Rounds, round(3, gate.ArmBase, false, false, false))
	if got := gateInvalidRounds(doc); len(got) != 1 || !strings.HasPrefix(got[0], "gate round 3 (base") {
		t.Errorf("an invalid base round: %q, want it listed alone", got)
	}
	doc.Gate.Verdict = gate.Invalid
	if got := gateInvalidRounds(doc); len(got) != 2 {
		t.Errorf("invalid gate: %q, want the bracketed head round and the base round", got)
	}
}
