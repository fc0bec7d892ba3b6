package rules

import (
	"math"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tailgate-ci/tailgate/internal/gate"
)

// DefaultMaxLag is the largest send lag of the load generator in a valid
// round when gate.max_lag is absent (shared/DESIGN.md: 1 ms).
const DefaultMaxLag = time.Millisecond

// Gate is the perf-rules `gate` section: the decision rule of `tailgate
// gate` and the round shape of `tailgate gate` and `tailgate experiment`.
// Every absent key keeps the zero value, which means internal/gate's
// default (Config maps it).
type Gate struct {
	// SLO is the p99 threshold (default 25ms); a head p99 above it fails.
	SLO time.Duration `yaml:"slo"`
	// Quantile is the tail quantile held to the SLO (default 0.99).
	Quantile float64 `yaml:"quantile"`
	// P50Tolerance is the relative p50 slow-down that is not a regression
	// (0.05 = 5 %); the gate uses max(this, the A/A noise floor).
	P50Tolerance float64 `yaml:"p50_tolerance"`
	// Alpha is each criterion's error rate over all checkpoints, in (0,1).
	Alpha float64 `yaml:"alpha"`
	// MinSamplesPerArm is the fewest requests per arm a verdict rests on.
	MinSamplesPerArm int64 `yaml:"min_samples_per_arm"`
	// MinRounds and MaxRounds are base/head pairs at the first and the last
	// checkpoint; CheckpointEvery the pairs between looks.
	MinRounds       int `yaml:"min_rounds"`
	MaxRounds       int `yaml:"max_rounds"`
	CheckpointEvery int `yaml:"checkpoint_every"`
	// AARounds is the number of A/A (base vs base) pairs for the noise floor.
	AARounds int `yaml:"aa_rounds"`
	// Warmup is the unrecorded lead-in of every round; RoundDuration its
	// measured length.
	Warmup        time.Duration `yaml:"warmup"`
	RoundDuration time.Duration `yaml:"round_duration"`
	// MaxErrorRate is the fraction of failed requests above which a round
	// is invalid (absent: load.max_error_rate).
	MaxErrorRate *float64 `yaml:"max_error_rate"`
	// MaxLag is the load generator's largest send lag in a valid round
	// (default 1ms). It is a rule, not a constant, so a noisy runner can be
	// given an honest, recorded threshold instead of a silent relaxation.
	MaxLag time.Duration `yaml:"max_lag"`
	// MaxLateFraction lets a round whose generator lag went over MaxLag
	// stay valid when those late sends are at most this fraction of its
	// requests (default 0: none may be); see load.Config.MaxLateFraction
	// for the bound it puts on every quantile.
	MaxLateFraction float64 `yaml:"max_late_fraction"`
	// LagReruns is how many rounds of one gate or experiment may run again
	// because they were invalid only for the load generator's own lag
	// (absent or 0: none, the first such round makes the run invalid). The
	// discarded attempts stay in the result document. Opt-in: when the
	// lag comes with the service's own overload, re-running keeps the
	// calmer attempts of that arm (a selection bias).
	LagReruns int `yaml:"lag_reruns"`
	// Bootstrap is the number of round-bootstrap resamples; Seed seeds the
	// bootstrap and the schedule.
	Bootstrap int   `yaml:"bootstrap"`
	Seed      int64 `yaml:"seed"`
}

// Config returns the gate.Config of the section (zero fields stay zero:
// internal/gate fills in its defaults).
func (g Gate) Config() gate.Config {
	return gate.Config{
		SLO:              g.SLO,
		Quantile:         g.Quantile,
		P50Tolerance:     g.P50Tolerance,
		Alpha:            g.Alpha,
		MinRounds:        g.MinRounds,
		MaxRounds:        g.MaxRounds,
		CheckpointEvery:  g.CheckpointEvery,
		AARounds:         g.AARounds,
		MinSamplesPerArm: g.MinSamplesPerArm,
		Warmup:           g.Warmup,
		RoundDuration:    g.RoundDuration,
		Bootstrap:        g.Bootstrap,
		Seed:             g.Seed,
	}
}

// Lag returns MaxLag, or DefaultMaxLag when absent.
func (g Gate) Lag() time.Duration {
	if g.MaxLag == 0 {
		return DefaultMaxLag
	}
	return g.MaxLag
}

// ErrorRate returns the round's error-rate limit: gate.max_error_rate, else
// load's.
func (r *Rules) ErrorRate() float64 {
	if r.Gate.MaxErrorRate != nil {
		return *r.Gate.MaxErrorRate
	}
	return r.Load.MaxErrorRate
}

func (g *Gate) validate(d *decoder, n *yaml.Node, path string) {
	bad := func(key, format string, a ...any) { d.errorf(lineOf(n, key), join(path, key), format, a...) }
	// set reports a key given with a value the decoder accepted (a negative
	// duration was already reported as such).
	set := func(key string) bool {
		v := lineOf(n, key)
		return has(n, key) && v != nil && !strings.HasPrefix(strings.TrimSpace(v.Value), "-")
	}
	if set("slo") && g.SLO == 0 {
		bad("slo", "must be positive (e.g. 25ms)")
	}
	if has(n, "quantile") && !(g.Quantile > 0 && g.Quantile < 1) {
		bad("quantile", "%v: want a quantile in (0,1), e.g. 0.99", g.Quantile)
	}
	if has(n, "alpha") && !(g.Alpha > 0 && g.Alpha < 1) {
		bad("alpha", "%v: want a probability in (0,1), e.g. 0.05", g.Alpha)
	}
	if has(n, "p50_tolerance") && !(g.P50Tolerance >= 0 && g.P50Tolerance < 10) {
		bad("p50_tolerance", "%v: want a non-negative fraction (0.05 = 5%%)", g.P50Tolerance)
	}
	for _, k := range []struct {
		key string
		v   int64
		min int64
	}{
		{"min_samples_per_arm", g.MinSamplesPerArm, 1},
		{"min_rounds", int64(g.MinRounds), 2},
		{"max_rounds", int64(g.MaxRounds), 1},
		{"checkpoint_every", int64(g.CheckpointEvery), 1},
		{"aa_rounds", int64(g.AARounds), 1},
		{"bootstrap", int64(g.Bootstrap), gate.MinBootstrap},
	} {
		if has(n, k.key) && k.v < k.min {
			bad(k.key, "%d: want at least %d", k.v, k.min)
		}
	}
	if set("round_duration") && g.RoundDuration == 0 {
		bad("round_duration", "must be positive")
	}
	if set("max_lag") && g.MaxLag == 0 {
		bad("max_lag", "must be positive (e.g. 1ms)")
	}
	if g.LagReruns < 0 {
		bad("lag_reruns", "%d: want 0 (no re-runs) or more", g.LagReruns)
	}
	if f := g.MaxLateFraction; f < 0 || f >= 0.01 || math.IsNaN(f) {
		bad("max_late_fraction", "%g: want a fraction in [0, 0.01) (0.001 = 0.1%% of a round's requests)", f)
	}
	if e := g.MaxErrorRate; e != nil && (*e < 0 || *e > 1 || math.IsNaN(*e)) {
		bad("max_error_rate", "%g: want a fraction in [0,1]", *e)
	}
	cfg := g.Config()
	if d2 := cfg.WithDefaults(); d2.MaxRounds < d2.MinRounds && has(n, "max_rounds") {
		bad("max_rounds", "%d: must be at least min_rounds (%d)", d2.MaxRounds, d2.MinRounds)
	}
}
