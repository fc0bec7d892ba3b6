package experiment

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tailgate-ci/tailgate/internal/gate"
	"github.com/tailgate-ci/tailgate/internal/latency"
)

// fakeDriver serves rounds from a per-arm latency model, and records the
// order it was called in.
type fakeDriver struct {
	median  map[string]time.Duration // per service arm (or variant)
	tail    map[string]time.Duration // the top 2 % of requests take this long
	n       int
	invalid map[int]bool       // slot orders to mark invalid
	stalled map[int]bool       // slot orders valid with a host-stall note
	lagged  map[int]int        // slot order -> attempts invalid only for the generator's lag
	ownLag  map[int]bool       // slot orders invalid only for the generator's lag, over the bracket's cap
	timeout map[string]float64 // per service arm: fraction of requests timed out at 2 s
	lagFree bool               // lagged rounds come with their lag-free histogram
	calls   []Slot
	service []string
}

func (f *fakeDriver) Round(ctx context.Context, service string, s Slot) (*Measured, error) {
	f.calls = append(f.calls, s)
	f.service = append(f.service, service)
	rng := rand.New(rand.NewPCG(uint64(s.Order), 7))
	h := latency.New()
	med, tail := f.median[service], f.tail[service]
	for i := 0; i < f.n; i++ {
		d := time.Duration(float64(med) * math.Exp(0.2*rng.NormFloat64()))
		if rng.Float64() < 0.02 {
			d = time.Duration(float64(tail) * math.Exp(0.1*rng.NormFloat64()))
		}
		if err := latency.Record(h, d); err != nil {
			return nil, err
		}
	}
	m := &Measured{Hist: h, Requests: int64(f.n), Valid: !f.invalid[s.Order]}
	if !m.Valid {
		m.Invalid = []string{"error rate 3% > 0.1%"}
	}
	if s.Attempt < f.lagged[s.Order] {
		m.Valid, m.LagOnly, m.Invalid = false, true, []string{"attacker lagged: max send lag 3ms > 1ms"}
		if f.lagFree {
			// The lag-free view: the same requests, 3 ms earlier for 1 %.
			free := latency.New()
			for i, b := range h.Distribution() {
				v := b.From
				if i%100 == 0 && v > 3000 {
					v -= 3000
				}
				free.RecordValues(v, b.Count)
			}
			m.LagFree = free
		}
	}
	if f.ownLag[s.Order] {
		m.Valid, m.OwnLagOnly, m.Invalid = false, true, []string{"attacker lagged: 2.1% of sends late by its own lag"}
	}
	if fr := f.timeout[service]; fr > 0 {
		n := int64(fr * float64(f.n))
		h.RecordValues(latency.Micros(2*time.Second), n)
		m.Requests += n
		m.Errors, m.Timeouts = n, n
		m.Notes = append(m.Notes, "timeouts: recorded at their latency")
	}
	if f.stalled[s.Order] {
		m.Notes = []string{"host stalls: 3 of 2000 requests sent more than 1ms late"}
	}
	return m, nil
}

func smallGate() gate.Config {
	return gate.Config{MinRounds: 2, MaxRounds: 6, CheckpointEvery: 2, AARounds: 2, MinSamplesPerArm: 1000, Bootstrap: 200}
}

func TestRunGateOrderAndEarlyPass(t *testing.T) {
	f := &fakeDriver{n: 2000,
		median: map[string]time.Duration{"base": 2 * time.Millisecond, "head": 2 * time.Millisecond},
		tail:   map[string]time.Duration{"base": 5 * time.Millisecond, "head": 5 * time.Millisecond}}
	var recorded int
	doc, err := RunGate(context.Background(), GateRun{Config: smallGate(), Seed: 42, Driver: f,
		Record: func(Slot, *Measured) error { recorded++; return nil }})
	if err != nil {
		t.Fatal(err)
	}
	if doc.Gate.Verdict != gate.Pass {
		t.Fatalf("verdict %s: %v", doc.Gate.Verdict, doc.Gate.Reasons)
	}
	sched, _ := GateSchedule(smallGate(), 42)
	if doc.ScheduleSeed != 42 || len(doc.Schedule) != len(sched) {
		t.Fatalf("schedule not recorded: seed %d, %d slots", doc.ScheduleSeed, len(doc.Schedule))
	}
	// Ran the schedule's slots in order, A/A on base, and stopped at the
	// first checkpoint (2 complete blocks).
	for i, s := range f.calls {
		if s != sched[i] {
			t.Fatalf("call %d = %+v, schedule has %+v", i, s, sched[i])
		}
		if want := ServiceArm(s); f.service[i] != want || (s.Arm == gate.ArmAA && want != gate.ArmBase) {
			t.Fatalf("slot %+v served by %s", s, f.service[i])
		}
	}
	blocks := map[int]bool{}
	for _, s := range f.calls {
		blocks[s.Block] = true
	}
	// A pass stops at a checkpoint, before the cap: whole blocks only.
	if len(sched) <= len(f.calls) || f.calls[len(f.calls)-1].Block != len(blocks)-1 ||
		!slices.Contains(smallGate().Checkpoints()[:len(smallGate().Checkpoints())-1], len(blocks)) {
		t.Fatalf("ran %d rounds over %d blocks; want to stop at an early checkpoint %v", len(f.calls), len(blocks), smallGate().Checkpoints())
	}
	if recorded != len(f.calls) || len(doc.Rounds) != len(f.calls) || doc.Rounds[0].Hist == "" {
		t.Fatalf("recorded %d, document holds %d rounds", recorded, len(doc.Rounds))
	}
	if h, err := latency.Decode(doc.Rounds[0].Hist); err != nil || h.TotalCount() != 2000 {
		t.Fatalf("round histogram does not decode: %v", err)
	}
	if _, err := doc.Marshal(); err != nil {
		t.Fatal(err)
	}
}

func TestRunGateInconclusiveRunsMore(t *testing.T) {
	// p99 right at the SLO: no checkpoint can decide, so the runner goes
	// on to the cap.
	cfg := smallGate()
	cfg.SLO = 20 * time.Millisecond
	f := &fakeDriver{n: 2000,
		median: map[string]time.Duration{"base": 2 * time.Millisecond, "head": 2 * time.Millisecond},
		tail:   map[string]time.Duration{"base": 20 * time.Millisecond, "head": 20 * time.Millisecond}}
	doc, err := RunGate(context.Background(), GateRun{Config: cfg, Seed: 1, Driver: f})
	if err != nil {
		t.Fatal(err)
	}
	blocks := map[int]bool{}
	for _, s := range f.calls {
		blocks[s.Block] = true
	}
	if len(blocks) <= cfg.MinRounds {
		t.Fatalf("stopped after %d blocks with verdict %s", len(blocks), doc.Gate.Verdict)
	}
	if doc.Gate.Verdict == gate.Inconclusive && len(blocks) != cfg.MaxRounds {
		t.Fatalf("inconclusive after %d blocks, below the cap %d", len(blocks), cfg.MaxRounds)
	}
	if doc.Gate.Verdict == gate.Pass {
		t.Fatalf("p99 at the SLO passed: %v", doc.Gate.Reasons)
	}
}

func TestRunGateFail(t *testing.T) {
	f := &fakeDriver{n: 2000,
		median: map[string]time.Duration{"base": 2 * time.Millisecond, "head": 2 * time.Millisecond},
		tail:   map[string]time.Duration{"base": 5 * time.Millisecond, "head": 60 * time.Millisecond}}
	doc, err := RunGate(context.Background(), GateRun{Config: smallGate(), Seed: 3, Driver: f})
	if err != nil {
		t.Fatal(err)
	}
	if doc.Gate.Verdict != gate.Fail || gate.ExitCode(doc.Gate.Verdict) != 3 || !errors.Is(doc.Gate.Err(), gate.ErrRegression) {
		t.Fatalf("verdict %s: %v", doc.Gate.Verdict, doc.Gate.Reasons)
	}
}

func TestRunGateInvalidRound(t *testing.T) {
	f := &fakeDriver{n: 2000, invalid: map[int]bool{2: true},
		median: map[string]time.Duration{"base": 2 * time.Millisecond, "head": 2 * time.Millisecond},
		tail:   map[string]time.Duration{"base": 5 * time.Millisecond, "head": 5 * time.Millisecond}}
	doc, err := RunGate(context.Background(), GateRun{Config: smallGate(), Seed: 3, Driver: f})
	if err != nil {
		t.Fatal(err)
	}
	if doc.Gate.Verdict != gate.Invalid || gate.ExitCode(doc.Gate.Verdict) != 1 {
		t.Fatalf("verdict %s, want invalid", doc.Gate.Verdict)
	}
	if len(f.calls) != 3 {
		t.Fatalf("ran %d rounds after an invalid third round, want to stop at 3", len(f.calls))
	}
	if !strings.Contains(strings.Join(doc.Gate.Reasons, " "), "error rate") {
		t.Fatalf("reasons do not say why: %v", doc.Gate.Reasons)
	}
}

// TestRunGateHostStalls: rounds valid only because host stalls explain
// their late sends keep their notes and the document says how many.
func TestRunGateHostStalls(t *testing.T) {
	f := &fakeDriver{n: 2000, stalled: map[int]bool{1: true, 3: true},
		median: map[string]time.Duration{"base": 2 * time.Millisecond, "head": 2 * time.Millisecond},
		tail:   map[string]time.Duration{"base": 5 * time.Millisecond, "head": 5 * time.Millisecond}}
	doc, err := RunGate(context.Background(), GateRun{Config: smallGate(), Seed: 3, Driver: f})
	if err != nil {
		t.Fatal(err)
	}
	if doc.Gate.Verdict == gate.Invalid {
		t.Fatalf("host-stall notes made the gate invalid: %v", doc.Gate.Reasons)
	}
	if len(doc.Rounds[1].Notes) != 1 || len(doc.Rounds[0].Notes) != 0 {
		t.Errorf("round notes %q / %q", doc.Rounds[0].Notes, doc.Rounds[1].Notes)
	}
	want := fmt.Sprintf("host stalls: 2 of %d rounds", len(doc.Rounds))
	if !strings.Contains(strings.Join(doc.Notes, "\n"), want) {
		t.Errorf("document notes %q lack %q", doc.Notes, want)
	}
}

func TestRunExperiment(t *testing.T) {
	ms := time.Millisecond
	f := &fakeDriver{n: 1500,
		median: map[string]time.Duration{"baseline": 2 * ms, "gc": 2 * ms, "locks": 2 * ms, "gc+locks": 2 * ms},
		tail:   map[string]time.Duration{"baseline": 60 * ms, "gc": 40 * ms, "locks": 30 * ms, "gc+locks": 8 * ms}}
	res, err := RunExperiment(context.Background(), ExperimentRun{Fixes: []string{"gc", "locks"}, Blocks: 4, Seed: 5,
		Gate: gate.Config{MinSamplesPerArm: 1000, Bootstrap: 200}, Attribution: AttributionConfig{Bootstrap: 200}, Driver: f})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.calls) != 4*4 || len(res.Invalid) != 0 {
		t.Fatalf("%d rounds, invalid %v", len(f.calls), res.Invalid)
	}
	verdict := map[string]gate.Verdict{}
	for _, v := range res.Variants {
		verdict[v.Variant] = v.Verdict
	}
	if verdict["baseline"] != gate.Fail || verdict["gc+locks"] != gate.Pass {
		t.Fatalf("verdicts %v, want baseline fail and gc+locks pass", verdict)
	}
	if res.Document.Gate == nil || res.Document.Gate.Verdict != gate.Pass {
		t.Fatalf("document gate %+v", res.Document.Gate)
	}
	for _, pf := range res.Document.Attribution.PerFix {
		if pf.IsolationP99.Value >= 0 {
			t.Fatalf("fix %s: isolation Δp99 %v, want negative", pf.Fix, pf.IsolationP99.Value)
		}
	}
	if _, err := res.Document.Marshal(); err != nil {
		t.Fatal(err)
	}
}

// TestRunGateLagReruns: a round invalid only for the load generator's own
// lag runs again while the budget lasts; the discarded attempts are kept
// (document and recorder, under distinct file names) and the verdict rests
// on the valid attempt. Past the budget, or for any other fault, the gate
// is invalid.
func TestRunGateLagReruns(t *testing.T) {
	model := func() *fakeDriver {
		return &fakeDriver{n: 2000, lagged: map[int]int{1: 2},
			median: map[string]time.Duration{"base": 2 * time.Millisecond, "head": 2 * time.Millisecond},
			tail:   map[string]time.Duration{"base": 5 * time.Millisecond, "head": 5 * time.Millisecond}}
	}
	f := model()
	var files []string
	doc, err := RunGate(context.Background(), GateRun{Config: smallGate(), Seed: 42, Driver: f, LagReruns: 3,
		Record: func(s Slot, _ *Measured) error { files = append(files, s.FileName("hist")); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	if doc.Gate.Verdict != gate.Pass {
		t.Fatalf("verdict %s: %v", doc.Gate.Verdict, doc.Gate.Reasons)
	}
	if len(doc.Reruns) != 2 || doc.Reruns[0].Order != 1 || doc.Reruns[0].Attempt != 0 || doc.Reruns[1].Attempt != 1 || doc.Reruns[0].Hist == "" {
		t.Fatalf("reruns %+v: want slot 1's attempts 0 and 1, histograms kept", doc.Reruns)
	}
	if !strings.Contains(strings.Join(doc.Notes, ";"), "lag re-runs: 2 attempts of 1 slots") {
		t.Fatalf("notes %q: want the re-runs counted", doc.Notes)
	}
	for _, r := range doc.Rounds {
		if !r.Valid || (r.Order == 1) != (r.Attempt == 2) {
			t.Fatalf("round %+v: want every kept round valid, slot 1 at attempt 2", r.RoundSummary)
		}
	}
	if len(files) != len(doc.Rounds)+2 || !strings.Contains(strings.Join(files, " "), ".rerun1.hist round-001-") ||
		!strings.Contains(strings.Join(files, " "), ".rerun2.hist") {
		t.Fatalf("recorded %v: want slot 1's three attempts under distinct names", files)
	}
	seen := map[string]bool{}
	for _, n := range files {
		if seen[n] {
			t.Fatalf("file %s recorded twice: %v", n, files)
		}
		seen[n] = true
	}

	// Budget too small: invalid, never a pass.
	f = model()
	doc, err = RunGate(context.Background(), GateRun{Config: smallGate(), Seed: 42, Driver: f, LagReruns: 1})
	if err != nil {
		t.Fatal(err)
	}
	if doc.Gate.Verdict != gate.Invalid || len(doc.Reruns) != 1 {
		t.Fatalf("budget 1: verdict %s, %d reruns: want invalid after 1", doc.Gate.Verdict, len(doc.Reruns))
	}
	// Not the generator's lag alone: no re-run.
	f = model()
	f.lagged, f.invalid = nil, map[int]bool{1: true}
	doc, err = RunGate(context.Background(), GateRun{Config: smallGate(), Seed: 42, Driver: f, LagReruns: 5})
	if err != nil {
		t.Fatal(err)
	}
	if doc.Gate.Verdict != gate.Invalid || len(doc.Reruns) != 0 || len(f.calls) != 2 {
		t.Fatalf("error-invalid round: verdict %s, %d reruns, %d calls: want invalid at once", doc.Gate.Verdict, len(doc.Reruns), len(f.calls))
	}
}

// TestRunGateTimeoutsFail: a head that times out on 5 % of its requests
// (recorded at the 2 s timeout, censored latencies) fails the SLO; its
// rounds stay valid and the document notes the lower bounds.
func TestRunGateTimeoutsFail(t *testing.T) {
	f := &fakeDriver{n: 2000, timeout: map[string]float64{"head": 0.05},
		median: map[string]time.Duration{"base": 2 * time.Millisecond, "head": 2 * time.Millisecond},
		tail:   map[string]time.Duration{"base": 5 * time.Millisecond, "head": 5 * time.Millisecond}}
	doc, err := RunGate(context.Background(), GateRun{Config: smallGate(), Seed: 42, Driver: f})
	if err != nil {
		t.Fatal(err)
	}
	if doc.Gate.Verdict != gate.Fail {
		t.Fatalf("verdict %s: %v", doc.Gate.Verdict, doc.Gate.Reasons)
	}
	var note string
	for _, n := range doc.Notes {
		if strings.HasPrefix(n, "timeouts:") {
			note = n
		}
	}
	if note == "" || !strings.Contains(note, "lower bound") {
		t.Fatalf("notes %q: want the timeouts noted as lower bounds", doc.Notes)
	}
	for _, r := range doc.Rounds {
		if r.Arm == gate.ArmHead && r.Timeouts == 0 {
			t.Fatalf("head round %+v: timeouts not recorded", r)
		}
	}
}

// TestRunGateLagBracket: rounds over the lag rule alone, with their
// lag-free histograms, do not stop the gate: it reaches its verdict through
// the lag bracket, and the document keeps both histograms.
func TestRunGateLagBracket(t *testing.T) {
	f := &fakeDriver{n: 2000, lagged: map[int]int{1: 1, 4: 1}, lagFree: true,
		median: map[string]time.Duration{"base": 2 * time.Millisecond, "head": 2 * time.Millisecond},
		tail:   map[string]time.Duration{"base": 5 * time.Millisecond, "head": 5 * time.Millisecond}}
	doc, err := RunGate(context.Background(), GateRun{Config: smallGate(), Seed: 42, Driver: f})
	if err != nil {
		t.Fatal(err)
	}
	g := doc.Gate
	if g.Verdict != gate.Pass || g.LagBracket == nil || !g.LagBracket.Agree || g.LagBracket.Rounds != 2 {
		t.Fatalf("verdict %s, bracket %+v: %v", g.Verdict, g.LagBracket, g.Reasons)
	}
	n := 0
	for _, r := range doc.Rounds {
		if r.LagBounded {
			n++
			if r.Valid || r.LagFreeHist == "" || r.Hist == "" {
				t.Fatalf("lag-bounded round %+v: want invalid with both histograms", r.RoundSummary)
			}
		}
	}
	if n != 2 || len(doc.Reruns) != 0 {
		t.Fatalf("%d lag-bounded rounds, %d reruns: want 2, 0", n, len(doc.Reruns))
	}
}

// TestRunGateAALagOnly: an A/A round invalid only for the generator's own
// lag does not stop the gate (it leaves the noise floor); a base round so
// invalid does.
func TestRunGateAALagOnly(t *testing.T) {
	for _, tc := range []struct {
		arm     string
		verdict gate.Verdict
	}{{gate.ArmAA, gate.Pass}, {gate.ArmBase, gate.Invalid}} {
		slots, err := GateSchedule(smallGate(), 3)
		if err != nil {
			t.Fatal(err)
		}
		order := -1
		for _, s := range slots {
			if s.Arm == tc.arm {
				order = s.Order
				break
			}
		}
		f := &fakeDriver{n: 2000, ownLag: map[int]bool{order: true},
			median: map[string]time.Duration{"base": 2 * time.Millisecond, "head": 2 * time.Millisecond},
			tail:   map[string]time.Duration{"base": 5 * time.Millisecond, "head": 5 * time.Millisecond}}
		doc, err := RunGate(context.Background(), GateRun{Config: smallGate(), Seed: 3, Driver: f})
		if err != nil {
			t.Fatal(err)
		}
		if doc.Gate.Verdict != tc.verdict {
			t.Errorf("%s round %d invalid for own lag only: %s, want %s; %v", tc.arm, order, doc.Gate.Verdict, tc.verdict, doc.Gate.Reasons)
		}
		if tc.verdict == gate.Invalid && len(f.calls) != order+1 {
			t.Errorf("ran %d rounds, want to stop at the invalid one (%d)", len(f.calls), order+1)
		}
	}
}
