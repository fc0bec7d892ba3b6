package report

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/tailgate-ci/tailgate/internal/experiment"
	"github.com/tailgate-ci/tailgate/internal/gate"
	"github.com/tailgate-ci/tailgate/internal/latency"
)

// TableQuantiles are the quantiles of the base-vs-head table.
var TableQuantiles = []float64{0.5, 0.9, 0.99, 0.999}

// CIConfidence is the two-sided confidence of the table's intervals.
const CIConfidence = 0.95

// SpectrumPercentiles are the x positions of the spectrum plots and the
// mermaid chart: evenly spaced on the log axis 1/(1-p).
var SpectrumPercentiles = []float64{50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99}

// arm is the pooled data of one arm or variant.
type arm struct {
	Name    string
	Rounds  int // valid rounds with a histogram
	Invalid int
	// LagBounded counts the pooled rounds that were over the max-lag rule
	// by the load generator's own lag alone (gate lag bracket).
	LagBounded int
	Requests   int64
	Errors     int64
	Hist       *hdrhistogram.Histogram // pooled valid rounds; nil when none
}

// quantileCI is a quantile with its order-statistic interval.
type quantileCI struct {
	Q      float64
	Value  time.Duration
	Lo, Hi time.Duration
	OK     bool // the interval exists (enough samples)
}

func (a *arm) quantile(q float64) quantileCI {
	r := quantileCI{Q: q}
	if a.Hist == nil || a.Hist.TotalCount() == 0 {
		return r
	}
	r.Value = gate.Quantile(a.Hist, q)
	b, err := latency.QuantileBounds(a.Hist, q, 1-(1-CIConfidence)/2)
	if err == nil {
		r.Lo, r.Hi, r.OK = b.Lo, b.Hi, true
	}
	return r
}

// rate returns the achieved request rate: the mean over valid rounds of
// requests/round duration, with a Student-t interval over rounds. ok is
// false without a round duration or with fewer than two rounds.
func (a *arm) rate(doc *experiment.Document, dur time.Duration) (mean, lo, hi float64, ok bool) {
	if dur <= 0 || doc == nil {
		return 0, 0, 0, false
	}
	var xs []float64
	for _, r := range doc.Rounds {
		if r.Arm == a.Name && r.Valid && r.Requests > 0 {
			xs = append(xs, float64(r.Requests)/dur.Seconds())
		}
	}
	if len(xs) < 2 {
		return 0, 0, 0, false
	}
	var sum, ss float64
	for _, x := range xs {
		sum += x
	}
	mean = sum / float64(len(xs))
	for _, x := range xs {
		ss += (x - mean) * (x - mean)
	}
	n := float64(len(xs))
	h := gate.TQuantile(1-(1-CIConfidence)/2, n-1) * math.Sqrt(ss/(n-1)/n)
	return mean, mean - h, mean + h, true
}

// errorRate returns the error fraction with a Wilson score interval.
func (a *arm) errorRate() (p, lo, hi float64) {
	n := float64(a.Requests)
	if n <= 0 {
		return 0, 0, 0
	}
	p = float64(a.Errors) / n
	z := 1.959963984540054
	d := 1 + z*z/n
	c := (p + z*z/(2*n)) / d
	h := z * math.Sqrt(p*(1-p)/n+z*z/(4*n*n)) / d
	return p, math.Max(0, c-h), math.Min(1, c+h)
}

// arms pools the rounds of doc by arm name, in first-seen order.
func arms(doc *experiment.Document) ([]*arm, error) {
	if doc == nil {
		return nil, nil
	}
	var out []*arm
	by := map[string]*arm{}
	var errs []error
	for i, r := range doc.Rounds {
		a := by[r.Arm]
		if a == nil {
			a = &arm{Name: r.Arm}
			by[r.Arm] = a
			out = append(out, a)
		}
		if !r.Valid && !r.LagBounded {
			a.Invalid++
			continue
		}
		if r.LagBounded {
			// Over the lag rule only: pooled as measured (the lag can
			// only raise a latency), as the attribution does.
			a.LagBounded++
		}
		a.Requests += r.Requests
		a.Errors += r.Errors
		if r.Hist == "" {
			continue
		}
		h, err := latency.Decode(r.Hist)
		if err != nil {
			errs = append(errs, fmt.Errorf("rounds[%d] (%s #%d): hist: %w", i, r.Arm, r.Index, err))
			continue
		}
		a.Rounds++
		if a.Hist == nil {
			a.Hist = h
			continue
		}
		if err := latency.Merge(a.Hist, h); err != nil {
			errs = append(errs, fmt.Errorf("rounds[%d] (%s #%d): %w", i, r.Arm, r.Index, err))
		}
	}
	return out, errors.Join(errs...)
}

func findArm(as []*arm, names ...string) *arm {
	for _, n := range names {
		for _, a := range as {
			if a.Name == n {
				return a
			}
		}
	}
	return nil
}

// figures is everything derived from the input once, shared by all
// artifacts.
type figures struct {
	in       *Input
	gate     *gate.Result
	gateArms []*arm
	expArms  []*arm
	base     *arm // gate base, else experiment baseline
	head     *arm // gate head, else experiment all-fixes variant
	attr     *experiment.Attribution
	allFixes string // name of the all-fixes variant
	fixes    []FixInfo
	soak     *soakTrend
	notes    []string // data problems found while deriving (shown, not fatal)
	pdf      bool     // the write-up was printed to PDF (Write sets it)
}

func derive(in *Input) (*figures, error) {
	if err := in.validate(); err != nil {
		return nil, err
	}
	f := &figures{in: in}
	var err error
	if in.Gate != nil {
		f.gate = in.Gate.Gate
		if g := f.gate; g != nil && (g.P99.SLO == 0 || g.P99.Quantile == 0) && g.Config.SLO > 0 {
			// A gate stopped by an invalid round before any evaluation
			// leaves its p99 figures empty; the SLO and the quantile are
			// still the rule's.
			c := *g
			if c.P99.SLO == 0 {
				c.P99.SLO = g.Config.SLO
			}
			if c.P99.Quantile == 0 {
				c.P99.Quantile = g.Config.Quantile
			}
			f.gate = &c
		}
		if f.gateArms, err = arms(in.Gate); err != nil {
			f.notes = append(f.notes, "gate document: "+err.Error())
		}
		f.base = findArm(f.gateArms, gate.ArmBase)
		f.head = findArm(f.gateArms, gate.ArmHead)
	}
	if in.Experiment != nil {
		f.attr = in.Experiment.Attribution
		if f.expArms, err = arms(in.Experiment); err != nil {
			f.notes = append(f.notes, "experiment document: "+err.Error())
		}
		f.allFixes = experiment.VariantName(f.attr.Fixes)
		if f.base == nil {
			f.base = findArm(f.expArms, experiment.Baseline)
		}
		if f.head == nil {
			f.head = findArm(f.expArms, f.allFixes)
		}
	}
	// Fix descriptions: declared ones first, then any attributed fix.
	seen := map[string]bool{}
	for _, fx := range in.Fixes {
		if fx.Name != "" && !seen[fx.Name] {
			seen[fx.Name] = true
			f.fixes = append(f.fixes, fx)
		}
	}
	if f.attr != nil {
		for _, n := range f.attr.Fixes {
			if !seen[n] {
				seen[n] = true
				f.fixes = append(f.fixes, FixInfo{Name: n})
			}
		}
	}
	if in.Soak != nil {
		f.soak = trend(in.Soak)
	}
	return f, nil
}

// docs returns the documents present, gate first.
func (f *figures) docs() []*experiment.Document {
	var out []*experiment.Document
	for _, d := range []*experiment.Document{f.in.Gate, f.in.Experiment} {
		if d != nil {
			out = append(out, d)
		}
	}
	return out
}

// rateRow formats the achieved rate of both sides ("" when unknown).
func (f *figures) rateRow() (base, head string, ok bool) {
	if f.gate == nil {
		return "", "", false
	}
	dur := f.gate.Config.RoundDuration
	bm, bl, bh, ok1 := f.base.rate(f.in.Gate, dur)
	hm, hl, hh, ok2 := f.head.rate(f.in.Gate, dur)
	if !ok1 || !ok2 {
		return "", "", false
	}
	return fmt.Sprintf("%.1f/s [%.1f, %.1f]", bm, bl, bh), fmt.Sprintf("%.1f/s [%.1f, %.1f]", hm, hl, hh), true
}

// baseLabel and headLabel name the two compared sides.
func (f *figures) baseLabel() string {
	if f.in.Gate != nil {
		return "base"
	}
	return experiment.Baseline
}

func (f *figures) headLabel() string {
	if f.in.Gate != nil {
		return "head"
	}
	return "all fixes"
}

func (f *figures) refName(head bool) string {
	d := f.in.Gate
	if d == nil {
		d = f.in.Experiment
	}
	r := d.Base
	if head {
		r = d.Head
	}
	if r == nil {
		return ""
	}
	name := r.Name
	if r.Commit != "" {
		c := r.Commit
		if len(c) > 12 {
			c = c[:12]
		}
		if name == "" {
			return c
		}
		name += " @ " + c
	}
	return name
}

// fixAttr returns the attribution of fix name, or nil.
func (f *figures) fixAttr(name string) *experiment.FixAttribution {
	if f.attr == nil {
		return nil
	}
	for i := range f.attr.PerFix {
		if f.attr.PerFix[i].Fix == name {
			return &f.attr.PerFix[i]
		}
	}
	return nil
}

// spectrumArms returns the arms plotted in the spectrum: base, head, then
// each single-fix variant and the all-fixes variant.
func (f *figures) spectrumArms() []*arm {
	var out []*arm
	add := func(a *arm) {
		if a == nil || a.Hist == nil {
			return
		}
		for _, b := range out {
			if b == a {
				return
			}
		}
		out = append(out, a)
	}
	add(f.base)
	add(f.head)
	if f.attr != nil {
		for _, fx := range f.attr.Fixes {
			add(findArm(f.expArms, fx))
		}
		add(findArm(f.expArms, f.allFixes))
	}
	return out
}

// armLabel is how a plotted arm is named.
func (f *figures) armLabel(a *arm) string {
	switch {
	case f.in.Gate != nil && a == f.base:
		return "base"
	case f.in.Gate != nil && a == f.head:
		return "head"
	case a.Name == f.allFixes:
		return "all fixes (" + a.Name + ")"
	}
	return a.Name
}

// soakTrend summarizes a soak result.
type soakTrend struct {
	*SoakResult
	Duration      time.Duration
	P99First      time.Duration // median p99 of the first third of windows
	P99Last       time.Duration // median p99 of the last third
	Drift         float64       // P99Last/P99First - 1
	SlopePerHour  time.Duration // least-squares p99 slope
	WorstP99      time.Duration
	WorstAt       time.Duration
	OverSLO       int // windows with p99 over the SLO
	HeapFirst     uint64
	HeapLast      uint64
	HeapGrowth    float64 // HeapLast/HeapFirst - 1 (0 without heap data)
	Requests      int64
	Errors        int64
	DriftFlagged  bool
	HeapFlagged   bool
	GCCyclesTotal uint64
}

// Soak thresholds: above these the soak result is flagged in the reports.
const (
	SoakMaxDrift      = 0.10 // p99 of the last third vs the first third
	SoakMaxHeapGrowth = 0.20 // live heap, last third vs first third
)

func trend(s *SoakResult) *soakTrend {
	t := &soakTrend{SoakResult: s}
	n := len(s.Windows)
	last := s.Windows[n-1]
	t.Duration = last.Start + s.Window
	third := max(1, n/3)
	med := func(ws []SoakWindow, get func(SoakWindow) float64) float64 {
		v := make([]float64, len(ws))
		for i, w := range ws {
			v[i] = get(w)
		}
		sort.Float64s(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	p99 := func(w SoakWindow) float64 { return float64(w.P99) }
	heap := func(w SoakWindow) float64 { return float64(w.HeapBytes) }
	t.P99First = time.Duration(med(s.Windows[:third], p99))
	t.P99Last = time.Duration(med(s.Windows[n-third:], p99))
	if t.P99First > 0 {
		t.Drift = float64(t.P99Last)/float64(t.P99First) - 1
	}
	t.HeapFirst = uint64(med(s.Windows[:third], heap))
	t.HeapLast = uint64(med(s.Windows[n-third:], heap))
	if t.HeapFirst > 0 {
		t.HeapGrowth = float64(t.HeapLast)/float64(t.HeapFirst) - 1
	}
	var sx, sy, sxx, sxy float64
	for _, w := range s.Windows {
		x := w.Start.Hours()
		y := float64(w.P99)
		sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
		t.Requests += w.Requests
		t.Errors += w.Errors
		t.GCCyclesTotal += w.GCCycles
		if w.P99 > t.WorstP99 {
			t.WorstP99, t.WorstAt = w.P99, w.Start
		}
		if s.SLO > 0 && w.P99 > s.SLO {
			t.OverSLO++
		}
	}
	if fn := float64(n); n > 1 && fn*sxx-sx*sx > 0 {
		t.SlopePerHour = time.Duration((fn*sxy - sx*sy) / (fn*sxx - sx*sx))
	}
	t.DriftFlagged = t.Drift > SoakMaxDrift
	t.HeapFlagged = t.HeapGrowth > SoakMaxHeapGrowth
	return t
}

// ms formats a duration in milliseconds with three significant digits.
func ms(d time.Duration) string {
	v := float64(d) / 1e6
	a := math.Abs(v)
	switch {
	case a < 0.005:
		return "0 ms"
	case a < 10:
		return fmt.Sprintf("%.2f ms", v)
	case a < 100:
		return fmt.Sprintf("%.1f ms", v)
	}
	return fmt.Sprintf("%.0f ms", v)
}

// sms formats a signed duration ("+1.20 ms", "-3.4 ms").
func sms(d time.Duration) string {
	if d > 0 {
		return "+" + ms(d)
	}
	return ms(d)
}

// ciText formats an estimate with its interval.
func ciText(e experiment.Estimate) string {
	return fmt.Sprintf("%s [%s, %s]", sms(e.Value), sms(e.Lower), sms(e.Upper))
}

func pct(v float64) string {
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return "n/a"
	}
	return fmt.Sprintf("%.1f%%", 100*v)
}

func spct(v float64) string {
	if v > 0 {
		return "+" + pct(v)
	}
	return pct(v)
}

func times(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "only in slow"
	case v == 0:
		return "-"
	}
	return fmt.Sprintf("%.1f×", v)
}

func bytesText(b uint64) string {
	const mib = 1 << 20
	return fmt.Sprintf("%.1f MiB", float64(b)/mib)
}

// pctName names a quantile ("p99", "p99.9").
func pctName(q float64) string {
	s := strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.3f", 100*q), "0"), ".")
	return "p" + s
}

// verdictWord names the direction of an estimate's interval.
func effectWord(e experiment.Estimate) string {
	switch {
	case e.Upper < 0:
		return "faster"
	case e.Lower > 0:
		return "slower"
	}
	return "no clear change"
}
