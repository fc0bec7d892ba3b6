package report

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/tailgate-ci/tailgate/internal/latency"
)

// Plot kinds (the data-plot attribute of each <svg>).
const (
	PlotSpectrum     = "spectrum"
	PlotRounds       = "p99-rounds"
	PlotSoak         = "p99-soak"
	PlotContributors = "contributors"
	PlotShift        = "contributors-shift"
	PlotWaterfall    = "waterfall"
)

func msf(d time.Duration) float64 { return float64(d) / 1e6 }

var spectrumTicks = []Tick{{2, "p50"}, {10, "p90"}, {100, "p99"}, {1000, "p99.9"}, {10000, "p99.99"}, {100000, "p99.999"}}

func (f *figures) slo() time.Duration {
	if f.gate != nil {
		return f.gate.P99.SLO
	}
	if f.in.Soak != nil {
		return f.in.Soak.SLO
	}
	return 0
}

// spectrumPlot is the percentile spectrum of base, head and the fixes on
// the log axis 1/(1-p).
func (f *figures) spectrumPlot() string {
	p := LinePlot{Kind: PlotSpectrum, Title: "Latency by percentile (log scale)", XLabel: "percentile (axis 1/(1−p))", YLabel: "latency (ms)",
		LogX: true, XTicks: spectrumTicks}
	if slo := f.slo(); slo > 0 {
		p.HLine, p.HLineLabel = msf(slo), "SLO "+ms(slo)
	}
	for _, a := range f.spectrumArms() {
		s := Series{Name: f.armLabel(a)}
		for _, pt := range latency.Spectrum(a.Hist) {
			if pt.Percentile >= 100 {
				continue
			}
			s.X = append(s.X, 1/(1-pt.Percentile/100))
			s.Y = append(s.Y, msf(pt.Value))
		}
		p.Series = append(p.Series, s)
	}
	return p.SVG()
}

// roundsPlots draws each document's rounds: p99 per round in run order,
// one dotted series per arm (gate) or variant (experiment).
func (f *figures) roundsPlots() string {
	var out strings.Builder
	for _, doc := range f.docs() {
		p := LinePlot{Kind: PlotRounds, Title: fmt.Sprintf("p99 per round of the %s, in run order", doc.Kind), XLabel: "round (run order)", YLabel: "p99 (ms)"}
		if slo := f.slo(); slo > 0 {
			p.HLine, p.HLineLabel = msf(slo), "SLO "+ms(slo)
		}
		byArm := map[string]*Series{}
		var order []string
		for _, r := range doc.Rounds {
			if !r.Valid || r.P99 <= 0 {
				continue
			}
			s := byArm[r.Arm]
			if s == nil {
				s = &Series{Name: r.Arm, Dots: true}
				byArm[r.Arm] = s
				order = append(order, r.Arm)
			}
			s.X = append(s.X, float64(r.Order))
			s.Y = append(s.Y, msf(r.P99))
		}
		for _, n := range order {
			p.Series = append(p.Series, *byArm[n])
		}
		out.WriteString(p.SVG())
	}
	return out.String()
}

// soakPlot is the soak's p99 (and p50) per window over time.
func (f *figures) soakPlot() string {
	if f.soak == nil {
		return ""
	}
	s := f.soak
	p := LinePlot{Kind: PlotSoak, Title: fmt.Sprintf("Soak: p99 per %s window over time (%s)", s.Window, s.Variant), XLabel: "minutes since start", YLabel: "latency (ms)"}
	if s.SLO > 0 {
		p.HLine, p.HLineLabel = msf(s.SLO), "SLO "+ms(s.SLO)
	}
	p99 := Series{Name: "p99"}
	p50 := Series{Name: "p50"}
	for _, w := range s.Windows {
		x := (w.Start + s.Window).Minutes()
		p99.X, p99.Y = append(p99.X, x), append(p99.Y, msf(w.P99))
		p50.X, p50.Y = append(p50.X, x), append(p50.Y, msf(w.P50))
	}
	p.Series = []Series{p99, p50}
	return p.SVG()
}

// contributorPlot is the share of slow- and fast-request time per
// contributor of the leading breakdown.
func (f *figures) contributorPlot() string {
	set := f.contributorSet()
	if set == nil {
		return ""
	}
	p := BarPlot{Kind: PlotContributors, Title: "Contributors: share of request time (" + set.Variant + ")", XLabel: "share of the requests' time",
		Groups: []string{"slow requests", "fast requests"}, Format: pct}
	for _, c := range set.Contributors {
		p.Bars = append(p.Bars, Bar{Label: c.Name, Values: []float64{c.SlowShare, c.FastShare}})
	}
	return p.SVG()
}

// shiftPlot compares each contributor's share of slow-request time before
// (baseline or base) and after (all fixes or head).
func (f *figures) shiftPlot() string {
	before := f.in.Profiles.Set("baseline", "base")
	after := f.in.Profiles.Set(f.allFixes, "head")
	if before == nil || after == nil || before == after {
		return ""
	}
	p := BarPlot{Kind: PlotShift, Title: "Slow-request share before and after", XLabel: "share of slow-request time",
		Groups: []string{before.Variant, after.Variant}, Format: pct}
	names := contributorNames(before, after)
	for _, n := range names {
		p.Bars = append(p.Bars, Bar{Label: n, Values: []float64{share(before, n), share(after, n)}})
	}
	return p.SVG()
}

func contributorNames(sets ...*ContributorSet) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range sets {
		for _, c := range s.Contributors {
			if !seen[c.Name] {
				seen[c.Name] = true
				out = append(out, c.Name)
			}
		}
	}
	return out
}

func findContributor(s *ContributorSet, name string) *Contributor {
	if s == nil {
		return nil
	}
	for i := range s.Contributors {
		if s.Contributors[i].Name == name {
			return &s.Contributors[i]
		}
	}
	return nil
}

func share(s *ContributorSet, name string) float64 {
	if c := findContributor(s, name); c != nil {
		return c.SlowShare
	}
	return 0
}

// waterfallSteps is the per-fix decomposition of the cumulative change:
// Shapley values when the experiment ran every subset (they add up to the
// cumulative change), else isolation effects plus the interaction
// remainder.
func (f *figures) waterfallSteps() (start Step, steps []Step, method string) {
	a := f.attr
	var startV time.Duration
	for _, v := range a.Variants {
		if v.Name == "baseline" {
			startV = v.P99
		}
	}
	q := pctName(a.Quantile)
	start = Step{Label: "baseline " + q, Delta: msf(startV), IsTotal: true}
	sum := time.Duration(0)
	method = "isolation"
	for _, p := range a.PerFix {
		e := p.IsolationP99
		if p.ShapleyP99 != nil {
			e, method = *p.ShapleyP99, "Shapley"
		}
		steps = append(steps, Step{Label: p.Fix, Delta: msf(e.Value), Lo: msf(e.Lower - e.Value), Hi: msf(e.Upper - e.Value), HasCI: true})
		sum += e.Value
	}
	if rest := a.CumulativeP99.Value - sum; rest != 0 {
		steps = append(steps, Step{Label: "interaction", Delta: msf(rest)})
	}
	steps = append(steps, Step{Label: "all fixes " + q, Delta: msf(startV + a.CumulativeP99.Value), IsTotal: true})
	return start, steps, method
}

func (f *figures) waterfallPlot() string {
	if f.attr == nil {
		return ""
	}
	start, steps, method := f.waterfallSteps()
	return Waterfall{Kind: PlotWaterfall, Title: fmt.Sprintf("Per-fix attribution of %s (%s effects, %.0f%% CI)", pctName(f.attr.Quantile), method, 100*f.attr.Confidence),
		YLabel: pctName(f.attr.Quantile) + " (ms)", Start: start, Steps: steps}.SVG()
}

// sortedVariants returns the attribution's variants, baseline first then
// by p99.
func (f *figures) sortedVariants() []int {
	idx := make([]int, len(f.attr.Variants))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(i, j int) bool {
		return len(f.attr.Variants[idx[i]].Fixes) < len(f.attr.Variants[idx[j]].Fixes)
	})
	return idx
}
