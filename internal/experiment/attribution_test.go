package experiment

import (
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/tailgate-ci/tailgate/internal/gate"
)

var fixes = []string{"gc", "locks", "mlock", "placement"}

// effects (µs) of each fix on every latency: a fix subtracts a constant, so
// every quantile of a variant moves by exactly the sum of its fixes' effects.
var effects = []float64{-6000, -3000, -2000, -1000}

// simulate runs an experiment's schedule on a synthetic service whose
// latency is a log-normal body plus 20 ms minus the effects of the applied
// fixes, plus gamma when both gc and locks are applied (an interaction).
func simulate(t *testing.T, mode Mode, blocks, n int, gamma float64, seed uint64) []gate.Round {
	t.Helper()
	vs, err := Variants(fixes, mode)
	if err != nil {
		t.Fatal(err)
	}
	slots, err := ExperimentSchedule(vs, blocks, int64(seed))
	if err != nil {
		t.Fatal(err)
	}
	offset := map[string]float64{}
	for _, v := range vs {
		o := 20000.0
		has := map[string]bool{}
		for _, f := range v.Fixes {
			has[f] = true
			for i, g := range fixes {
				if g == f {
					o += effects[i]
				}
			}
		}
		if has["gc"] && has["locks"] {
			o += gamma
		}
		offset[v.Name] = o
	}
	rng := rand.New(rand.NewPCG(seed, 3))
	var rounds []gate.Round
	for _, s := range slots {
		h := hdrhistogram.New(1, 60_000_000, 3)
		for j := 0; j < n; j++ {
			_ = h.RecordValue(int64(offset[s.Arm] + 3000*math.Exp(0.4*rng.NormFloat64())))
		}
		rounds = append(rounds, gate.Round{Arm: s.Arm, Index: s.Index, Block: s.Block, Order: s.Order, Hist: h, Valid: true})
	}
	return rounds
}

func near(got time.Duration, want float64, tol float64) bool {
	return math.Abs(float64(got)/1e3-want) <= tol
}

// On an additive model, isolation, leave-one-out and Shapley all equal the
// fix's effect, and no interaction is flagged.
func TestAttributeAdditive(t *testing.T) {
	rounds := simulate(t, ModeFull, 8, 6000, 0, 1)
	a, err := Attribute(AttributionConfig{Fixes: fixes, Mode: ModeFull, Bootstrap: 500}, rounds)
	if err != nil {
		t.Fatal(err)
	}
	if a.Blocks != 8 || len(a.Variants) != 16 || len(a.PerFix) != 4 {
		t.Fatalf("blocks %d variants %d fixes %d", a.Blocks, len(a.Variants), len(a.PerFix))
	}
	const tol = 300 // µs: p99 sampling noise (~60 µs per variant) and buckets
	for i, f := range a.PerFix {
		e := effects[i]
		for name, est := range map[string]Estimate{
			"isolation p99": f.IsolationP99, "leave-one-out p99": f.LeaveOneOutP99, "shapley p99": *f.ShapleyP99,
			"isolation p50": f.IsolationP50, "leave-one-out p50": f.LeaveOneOutP50, "shapley p50": *f.ShapleyP50,
		} {
			if !near(est.Value, e, tol) {
				t.Errorf("%s %s = %v, want %v µs", f.Fix, name, est.Value, e)
			}
			if !(est.Lower <= est.Value && est.Value <= est.Upper) {
				t.Errorf("%s %s: %v outside its interval [%v, %v]", f.Fix, name, est.Value, est.Lower, est.Upper)
			}
		}
		if f.Interaction {
			t.Errorf("%s: interaction flagged on an additive model: p99 %+v p50 %+v", f.Fix, f.InteractionP99, f.InteractionP50)
		}
	}
	if !near(a.CumulativeP99.Value, -12000, tol) {
		t.Errorf("cumulative p99 %v, want -12ms", a.CumulativeP99.Value)
	}
}

// With an interaction (fixing gc and locks together gains 2.5 ms less than
// the sum), Shapley splits the interaction evenly, isolation and
// leave-one-out differ by it, and exactly gc and locks are flagged.
func TestAttributeInteraction(t *testing.T) {
	const gamma = 2500
	rounds := simulate(t, ModeFull, 8, 6000, gamma, 2)
	a, err := Attribute(AttributionConfig{Fixes: fixes, Mode: ModeFull, Bootstrap: 500}, rounds)
	if err != nil {
		t.Fatal(err)
	}
	const tol = 300
	for i, f := range a.PerFix {
		e := effects[i]
		iso, loo, sh := e, e, e
		if f.Fix == "gc" || f.Fix == "locks" {
			loo, sh = e+gamma, e+gamma/2
		}
		if !near(f.IsolationP99.Value, iso, tol) || !near(f.LeaveOneOutP99.Value, loo, tol) || !near(f.ShapleyP99.Value, sh, tol) {
			t.Errorf("%s: isolation %v leave-one-out %v shapley %v, want %v %v %v µs",
				f.Fix, f.IsolationP99.Value, f.LeaveOneOutP99.Value, f.ShapleyP99.Value, iso, loo, sh)
		}
		if want := f.Fix == "gc" || f.Fix == "locks"; f.Interaction != want {
			t.Errorf("%s: interaction %v, want %v (p99 %+v)", f.Fix, f.Interaction, want, f.InteractionP99)
		}
	}
	// Efficiency: the Shapley values add up to the cumulative effect.
	var sum time.Duration
	for _, f := range a.PerFix {
		sum += f.ShapleyP99.Value
	}
	if d := sum - a.CumulativeP99.Value; d < -time.Microsecond || d > time.Microsecond {
		t.Errorf("Shapley sum %v != cumulative %v", sum, a.CumulativeP99.Value)
	}
	if !strings.Contains(strings.Join(a.Notes, "\n"), "gc interacts") {
		t.Errorf("notes %q do not mention the interaction", a.Notes)
	}
}

func TestShapleyExact(t *testing.T) {
	e := []float64{5, 3, 2}
	val := func(m uint) float64 {
		v := 0.0
		for i := range e {
			if m&(1<<i) != 0 {
				v += e[i]
			}
		}
		if m&3 == 3 { // fixes 0 and 1 together: +4
			v += 4
		}
		if m == 7 { // all three: +3 more
			v += 3
		}
		return v
	}
	want := []float64{5 + 2 + 1, 3 + 2 + 1, 2 + 1}
	for i := range e {
		if got := shapley(3, i, val); math.Abs(got-want[i]) > 1e-12 {
			t.Errorf("phi_%d = %v, want %v", i, got, want[i])
		}
	}
}

func TestAttributeStandardMode(t *testing.T) {
	rounds := simulate(t, ModeStandard, 6, 3000, 0, 3)
	a, err := Attribute(AttributionConfig{Fixes: fixes, Bootstrap: 300}, rounds)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Variants) != 10 {
		t.Errorf("%d variants, want 10 (baseline, 4 alone, all, 4 all-but-one)", len(a.Variants))
	}
	for _, f := range a.PerFix {
		if f.ShapleyP99 != nil {
			t.Errorf("%s: Shapley without full mode", f.Fix)
		}
	}
	// Deterministic for a seed.
	b, _ := Attribute(AttributionConfig{Fixes: fixes, Bootstrap: 300}, rounds)
	if !reflect.DeepEqual(a, b) {
		t.Error("Attribute is not deterministic")
	}
	// An invalid round drops its block, with a note.
	rounds[4].Valid = false
	c, err := Attribute(AttributionConfig{Fixes: fixes, Bootstrap: 300}, rounds)
	if err != nil {
		t.Fatal(err)
	}
	if c.Blocks != 5 || len(c.Notes) < 2 {
		t.Errorf("blocks %d notes %q, want 5 blocks and notes on the invalid round", c.Blocks, c.Notes)
	}
}

func TestVariants(t *testing.T) {
	vs, err := Variants([]string{"gc", "locks"}, ModeStandard)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, v := range vs {
		names = append(names, v.Name)
	}
	if want := []string{"baseline", "gc", "locks", "gc+locks"}; !reflect.DeepEqual(names, want) {
		t.Errorf("variants %v, want %v", names, want)
	}
	full, _ := Variants(fixes, ModeFull)
	if len(full) != 16 || full[0].Name != Baseline || full[15].Name != "gc+locks+mlock+placement" {
		t.Errorf("full: %d variants, first %q last %q", len(full), full[0].Name, full[len(full)-1].Name)
	}
}

func TestAttributeErrors(t *testing.T) {
	rounds := simulate(t, ModeStandard, 2, 500, 0, 4)
	tests := []struct {
		name   string
		cfg    AttributionConfig
		rounds []gate.Round
		want   string
	}{
		{"no fixes", AttributionConfig{}, rounds, "fixes: none"},
		{"duplicate fix", AttributionConfig{Fixes: []string{"gc", "gc"}}, rounds, `duplicate fix "gc"`},
		{"plus in name", AttributionConfig{Fixes: []string{"gc+x"}}, rounds, "cannot be"},
		{"bad mode", AttributionConfig{Fixes: fixes, Mode: "partial"}, rounds, `mode: "partial"`},
		{"bad confidence", AttributionConfig{Fixes: fixes, Confidence: 1.2}, rounds, "confidence: must be in (0,1)"},
		{"too many for full", AttributionConfig{Fixes: strings.Split("a b c d e f g h i j k", " "), Mode: ModeFull}, rounds, "at most 10"},
		{"unknown variant", AttributionConfig{Fixes: []string{"gc"}}, rounds, "unknown variant"},
		{"one block", AttributionConfig{Fixes: fixes}, rounds[:10], "need at least 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Attribute(tt.cfg, tt.rounds)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want %q", err, tt.want)
			}
		})
	}
}

// TestAttributeCalibration runs many seeded experiments: additive fixes must
// rarely be flagged as interacting (nominal: 5 % of experiments), and the
// gc×locks interaction must be found.
func TestAttributeCalibration(t *testing.T) {
	if testing.Short() {
		t.Skip("calibration over 16 simulated experiments; skipped with -short")
	}
	const experiments = 16
	falseFlags, missed := 0, 0
	for seed := uint64(100); seed < 100+experiments; seed++ {
		cfg := AttributionConfig{Fixes: fixes, Bootstrap: 400}
		a, err := Attribute(cfg, simulate(t, ModeStandard, 8, 3000, 0, seed))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range a.PerFix {
			if f.Interaction {
				falseFlags++
				break
			}
		}
		b, err := Attribute(cfg, simulate(t, ModeStandard, 8, 3000, 2500, seed))
		if err != nil {
			t.Fatal(err)
		}
		if !b.PerFix[0].Interaction || !b.PerFix[1].Interaction {
			missed++
		}
	}
	t.Logf("%d experiments: %d with a false interaction flag, %d missed the gc×locks interaction", experiments, falseFlags, missed)
	if falseFlags > 2 || missed > 1 {
		t.Errorf("false flags %d/%d, missed %d/%d", falseFlags, experiments, missed, experiments)
	}
}
