package report

import (
	"fmt"
	"net/url"
	"path"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/tailgate-ci/tailgate/internal/gate"
)

// Comment limits: rows per section before any truncation.
const (
	CommentContributors = 4 // the top contributors shown
	CommentFrames       = 8 // grown and shrunk functions per diff
	CommentStackFrames  = 3 // innermost frames of an evidence stack
)

// section is a part of the comment whose rows can be cut to fit.
type section struct {
	head  []string // title, table header
	rows  []string
	tail  []string
	limit int // rows shown; -1 = all
	what  string
}

func (s *section) render(b *strings.Builder) {
	for _, l := range s.head {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	n := len(s.rows)
	if s.limit >= 0 && s.limit < n {
		n = s.limit
	}
	for _, r := range s.rows[:n] {
		b.WriteString(r)
		b.WriteByte('\n')
	}
	if n < len(s.rows) {
		fmt.Fprintf(b, "\n_%d more %s left out to fit GitHub's comment limit; see the HTML report._\n", len(s.rows)-n, s.what)
	}
	for _, l := range s.tail {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
}

// Comment renders the sticky PR comment: the verdict, the base-vs-head
// table with intervals, the slow-request contributors, the per-fix
// attribution, the functions that grew and shrank most in the differential
// flame graphs (linked to their SVGs), and a mermaid chart of the
// percentile spectrum. It starts with Marker and stays under
// MaxCommentBytes, cutting table rows (with a note) when it must.
func Comment(in *Input) (string, error) {
	f, err := derive(in)
	if err != nil {
		return "", err
	}
	return f.comment(MaxCommentBytes), nil
}

func (f *figures) comment(limit int) string {
	secs := []*section{f.verdictSection(), f.tableSection(), f.contributorSection(), f.attributionSection()}
	secs = append(secs, f.flameSections()...)
	secs = append(secs, f.mermaidSection(), f.footerSection())
	render := func() string {
		var b strings.Builder
		b.WriteString(Marker + "\n")
		for _, s := range secs {
			if s != nil {
				s.render(&b)
			}
		}
		return strings.TrimRight(b.String(), "\n") + "\n"
	}
	out := render()
	if len(out) > limit {
		// Cap the rows of every section at k, the largest k that fits
		// (binary search: the length grows with k).
		hi := 0
		for _, s := range secs {
			if s != nil && s.limit < 0 {
				hi = max(hi, len(s.rows))
			}
		}
		setCap := func(k int) {
			for _, s := range secs {
				if s != nil && len(s.rows) > k {
					s.limit = k
				} else if s != nil {
					s.limit = -1
				}
			}
		}
		lo := 0
		for lo < hi {
			mid := (lo + hi + 1) / 2
			setCap(mid)
			if len(render()) <= limit {
				lo = mid
			} else {
				hi = mid - 1
			}
		}
		setCap(lo)
		out = render()
	}
	if len(out) > limit {
		// Even headers alone are too long (hundreds of diff sets): cut
		// at a rune boundary, keeping the verdict at the top.
		note := "\n\n_Comment cut to fit GitHub's limit; see the HTML report._\n"
		cut := limit - len(note)
		for cut > 0 && !utf8.RuneStart(out[cut]) {
			cut--
		}
		out = out[:cut] + note
	}
	return out
}

func verdictIcon(v gate.Verdict) string {
	switch v {
	case gate.Pass:
		return "✅"
	case gate.Fail:
		return "❌"
	case gate.Inconclusive:
		return "⚠️"
	}
	return "⛔"
}

func (f *figures) verdictSection() *section {
	s := &section{what: "reasons"}
	if g := f.gate; g != nil {
		s.head = append(s.head, fmt.Sprintf("## %s Latency gate: **%s**", verdictIcon(g.Verdict), strings.ToUpper(string(g.Verdict))))
		s.head = append(s.head, "")
		line := fmt.Sprintf("%s of head %s", pctName(g.P99.Quantile), ms(g.P99.Head))
		if g.P99.Head == 0 {
			line = "no valid head rounds to measure"
		}
		if g.P99.Bound.HasUpper {
			line += fmt.Sprintf(" (%.4g%% upper bound %s)", 100*g.P99.Confidence, ms(g.P99.Bound.Upper))
		}
		line += fmt.Sprintf(" against the SLO of %s", ms(g.P99.SLO))
		if g.P50.Pairs > 0 {
			line += fmt.Sprintf("; p50 head/base %.3f× [%.3f, %.3f] over %d pairs, tolerance ±%.1f%%",
				g.P50.Ratio, g.P50.Lower, g.P50.Upper, g.P50.Pairs, 100*g.P50.Tolerance)
		}
		s.head = append(s.head, "**"+line+".**")
	} else if a := f.attr; a != nil {
		s.head = append(s.head, fmt.Sprintf("## Tail-latency experiment: all fixes change %s by %s", pctName(a.Quantile), ms(a.CumulativeP99.Value)))
		s.head = append(s.head, "", fmt.Sprintf("**%s [%s, %s] (%.0f%% CI over %d blocks); p50 %s.**",
			sms(a.CumulativeP99.Value), sms(a.CumulativeP99.Lower), sms(a.CumulativeP99.Upper), 100*a.Confidence, a.Blocks, ciText(a.CumulativeP50)))
	}
	s.head = append(s.head, "")
	var refs []string
	if b := f.refName(false); b != "" {
		refs = append(refs, f.baseLabel()+" "+mdCode(b))
	}
	if h := f.refName(true); h != "" {
		refs = append(refs, f.headLabel()+" "+mdCode(h))
	}
	d := f.in.Gate
	if d == nil {
		d = f.in.Experiment
	}
	if d.Service != "" {
		refs = append(refs, "service "+mdCode(d.Service))
	}
	if d.Rate > 0 {
		refs = append(refs, fmt.Sprintf("%.0f req/s offered", d.Rate))
	}
	if f.gate != nil {
		refs = append(refs, fmt.Sprintf("%d base/head pairs, %d A/A pairs", f.gate.Pairs, f.gate.NoiseFloor.Pairs))
	}
	if len(refs) > 0 {
		s.head = append(s.head, strings.Join(refs, " · "))
		s.head = append(s.head, "")
	}
	if f.gate != nil {
		for _, r := range f.gate.Reasons {
			s.rows = append(s.rows, "- "+mdText(r))
		}
		s.limit = -1
	}
	return s
}

func (f *figures) tableSection() *section {
	if f.base == nil || f.head == nil {
		return nil
	}
	s := &section{what: "rows", limit: -1}
	s.head = []string{
		fmt.Sprintf("### %s vs %s", strings.ToUpper(f.baseLabel()[:1])+f.baseLabel()[1:], f.headLabel()),
		"",
		fmt.Sprintf("| | %s | %s | change |", f.baseLabel(), f.headLabel()),
		"|---|---:|---:|---:|",
	}
	for _, q := range TableQuantiles {
		b, h := f.base.quantile(q), f.head.quantile(q)
		change := quantileChange(b, h)
		s.rows = append(s.rows, fmt.Sprintf("| %s | %s | %s | %s |", pctName(q), qci(b), qci(h), change))
	}
	s.rows = append(s.rows, fmt.Sprintf("| requests (valid rounds) | %d (%d) | %d (%d) | |",
		f.base.Requests, f.base.Rounds, f.head.Requests, f.head.Rounds))
	if b, h, ok := f.rateRow(); ok {
		s.rows = append(s.rows, fmt.Sprintf("| achieved rate (per round) | %s | %s | |", b, h))
	}
	be, bl, bh := f.base.errorRate()
	he, hl, hh := f.head.errorRate()
	s.rows = append(s.rows, fmt.Sprintf("| errors | %d = %s [%s, %s] | %d = %s [%s, %s] | |",
		f.base.Errors, pct3(be), pct3(bl), pct3(bh), f.head.Errors, pct3(he), pct3(hl), pct3(hh)))
	s.tail = []string{"", fmt.Sprintf("_Intervals (%.0f%%): quantiles, distribution-free order-statistic bounds of the pooled rounds; rate, Student t over rounds; errors, Wilson._", 100*CIConfidence)}
	return s
}

func pct3(v float64) string { return fmt.Sprintf("%.3f%%", 100*v) }

// quantileChange is head's change over base, or "-" when either side has
// no samples (no valid rounds): a missing arm is not a -100% speed-up.
func quantileChange(b, h quantileCI) string {
	if b.Value <= 0 || h.Value <= 0 {
		return "-"
	}
	return spct(float64(h.Value)/float64(b.Value) - 1)
}

func qci(q quantileCI) string {
	if q.Value == 0 {
		return "n/a"
	}
	if !q.OK {
		return ms(q.Value) + " (too few samples for a CI)"
	}
	return fmt.Sprintf("%s [%s, %s]", ms(q.Value), ms(q.Lo), ms(q.Hi))
}

// contributorSet is the breakdown the reports lead with: head in a gate,
// the baseline in an experiment.
func (f *figures) contributorSet() *ContributorSet {
	return f.in.Profiles.Set("head", "base", "baseline", f.allFixes)
}

func (f *figures) contributorSection() *section {
	s := &section{what: "contributors", limit: -1}
	s.head = []string{"### Slow-request contributors", ""}
	set := f.contributorSet()
	if set == nil {
		reason := f.in.Profiles.Unavailable
		if reason == "" {
			reason = "no contributor breakdown in the profiles"
		}
		s.head = append(s.head, "_Profiles unavailable: "+md(reason)+"._")
		return s
	}
	s.head = append(s.head,
		fmt.Sprintf("%s: %d slow requests (≥ %s) against %d fast ones (≤ %s).", md(set.Variant), set.SlowRequests, ms(set.SlowThreshold), set.FastRequests, ms(set.FastThreshold)),
		"",
		"| contributor | share of slow-request time | share of fast | enrichment | events | time in slow requests | top evidence |",
		"|---|---:|---:|---:|---:|---:|---|")
	cs := set.Contributors
	if len(cs) > CommentContributors {
		cs = cs[:CommentContributors]
	}
	for _, c := range cs {
		ev := "-"
		if len(c.TopStacks) > 0 {
			st := c.TopStacks[0]
			fr := st.Frames
			if len(fr) > CommentStackFrames {
				fr = fr[len(fr)-CommentStackFrames:]
			}
			parts := make([]string, len(fr))
			for i, x := range fr {
				parts[i] = mdCode(x)
			}
			ev = fmt.Sprintf("%s (%s, %d×)", strings.Join(parts, " → "), ms(st.Time), st.Count)
		}
		s.rows = append(s.rows, fmt.Sprintf("| %s | %s | %s | %s | %d | %s | %s |",
			md(c.Name), pct(c.SlowShare), pct(c.FastShare), times(c.Enrich()), c.Events, ms(c.Time), ev))
	}
	return s
}

func (f *figures) attributionSection() *section {
	a := f.attr
	if a == nil {
		return nil
	}
	q := pctName(a.Quantile)
	s := &section{what: "fixes", limit: -1}
	s.head = []string{
		"### Per-fix attribution",
		"",
		fmt.Sprintf("Change in %s (negative = faster), %.0f%% bootstrap CIs over %d blocks of interleaved rounds.", q, 100*a.Confidence, a.Blocks),
		"",
		fmt.Sprintf("| fix | isolation Δ%s | leave-one-out Δ%s | isolation Δp50 | interacts |", q, q),
		"|---|---:|---:|---:|:-:|",
	}
	for _, p := range a.PerFix {
		inter := "no"
		if p.Interaction {
			inter = "**yes**"
		}
		s.rows = append(s.rows, fmt.Sprintf("| %s | %s | %s | %s | %s |", mdCode(p.Fix), ciText(p.IsolationP99), ciText(p.LeaveOneOutP99), ciText(p.IsolationP50), inter))
	}
	s.tail = []string{fmt.Sprintf("| **all fixes (cumulative)** | **%s** | | %s | |", ciText(a.CumulativeP99), ciText(a.CumulativeP50))}
	for _, n := range a.Notes {
		s.tail = append(s.tail, "", "_"+mdText(n)+"_")
	}
	return s
}

// link is the URL of an artifact at rel (slash-separated, relative to
// the artifacts directory).
func (f *figures) link(rel string) string {
	segs := strings.Split(rel, "/")
	for i, s := range segs {
		segs[i] = strings.NewReplacer("(", "%28", ")", "%29").Replace(url.PathEscape(s))
	}
	u := strings.Join(segs, "/")
	if f.in.ArtifactURL != "" {
		base := strings.NewReplacer(" ", "%20", "(", "%28", ")", "%29", "<", "%3C", ">", "%3E").Replace(f.in.ArtifactURL)
		u = strings.TrimRight(base, "/") + "/" + u
	}
	return u
}

// FlameDir is where the flame-graph SVGs are copied in the artifacts
// directory.
const FlameDir = "flame"

func (f *figures) flameSections() []*section {
	if len(f.in.Profiles.Diffs) == 0 {
		if f.in.Profiles.Unavailable != "" && f.contributorSet() != nil {
			return []*section{{head: []string{"### Differential flame graphs", "", "_Profiles unavailable: " + md(f.in.Profiles.Unavailable) + "._"}}}
		}
		return nil
	}
	var out []*section
	for _, d := range f.in.Profiles.Diffs {
		s := &section{what: "functions", limit: -1}
		s.head = []string{fmt.Sprintf("### Flame-graph diff: %s (%s over %s)", md(d.Name), md(d.BLabel), md(d.ALabel)), ""}
		var links []string
		for _, p := range d.SVGs {
			name := path.Base(strings.ReplaceAll(p, "\\", "/"))
			links = append(links, fmt.Sprintf("[%s](%s)", md(name), f.link(FlameDir+"/"+name)))
		}
		if len(links) > 0 {
			s.head = append(s.head, "SVG: "+strings.Join(links, " · "), "")
		}
		s.head = append(s.head, fmt.Sprintf("| | function | %s | %s | change |", md(d.ALabel), md(d.BLabel)), "|---|---|---:|---:|---:|")
		row := func(dir string, c FrameChange) string {
			share := ""
			if c.Share != 0 {
				share = " (" + spct(c.Share) + ")"
			}
			return fmt.Sprintf("| %s | %s | %s | %s | %s%s |", dir, mdCode(c.Name), quantity(c.A, d.Unit), quantity(c.B, d.Unit), signedQuantity(c.Delta, d.Unit), share)
		}
		for i, c := range d.Grew {
			if i == CommentFrames {
				break
			}
			s.rows = append(s.rows, row("grew", c))
		}
		for i, c := range d.Shrank {
			if i == CommentFrames {
				break
			}
			s.rows = append(s.rows, row("shrank", c))
		}
		if len(s.rows) == 0 {
			s.head = append(s.head, "| | no function changed | | | |")
		}
		out = append(out, s)
	}
	return out
}

// quantity formats a profile value in its unit (ns of time, or samples).
func quantity(v float64, unit string) string {
	switch {
	case unit == "ns" || unit == "nanoseconds":
		return ms(timeDur(v))
	case strings.HasPrefix(unit, "ns/"):
		return ms(timeDur(v)) + "/" + md(unit[3:])
	case unit == "fraction":
		return pct(v)
	}
	return fmt.Sprintf("%.3g %s", v, md(unit))
}

func signedQuantity(v float64, unit string) string {
	s := quantity(v, unit)
	if v > 0 {
		return "+" + s
	}
	return s
}

func (f *figures) mermaidSection() *section {
	var as []*arm
	for _, a := range []*arm{f.base, f.head, findArm(f.expArms, f.allFixes)} {
		if a != nil && a.Hist != nil && !slices.Contains(as, a) {
			as = append(as, a)
		}
	}
	if len(as) == 0 {
		return nil
	}
	s := &section{limit: -1}
	var cats []string
	for _, p := range SpectrumPercentiles {
		cats = append(cats, fmt.Sprintf("%q", pctName(p/100)))
	}
	ymax := 0.0
	var lines []string
	var names []string
	for _, a := range as {
		var vs []string
		for _, p := range SpectrumPercentiles {
			v := float64(gate.Quantile(a.Hist, p/100)) / 1e6
			ymax = max(ymax, v)
			vs = append(vs, fmt.Sprintf("%.3f", v))
		}
		lines = append(lines, "  line ["+strings.Join(vs, ", ")+"]")
		names = append(names, md(f.armLabel(a)))
	}
	s.head = []string{"### Percentile spectrum", "", "```mermaid", "xychart-beta",
		`  title "Latency by percentile (ms)"`,
		"  x-axis [" + strings.Join(cats, ", ") + "]",
		fmt.Sprintf(`  y-axis "ms" 0 --> %.0f`, ymax*1.1+1)}
	s.head = append(s.head, lines...)
	s.head = append(s.head, "```", "", "Lines, in order: "+strings.Join(names, ", ")+".")
	return s
}

func (f *figures) footerSection() *section {
	s := &section{what: "notes", limit: -1}
	var notes []string
	notes = append(notes, f.notes...)
	if f.in.Gate != nil {
		notes = append(notes, f.in.Gate.Notes...)
	}
	if f.in.Experiment != nil {
		notes = append(notes, f.in.Experiment.Notes...)
	}
	for _, n := range notes {
		s.rows = append(s.rows, "- "+mdText(n))
	}
	s.head = []string{"<details><summary>Notes and artifacts</summary>", ""}
	if len(s.rows) == 0 {
		s.head = s.head[:1]
	}
	links := fmt.Sprintf("Full report: [%s](%s) · write-up: [%s](%s)", HTMLReport, f.link(HTMLReport), WriteupHTML, f.link(WriteupHTML))
	if f.pdf {
		links += fmt.Sprintf(" ([PDF](%s))", f.link(WriteupPDF))
	}
	s.tail = []string{"", links, "", "</details>"}
	return s
}
