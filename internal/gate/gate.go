// Package gate owns the verdict of a tailgate run: from the per-round latency
// histograms of base, head and A/A rounds it decides pass, fail, inconclusive
// or invalid, with the reasons and every number behind them. It is pure: no
// I/O, no processes, no clock; the same rounds and config give the same
// result (the bootstrap is seeded).
//
// The unit of evidence is a round, not a request: slow events cluster in
// time, so requests within a round are not independent. Two criteria:
//
//   - p99 against the SLO: an order-statistic (binomial) interval on the
//     pooled head histogram and a bootstrap-t interval over head rounds; the
//     wider of the two is used. Fail when its lower bound is above the SLO,
//     pass when its upper bound is below, inconclusive otherwise.
//   - p50 regression: a one-sided paired t-test on the log ratio of head to
//     base p50 in rounds that ran back to back (ABBA blocks), against a
//     tolerance of max(rule tolerance, A/A noise floor). Fail when the lower
//     confidence bound of the ratio is above 1+tolerance, pass when the upper
//     bound is below it.
//
// Both criteria look at fixed checkpoints (Config.Checkpoints) with alpha
// split between the looks by a spending function (Config.CheckpointAlphas);
// an inconclusive result before
// the last checkpoint means "run more rounds" (Result.Continue). Any invalid
// round makes the run invalid (but see Evaluate: the load generator's own
// lag is bracketed, and an A/A round invalid only for it leaves the noise
// floor, Round.FloorOnly); a run never passes with fewer rounds or
// samples than the config requires. STATISTICS.md records the simulated
// error rates of the defaults.
package gate

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
)

// Arm names of a gate run.
const (
	ArmBase = "base" // the PR's base commit
	ArmHead = "head" // the PR's head commit
	ArmAA   = "aa"   // a second run of base, compared to base for the noise floor
)

// Round is one measured round of one arm.
type Round struct {
	// Arm is ArmBase, ArmHead or ArmAA (experiments also use variant names).
	Arm string `json:"arm"`
	// Index is the round's 0-based number within its arm.
	Index int `json:"index"`
	// Block groups rounds that ran back to back: a head and a base round of
	// the same block form a pair, and so do an A/A and a base round.
	Block int `json:"block"`
	// Order is the round's 0-based position in time over the whole run.
	Order int `json:"order"`
	// Hist holds the round's CO-corrected latencies in microseconds.
	Hist *hdrhistogram.Histogram `json:"-"`
	// Valid is false when the load generator could not keep its schedule,
	// the error rate was too high, or the service misbehaved.
	Valid bool `json:"valid"`
	// Invalid lists why the round is invalid.
	Invalid []string `json:"invalid,omitempty"`
	// LagBounded marks an invalid round whose only fault is the load
	// generator's own send lag, and LagFree holds the same requests'
	// latencies from their actual send times (the lag taken out). Its
	// true latencies lie between the two, so Evaluate can use it when the
	// verdict is the same at both ends (see Evaluate).
	LagBounded bool                    `json:"lag_bounded,omitempty"`
	LagFree    *hdrhistogram.Histogram `json:"-"`
	// OwnLagOnly marks an invalid round whose only fault is the load
	// generator's own send lag, however many sends it delayed. For an A/A
	// round that is not bracketed, the round is left out of the noise
	// floor (and the reasons say so) instead of making the result
	// invalid: A/A rounds only estimate the floor, and the floor only
	// sets the p50 tolerance, max(rule, floor), so the verdict still
	// rests on valid rounds alone (FloorOnly).
	OwnLagOnly bool `json:"own_lag_only,omitempty"`
}

// FloorOnly reports whether the round is an A/A round invalid only for
// the load generator's own lag, and not bracketed: Evaluate leaves it out
// of the noise floor rather than invalidating the result.
func (r *Round) FloorOnly() bool {
	return r.Arm == ArmAA && !r.Valid && r.OwnLagOnly && !r.bracketed()
}

// bracketed reports whether the round enters a verdict through the lag
// bracket.
func (r *Round) bracketed() bool {
	return !r.Valid && r.LagBounded && r.LagFree != nil && r.LagFree.TotalCount() > 0
}

// Verdict is the outcome of a gate or of one of its criteria.
type Verdict string

// Verdicts.
const (
	Pass         Verdict = "pass"
	Fail         Verdict = "fail"
	Inconclusive Verdict = "inconclusive"
	Invalid      Verdict = "invalid"
)

// Exit codes of a verdict (shared/STYLE.md).
const (
	ExitPass         = 0
	ExitError        = 1
	ExitGateFailed   = 3
	ExitInconclusive = 4
)

// ExitCode maps a verdict to the process exit code: 0 pass, 3 fail,
// 4 inconclusive, 1 invalid (an invalid run is an error, not a verdict).
func ExitCode(v Verdict) int {
	switch v {
	case Pass:
		return ExitPass
	case Fail:
		return ExitGateFailed
	case Inconclusive:
		return ExitInconclusive
	default:
		return ExitError
	}
}

// Sentinel errors for the verdicts callers branch on.
var (
	ErrRegression   = errors.New("gate failed")
	ErrInconclusive = errors.New("gate inconclusive")
	ErrInvalid      = errors.New("run invalid")
)

// Err returns nil for a pass and otherwise an error wrapping ErrRegression,
// ErrInconclusive or ErrInvalid whose text carries the reasons.
func (r Result) Err() error {
	var s error
	switch r.Verdict {
	case Pass:
		return nil
	case Fail:
		s = ErrRegression
	case Inconclusive:
		s = ErrInconclusive
	default:
		s = ErrInvalid
	}
	if len(r.Reasons) == 0 {
		return s
	}
	return fmt.Errorf("%w: %s", s, joinReasons(r.Reasons))
}

func joinReasons(rs []string) string {
	s := rs[0]
	for _, r := range rs[1:] {
		s += "; " + r
	}
	return s
}

// Interval is a confidence interval for a latency; a missing side (too few
// samples for that confidence) has Has* false.
type Interval struct {
	Lower    time.Duration `json:"lower_ns"`
	Upper    time.Duration `json:"upper_ns"`
	HasLower bool          `json:"has_lower"`
	HasUpper bool          `json:"has_upper"`
}

// P99Result is the tail criterion.
type P99Result struct {
	Verdict  Verdict       `json:"verdict"`
	Quantile float64       `json:"quantile"`
	SLO      time.Duration `json:"slo_ns"`
	// Head and Base are the quantile of each arm's pooled histogram.
	Head time.Duration `json:"head_ns"`
	Base time.Duration `json:"base_ns"`
	// Confidence is the one-sided confidence of each bound (1 - checkpoint alpha).
	Confidence float64 `json:"confidence"`
	// OrderStat is the binomial interval on the pooled head histogram (it
	// assumes independent requests); LoRank and HiRank are its ranks.
	OrderStat Interval `json:"order_stat"`
	LoRank    int64    `json:"lo_rank"`
	HiRank    int64    `json:"hi_rank"`
	// Bootstrap is the bootstrap-t interval over resampled head rounds,
	// and BootstrapSE the standard error of log p99 it rests on.
	Bootstrap   Interval `json:"bootstrap"`
	BootstrapSE float64  `json:"bootstrap_se"`
	// Bound is the wider of the two, which the verdict uses.
	Bound Interval `json:"bound"`
	// RoundSpread is the standard deviation of log p99 between head rounds:
	// how clustered the host's slow events are. The defaults detect a p99
	// 20 % over the SLO with ≥ 95 % power up to about 0.15 (STATISTICS.md).
	RoundSpread float64 `json:"round_spread"`
}

// P50Result is the regression criterion.
type P50Result struct {
	Verdict Verdict `json:"verdict"`
	// Test names the test: a one-sided paired t-test on log(head/base p50).
	Test string `json:"test"`
	// Pairs is the number of base/head pairs; DF its degrees of freedom.
	Pairs int `json:"pairs"`
	DF    int `json:"df"`
	// Ratio is exp(mean log ratio), the typical head/base p50 ratio, and
	// Lower/Upper its one-sided confidence bounds at Confidence.
	Ratio      float64 `json:"ratio"`
	Lower      float64 `json:"lower"`
	Upper      float64 `json:"upper"`
	Confidence float64 `json:"confidence"`
	// Tolerance is the effective tolerance max(RuleTolerance, noise floor).
	Tolerance     float64 `json:"tolerance"`
	RuleTolerance float64 `json:"rule_tolerance"`
	// T and PValue test "ratio > 1+Tolerance" (T is 0 when all pairs agree
	// exactly and the t statistic is undefined).
	T      float64 `json:"t"`
	PValue float64 `json:"p_value"`
	// Head and Base are the p50 of each arm's pooled histogram.
	Head time.Duration `json:"head_ns"`
	Base time.Duration `json:"base_ns"`
	// PairRatios is head/base p50 per pair, in block order.
	PairRatios []float64 `json:"pair_ratios"`
	// FloorTooHigh: within the tolerance, but only thanks to an A/A noise
	// floor over MaxNoiseFloor (not within the rule's own tolerance), so
	// the verdict stays inconclusive.
	FloorTooHigh bool `json:"floor_too_high,omitempty"`
}

// NoiseFloor is what the A/A rounds say about identical arms.
type NoiseFloor struct {
	// Pairs is the number of A/A pairs (aa and base in one block).
	Pairs int `json:"pairs"`
	// Measured is false with fewer than two A/A pairs; Floor is then 0.
	Measured bool `json:"measured"`
	// Ratio is exp(mean log(aa/base p50)); Floor is the upper bound, at
	// NoiseFloorConfidence, of |log ratio| expressed as a relative shift.
	Ratio float64 `json:"ratio"`
	Floor float64 `json:"floor"`
}

// RoundSummary is one round's figures, for the report.
type RoundSummary struct {
	Arm     string        `json:"arm"`
	Index   int           `json:"index"`
	Block   int           `json:"block"`
	Order   int           `json:"order"`
	Count   int64         `json:"count"`
	P50     time.Duration `json:"p50_ns"`
	P99     time.Duration `json:"p99_ns"`
	Max     time.Duration `json:"max_ns"`
	Valid   bool          `json:"valid"`
	Invalid []string      `json:"invalid,omitempty"`
	// LagBounded: invalid only for the load generator's own lag, used
	// through the lag bracket (Result.LagBracket).
	LagBounded bool `json:"lag_bounded,omitempty"`
	// FloorOnly: an A/A round invalid only for the load generator's own
	// lag, left out of the noise floor (Round.FloorOnly); it feeds nothing
	// else, so it does not make the result invalid.
	FloorOnly bool `json:"floor_only,omitempty"`
	// Notes are caveats of a valid round, e.g. send lag that stalls of the
	// host explain (the round's latencies include those stalls).
	Notes []string `json:"notes,omitempty"`
}

// Result is the gate's verdict with its reasons and numbers.
type Result struct {
	Verdict Verdict  `json:"verdict"`
	Reasons []string `json:"reasons"`
	// Continue is true when the verdict is inconclusive and more rounds are
	// allowed; NextCheckpoint is then the number of pairs to run to.
	Continue       bool `json:"continue"`
	NextCheckpoint int  `json:"next_checkpoint,omitempty"`
	// Checkpoint is the 1-based checkpoint reached (0: before the first) of
	// Checkpoints; Pairs is the number of base/head pairs evaluated.
	Checkpoint  int `json:"checkpoint"`
	Checkpoints int `json:"checkpoints"`
	Pairs       int `json:"pairs"`
	// Alpha is the one-sided error rate each criterion spends at this
	// checkpoint (Config.CheckpointAlphas).
	Alpha       float64        `json:"alpha"`
	BaseSamples int64          `json:"base_samples"`
	HeadSamples int64          `json:"head_samples"`
	P99         P99Result      `json:"p99"`
	P50         P50Result      `json:"p50"`
	NoiseFloor  NoiseFloor     `json:"noise_floor"`
	Rounds      []RoundSummary `json:"rounds"`
	// Config is the effective config (defaults filled in).
	Config Config `json:"config"`
	// LagBracket is set when rounds invalid only for the load generator's
	// own lag took part (Evaluate).
	LagBracket *LagBracket `json:"lag_bracket,omitempty"`
}

// LagBracket is the gate evaluated at both ends of the load generator's
// lag in the rounds that had too much of it: with the lag counted (as
// measured: it can only raise a latency) and with it taken out (latency
// from the actual send), in the direction that favours failing (head with
// the lag, base and A/A without) and passing (head without, base and A/A
// with). The result's verdict stands only when both ends agree with it.
type LagBracket struct {
	Rounds      int     `json:"rounds"`
	FailLeaning Verdict `json:"fail_leaning"`
	PassLeaning Verdict `json:"pass_leaning"`
	Agree       bool    `json:"agree"`
}

// ShouldContinue reports whether the runner should run more rounds, and up
// to how many base/head pairs, before calling Evaluate again.
func ShouldContinue(r Result) (bool, int) { return r.Continue, r.NextCheckpoint }

type block struct {
	base, head, aa *Round
	baseD, headD   dist
	aaD            dist
}

// Evaluate decides the gate from the rounds run so far. Call it at the
// checkpoints of cfg (Config.Checkpoints); alpha is split over exactly those.
//
// Rounds invalid only for the load generator's own lag (LagBounded, with
// LagFree) do not make the result invalid by themselves: the gate is
// evaluated with their latencies as measured (the lag included), and at
// both ends of the bracket the lag spans (LagBracket). When the verdicts
// agree, the lag cannot have decided it and it stands; otherwise the
// result is invalid. Any other invalid round makes the result invalid.
func Evaluate(cfg Config, rounds []Round) Result {
	lagged := map[int]bool{} // orders of the bracketed rounds
	for i := range rounds {
		if rounds[i].bracketed() {
			lagged[rounds[i].Order] = true
		}
	}
	n := len(lagged)
	if n == 0 {
		return evaluate(cfg, rounds)
	}
	// lagFree picks, per arm, the lag-free end of a bracketed round.
	view := func(lagFree func(arm string) bool) []Round {
		out := slices.Clone(rounds)
		for i := range out {
			if out[i].bracketed() {
				out[i].Valid = true
				if lagFree(out[i].Arm) {
					out[i].Hist = out[i].LagFree
				}
			}
		}
		return out
	}
	res := evaluate(cfg, view(func(string) bool { return false }))
	failing := evaluate(cfg, view(func(arm string) bool { return arm != ArmHead }))
	passing := evaluate(cfg, view(func(arm string) bool { return arm == ArmHead }))
	lb := &LagBracket{Rounds: n, FailLeaning: failing.Verdict, PassLeaning: passing.Verdict,
		Agree: failing.Verdict == passing.Verdict && res.Verdict == failing.Verdict}
	res.LagBracket = lb
	for i := range res.Rounds {
		if lagged[res.Rounds[i].Order] {
			res.Rounds[i].Valid, res.Rounds[i].LagBounded = false, true
		}
	}
	if lb.Agree && res.Verdict == Invalid {
		return res // invalid for another reason: the lag is not what decided
	}
	if lb.Agree {
		res.Reasons = append(res.Reasons, fmt.Sprintf("%d rounds had more load-generator lag than the rule allows (and no other fault): the verdict is %s both with their lag counted and with it taken out, so the lag did not decide it", n, res.Verdict))
		return res
	}
	why := fmt.Sprintf("the load generator's own lag in %d rounds could decide the verdict: %s with it counted against the head (and taken out of the base), %s the other way round, %s as measured",
		n, failing.Verdict, passing.Verdict, res.Verdict)
	// More rounds may settle it (the lagged rounds weigh less); at the
	// last checkpoint the run is invalid.
	if failing.Verdict != Invalid && passing.Verdict != Invalid && res.Verdict != Invalid {
		c := res.Config
		for _, cp := range c.Checkpoints() {
			if cp > res.Pairs {
				res.Verdict, res.Continue, res.NextCheckpoint = Inconclusive, true, cp
				res.Reasons = append([]string{why + fmt.Sprintf("; run more rounds: next checkpoint at %d pairs", cp)}, res.Reasons...)
				return res
			}
		}
	}
	res.Reasons = append([]string{why}, res.Reasons...)
	res.Verdict = Invalid
	res.Continue, res.NextCheckpoint = false, 0
	return res
}

func evaluate(cfg Config, rounds []Round) Result {
	var res Result
	if err := cfg.Validate(); err != nil {
		res.Config = cfg
		res.Verdict = Invalid
		res.Reasons = []string{err.Error()}
		return res
	}
	cfg = cfg.WithDefaults()
	res.Config = cfg
	cps := cfg.Checkpoints()
	res.Checkpoints = len(cps)

	// Structure and validity.
	var invalid, floorOut []string
	blocks := map[int]*block{}
	var ref *hdrhistogram.Histogram
	var headDs, baseDs []dist
	sorted := slices.Clone(rounds)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Order < sorted[j].Order })
	for i := range sorted {
		rd := &sorted[i]
		name := fmt.Sprintf("round %d (%s #%d, block %d)", rd.Order, rd.Arm, rd.Index, rd.Block)
		floorOnly := rd.FloorOnly()
		sum := RoundSummary{Arm: rd.Arm, Index: rd.Index, Block: rd.Block, Order: rd.Order, Valid: rd.Valid, Invalid: rd.Invalid, FloorOnly: floorOnly}
		if floorOnly {
			why := joinReasons(rd.Invalid)
			if why == "" {
				why = "the load generator's own lag"
			}
			floorOut = append(floorOut, fmt.Sprintf("%s: %s", name, why))
		} else if !rd.Valid {
			why := "marked invalid"
			if len(rd.Invalid) > 0 {
				why = joinReasons(rd.Invalid)
			}
			invalid = append(invalid, fmt.Sprintf("%s invalid: %s", name, why))
		}
		var d dist
		switch {
		case rd.Hist == nil || rd.Hist.TotalCount() == 0:
			invalid = append(invalid, name+": no samples")
		case ref != nil && !sameGeometry(ref, rd.Hist):
			invalid = append(invalid, name+": histogram geometry differs from the other rounds")
		default:
			if ref == nil {
				ref = rd.Hist
			}
			d = newDist(rd.Hist)
			sum.Count = d.total()
			sum.P50 = usDur(d.quantile(0.5))
			sum.P99 = usDur(d.quantile(cfg.Quantile))
			sum.Max = usDur(d.vals[len(d.vals)-1])
		}
		res.Rounds = append(res.Rounds, sum)
		b := blocks[rd.Block]
		if b == nil {
			b = &block{}
			blocks[rd.Block] = b
		}
		var slot **Round
		var slotD *dist
		switch rd.Arm {
		case ArmBase:
			slot, slotD = &b.base, &b.baseD
			baseDs = append(baseDs, d)
		case ArmHead:
			slot, slotD = &b.head, &b.headD
			headDs = append(headDs, d)
		case ArmAA:
			slot, slotD = &b.aa, &b.aaD
		default:
			invalid = append(invalid, fmt.Sprintf("%s: unknown arm %q (want %s, %s or %s)", name, rd.Arm, ArmBase, ArmHead, ArmAA))
			continue
		}
		if *slot != nil {
			invalid = append(invalid, fmt.Sprintf("%s: block %d already has a %s round", name, rd.Block, rd.Arm))
			continue
		}
		if floorOnly {
			continue // not in the floor (floorOut)
		}
		*slot, *slotD = rd, d
	}
	if len(invalid) > 0 {
		res.Verdict = Invalid
		res.Reasons = invalid
		return res
	}

	var pairs, aaPairs []*block
	var blockIDs []int
	for id := range blocks {
		blockIDs = append(blockIDs, id)
	}
	sort.Ints(blockIDs)
	for _, id := range blockIDs {
		b := blocks[id]
		if b.base != nil && b.head != nil {
			pairs = append(pairs, b)
		}
		if b.base != nil && b.aa != nil {
			aaPairs = append(aaPairs, b)
		}
	}
	res.Pairs = len(pairs)
	res.Alpha = cfg.CheckpointAlpha(res.Pairs)
	conf := 1 - res.Alpha
	for _, c := range cps {
		if res.Pairs >= c {
			res.Checkpoint++
		}
	}
	for _, c := range cps {
		if c > res.Pairs {
			res.NextCheckpoint = c
			break
		}
	}
	for _, d := range headDs {
		res.HeadSamples += d.total()
	}
	for _, d := range baseDs {
		res.BaseSamples += d.total()
	}

	res.NoiseFloor = noiseFloor(aaPairs)
	if len(floorOut) > 0 {
		res.Reasons = append(res.Reasons, fmt.Sprintf("%d A/A round(s) left out of the noise floor, invalid only for the load generator's own lag (they feed nothing else): %s",
			len(floorOut), strings.Join(floorOut, "; ")))
	}
	var headPool, basePool dist
	if len(headDs) > 0 {
		headPool = pooled(headDs)
	}
	if len(baseDs) > 0 {
		basePool = pooled(baseDs)
	}
	res.P99 = evalP99(cfg, headDs, headPool, basePool, conf, res.Alpha)
	res.P50 = evalP50(cfg, pairs, headPool, basePool, res.NoiseFloor, conf, res.Alpha)

	// Preconditions: a verdict needs the first checkpoint and enough samples.
	var short []string
	if res.Pairs < cfg.MinRounds {
		short = append(short, fmt.Sprintf("only %d of the %d base/head pairs needed for the first checkpoint", res.Pairs, cfg.MinRounds))
	}
	if res.HeadSamples < cfg.MinSamplesPerArm {
		short = append(short, fmt.Sprintf("head has %d samples, below min_samples_per_arm %d", res.HeadSamples, cfg.MinSamplesPerArm))
	}
	if res.BaseSamples < cfg.MinSamplesPerArm {
		short = append(short, fmt.Sprintf("base has %d samples, below min_samples_per_arm %d", res.BaseSamples, cfg.MinSamplesPerArm))
	}
	if !res.NoiseFloor.Measured && cfg.AARounds > 0 && res.Pairs >= cfg.MinRounds {
		res.Reasons = append(res.Reasons, fmt.Sprintf("noise floor not measured (%d A/A pairs, need 2): p50 tolerance is the rule's %.1f%%", res.NoiseFloor.Pairs, 100*cfg.P50Tolerance))
	}

	if res.NoiseFloor.Measured && res.NoiseFloor.Floor > 2*cfg.P50Tolerance {
		res.Reasons = append(res.Reasons, fmt.Sprintf("the host is noisy: identical builds differ by up to %s in p50 (A/A), so p50 changes below that cannot be seen", Pct(res.NoiseFloor.Floor)))
	}
	res.Reasons = append(res.Reasons, p99Reason(res.P99), p50Reason(res.P50, res.NoiseFloor))
	switch {
	case len(short) > 0:
		res.Verdict = Inconclusive
		res.Reasons = append(short, res.Reasons...)
	case res.P99.Verdict == Fail || res.P50.Verdict == Fail:
		res.Verdict = Fail
	case res.P99.Verdict == Pass && res.P50.Verdict == Pass:
		res.Verdict = Pass
	default:
		res.Verdict = Inconclusive
	}
	if res.Verdict == Inconclusive {
		if res.Pairs < cfg.MaxRounds {
			res.Continue = true
			res.Reasons = append(res.Reasons, fmt.Sprintf("run more rounds: next checkpoint at %d pairs", res.NextCheckpoint))
		} else {
			res.Reasons = append(res.Reasons, fmt.Sprintf("reached max_rounds (%d pairs) without a decision", cfg.MaxRounds))
		}
	}
	if !res.Continue {
		res.NextCheckpoint = 0
	}
	return res
}

// noiseFloor bounds the systematic p50 shift between identical arms: the
// upper NoiseFloorConfidence t-bound of |mean log(aa/base)|. A per-round
// spread is already in the paired test's variance; what the tolerance must
// absorb is an offset between two deployments of the same build (ports,
// placement, cache state), which no amount of pairing removes.
func noiseFloor(aa []*block) NoiseFloor {
	nf := NoiseFloor{Pairs: len(aa)}
	if len(aa) < 2 {
		return nf
	}
	ds := make([]float64, len(aa))
	for i, b := range aa {
		ds[i] = logRatio(b.aaD.quantile(0.5), b.baseD.quantile(0.5))
	}
	m, sd := meanSD(ds)
	t := studentTQuantile(NoiseFloorConfidence, float64(len(ds)-1))
	nf.Measured = true
	nf.Ratio = math.Exp(m)
	nf.Floor = math.Expm1(math.Abs(m) + t*sd/math.Sqrt(float64(len(ds))))
	return nf
}

func logRatio(a, b int64) float64 { return math.Log(float64(max(a, 1)) / float64(max(b, 1))) }

func evalP99(cfg Config, headDs []dist, head, base dist, conf, alpha float64) P99Result {
	p := P99Result{Verdict: Inconclusive, Quantile: cfg.Quantile, SLO: cfg.SLO, Confidence: conf}
	if len(headDs) == 0 {
		return p
	}
	p.Head = usDur(head.quantile(cfg.Quantile))
	p.Base = usDur(base.quantile(cfg.Quantile))
	n := head.total()
	p.LoRank, p.HiRank = orderStatRanks(n, cfg.Quantile, alpha)
	if p.LoRank >= 1 {
		p.OrderStat.Lower, p.OrderStat.HasLower = usDur(head.atRank(p.LoRank)), true
	}
	if p.HiRank <= n {
		p.OrderStat.Upper, p.OrderStat.HasUpper = usDur(head.atRank(p.HiRank)), true
	}
	if len(headDs) >= 2 {
		lq := make([]float64, len(headDs))
		for i, d := range headDs {
			lq[i] = math.Log(float64(max(d.quantile(cfg.Quantile), 1)))
		}
		_, p.RoundSpread = meanSD(lq)
		rs := newResampler(headDs, cfg.Quantile)
		rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x7a11_6a7e))
		// Bootstrap-t on the log scale: the bootstrap gives the standard
		// error of log p99 over rounds; with R rounds the bound is
		// log p99 ± t(R-1)·sqrt(R/(R-1))·SE. Plain percentile intervals
		// from 6–14 rounds are too narrow at these tail levels: in
		// simulation they passed gates whose true p99 sat exactly on the
		// SLO twice as often as alpha allows (STATISTICS.md).
		logs := make([]float64, cfg.Bootstrap)
		w := make([]int, len(headDs))
		for b := range logs {
			clear(w)
			for range w {
				w[rng.IntN(len(w))]++
			}
			logs[b] = math.Log(float64(max(rs.quantileUS(w), 1)))
		}
		_, se := meanSD(logs)
		r := float64(len(headDs))
		se *= math.Sqrt(r / (r - 1))
		h := studentTQuantile(1-alpha, r-1) * se
		est := math.Log(float64(max(head.quantile(cfg.Quantile), 1)))
		p.BootstrapSE = se
		p.Bootstrap = Interval{
			Lower: time.Duration(math.Exp(est-h) * 1e3), HasLower: true,
			Upper: time.Duration(math.Exp(est+h) * 1e3), HasUpper: true,
		}
	}
	// The wider of the two: a side is known only if both methods give it.
	p.Bound = Interval{
		Lower:    min(p.OrderStat.Lower, p.Bootstrap.Lower),
		HasLower: p.OrderStat.HasLower && p.Bootstrap.HasLower,
		Upper:    max(p.OrderStat.Upper, p.Bootstrap.Upper),
		HasUpper: p.OrderStat.HasUpper && p.Bootstrap.HasUpper,
	}
	switch {
	case p.Bound.HasLower && p.Bound.Lower > cfg.SLO:
		p.Verdict = Fail
	case p.Bound.HasUpper && p.Bound.Upper < cfg.SLO:
		p.Verdict = Pass
	}
	return p
}

// evalP50 runs the paired test. Why a t-test on log ratios: each round's p50
// comes from thousands of requests, so it is close to normal, and round
// effects on a service's speed are multiplicative, so the log ratio is close
// to normal too; the exact sign-flip or Wilcoxon tests cannot go below
// p = 2^-n, which at 6 pairs (1/64) is above the per-checkpoint alpha and
// could never fail a gate early. An outlier pair (one round hit by a GC
// storm) inflates the variance and makes the t-test more conservative, not
// less: it can cost a decision, not a false block (see STATISTICS.md).
func evalP50(cfg Config, pairs []*block, head, base dist, nf NoiseFloor, conf, alpha float64) P50Result {
	p := P50Result{
		Verdict:       Inconclusive,
		Test:          "one-sided paired t-test on log(head p50 / base p50) per ABBA pair",
		Pairs:         len(pairs),
		RuleTolerance: cfg.P50Tolerance,
		Tolerance:     cfg.P50Tolerance,
		Confidence:    conf,
	}
	if nf.Measured && nf.Floor > p.Tolerance {
		p.Tolerance = nf.Floor
	}
	p.Base = usDur(base.quantile(0.5))
	p.Head = usDur(head.quantile(0.5))
	ds := make([]float64, len(pairs))
	for i, b := range pairs {
		ds[i] = logRatio(b.headD.quantile(0.5), b.baseD.quantile(0.5))
		p.PairRatios = append(p.PairRatios, math.Exp(ds[i]))
	}
	if len(ds) == 0 {
		return p
	}
	m, sd := meanSD(ds)
	p.Ratio = math.Exp(m)
	if len(ds) < 2 {
		return p
	}
	n := float64(len(ds))
	p.DF = len(ds) - 1
	delta := math.Log1p(p.Tolerance)
	se := sd / math.Sqrt(n)
	tc := studentTQuantile(1-alpha, float64(p.DF))
	p.Lower, p.Upper = math.Exp(m-tc*se), math.Exp(m+tc*se)
	if se > 0 {
		p.T = (m - delta) / se
		p.PValue = 1 - studentTCDF(p.T, float64(p.DF))
	} else {
		// Identical ratios in every pair: no variance, the sign decides
		// (T stays 0: JSON has no infinities).
		p.PValue = 1
		if m > delta {
			p.PValue = 0
		}
	}
	switch {
	case m-tc*se > delta:
		p.Verdict = Fail
	case m+tc*se < delta && nf.Measured && nf.Floor > MaxNoiseFloor && m+tc*se >= math.Log1p(p.RuleTolerance):
		// The tolerance grew with the floor until it would excuse any
		// regression: no pass can rest on it (a fail still can). A head
		// within the rule's own tolerance does not rest on it and passes.
		p.FloorTooHigh = true
	case m+tc*se < delta:
		p.Verdict = Pass
	}
	return p
}

// MaxNoiseFloor is the largest A/A noise floor a p50 pass may rest on
// (0.5: identical builds 50 % apart in p50). The p50 tolerance is
// max(the rule's, the floor); past this the base itself is unstable (for
// example collapsing into timeouts in some rounds and not in others) and
// the tolerance would excuse any regression worth gating. A head whose
// paired bound is within the rule's tolerance still passes: that pass
// does not use the floor, and the pairs' own spread, the unstable base's
// included, is already in the bound.
const MaxNoiseFloor = 0.5

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }

func boundStr(d time.Duration, ok bool) string {
	if !ok {
		return "none (too few samples)"
	}
	return ms(d)
}

func p99Reason(p P99Result) string {
	q := fmt.Sprintf("p%g", 100*p.Quantile)
	iv := fmt.Sprintf("%s %s, one-sided %.2f%% bounds [%s, %s] (order-statistic [%s, %s], round bootstrap [%s, %s])",
		q, ms(p.Head), 100*p.Confidence, boundStr(p.Bound.Lower, p.Bound.HasLower), boundStr(p.Bound.Upper, p.Bound.HasUpper),
		boundStr(p.OrderStat.Lower, p.OrderStat.HasLower), boundStr(p.OrderStat.Upper, p.OrderStat.HasUpper),
		boundStr(p.Bootstrap.Lower, p.Bootstrap.HasLower), boundStr(p.Bootstrap.Upper, p.Bootstrap.HasUpper))
	switch p.Verdict {
	case Fail:
		return fmt.Sprintf("%s: fail: %s; the lower bound is above the SLO %s", q, iv, ms(p.SLO))
	case Pass:
		return fmt.Sprintf("%s: pass: %s; the upper bound is below the SLO %s", q, iv, ms(p.SLO))
	default:
		return fmt.Sprintf("%s: inconclusive: %s; the interval contains the SLO %s", q, iv, ms(p.SLO))
	}
}

// Pct formats a fraction as a percentage with one decimal, or with three
// significant digits from 1,000 % up: an unstable base's noise floor (a
// t bound over two A/A pairs of a collapsing service) can reach 3e+10 %.
func Pct(f float64) string {
	if math.Abs(100*f) >= 1000 {
		return fmt.Sprintf("%.3g%%", 100*f)
	}
	return fmt.Sprintf("%.1f%%", 100*f)
}

func p50Reason(p P50Result, nf NoiseFloor) string {
	tol := "tolerance " + Pct(p.Tolerance)
	if nf.Measured && p.Tolerance > p.RuleTolerance {
		tol += fmt.Sprintf(" (A/A noise floor; the rule says %.1f%%)", 100*p.RuleTolerance)
	}
	if p.DF == 0 {
		return fmt.Sprintf("p50: inconclusive: %d base/head pairs, the paired test needs at least 2", p.Pairs)
	}
	iv := fmt.Sprintf("head/base %+.1f%% over %d pairs, one-sided %.2f%% bounds [%+.1f%%, %+.1f%%], %s, p=%.3g for a regression beyond it",
		100*(p.Ratio-1), p.Pairs, 100*p.Confidence, 100*(p.Lower-1), 100*(p.Upper-1), tol, p.PValue)
	switch {
	case p.Verdict == Fail:
		return "p50: fail: regression: " + iv
	case p.Verdict == Pass && nf.Measured && nf.Floor > MaxNoiseFloor:
		return fmt.Sprintf("p50: pass: within the rule's own %.1f%%, so it does not rest on the A/A noise floor (%s, an unstable base): ", 100*p.RuleTolerance, Pct(nf.Floor)) + iv
	case p.Verdict == Pass:
		return "p50: pass: no regression beyond the tolerance: " + iv
	case p.FloorTooHigh:
		return fmt.Sprintf("p50: inconclusive: within the tolerance, but the A/A noise floor (%s) is over the %.0f%% a pass may rest on: the base is unstable: ", Pct(nf.Floor), 100*MaxNoiseFloor) + iv
	default:
		return "p50: inconclusive: " + iv
	}
}
