package experiment

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/tailgate-ci/tailgate/internal/gate"
)

// Baseline is the name of the variant with no fix applied.
const Baseline = "baseline"

// Mode selects which variants an attribution runs.
type Mode string

// Modes.
const (
	// ModeStandard runs the baseline, each fix alone, all fixes, and all but
	// one: 2n+2 variants for n fixes.
	ModeStandard Mode = "standard"
	// ModeFull runs every subset of the fixes (2^n variants) and adds the
	// Shapley value of each fix (`--attribution full`).
	ModeFull Mode = "full"
)

// Attribution defaults.
const (
	DefaultConfidence = 0.95
	DefaultBootstrap  = 2000
	DefaultSeed       = 1
	// MaxFullFixes caps ModeFull: 2^10 variants is already hours of rounds.
	MaxFullFixes = 10
)

// Variant is a set of fixes applied together.
type Variant struct {
	Name  string   `json:"name"`
	Fixes []string `json:"fixes"`
}

// VariantName is the canonical name of a fix set: Baseline for none,
// otherwise the fix names joined by "+" in the order given.
func VariantName(fixes []string) string {
	if len(fixes) == 0 {
		return Baseline
	}
	return strings.Join(fixes, "+")
}

func checkFixes(fixes []string) error {
	var errs []error
	seen := map[string]bool{}
	for i, f := range fixes {
		switch {
		case f == "":
			errs = append(errs, fmt.Errorf("fixes[%d]: empty name", i))
		case f == Baseline || strings.ContainsAny(f, "+ \t\n") || f == gate.ArmAA:
			errs = append(errs, fmt.Errorf("fixes[%d]: %q: a fix name cannot be %q or %q or contain '+' or spaces", i, f, Baseline, gate.ArmAA))
		case seen[f]:
			errs = append(errs, fmt.Errorf("fixes[%d]: duplicate fix %q", i, f))
		}
		seen[f] = true
	}
	return errors.Join(errs...)
}

// Variants lists the variants an attribution of fixes needs, baseline first
// (so it is the reference arm of the schedule).
func Variants(fixes []string, mode Mode) ([]Variant, error) {
	if err := checkFixes(fixes); err != nil {
		return nil, err
	}
	if len(fixes) == 0 {
		return nil, errors.New("fixes: none to attribute")
	}
	masks, err := masksFor(len(fixes), mode)
	if err != nil {
		return nil, err
	}
	vs := make([]Variant, len(masks))
	for i, m := range masks {
		fs := subset(fixes, m)
		vs[i] = Variant{Name: VariantName(fs), Fixes: fs}
	}
	return vs, nil
}

func masksFor(n int, mode Mode) ([]uint, error) {
	all := uint(1)<<n - 1
	switch mode {
	case ModeStandard, "":
		seen := map[uint]bool{}
		var ms []uint
		add := func(m uint) {
			if !seen[m] {
				seen[m] = true
				ms = append(ms, m)
			}
		}
		add(0)
		for i := 0; i < n; i++ {
			add(1 << i)
		}
		add(all)
		for i := 0; i < n; i++ {
			add(all &^ (1 << i))
		}
		return ms, nil
	case ModeFull:
		if n > MaxFullFixes {
			return nil, fmt.Errorf("attribution full: %d fixes need %d variants; at most %d fixes", n, 1<<n, MaxFullFixes)
		}
		ms := make([]uint, 0, 1<<n)
		for m := uint(0); m <= all; m++ {
			ms = append(ms, m)
		}
		// Baseline first, then by number of fixes, so names read naturally.
		sort.SliceStable(ms, func(i, j int) bool { return popcount(ms[i]) < popcount(ms[j]) })
		return ms, nil
	default:
		return nil, fmt.Errorf("attribution mode %q: want %q or %q", mode, ModeStandard, ModeFull)
	}
}

func popcount(m uint) int {
	c := 0
	for ; m != 0; m &= m - 1 {
		c++
	}
	return c
}

func subset(fixes []string, m uint) []string {
	var fs []string
	for i, f := range fixes {
		if m&(1<<i) != 0 {
			fs = append(fs, f)
		}
	}
	return fs
}

// ExperimentSchedule is the interleaved schedule of an attribution: every
// variant once per block, blocks in mirrored couples, baseline as reference.
func ExperimentSchedule(variants []Variant, blocks int, seed int64) ([]Slot, error) {
	arms := make([]string, len(variants))
	for i, v := range variants {
		arms[i] = v.Name
	}
	return Schedule(ScheduleConfig{Arms: arms, Blocks: blocks, Seed: seed})
}

// AttributionConfig configures Attribute. Zero fields mean the defaults.
type AttributionConfig struct {
	// Fixes are the fix names in canonical order (as in the rules file).
	Fixes []string `json:"fixes"`
	Mode  Mode     `json:"mode"`
	// Quantile is the tail quantile (default gate.DefaultQuantile).
	Quantile float64 `json:"quantile"`
	// Confidence of the two-sided bootstrap intervals (default 0.95).
	Confidence float64 `json:"confidence"`
	Bootstrap  int     `json:"bootstrap"`
	Seed       int64   `json:"seed"`
}

func (c AttributionConfig) withDefaults() AttributionConfig {
	if c.Mode == "" {
		c.Mode = ModeStandard
	}
	if c.Quantile == 0 {
		c.Quantile = gate.DefaultQuantile
	}
	if c.Confidence == 0 {
		c.Confidence = DefaultConfidence
	}
	if c.Bootstrap == 0 {
		c.Bootstrap = DefaultBootstrap
	}
	if c.Seed == 0 {
		c.Seed = DefaultSeed
	}
	return c
}

// Validate reports the invalid fields of c, by JSON name.
func (c AttributionConfig) Validate() error {
	var errs []error
	if err := checkFixes(c.Fixes); err != nil {
		errs = append(errs, err)
	}
	if len(c.Fixes) == 0 {
		errs = append(errs, errors.New("fixes: none to attribute"))
	}
	if !(c.Quantile >= 0 && c.Quantile < 1) {
		errs = append(errs, fmt.Errorf("quantile: must be in (0,1), got %v", c.Quantile))
	}
	if !(c.Confidence >= 0 && c.Confidence < 1) {
		errs = append(errs, fmt.Errorf("confidence: must be in (0,1), got %v", c.Confidence))
	}
	if c.Bootstrap < 0 || (c.Bootstrap > 0 && c.Bootstrap < gate.MinBootstrap) {
		errs = append(errs, fmt.Errorf("bootstrap: must be at least %d resamples, got %d", gate.MinBootstrap, c.Bootstrap))
	}
	if c.Mode != "" && c.Mode != ModeStandard && c.Mode != ModeFull {
		errs = append(errs, fmt.Errorf("mode: %q: want %q or %q", c.Mode, ModeStandard, ModeFull))
	}
	if c.Mode == ModeFull && len(c.Fixes) > MaxFullFixes {
		errs = append(errs, fmt.Errorf("fixes: %d fixes in full mode, at most %d", len(c.Fixes), MaxFullFixes))
	}
	return errors.Join(errs...)
}

// Estimate is a latency difference (negative: the fix makes it faster) with
// its bootstrap confidence interval over blocks of rounds.
type Estimate struct {
	Value time.Duration `json:"value_ns"`
	Lower time.Duration `json:"lower_ns"`
	Upper time.Duration `json:"upper_ns"`
}

// Excludes0 reports whether the interval lies entirely on one side of zero.
func (e Estimate) Excludes0() bool { return e.Lower > 0 || e.Upper < 0 }

// VariantStat is one variant's pooled figures.
type VariantStat struct {
	Variant
	Rounds int           `json:"rounds"`
	P50    time.Duration `json:"p50_ns"`
	P99    time.Duration `json:"p99_ns"`
}

// FixAttribution is what one fix does to the tail and the median.
type FixAttribution struct {
	Fix string `json:"fix"`
	// Isolation: the fix alone against the baseline, v({i}) − v(∅).
	IsolationP99 Estimate `json:"isolation_p99"`
	IsolationP50 Estimate `json:"isolation_p50"`
	// LeaveOneOut: all fixes against all but this one, v(N) − v(N∖{i}).
	LeaveOneOutP99 Estimate `json:"leave_one_out_p99"`
	LeaveOneOutP50 Estimate `json:"leave_one_out_p50"`
	// Shapley: the fix's average marginal effect over all orders in which
	// fixes could be added (ModeFull only).
	ShapleyP99 *Estimate `json:"shapley_p99,omitempty"`
	ShapleyP50 *Estimate `json:"shapley_p50,omitempty"`
	// InteractionP99/P50 is isolation − leave-one-out; a fix interacts with
	// the others when its interval excludes zero (Interaction). These
	// intervals are Bonferroni-wide over all fixes and both metrics, so the
	// chance of any false flag in an experiment is about 1 − Confidence.
	InteractionP99 Estimate `json:"interaction_p99"`
	InteractionP50 Estimate `json:"interaction_p50"`
	Interaction    bool     `json:"interaction"`
}

// Attribution is the per-fix result of an experiment.
type Attribution struct {
	Mode       Mode     `json:"mode"`
	Fixes      []string `json:"fixes"`
	Quantile   float64  `json:"quantile"`
	Confidence float64  `json:"confidence"`
	Bootstrap  int      `json:"bootstrap"`
	Seed       int64    `json:"seed"`
	// Blocks is the number of complete blocks (one valid round of every
	// variant) the figures rest on; the bootstrap resamples blocks.
	Blocks   int           `json:"blocks"`
	Variants []VariantStat `json:"variants"`
	// Cumulative: all fixes against the baseline, v(N) − v(∅).
	CumulativeP99 Estimate         `json:"cumulative_p99"`
	CumulativeP50 Estimate         `json:"cumulative_p50"`
	PerFix        []FixAttribution `json:"per_fix"`
	Notes         []string         `json:"notes,omitempty"`
}

// Attribute computes per-fix attribution from experiment rounds, whose Arm
// is the variant name (VariantName) and whose Block groups one round of
// each variant. Invalid rounds and blocks missing a variant are left out
// (with a note). Every figure is a difference of pooled quantiles, and its
// interval comes from resampling whole blocks, so the differences stay
// paired in time.
func Attribute(cfg AttributionConfig, rounds []gate.Round) (*Attribution, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("attribution config: %w", err)
	}
	cfg = cfg.withDefaults()
	n := len(cfg.Fixes)
	masks, err := masksFor(n, cfg.Mode)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(masks))
	byName := map[string]int{}
	for i, m := range masks {
		names[i] = VariantName(subset(cfg.Fixes, m))
		byName[names[i]] = i
	}
	a := &Attribution{Mode: cfg.Mode, Fixes: cfg.Fixes, Quantile: cfg.Quantile, Confidence: cfg.Confidence, Bootstrap: cfg.Bootstrap, Seed: cfg.Seed}

	// Group rounds into blocks; keep the complete ones.
	type slot = *gate.Round
	blocks := map[int][]slot{}
	invalid := 0
	for i := range rounds {
		r := &rounds[i]
		v, ok := byName[r.Arm]
		if !ok {
			if r.Arm == gate.ArmAA {
				continue
			}
			return nil, fmt.Errorf("round %d (block %d): unknown variant %q", r.Order, r.Block, r.Arm)
		}
		if !r.Valid || r.Hist == nil || r.Hist.TotalCount() == 0 {
			invalid++
			continue
		}
		b := blocks[r.Block]
		if b == nil {
			b = make([]slot, len(masks))
			blocks[r.Block] = b
		}
		if b[v] != nil {
			return nil, fmt.Errorf("round %d: block %d already has a %q round", r.Order, r.Block, r.Arm)
		}
		b[v] = r
	}
	if invalid > 0 {
		a.Notes = append(a.Notes, fmt.Sprintf("%d invalid or empty rounds left out", invalid))
	}
	var ids []int
	for id, b := range blocks {
		if !slices.Contains(b, nil) {
			ids = append(ids, id)
		}
	}
	sort.Ints(ids)
	if dropped := len(blocks) - len(ids); dropped > 0 {
		a.Notes = append(a.Notes, fmt.Sprintf("%d incomplete blocks left out (a variant's round missing or invalid)", dropped))
	}
	a.Blocks = len(ids)
	if a.Blocks < 2 {
		return nil, fmt.Errorf("attribution: %d complete blocks, need at least 2 (one valid round of each of the %d variants per block)", a.Blocks, len(masks))
	}

	// One resampler per variant and metric; round j of every resampler is
	// block ids[j], so one weight vector resamples all variants together.
	p50s := make([]*gate.Resampler, len(masks))
	p99s := make([]*gate.Resampler, len(masks))
	for v := range masks {
		hs := make([]*hdrhistogram.Histogram, len(ids))
		for j, id := range ids {
			hs[j] = blocks[id][v].Hist
		}
		if p50s[v], err = gate.NewResampler(hs, 0.5); err != nil {
			return nil, fmt.Errorf("variant %s: %w", names[v], err)
		}
		if p99s[v], err = gate.NewResampler(hs, cfg.Quantile); err != nil {
			return nil, fmt.Errorf("variant %s: %w", names[v], err)
		}
	}
	maskIdx := map[uint]int{}
	for i, m := range masks {
		maskIdx[m] = i
	}
	// figures computes every reported difference from one weight vector:
	// cumulative, then per fix isolation, leave-one-out, interaction and
	// (full mode) Shapley, for p99 then p50.
	all := uint(1)<<n - 1
	per := 3
	if cfg.Mode == ModeFull {
		per = 4
	}
	figures := func(w []int) []float64 {
		out := make([]float64, 0, 2*(1+per*n))
		for _, rs := range [][]*gate.Resampler{p99s, p50s} {
			v := make([]float64, len(masks))
			for i, r := range rs {
				v[i] = float64(r.Quantile(w))
			}
			val := func(m uint) float64 { return v[maskIdx[m]] }
			out = append(out, val(all)-val(0))
			for i := 0; i < n; i++ {
				bit := uint(1) << i
				iso := val(bit) - val(0)
				loo := val(all) - val(all&^bit)
				out = append(out, iso, loo, iso-loo)
				if cfg.Mode == ModeFull {
					out = append(out, shapley(n, i, val))
				}
			}
		}
		return out
	}
	point := figures(nil)
	boot := make([][]float64, len(point))
	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0xa77_2b))
	w := make([]int, len(ids))
	for b := 0; b < cfg.Bootstrap; b++ {
		clear(w)
		for range w {
			w[rng.IntN(len(w))]++
		}
		for k, f := range figures(w) {
			boot[k] = append(boot[k], f)
		}
	}
	// Intervals are bootstrap-t (see interval). Interaction intervals are
	// Bonferroni-adjusted over the 2n tests
	// (n fixes × p99, p50), so an additive set of fixes is flagged with
	// probability about 1 - Confidence in all, not per figure.
	tail := (1 - cfg.Confidence) / 2
	est := func(k int) Estimate { return interval(point[k], boot[k], tail, len(ids)) }
	interact := func(k int) Estimate { return interval(point[k], boot[k], tail/float64(2*n), len(ids)) }
	for v := range masks {
		a.Variants = append(a.Variants, VariantStat{
			Variant: Variant{Name: names[v], Fixes: subset(cfg.Fixes, masks[v])},
			Rounds:  len(ids), P50: p50s[v].Quantile(nil), P99: p99s[v].Quantile(nil),
		})
	}
	half := len(point) / 2
	a.CumulativeP99, a.CumulativeP50 = est(0), est(half)
	for i := 0; i < n; i++ {
		k := 1 + per*i
		f := FixAttribution{
			Fix:          cfg.Fixes[i],
			IsolationP99: est(k), LeaveOneOutP99: est(k + 1), InteractionP99: interact(k + 2),
			IsolationP50: est(half + k), LeaveOneOutP50: est(half + k + 1), InteractionP50: interact(half + k + 2),
		}
		if cfg.Mode == ModeFull {
			s99, s50 := est(k+3), est(half+k+3)
			f.ShapleyP99, f.ShapleyP50 = &s99, &s50
		}
		f.Interaction = f.InteractionP99.Excludes0() || f.InteractionP50.Excludes0()
		if f.Interaction {
			a.Notes = append(a.Notes, fmt.Sprintf("%s interacts with the other fixes: alone it changes p%g by %s, last in by %s",
				f.Fix, 100*cfg.Quantile, f.IsolationP99.Value, f.LeaveOneOutP99.Value))
		}
		a.PerFix = append(a.PerFix, f)
	}
	return a, nil
}

// shapley is fix i's Shapley value for the set function val over n fixes:
// the mean over all orders of adding fixes of i's marginal effect,
// Σ_{S ⊆ N∖{i}} |S|!(n−|S|−1)!/n! · (val(S∪{i}) − val(S)).
func shapley(n, i int, val func(uint) float64) float64 {
	bit := uint(1) << i
	all := uint(1)<<n - 1
	var phi float64
	for s := uint(0); s <= all; s++ {
		if s&bit != 0 {
			continue
		}
		k := popcount(s)
		wt := math.Exp(lfact(k) + lfact(n-k-1) - lfact(n))
		phi += wt * (val(s|bit) - val(s))
	}
	return phi
}

func lfact(k int) float64 {
	v, _ := math.Lgamma(float64(k + 1))
	return v
}

// interval is point ± t·SE, where SE is the standard deviation of the
// bootstrap replicates over blocks, scaled by sqrt(k/(k−1)) (the bootstrap's
// narrowness bias with k blocks), and t the Student quantile with k−1
// degrees of freedom. With the 6–10 blocks an experiment affords, plain
// percentile intervals are far too narrow in the tails: in simulation they
// flagged interactions on additive fixes about three times as often as
// their nominal rate (see TestAttributeCalibration).
func interval(point float64, boot []float64, tail float64, k int) Estimate {
	var m, ss float64
	for _, x := range boot {
		m += x
	}
	m /= float64(len(boot))
	for _, x := range boot {
		ss += (x - m) * (x - m)
	}
	se := math.Sqrt(ss/float64(len(boot)-1)) * math.Sqrt(float64(k)/float64(k-1))
	h := gate.TQuantile(1-tail, float64(k-1)) * se
	return Estimate{Value: time.Duration(point), Lower: time.Duration(point - h), Upper: time.Duration(point + h)}
}
