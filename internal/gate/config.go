package gate

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Defaults. They are chosen so that a base/head gate at ~1,500 req/s reaches
// its verdict in under ten minutes (see STATISTICS.md for the calculation and
// for the simulated error rates they give).
const (
	DefaultSLO              = 25 * time.Millisecond
	DefaultQuantile         = 0.99
	DefaultP50Tolerance     = 0.05 // relative: head p50 may be up to 5 % slower
	DefaultAlpha            = 0.05 // per criterion, spent over all checkpoints
	DefaultMinRounds        = 6    // base/head pairs before the first look
	DefaultMaxRounds        = 18   // pairs at which the gate must stop
	DefaultCheckpointEvery  = 6    // pairs between looks: checkpoints 6, 12, 18
	DefaultAARounds         = 4    // A/A (base vs base) pairs for the noise floor
	DefaultMinSamplesPerArm = 10_000
	DefaultWarmup           = 2 * time.Second
	DefaultRoundDuration    = 8 * time.Second
	DefaultBootstrap        = 2000
	DefaultSeed             = 1

	// NoiseFloorConfidence is the confidence of the A/A noise floor: the
	// floor is the upper bound of |systematic p50 shift| between identical
	// arms at this confidence.
	NoiseFloorConfidence = 0.95
	// MinBootstrap is the smallest accepted number of bootstrap resamples.
	MinBootstrap = 200
	// SpendingPower is ρ of the alpha-spending function α·t^ρ, where t is
	// the share of MaxRounds run. ρ = 1 spends evenly; ρ = 2 keeps most of
	// alpha for the last look, where the evidence is, while a clear
	// regression still fails at the first one.
	SpendingPower = 2.0
)

// Config holds the gate's decision rule. The zero value of every field means
// its Default* constant; WithDefaults fills them in.
type Config struct {
	// SLO is the p99 threshold; the gate fails when p99 is above it.
	SLO time.Duration `json:"slo_ns"`
	// Quantile is the tail quantile held to the SLO, in (0,1).
	Quantile float64 `json:"quantile"`
	// P50Tolerance is the relative p50 slow-down that is not a regression
	// (0.05 = 5 %). The effective tolerance is max(this, A/A noise floor).
	P50Tolerance float64 `json:"p50_tolerance"`
	// Alpha is the error rate of each criterion over the whole sequential
	// run, spent over the checkpoints (CheckpointAlphas).
	Alpha float64 `json:"alpha"`
	// MinRounds is the number of base/head pairs at the first checkpoint.
	MinRounds int `json:"min_rounds"`
	// MaxRounds is the cap on base/head pairs; the last checkpoint.
	MaxRounds int `json:"max_rounds"`
	// CheckpointEvery is the number of pairs between checkpoints.
	CheckpointEvery int `json:"checkpoint_every"`
	// AARounds is the number of A/A pairs the schedule adds to measure the
	// noise floor (0 in the rules file means the default; see WithDefaults).
	AARounds int `json:"aa_rounds"`
	// MinSamplesPerArm is the fewest requests per arm a verdict can rest on.
	MinSamplesPerArm int64 `json:"min_samples_per_arm"`
	// Warmup is discarded load before each round (used by the runner).
	Warmup time.Duration `json:"warmup_ns"`
	// RoundDuration is the measured length of one round (used by the runner).
	RoundDuration time.Duration `json:"round_duration_ns"`
	// Bootstrap is the number of resamples of the round bootstrap.
	Bootstrap int `json:"bootstrap"`
	// Seed seeds the bootstrap, so a verdict is reproducible.
	Seed int64 `json:"seed"`
}

// WithDefaults returns c with every zero field replaced by its default.
func (c Config) WithDefaults() Config {
	if c.SLO == 0 {
		c.SLO = DefaultSLO
	}
	if c.Quantile == 0 {
		c.Quantile = DefaultQuantile
	}
	if c.P50Tolerance == 0 {
		c.P50Tolerance = DefaultP50Tolerance
	}
	if c.Alpha == 0 {
		c.Alpha = DefaultAlpha
	}
	if c.MinRounds == 0 {
		c.MinRounds = DefaultMinRounds
	}
	if c.MaxRounds == 0 {
		c.MaxRounds = max(DefaultMaxRounds, c.MinRounds)
	}
	if c.CheckpointEvery == 0 {
		c.CheckpointEvery = DefaultCheckpointEvery
	}
	if c.AARounds == 0 {
		c.AARounds = DefaultAARounds
	}
	if c.MinSamplesPerArm == 0 {
		c.MinSamplesPerArm = DefaultMinSamplesPerArm
	}
	if c.Warmup == 0 {
		c.Warmup = DefaultWarmup
	}
	if c.RoundDuration == 0 {
		c.RoundDuration = DefaultRoundDuration
	}
	if c.Bootstrap == 0 {
		c.Bootstrap = DefaultBootstrap
	}
	if c.Seed == 0 {
		c.Seed = DefaultSeed
	}
	return c
}

// Validate reports every invalid field of c (zero fields are valid: they mean
// the default), naming each field by its JSON name.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, fmt.Errorf("gate config: %s: %s", field, fmt.Sprintf(format, a...)))
	}
	if c.SLO < 0 {
		bad("slo", "must be positive, got %v", c.SLO)
	}
	if !(c.Quantile >= 0 && c.Quantile < 1) {
		bad("quantile", "must be in (0,1), got %v", c.Quantile)
	}
	if !(c.P50Tolerance >= 0 && c.P50Tolerance < 10) {
		bad("p50_tolerance", "must be a non-negative fraction (0.05 = 5%%), got %v", c.P50Tolerance)
	}
	if !(c.Alpha >= 0 && c.Alpha < 1) {
		bad("alpha", "must be in (0,1), got %v", c.Alpha)
	}
	if c.MinRounds < 0 {
		bad("min_rounds", "must be positive, got %d", c.MinRounds)
	}
	if c.MaxRounds < 0 {
		bad("max_rounds", "must be positive, got %d", c.MaxRounds)
	}
	if c.CheckpointEvery < 0 {
		bad("checkpoint_every", "must be positive, got %d", c.CheckpointEvery)
	}
	if c.AARounds < 0 {
		bad("aa_rounds", "must be positive, got %d", c.AARounds)
	}
	if c.MinSamplesPerArm < 0 {
		bad("min_samples_per_arm", "must be positive, got %d", c.MinSamplesPerArm)
	}
	if c.Warmup < 0 {
		bad("warmup", "must not be negative, got %v", c.Warmup)
	}
	if c.RoundDuration < 0 {
		bad("round_duration", "must be positive, got %v", c.RoundDuration)
	}
	if c.Bootstrap < 0 || (c.Bootstrap > 0 && c.Bootstrap < MinBootstrap) {
		bad("bootstrap", "must be at least %d resamples, got %d", MinBootstrap, c.Bootstrap)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	d := c.WithDefaults()
	if d.MinRounds < 2 {
		bad("min_rounds", "must be at least 2 (the paired test needs a variance), got %d", d.MinRounds)
	}
	if d.MaxRounds < d.MinRounds {
		bad("max_rounds", "must be at least min_rounds (%d), got %d", d.MinRounds, d.MaxRounds)
	}
	if math.IsNaN(d.Alpha) || math.IsNaN(d.Quantile) || math.IsNaN(d.P50Tolerance) {
		bad("alpha", "NaN")
	}
	return errors.Join(errs...)
}

// Checkpoints returns the numbers of base/head pairs at which the gate looks:
// MinRounds, then every CheckpointEvery pairs, and always MaxRounds last.
// The runner must evaluate only there: alpha is split over these looks.
func (c Config) Checkpoints() []int {
	c = c.WithDefaults()
	if c.MaxRounds < c.MinRounds || c.MinRounds < 1 {
		return nil
	}
	var cps []int
	for n := c.MinRounds; n < c.MaxRounds; n += c.CheckpointEvery {
		cps = append(cps, n)
	}
	return append(cps, c.MaxRounds)
}

// CheckpointAlphas returns the one-sided error rate each criterion spends at
// each checkpoint: the increments of the spending function α·t^ρ
// (ρ = SpendingPower, t = pairs/MaxRounds at the checkpoint). They add up to
// Alpha, so by the union bound the chance of any false decision over all
// looks is at most Alpha whatever the correlation between the looks (a
// Bonferroni split with weights; exact group-sequential boundaries would need
// normal statistics with independent increments, which a bootstrap over
// rounds does not promise).
func (c Config) CheckpointAlphas() []float64 {
	c = c.WithDefaults()
	cps := c.Checkpoints()
	as := make([]float64, len(cps))
	prev := 0.0
	for i, n := range cps {
		spent := c.Alpha * math.Pow(float64(n)/float64(c.MaxRounds), SpendingPower)
		if i == len(cps)-1 {
			spent = c.Alpha
		}
		as[i] = spent - prev
		prev = spent
	}
	return as
}

// CheckpointAlpha is the alpha spent at the checkpoint reached with the
// given number of base/head pairs (the first checkpoint's before it).
func (c Config) CheckpointAlpha(pairs int) float64 {
	as := c.CheckpointAlphas()
	if len(as) == 0 {
		return c.WithDefaults().Alpha
	}
	i := 0
	for j, n := range c.Checkpoints() {
		if pairs >= n {
			i = j
		}
	}
	return as[i]
}

// MaxDuration is the longest a base/head gate with this config can take to
// run its rounds: MaxRounds pairs plus AARounds A/A pairs, each round
// Warmup + RoundDuration. Build and deploy time are not included.
func (c Config) MaxDuration() time.Duration {
	c = c.WithDefaults()
	rounds := 2*c.MaxRounds + c.AARounds
	return time.Duration(rounds) * (c.Warmup + c.RoundDuration)
}

// MinDuration is the time to the first checkpoint (the earliest verdict).
func (c Config) MinDuration() time.Duration {
	c = c.WithDefaults()
	rounds := 2*c.MinRounds + min(c.AARounds, c.MinRounds)
	return time.Duration(rounds) * (c.Warmup + c.RoundDuration)
}
