package gate_test

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/tailgate-ci/tailgate/internal/gate"
)

// run builds rounds of a base/head gate: blocks ABBA pairs, aa A/A pairs in
// the first blocks, each round n requests from the model.
func run(base, head model, blocks, aa, n int, seed uint64) []gate.Round {
	rng := rand.New(rand.NewPCG(seed, 5))
	var rs []gate.Round
	idx := map[string]int{}
	add := func(b int, arm string, m model) {
		h := newHist()
		m.round(rng, h, n, 0)
		rs = append(rs, gate.Round{Arm: arm, Index: idx[arm], Block: b, Order: len(rs), Hist: h, Valid: true})
		idx[arm]++
	}
	for b := 0; b < blocks; b++ {
		if b%2 == 0 {
			add(b, gate.ArmBase, base)
			add(b, gate.ArmHead, head)
		} else {
			add(b, gate.ArmHead, head)
			add(b, gate.ArmBase, base)
		}
		if b < aa {
			add(b, gate.ArmAA, base)
		}
	}
	return rs
}

// quiet is a model with little round-to-round noise: p50 ≈ 3 ms, p99 ≈ 6 ms.
var quiet = model{Median: 3000, Sigma: 0.3, RoundSD: 0.005, Scale: 1}

func scaledBy(m model, f float64) model { m.Scale *= f; return m }

func TestEvaluate(t *testing.T) {
	slow := scaledBy(quiet, 6) // p99 ≈ 36 ms, over the 25 ms SLO
	tests := []struct {
		name     string
		cfg      gate.Config
		rounds   func() []gate.Round
		verdict  gate.Verdict
		p99, p50 gate.Verdict
		cont     bool
		next     int
		reason   string // a substring of one reason
	}{
		{
			name:    "identical arms pass",
			rounds:  func() []gate.Round { return run(quiet, quiet, 6, 4, 3000, 1) },
			verdict: gate.Pass, p99: gate.Pass, p50: gate.Pass,
			reason: "p50: pass",
		},
		{
			name:    "p99 over the SLO fails",
			rounds:  func() []gate.Round { return run(slow, slow, 6, 4, 3000, 2) },
			verdict: gate.Fail, p99: gate.Fail, p50: gate.Pass,
			reason: "lower bound is above the SLO",
		},
		{
			name:    "p50 +30% fails",
			rounds:  func() []gate.Round { return run(quiet, scaledBy(quiet, 1.3), 6, 4, 3000, 3) },
			verdict: gate.Fail, p99: gate.Pass, p50: gate.Fail,
			reason: "p50: fail: regression",
		},
		{
			name:    "before the first checkpoint: inconclusive, continue",
			rounds:  func() []gate.Round { return run(quiet, quiet, 3, 2, 3000, 4) },
			verdict: gate.Inconclusive, cont: true, next: 6, p99: gate.Pass,
			reason: "only 3 of the 6 base/head pairs",
		},
		{
			name:    "too few samples never pass",
			rounds:  func() []gate.Round { return run(quiet, quiet, 6, 4, 1000, 5) },
			verdict: gate.Inconclusive, cont: true, next: 12, p99: gate.Pass, p50: gate.Pass,
			reason: "head has 6000 samples, below min_samples_per_arm 10000",
		},
		{
			name:    "undecided at max_rounds: inconclusive, stop",
			cfg:     gate.Config{MinRounds: 4, MaxRounds: 4, SLO: 6 * time.Millisecond},
			rounds:  func() []gate.Round { return run(quiet, quiet, 4, 2, 3000, 6) },
			verdict: gate.Inconclusive, p99: gate.Inconclusive, p50: gate.Pass,
			reason: "reached max_rounds (4 pairs)",
		},
		{
			name: "an invalid round invalidates a passing run",
			rounds: func() []gate.Round {
				rs := run(quiet, quiet, 6, 4, 3000, 7)
				rs[3].Valid, rs[3].Invalid = false, []string{"attacker lagged 3ms > 1ms"}
				return rs
			},
			verdict: gate.Invalid,
			reason:  "attacker lagged 3ms > 1ms",
		},
		{
			name: "unknown arm",
			rounds: func() []gate.Round {
				rs := run(quiet, quiet, 6, 0, 3000, 8)
				rs[0].Arm = "bsae"
				return rs
			},
			verdict: gate.Invalid,
			reason:  `unknown arm "bsae"`,
		},
		{
			name: "empty histogram",
			rounds: func() []gate.Round {
				rs := run(quiet, quiet, 6, 0, 3000, 9)
				rs[2].Hist = nil
				return rs
			},
			verdict: gate.Invalid,
			reason:  "no samples",
		},
		{
			name: "mixed histogram geometry",
			rounds: func() []gate.Round {
				rs := run(quiet, quiet, 6, 0, 3000, 10)
				h := hdrhistogram.New(1, 1_000_000, 2)
				_ = h.RecordValue(3000)
				rs[5].Hist = h
				return rs
			},
			verdict: gate.Invalid,
			reason:  "geometry differs",
		},
		{
			name: "two head rounds in one block",
			rounds: func() []gate.Round {
				rs := run(quiet, quiet, 6, 0, 3000, 11)
				rs[2].Block = 0
				return rs
			},
			verdict: gate.Invalid,
			reason:  "block 0 already has a head round",
		},
		{
			name:    "bad config",
			cfg:     gate.Config{Alpha: 1.5},
			rounds:  func() []gate.Round { return run(quiet, quiet, 6, 4, 3000, 12) },
			verdict: gate.Invalid,
			reason:  "alpha: must be in (0,1)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := gate.Evaluate(tt.cfg, tt.rounds())
			if r.Verdict != tt.verdict {
				t.Fatalf("verdict %s, want %s; reasons:\n%s", r.Verdict, tt.verdict, strings.Join(r.Reasons, "\n"))
			}
			if tt.p99 != "" && r.P99.Verdict != tt.p99 {
				t.Errorf("p99 verdict %s, want %s; reasons:\n%s", r.P99.Verdict, tt.p99, strings.Join(r.Reasons, "\n"))
			}
			if tt.p50 != "" && r.P50.Verdict != tt.p50 {
				t.Errorf("p50 verdict %s, want %s; reasons:\n%s", r.P50.Verdict, tt.p50, strings.Join(r.Reasons, "\n"))
			}
			if r.Continue != tt.cont || r.NextCheckpoint != tt.next {
				t.Errorf("continue %v next %d, want %v %d", r.Continue, r.NextCheckpoint, tt.cont, tt.next)
			}
			if !strings.Contains(strings.Join(r.Reasons, "\n"), tt.reason) {
				t.Errorf("no reason contains %q:\n%s", tt.reason, strings.Join(r.Reasons, "\n"))
			}
			if ok, next := gate.ShouldContinue(r); ok != r.Continue || next != r.NextCheckpoint {
				t.Errorf("ShouldContinue = %v, %d", ok, next)
			}
			if _, err := json.Marshal(r); err != nil {
				t.Errorf("result does not marshal: %v", err)
			}
		})
	}
}

func TestEvaluateNumbers(t *testing.T) {
	rs := run(quiet, scaledBy(quiet, 1.02), 6, 4, 3000, 20)
	r := gate.Evaluate(gate.Config{}, rs)
	if r.Pairs != 6 || r.Checkpoint != 1 || r.Checkpoints != 3 {
		t.Errorf("pairs %d checkpoint %d/%d, want 6 1/3", r.Pairs, r.Checkpoint, r.Checkpoints)
	}
	if r.HeadSamples != 18000 || r.BaseSamples != 18000 {
		t.Errorf("samples head %d base %d, want 18000 each (A/A rounds are not base samples)", r.HeadSamples, r.BaseSamples)
	}
	if want := gate.DefaultAlpha * (6.0 / 18) * (6.0 / 18); math.Abs(r.Alpha-want) > 1e-12 {
		t.Errorf("checkpoint alpha %v, want %v", r.Alpha, want)
	}
	if r.P50.Ratio < 1.0 || r.P50.Ratio > 1.04 || r.P50.Lower > r.P50.Ratio || r.P50.Upper < r.P50.Ratio {
		t.Errorf("p50 ratio %v in [%v, %v], want about 1.02 inside its bounds", r.P50.Ratio, r.P50.Lower, r.P50.Upper)
	}
	if len(r.P50.PairRatios) != 6 || len(r.Rounds) != len(rs) {
		t.Errorf("%d pair ratios, %d round summaries", len(r.P50.PairRatios), len(r.Rounds))
	}
	p := r.P99
	if !(p.Bound.Lower <= p.OrderStat.Lower && p.Bound.Lower <= p.Bootstrap.Lower &&
		p.Bound.Upper >= p.OrderStat.Upper && p.Bound.Upper >= p.Bootstrap.Upper) {
		t.Errorf("bound %+v is not the wider of %+v and %+v", p.Bound, p.OrderStat, p.Bootstrap)
	}
	if !(p.Bound.Lower <= p.Head && p.Head <= p.Bound.Upper) {
		t.Errorf("p99 %v outside its bounds %+v", p.Head, p.Bound)
	}
	if !r.NoiseFloor.Measured || r.NoiseFloor.Pairs != 4 {
		t.Errorf("noise floor %+v, want measured from 4 pairs", r.NoiseFloor)
	}
	// Pure and seeded: the same input gives the same result.
	if again := gate.Evaluate(gate.Config{}, rs); !reflect.DeepEqual(r, again) {
		t.Error("Evaluate is not deterministic")
	}
	// The bootstrap seed is part of the config.
	if other := gate.Evaluate(gate.Config{Seed: 99}, rs); other.P99.Bootstrap == r.P99.Bootstrap && other.P99.Bootstrap.Lower != other.P99.Bootstrap.Upper {
		t.Log("note: seed 99 gave the same bootstrap interval")
	}
}

// A noisy A/A (the second deployment of base is 8 % slower) raises the
// tolerance, so a head 8 % slower is not called a regression.
func TestNoiseFloorRaisesTolerance(t *testing.T) {
	rng := rand.New(rand.NewPCG(30, 1))
	var rs []gate.Round
	for b := 0; b < 6; b++ {
		for _, a := range []struct {
			arm string
			f   float64
		}{{gate.ArmBase, 1}, {gate.ArmHead, 1.08}, {gate.ArmAA, 1.08}} {
			if a.arm == gate.ArmAA && b >= 4 {
				continue
			}
			h := newHist()
			scaledBy(quiet, a.f).round(rng, h, 3000, 0)
			rs = append(rs, gate.Round{Arm: a.arm, Index: b, Block: b, Order: len(rs), Hist: h, Valid: true})
		}
	}
	r := gate.Evaluate(gate.Config{}, rs)
	if r.NoiseFloor.Floor < 0.07 || r.P50.Tolerance != r.NoiseFloor.Floor {
		t.Fatalf("noise floor %+v, tolerance %v: want the floor (≥ 7%%) as the tolerance", r.NoiseFloor, r.P50.Tolerance)
	}
	if r.P50.Verdict == gate.Fail {
		t.Errorf("p50 failed within the noise floor: %s", strings.Join(r.Reasons, "\n"))
	}
	// Without the A/A rounds the same head fails against the rule's 5 %.
	var noAA []gate.Round
	for _, rd := range rs {
		if rd.Arm != gate.ArmAA {
			noAA = append(noAA, rd)
		}
	}
	if r := gate.Evaluate(gate.Config{}, noAA); r.P50.Verdict != gate.Fail {
		t.Errorf("without A/A: p50 %s, want fail; %s", r.P50.Verdict, strings.Join(r.Reasons, "\n"))
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  gate.Config
		want string // "" = valid
	}{
		{"zero is the defaults", gate.Config{}, ""},
		{"explicit", gate.Config{SLO: 10 * time.Millisecond, Alpha: 0.01, MinRounds: 4, MaxRounds: 20}, ""},
		{"negative SLO", gate.Config{SLO: -time.Millisecond}, "slo: must be positive"},
		{"alpha above 1", gate.Config{Alpha: 1.5}, "alpha: must be in (0,1), got 1.5"},
		{"alpha 1", gate.Config{Alpha: 1}, "alpha: must be in (0,1)"},
		{"negative alpha", gate.Config{Alpha: -0.1}, "alpha: must be in (0,1)"},
		{"quantile 1", gate.Config{Quantile: 1}, "quantile: must be in (0,1)"},
		{"negative tolerance", gate.Config{P50Tolerance: -0.05}, "p50_tolerance"},
		{"max below min", gate.Config{MinRounds: 10, MaxRounds: 8}, "max_rounds: must be at least min_rounds (10), got 8"},
		{"one round", gate.Config{MinRounds: 1}, "min_rounds: must be at least 2"},
		{"negative warmup", gate.Config{Warmup: -time.Second}, "warmup"},
		{"few resamples", gate.Config{Bootstrap: 50}, "bootstrap: must be at least 200"},
		{"negative samples", gate.Config{MinSamplesPerArm: -1}, "min_samples_per_arm"},
		{"two errors at once", gate.Config{SLO: -1, Alpha: 2}, "alpha"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestCheckpoints(t *testing.T) {
	tests := []struct {
		cfg  gate.Config
		want []int
	}{
		{gate.Config{}, []int{6, 12, 18}},
		{gate.Config{MinRounds: 4, MaxRounds: 4}, []int{4}},
		{gate.Config{MinRounds: 4, MaxRounds: 11, CheckpointEvery: 3}, []int{4, 7, 10, 11}},
	}
	for _, tt := range tests {
		if got := tt.cfg.Checkpoints(); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%+v: checkpoints %v, want %v", tt.cfg, got, tt.want)
		}
	}
	// (18 + 18 + 4) rounds of 2 s warm-up + 8 s measurement.
	if d := (gate.Config{}).MaxDuration(); d != 400*time.Second {
		t.Errorf("default max duration %v, want 6m40s", d)
	}
	// Alpha spending: the increments add up to alpha, most of it last.
	as := (gate.Config{}).CheckpointAlphas()
	if len(as) != 3 || math.Abs(as[0]+as[1]+as[2]-gate.DefaultAlpha) > 1e-12 || !(as[0] < as[1] && as[1] < as[2]) {
		t.Errorf("checkpoint alphas %v", as)
	}
	// (6 + 6 + 4) rounds to the first checkpoint.
	if d := (gate.Config{}).MinDuration(); d != 160*time.Second {
		t.Errorf("default time to the first checkpoint %v, want 2m40s", d)
	}
}

func TestExitCodesAndErr(t *testing.T) {
	tests := []struct {
		v    gate.Verdict
		code int
		err  error
	}{
		{gate.Pass, 0, nil},
		{gate.Fail, 3, gate.ErrRegression},
		{gate.Inconclusive, 4, gate.ErrInconclusive},
		{gate.Invalid, 1, gate.ErrInvalid},
		{"", 1, gate.ErrInvalid},
	}
	for _, tt := range tests {
		if got := gate.ExitCode(tt.v); got != tt.code {
			t.Errorf("ExitCode(%q) = %d, want %d", tt.v, got, tt.code)
		}
		err := gate.Result{Verdict: tt.v, Reasons: []string{"because"}}.Err()
		if !errors.Is(err, tt.err) || (err != nil && !strings.Contains(err.Error(), "because")) {
			t.Errorf("Err() for %q = %v, want %v with the reasons", tt.v, err, tt.err)
		}
	}
}

func TestQuantile(t *testing.T) {
	h := newHist()
	for v := int64(1); v <= 1000; v++ {
		_ = h.RecordValue(v * 100)
	}
	// 99,000 µs is in the bucket [99000, 99007] at 3 significant figures.
	if got := gate.Quantile(h, 0.99); got != 99007*time.Microsecond {
		t.Errorf("p99 = %v, want 99.007ms", got)
	}
	if got := gate.Quantile(nil, 0.5); got != 0 {
		t.Errorf("nil histogram: %v", got)
	}
}

func TestResampler(t *testing.T) {
	var hs []*hdrhistogram.Histogram
	for r := 0; r < 3; r++ {
		h := newHist()
		for v := int64(1); v <= 1000; v++ {
			_ = h.RecordValue(v*10 + int64(r)*5000)
		}
		hs = append(hs, h)
	}
	rs, err := gate.NewResampler(hs, 0.99)
	if err != nil {
		t.Fatal(err)
	}
	pool := newHist()
	for _, h := range hs {
		pool.Merge(h)
	}
	if got, want := rs.Quantile(nil), gate.Quantile(pool, 0.99); got != want {
		t.Errorf("all rounds once: %v, pooled histogram says %v", got, want)
	}
	w := []int{0, 3, 0}
	if got, want := rs.Quantile(w), gate.Quantile(hs[1], 0.99); got != want {
		t.Errorf("round 1 only: %v, want %v", got, want)
	}
	if _, err := gate.NewResampler(nil, 0.99); !errors.Is(err, gate.ErrNoRounds) {
		t.Errorf("no rounds: %v", err)
	}
}

// Degenerate input (every round the same histogram) still gives a verdict
// and a result that encodes as JSON (no NaN or infinity).
func TestEvaluateIdenticalRounds(t *testing.T) {
	h := newHist()
	for v := int64(1); v <= 20000; v++ {
		_ = h.RecordValue(1000 + v%5000)
	}
	var rs []gate.Round
	for b := 0; b < 6; b++ {
		for _, arm := range []string{gate.ArmBase, gate.ArmHead, gate.ArmAA} {
			rs = append(rs, gate.Round{Arm: arm, Index: b, Block: b, Order: len(rs), Hist: h, Valid: true})
		}
	}
	r := gate.Evaluate(gate.Config{}, rs)
	if r.Verdict != gate.Pass {
		t.Errorf("verdict %s: %s", r.Verdict, strings.Join(r.Reasons, "; "))
	}
	if _, err := json.Marshal(r); err != nil {
		t.Errorf("marshal: %v", err)
	}
}

func TestEvaluateNoRounds(t *testing.T) {
	r := gate.Evaluate(gate.Config{}, nil)
	if r.Verdict != gate.Inconclusive || !r.Continue || r.NextCheckpoint != gate.DefaultMinRounds {
		t.Errorf("no rounds: %s continue=%v next=%d", r.Verdict, r.Continue, r.NextCheckpoint)
	}
	if _, err := json.Marshal(r); err != nil {
		t.Error(err)
	}
}

// lagged marks the head's rounds (or every round, with all) as invalid only
// for the load generator's lag: Hist gets lag added to a share of its
// requests, LagFree keeps the lag-free latencies.
func lagged(rs []gate.Round, all bool, share float64, lag time.Duration) []gate.Round {
	for i := range rs {
		r := &rs[i]
		if !all && r.Arm != gate.ArmHead {
			continue
		}
		free := r.Hist
		with := newHist()
		k := 0
		for _, b := range free.Distribution() {
			for c := int64(0); c < b.Count; c++ {
				v := b.From
				if k++; float64(k%1000) < share*1000 {
					v += lag.Microseconds()
				}
				with.RecordValue(v)
			}
		}
		r.Hist, r.LagFree = with, free
		r.Valid, r.LagBounded, r.Invalid = false, true, []string{"attacker lagged"}
	}
	return rs
}

// TestEvaluateLagBracket: rounds invalid only for the generator's lag give
// a verdict when it is the same with the lag counted and taken out, and
// are invalid when the lag alone could decide it.
func TestEvaluateLagBracket(t *testing.T) {
	slow := scaledBy(quiet, 6) // p99 ≈ 36 ms
	for _, tc := range []struct {
		name    string
		rounds  []gate.Round
		verdict gate.Verdict
		agree   bool
	}{
		// A head far over the SLO fails whatever its lag.
		{"slow head fails", lagged(run(quiet, slow, 6, 4, 3000, 11), false, 0.005, 8*time.Millisecond), gate.Fail, true},
		// A little lag on every round does not change a pass.
		{"small lag passes", lagged(run(quiet, quiet, 6, 4, 3000, 12), true, 0.002, 5*time.Millisecond), gate.Pass, true},
		// 3 % of the head's requests 40 ms late: over the SLO with the lag,
		// under it without. The lag would decide: more rounds, and at the
		// last checkpoint invalid.
		{"lag decides", lagged(run(quiet, quiet, 6, 4, 3000, 13), false, 0.03, 40*time.Millisecond), gate.Inconclusive, false},
		{"lag decides at the cap", lagged(run(quiet, quiet, 6, 4, 3000, 13), false, 0.03, 40*time.Millisecond), gate.Invalid, false},
	} {
		cfg := gate.Config{MinSamplesPerArm: 1000, Bootstrap: 400}
		if strings.HasSuffix(tc.name, "at the cap") {
			cfg.MaxRounds = 6
		}
		res := gate.Evaluate(cfg, tc.rounds)
		if tc.verdict == gate.Inconclusive && (!res.Continue || res.NextCheckpoint != 12) {
			t.Errorf("%s: continue %v to %d, want more rounds to 12 pairs", tc.name, res.Continue, res.NextCheckpoint)
		}
		lb := res.LagBracket
		t.Logf("%s: %s (%s / %s): %v", tc.name, res.Verdict, lb.FailLeaning, lb.PassLeaning, res.Reasons)
		if res.Verdict != tc.verdict || lb == nil || lb.Agree != tc.agree {
			t.Errorf("%s: verdict %s, bracket %+v: want %s, agree %v", tc.name, res.Verdict, lb, tc.verdict, tc.agree)
		}
		for _, r := range res.Rounds {
			if r.Valid || !r.LagBounded {
				if r.Arm == gate.ArmHead {
					t.Errorf("%s: head round %+v not marked lag-bounded", tc.name, r)
				}
			}
		}
	}
	// Any other fault still makes it invalid.
	rs := lagged(run(quiet, slow, 6, 4, 3000, 14), false, 0.005, 8*time.Millisecond)
	rs[0].Valid, rs[0].Invalid = false, []string{"error rate 5%"}
	if res := gate.Evaluate(gate.Config{MinSamplesPerArm: 1000, Bootstrap: 400}, rs); res.Verdict != gate.Invalid {
		t.Errorf("with an error-invalid round: %s, want invalid", res.Verdict)
	}
}

// TestEvaluateUnstableBaseNoPass: when identical builds differ wildly
// (A/A rounds 10× apart: a base collapsing in some rounds), the p50
// tolerance that follows the noise floor would excuse anything, so p50
// cannot pass — though a head far over the SLO still fails.
func TestEvaluateUnstableBaseNoPass(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 5))
	unstable := func(rs []gate.Round) []gate.Round {
		k := 0
		for i := range rs {
			if rs[i].Arm == gate.ArmAA {
				if k++; k%2 == 0 {
					h := newHist()
					scaledBy(quiet, 10).round(rng, h, 3000, 0)
					rs[i].Hist = h
				}
			}
		}
		return rs
	}
	cfg := gate.Config{MinSamplesPerArm: 1000, Bootstrap: 400}
	// A head 20 % slower than its base is within the floor's tolerance,
	// not the rule's 5 %: that pass would rest on the unstable base.
	res := gate.Evaluate(cfg, unstable(run(quiet, scaledBy(quiet, 1.2), 6, 4, 3000, 22)))
	if res.NoiseFloor.Floor <= gate.MaxNoiseFloor || res.P50.Verdict != gate.Inconclusive || !res.P50.FloorTooHigh || res.Verdict == gate.Pass {
		t.Fatalf("floor %.2f: p50 %s (floor too high %v), verdict %s: want p50 inconclusive, no pass; %v",
			res.NoiseFloor.Floor, res.P50.Verdict, res.P50.FloorTooHigh, res.Verdict, res.Reasons)
	}
	if !strings.Contains(strings.Join(res.Reasons, " "), "the base is unstable") {
		t.Fatalf("reasons %v: want the unstable base named", res.Reasons)
	}
	// A head clearly faster than its base passes whatever the floor: the
	// paired bound is within the rule's own tolerance.
	fast := gate.Evaluate(cfg, unstable(run(quiet, scaledBy(quiet, 0.5), 6, 4, 3000, 24)))
	if fast.NoiseFloor.Floor <= gate.MaxNoiseFloor || fast.P50.Verdict != gate.Pass || fast.P50.FloorTooHigh || fast.Verdict != gate.Pass {
		t.Fatalf("floor %.2f, p50 ratio %.2f [%.2f, %.2f]: p50 %s (floor too high %v), verdict %s: want a pass that does not rest on the floor; %v",
			fast.NoiseFloor.Floor, fast.P50.Ratio, fast.P50.Lower, fast.P50.Upper, fast.P50.Verdict, fast.P50.FloorTooHigh, fast.Verdict, fast.Reasons)
	}
	if !strings.Contains(strings.Join(fast.Reasons, " "), "does not rest on the A/A noise floor") {
		t.Fatalf("reasons %v: want the pass said not to rest on the floor", fast.Reasons)
	}
	slow := scaledBy(quiet, 6)
	if res := gate.Evaluate(cfg, unstable(run(quiet, slow, 6, 4, 3000, 23))); res.Verdict != gate.Fail {
		t.Fatalf("slow head with an unstable base: %s, want fail on p99: %v", res.Verdict, res.Reasons)
	}
}

// TestEvaluateAALagOnlyLeftOutOfFloor: an A/A round invalid only for the
// load generator's own lag (over the bracket's cap) leaves the noise floor
// and says so, and the verdict stands on the valid rounds; the same fault
// on a base or head round, or another fault on an A/A round, makes the
// result invalid.
func TestEvaluateAALagOnlyLeftOutOfFloor(t *testing.T) {
	cfg := gate.Config{MinSamplesPerArm: 1000, Bootstrap: 400}
	mark := func(arm string, ownLagOnly bool) []gate.Round {
		rs := run(quiet, quiet, 6, 4, 3000, 21)
		for i := range rs {
			if rs[i].Arm == arm && rs[i].Index == 1 {
				rs[i].Valid, rs[i].OwnLagOnly = false, ownLagOnly
				rs[i].Invalid = []string{"attacker lagged: 2.1% of sends late by its own lag"}
			}
		}
		return rs
	}
	all := gate.Evaluate(cfg, run(quiet, quiet, 6, 4, 3000, 21))
	res := gate.Evaluate(cfg, mark(gate.ArmAA, true))
	if res.Verdict != gate.Pass || all.Verdict != gate.Pass {
		t.Fatalf("A/A round invalid for lag only: %s (all valid: %s), want pass; %s", res.Verdict, all.Verdict, strings.Join(res.Reasons, "\n"))
	}
	if res.NoiseFloor.Pairs != all.NoiseFloor.Pairs-1 {
		t.Errorf("noise floor from %d A/A pairs, want %d (one left out)", res.NoiseFloor.Pairs, all.NoiseFloor.Pairs-1)
	}
	if !strings.Contains(strings.Join(res.Reasons, "\n"), "left out of the noise floor") {
		t.Errorf("reasons do not say the A/A round was left out: %s", strings.Join(res.Reasons, "\n"))
	}
	var floorOnly int
	for _, r := range res.Rounds {
		if r.FloorOnly {
			floorOnly++
			if r.Arm != gate.ArmAA || r.Valid {
				t.Errorf("round %d (%s, valid %v) marked floor-only", r.Order, r.Arm, r.Valid)
			}
		}
	}
	if floorOnly != 1 {
		t.Errorf("%d rounds marked floor-only in the result, want 1", floorOnly)
	}
	for _, tc := range []struct {
		name   string
		rounds []gate.Round
	}{
		{"A/A round with another fault", mark(gate.ArmAA, false)},
		{"head round invalid for lag only", mark(gate.ArmHead, true)},
		{"base round invalid for lag only", mark(gate.ArmBase, true)},
	} {
		if r := gate.Evaluate(cfg, tc.rounds); r.Verdict != gate.Invalid {
			t.Errorf("%s: %s, want invalid", tc.name, r.Verdict)
		}
	}
}

func TestPct(t *testing.T) {
	for _, tc := range []struct {
		f    float64
		want string
	}{{0.05, "5.0%"}, {-0.625, "-62.5%"}, {9.999, "999.9%"}, {323936392.3788989, "3.24e+10%"}} {
		if got := gate.Pct(tc.f); got != tc.want {
			t.Errorf("Pct(%v) = %q, want %q", tc.f, got, tc.want)
		}
	}
}
