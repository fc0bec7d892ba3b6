package gate_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"testing"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/tailgate-ci/tailgate/internal/experiment"
	"github.com/tailgate-ci/tailgate/internal/gate"
)

// model is a synthetic latency process: a log-normal body, an i.i.d. heavy
// tail, and slow episodes (GC cycles, page-fault storms) that hit a
// contiguous run of requests, so slow requests cluster in time and the
// per-round p99 varies far more than i.i.d. sampling would say. The body
// speed also varies per round (independent effect) and drifts over time
// (AR(1), shared by neighbouring rounds).
type model struct {
	Median, Sigma     float64 // body: median µs and log-sd
	RoundSD           float64 // per-round log speed effect
	DriftSD, DriftRho float64 // AR(1) drift of the log speed per round step
	TailP             float64 // i.i.d. tail: probability per request
	TailMedian        float64 // ... extra latency median µs
	TailSigma         float64
	Episodes          []episodes
	Scale             float64 // multiplies every latency
}

// episodes is a class of slow episodes: Rate per round, each hits a
// contiguous U(0, Frac) share of the round's requests, adding a log-normal
// extra latency (median µs, log-sd). The count per round is Poisson, or
// Rate itself (stochastically rounded) when Paced: Go's GC pacer starts a
// cycle per fixed amount of allocation, so at a constant request rate GC
// cycles are nearly periodic, while storms (page-fault bursts, noisy
// neighbours) arrive at random.
type episodes struct {
	Rate, Frac, Median, Sigma float64
	Paced                     bool
}

// bidderLike is the default model, shaped like a Go service with GC: a
// 3 ms body; frequent short GC-like episodes (20 per round, each up to 0.1 %
// of the round's requests); rare long storms (page-fault or neighbour
// noise: one round in five, up to 1 % of the round); an i.i.d. tail. The
// per-round p50 and p99 spread it gives is logged by TestSimModelShape and
// recorded in STATISTICS.md.
var bidderLike = model{
	Median: 3000, Sigma: 0.3,
	RoundSD: 0.02, DriftSD: 0.01, DriftRho: 0.9,
	TailP: 0.004, TailMedian: 8000, TailSigma: 0.6,
	Episodes: []episodes{
		{Rate: 20, Frac: 0.001, Median: 10000, Sigma: 0.5, Paced: true},
		{Rate: 0.15, Frac: 0.005, Median: 15000, Sigma: 0.5},
	},
	Scale: 1,
}

func poisson(rng *rand.Rand, mean float64) int {
	l, k, p := math.Exp(-mean), 0, 1.0
	for {
		p *= rng.Float64()
		if p < l {
			return k
		}
		k++
	}
}

// round records n requests of one round into h; drift is the round's log
// speed offset from the time-correlated drift.
func (m model) round(rng *rand.Rand, h *hdrhistogram.Histogram, n int, drift float64) {
	h.Reset()
	speed := m.Scale * math.Exp(drift+m.RoundSD*rng.NormFloat64())
	// extra[j] is request j's share of slow episodes.
	buf := extraPool.Get().(*[]float64)
	if cap(*buf) < n {
		*buf = make([]float64, n)
	}
	extra := (*buf)[:n]
	clear(extra)
	for _, c := range m.Episodes {
		k := poisson(rng, c.Rate)
		if c.Paced {
			k = int(c.Rate + rng.Float64())
		}
		for ; k > 0; k-- {
			// Stochastic rounding keeps the expected length exact at any n.
			l := int(rng.Float64()*c.Frac*float64(n) + rng.Float64())
			s := rng.IntN(n)
			for j := s; j < min(s+l, n); j++ {
				extra[j] += c.Median * math.Exp(c.Sigma*rng.NormFloat64())
			}
		}
	}
	tailBits := uint64(m.TailP * (1 << 53))
	for j := 0; j < n; j++ {
		// One 64-bit draw: 16 bits pick the body's normal quantile, the
		// other 48 decide the i.i.d. tail.
		u := rng.Uint64()
		x := m.Median*math.Exp(m.Sigma*normTab[u>>48]) + extra[j]
		if (u&(1<<48-1))<<5 < tailBits {
			x += m.TailMedian * math.Exp(m.TailSigma*rng.NormFloat64())
		}
		v := int64(x * speed)
		if v < 1 {
			v = 1
		}
		_ = h.RecordValue(v)
	}
	extraPool.Put(buf)
}

var extraPool = sync.Pool{New: func() any { return new([]float64) }}

// normTab holds standard normal quantiles at the midpoints of 2^16 equal
// probability bins: a table lookup instead of NormFloat64 for the body,
// which is most of the simulation's samples.
var normTab = func() *[1 << 16]float64 {
	var t [1 << 16]float64
	for i := range t {
		u := (float64(i) + 0.5) / (1 << 16)
		t[i] = math.Sqrt2 * math.Erfinv(2*u-1)
	}
	return &t
}()

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(1, 60_000_000, 3) }

// populationQuantile estimates the model's q-quantile over many rounds.
func populationQuantile(m model, q float64, rounds, n int, seed uint64) float64 {
	rng := rand.New(rand.NewPCG(seed, 99))
	pool, h := newHist(), newHist()
	drift := 0.0
	for r := 0; r < rounds; r++ {
		drift = m.DriftRho*drift + m.DriftSD*rng.NormFloat64()
		m.round(rng, h, n, drift)
		pool.Merge(h)
	}
	return float64(pool.ValueAtQuantile(100 * q))
}

// scaled returns m scaled so that its population q-quantile is target µs.
func scaled(m model, q, target float64, n int) model {
	m.Scale = 1
	m.Scale = target / populationQuantile(m, q, 400, n, 7)
	return m
}

// scenario is a simulated gate: base and head models.
type scenario struct {
	name       string
	base, head model
}

type outcome struct {
	verdict      gate.Verdict
	p99, p50     gate.Verdict
	pairs        int
	noiseFloor   float64
	reachedFinal bool
}

// simulateGate runs one gate the way the runner will: the real schedule,
// evaluation at each checkpoint, stop at the first decisive verdict.
func simulateGate(cfg gate.Config, sc scenario, n int, seed uint64, hists []*hdrhistogram.Histogram) outcome {
	rng := rand.New(rand.NewPCG(seed, 1))
	slots, err := experiment.GateSchedule(cfg, int64(seed))
	if err != nil {
		panic(err)
	}
	c := cfg.WithDefaults()
	cps := c.Checkpoints()
	var rounds []gate.Round
	drift := 0.0
	next := 0
	for i, s := range slots {
		drift = sc.base.DriftRho*drift + sc.base.DriftSD*rng.NormFloat64()
		m := sc.base
		if s.Arm == gate.ArmHead {
			m = sc.head
		}
		h := hists[i]
		m.round(rng, h, n, drift)
		rounds = append(rounds, gate.Round{Arm: s.Arm, Index: s.Index, Block: s.Block, Order: s.Order, Hist: h, Valid: true})
		// A checkpoint is reached when the last slot of block cps[next]-1 ran.
		if i+1 < len(slots) && slots[i+1].Block == s.Block {
			continue
		}
		if next < len(cps) && s.Block+1 == cps[next] {
			next++
			r := gate.Evaluate(cfg, rounds)
			if !r.Continue {
				return outcome{verdict: r.Verdict, p99: r.P99.Verdict, p50: r.P50.Verdict, pairs: r.Pairs,
					noiseFloor: r.NoiseFloor.Floor, reachedFinal: r.Pairs >= c.MaxRounds}
			}
		}
	}
	panic("schedule ended before the last checkpoint")
}

type rates struct {
	gates                             int
	fail, pass, inconclusive, invalid int
	p99Fail, p50Fail                  int
	pairsSum                          int
	atCheckpoint                      map[int]int
	noiseFloors                       []float64
}

func (r rates) String() string {
	pct := func(k int) string { return fmt.Sprintf("%.1f%%", 100*float64(k)/float64(r.gates)) }
	var cps []int
	for k := range r.atCheckpoint {
		cps = append(cps, k)
	}
	sort.Ints(cps)
	stop := ""
	for _, k := range cps {
		stop += fmt.Sprintf(" %d:%s", k, pct(r.atCheckpoint[k]))
	}
	sort.Float64s(r.noiseFloors)
	return fmt.Sprintf("gates=%d fail=%s (p99 %s, p50 %s) pass=%s inconclusive=%s invalid=%s mean pairs=%.1f stop at pairs{%s } noise floor median=%.2f%%",
		r.gates, pct(r.fail), pct(r.p99Fail), pct(r.p50Fail), pct(r.pass), pct(r.inconclusive), pct(r.invalid),
		float64(r.pairsSum)/float64(r.gates), stop, 100*r.noiseFloors[len(r.noiseFloors)/2])
}

func runGates(cfg gate.Config, sc scenario, gates, n int, seed uint64) rates {
	c := cfg.WithDefaults()
	slotsMax := 2*c.MaxRounds + c.AARounds
	workers := runtime.GOMAXPROCS(0)
	out := make([]outcome, gates)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			hists := make([]*hdrhistogram.Histogram, slotsMax)
			for i := range hists {
				hists[i] = newHist()
			}
			for g := w; g < gates; g += workers {
				out[g] = simulateGate(cfg, sc, n, seed*1_000_003+uint64(g), hists)
			}
		}(w)
	}
	wg.Wait()
	r := rates{gates: gates, atCheckpoint: map[int]int{}}
	for _, o := range out {
		switch o.verdict {
		case gate.Fail:
			r.fail++
		case gate.Pass:
			r.pass++
		case gate.Inconclusive:
			r.inconclusive++
		default:
			r.invalid++
		}
		if o.verdict == gate.Fail && o.p99 == gate.Fail {
			r.p99Fail++
		}
		if o.verdict == gate.Fail && o.p50 == gate.Fail {
			r.p50Fail++
		}
		r.pairsSum += o.pairs
		r.atCheckpoint[o.pairs]++
		r.noiseFloors = append(r.noiseFloors, o.noiseFloor)
	}
	return r
}

// simSize returns the number of simulated gates and requests per round. The
// default keeps the package's tests near a minute on 2 shared cores;
// TAILGATE_SIM_FULL=1 uses the defaults' real round size (1,500 req/s × 8 s).
func simSize(t testing.TB) (gates, perRound int) {
	gates, perRound = 1000, 2000
	if testing.Short() {
		gates = 200
	}
	if os.Getenv("TAILGATE_SIM_FULL") == "1" {
		perRound = 12000
	}
	if s := os.Getenv("TAILGATE_SIM_GATES"); s != "" {
		g, err := strconv.Atoi(s)
		if err != nil || g < 1 {
			t.Fatalf("TAILGATE_SIM_GATES=%q: want a positive integer", s)
		}
		gates = g
	}
	return gates, perRound
}

// The acceptance criteria of issue 7, on the defaults' rounds and
// checkpoints; the measured rates are recorded in STATISTICS.md.
func TestSimAcceptance(t *testing.T) {
	gates, n := simSize(t)
	cfg := gate.Config{}                               // the defaults
	if s := os.Getenv("TAILGATE_SIM_ALPHA"); s != "" { // to compare alphas
		a, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("TAILGATE_SIM_ALPHA=%q: %v", s, err)
		}
		cfg.Alpha = a
	}
	slo := float64(gate.DefaultSLO.Microseconds())

	aa := scaled(bidderLike, 0.99, 0.8*slo, n)
	p50Base := scaled(bidderLike, 0.99, 0.5*slo, n)
	p50Head := p50Base
	p50Head.Scale *= 1.20
	over := scaled(bidderLike, 0.99, 1.2*slo, n)

	tests := []struct {
		sc    scenario
		check func(r rates) error
	}{
		{scenario{"A/A (p99 at 80% of the SLO)", aa, aa}, func(r rates) error {
			if r.fail*100 > r.gates { // ≤ 1 %
				return fmt.Errorf("false blocks %d/%d > 1%%", r.fail, r.gates)
			}
			return nil
		}},
		{scenario{"p50 +20% (p99 at 50% of the SLO)", p50Base, p50Head}, func(r rates) error {
			if r.p50Fail*100 < 95*r.gates {
				return fmt.Errorf("p50 detection %d/%d < 95%%", r.p50Fail, r.gates)
			}
			return nil
		}},
		{scenario{"p99 at 120% of the SLO, head = base", over, over}, func(r rates) error {
			if r.p99Fail*100 < 95*r.gates {
				return fmt.Errorf("p99 detection %d/%d < 95%%", r.p99Fail, r.gates)
			}
			return nil
		}},
	}
	// Boundary cases: the truth sits exactly on the decision threshold, so
	// a fail there is the test's type I error; it must stay near Alpha.
	atSLO := scaled(bidderLike, 0.99, slo, n)
	noisy := bidderLike
	noisy.RoundSD = 0.05
	noisy.Episodes = []episodes{bidderLike.Episodes[0], {Rate: 1, Frac: 0.01, Median: 15000, Sigma: 0.5}}
	noisy = scaled(noisy, 0.99, 0.8*slo, n)
	// clustered: storms hit more often and for longer (per-round p99 log-sd
	// ≈ 0.2 instead of 0.15): a host where the defaults' rounds are not
	// enough for the p99 power; reported, not held to 95 %.
	clustered := bidderLike
	clustered.Episodes = []episodes{bidderLike.Episodes[0], {Rate: 0.2, Frac: 0.01, Median: 15000, Sigma: 0.5}}
	clusteredOver := scaled(clustered, 0.99, 1.2*slo, n)
	tolHead := p50Base
	tolHead.Scale *= 1 + gate.DefaultP50Tolerance
	maxBoundary := func(what string, k func(rates) int) func(rates) error {
		return func(r rates) error {
			// Alpha plus three binomial standard errors.
			a := gate.DefaultAlpha
			if lim := a + 3*math.Sqrt(a*(1-a)/float64(r.gates)); float64(k(r)) > lim*float64(r.gates) {
				return fmt.Errorf("%s fails %d/%d > %.1f%%", what, k(r), r.gates, 100*lim)
			}
			return nil
		}
	}
	tests = append(tests, []struct {
		sc    scenario
		check func(r rates) error
	}{
		{scenario{"A/A, noisy host (5% round effects, 5x storms)", noisy, noisy}, func(r rates) error {
			if r.fail*100 > r.gates {
				return fmt.Errorf("false blocks %d/%d > 1%%", r.fail, r.gates)
			}
			return nil
		}},
		{scenario{"p99 at 120% of the SLO on a clustered host (sensitivity)", clusteredOver, clusteredOver}, func(r rates) error {
			return nil // reported in STATISTICS.md
		}},
		{scenario{"boundary: p99 exactly at the SLO", atSLO, atSLO}, maxBoundary("p99", func(r rates) int { return r.p99Fail })},
		{scenario{"boundary: p50 exactly +5% (the tolerance)", p50Base, tolHead}, maxBoundary("p50", func(r rates) int { return r.p50Fail })},
	}...)
	for i, tt := range tests {
		t.Run(tt.sc.name, func(t *testing.T) {
			g := gates
			if i >= 3 { // the extra scenarios: a quarter of the gates
				g = max(gates/4, 50)
			}
			r := runGates(cfg, tt.sc, g, n, uint64(100+i))
			t.Logf("%s: %v", tt.sc.name, r)
			if err := tt.check(r); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestSimModelShape logs the spread of per-round quantiles of the model, the
// figure that decides how many rounds the gate needs, and checks the model
// is as clustered as intended (a slow-event share that varies per round).
func TestSimModelShape(t *testing.T) {
	_, n := simSize(t)
	m := scaled(bidderLike, 0.99, 20000, n)
	rng := rand.New(rand.NewPCG(3, 4))
	h := newHist()
	var p50s, p99s []float64
	for r := 0; r < 300; r++ {
		m.round(rng, h, n, 0)
		p50s = append(p50s, float64(h.ValueAtQuantile(50)))
		p99s = append(p99s, float64(h.ValueAtQuantile(99)))
	}
	cv := func(xs []float64) float64 {
		var s, ss float64
		for _, x := range xs {
			s += x
		}
		mean := s / float64(len(xs))
		for _, x := range xs {
			ss += (x - mean) * (x - mean)
		}
		return math.Sqrt(ss/float64(len(xs)-1)) / mean
	}
	iid := math.Sqrt(0.99*0.01/float64(n)) / 0.01 // rough CV of an i.i.d. p99 share
	t.Logf("%d requests/round: per-round p50 CV %.1f%%, p99 CV %.1f%%, p50/p99 = %.0f/%.0f µs",
		n, 100*cv(p50s), 100*cv(p99s), populationQuantile(m, 0.5, 100, n, 5), populationQuantile(m, 0.99, 100, n, 5))
	if cv(p99s) < 0.05 {
		t.Errorf("per-round p99 CV %.1f%%: the model lost its clustering (i.i.d. share CV %.1f%%)", 100*cv(p99s), 100*iid)
	}
}
