package report

import (
	"fmt"
	"strings"

	"github.com/tailgate-ci/tailgate/internal/gate"
)

// FixNote renders the experiment note of one fix (markdown): hypothesis,
// the targeted contributor's evidence before and after, isolation and
// cumulative results with intervals, and caveats.
func FixNote(in *Input, fix string) (string, error) {
	f, err := derive(in)
	if err != nil {
		return "", err
	}
	for _, fx := range f.fixes {
		if fx.Name == fix {
			return f.fixNote(fx), nil
		}
	}
	return "", fmt.Errorf("report: fix %q is neither declared nor attributed", fix)
}

func (f *figures) fixNote(fx FixInfo) string {
	v := f.fixView(fx)
	var b strings.Builder
	fmt.Fprintf(&b, "# Fix %s: experiment note\n\n", mdCode(v.Name))
	if d := f.in.Experiment; d != nil {
		var refs []string
		if d.Service != "" {
			refs = append(refs, "service "+mdCode(d.Service))
		}
		if d.Base != nil {
			refs = append(refs, "at "+mdCode(f.refName(false)))
		}
		refs = append(refs, fmt.Sprintf("%.0f req/s", d.Rate))
		if !d.Finished.IsZero() {
			refs = append(refs, d.Finished.UTC().Format("2006-01-02 15:04 UTC"))
		}
		b.WriteString(strings.Join(refs, " · ") + "\n\n")
	}
	b.WriteString("## Hypothesis\n\n")
	b.WriteString(mdText(v.Hypothesis))
	if v.Generated {
		b.WriteString(" _(generated from the profile: no hypothesis declared)_")
	}
	b.WriteString("\n\n## Evidence: contributor ")
	if v.Contributor != "" {
		b.WriteString(mdCode(v.Contributor))
	} else {
		b.WriteString("(none declared)")
	}
	b.WriteString("\n\n")
	if v.Before == nil && v.After == nil {
		why := f.in.Profiles.Unavailable
		if why == "" {
			why = "no contributor breakdown for this fix's contributor"
		}
		b.WriteString("_Profiles unavailable: " + mdText(why) + "._\n\n")
	} else {
		b.WriteString("| profile | share of slow-request time | share of fast | enrichment | events | time in slow requests |\n|---|---:|---:|---:|---:|---:|\n")
		row := func(label string, c *contribRow) {
			if c == nil {
				fmt.Fprintf(&b, "| %s | n/a | | | | |\n", label)
				return
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %d | %s |\n", label, c.Slow, c.Fast, c.Enrich, c.Events, c.Time)
		}
		label := func(when, variant string) string {
			if variant == "" {
				return when + " (no profile of the " + md(v.Name) + " variant)"
			}
			return when + " (" + md(variant) + ")"
		}
		row(label("before", v.BeforeVariant), v.Before)
		row(label("after", v.AfterVariant), v.After)
		b.WriteString("\n")
		for _, c := range []*contribRow{v.Before, v.After} {
			if c == nil || len(c.Stacks) == 0 {
				continue
			}
			st := c.Stacks[0]
			parts := make([]string, len(st.Frames))
			for i, x := range st.Frames {
				parts[i] = mdCode(x)
			}
			who := "before"
			if c == v.After {
				who = "after"
			}
			fmt.Fprintf(&b, "Top stack %s: %s (%s, %s events)\n\n", who, strings.Join(parts, " → "), st.Time, st.Count)
		}
	}
	b.WriteString("## Results\n\n")
	if v.Iso == "" {
		b.WriteString("_No measured effect: the fix is not in the experiment's attribution._\n\n")
	} else {
		a := f.attr
		fmt.Fprintf(&b, "%s with %.0f%% bootstrap intervals over %d blocks of interleaved rounds (negative = faster).\n\n", pctName(a.Quantile), 100*a.Confidence, a.Blocks)
		fmt.Fprintf(&b, "| measure | Δ%s | Δp50 |\n|---|---:|---:|\n", pctName(a.Quantile))
		fmt.Fprintf(&b, "| isolation (alone vs baseline: %s vs %s) | %s | %s |\n", v.AloneP99, v.BaselineP99, v.Iso, v.IsoP50)
		fmt.Fprintf(&b, "| leave-one-out (all vs all but this) | %s | %s |\n", v.LOO, v.LOOP50)
		if v.Shapley != "" {
			fmt.Fprintf(&b, "| Shapley | %s | |\n", v.Shapley)
		}
		fmt.Fprintf(&b, "| cumulative (all fixes vs baseline) | %s | %s |\n", ciText(a.CumulativeP99), ciText(a.CumulativeP50))
		fmt.Fprintf(&b, "\nAlone, the fix %s and %s. Interaction (isolation − leave-one-out): %s.\n\n", effectPhrase(v.Effect, pctName(a.Quantile)), effectPhrase(v.P50Effect, "p50"), v.Interact)
	}
	b.WriteString("## Caveats\n\n")
	if len(v.Caveats) == 0 {
		b.WriteString("- none raised by the data\n")
	}
	for _, c := range v.Caveats {
		b.WriteString("- " + mdText(c) + "\n")
	}
	return b.String()
}

// Cumulative renders the cumulative-validation report (markdown): all
// fixes together against the baseline, the soak result and the p50 check.
func Cumulative(in *Input) (string, error) {
	f, err := derive(in)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("# Cumulative validation: all fixes together\n\n")
	if a := f.attr; a != nil {
		q := pctName(a.Quantile)
		fmt.Fprintf(&b, "Fixes: %s.\n\n", mdList(a.Fixes))
		fmt.Fprintf(&b, "## All fixes vs baseline\n\n%s changes by **%s** (%s), p50 by %s; %.0f%% bootstrap intervals over %d blocks.\n\n",
			q, ciText(a.CumulativeP99), effectWord(a.CumulativeP99), ciText(a.CumulativeP50), 100*a.Confidence, a.Blocks)
		b.WriteString("| variant | rounds | p50 | " + q + " |\n|---|---:|---:|---:|\n")
		for _, i := range f.sortedVariants() {
			v := a.Variants[i]
			fmt.Fprintf(&b, "| %s | %d | %s | %s |\n", mdCode(v.Name), v.Rounds, ms(v.P50), ms(v.P99))
		}
		b.WriteString("\n")
		start, steps, method := f.waterfallSteps()
		fmt.Fprintf(&b, "Decomposition (%s effects): %s %.2f ms", method, md(start.Label), start.Delta)
		for _, s := range steps {
			if s.IsTotal {
				fmt.Fprintf(&b, " → %s %.2f ms", md(s.Label), s.Delta)
			} else {
				fmt.Fprintf(&b, " → %s %+.2f ms", md(s.Label), s.Delta)
			}
		}
		b.WriteString(".\n\n")
	} else {
		b.WriteString("_No experiment document: the fixes were not measured together._\n\n")
	}
	if f.base != nil && f.head != nil {
		fmt.Fprintf(&b, "## Quantiles: %s vs %s\n\n| | %s | %s | change |\n|---|---:|---:|---:|\n", f.baseLabel(), f.headLabel(), f.baseLabel(), f.headLabel())
		for _, r := range f.tableView().Rows {
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", r.Name, r.Base, r.Head, r.Change)
		}
		b.WriteString("\n")
	}
	b.WriteString("## Soak\n\n")
	if t := f.soak; t != nil {
		sv := soakViewOf(t)
		fmt.Fprintf(&b, "%s ran for %s in %d windows of %s: %d requests, %s errors.\n\n", mdCode(t.Variant), sv.Duration, sv.Windows, sv.Window, sv.Requests, sv.Errors)
		fmt.Fprintf(&b, "- p99, median of the first third → last third of windows: %s → %s (%s; flagged above %s)%s\n", sv.P99First, sv.P99Last, sv.Drift, pct(SoakMaxDrift), flagWord(sv.DriftFlagged, "drift"))
		fmt.Fprintf(&b, "- p99 trend (least squares): %s; worst window %s at %s\n", sv.Slope, sv.Worst, sv.WorstAt)
		if sv.SLO != "" {
			fmt.Fprintf(&b, "- windows with p99 over the SLO %s: %d of %d\n", sv.SLO, sv.OverSLO, sv.Windows)
		}
		if sv.HeapFirst != "" {
			fmt.Fprintf(&b, "- live heap, first → last third: %s → %s (%s; flagged above %s)%s\n", sv.HeapFirst, sv.HeapLast, sv.HeapGrowth, pct(SoakMaxHeapGrowth), flagWord(sv.HeapFlagged, "growth"))
		}
		if t.GCCyclesTotal > 0 {
			fmt.Fprintf(&b, "- GC cycles: %d (%.1f per window)\n", t.GCCyclesTotal, float64(t.GCCyclesTotal)/float64(len(t.Windows)))
		}
		b.WriteString("\n| window start | requests | errors | p50 | p99 | live heap |\n|---:|---:|---:|---:|---:|---:|\n")
		for _, w := range t.Windows {
			heap := ""
			if w.HeapBytes > 0 {
				heap = bytesText(w.HeapBytes)
			}
			fmt.Fprintf(&b, "| %s | %d | %d | %s | %s | %s |\n", w.Start, w.Requests, w.Errors, ms(w.P50), ms(w.P99), heap)
		}
		b.WriteString("\n")
	} else {
		why := f.in.SoakUnavailable
		if why == "" {
			why = "no soak result given"
		}
		b.WriteString("_Soak unavailable: " + mdText(why) + "._\n\n")
	}
	b.WriteString("## p50 check\n\n")
	switch {
	case f.gate != nil:
		g := f.gate
		fmt.Fprintf(&b, "Verdict **%s**: p50 %s → %s, head/base %.3f× [%.3f, %.3f] over %d pairs (%s), tolerance ±%.1f%% (rule %.1f%%).",
			g.P50.Verdict, ms(g.P50.Base), ms(g.P50.Head), g.P50.Ratio, g.P50.Lower, g.P50.Upper, g.P50.Pairs, md(g.P50.Test), 100*g.P50.Tolerance, 100*g.P50.RuleTolerance)
		if g.NoiseFloor.Measured {
			fmt.Fprintf(&b, " A/A noise floor %s over %d pairs.", gate.Pct(g.NoiseFloor.Floor), g.NoiseFloor.Pairs)
		}
		b.WriteString("\n\n")
	case f.attr != nil:
		a := f.attr
		verdict := "no median regression shown"
		if a.CumulativeP50.Lower > 0 {
			verdict = "**the fixes together raise the median**"
		}
		fmt.Fprintf(&b, "All fixes change p50 by %s: %s.\n\n", ciText(a.CumulativeP50), verdict)
	}
	return b.String(), nil
}

func flagWord(on bool, word string) string {
	if on {
		return " **" + word + "**"
	}
	return ""
}

func mdList(xs []string) string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = mdCode(x)
	}
	return strings.Join(out, ", ")
}

// effectPhrase turns effectWord's result into a clause.
func effectPhrase(word, q string) string {
	switch word {
	case "faster", "slower":
		return "makes " + q + " " + word
	}
	return "shows no clear change in " + q
}
