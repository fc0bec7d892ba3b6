package report

import (
	"encoding/base64"
	"fmt"
	"html/template"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tailgate-ci/tailgate/internal/experiment"
	"github.com/tailgate-ci/tailgate/internal/gate"
)

// view is the data of the HTML report and the write-up: every figure is
// formatted here from the input; the templates only lay it out (and
// html/template escapes every string).
type view struct {
	Title        string // <title>
	Heading      string // <h1>
	Service      string
	Date         string
	Verdict      string
	VerdictClass string
	VerdictLine  string
	Refs         []kv
	Reasons      []string
	Table        *tableView
	Plots        plotsView
	Unavailable  string // profiles
	Contributors *contribView
	Attr         *attrView
	Fixes        []fixView
	Flames       []flameView
	Graphs       []svgView
	Soak         *soakView
	P50          *p50View
	Method       methodView
	Notes        []string
	Rounds       []roundRow
	Arms         []armRow
	Summary      []string // executive summary sentences
	Risks        []string
	Recs         []string
	Artifacts    []string
}

type kv struct{ K, V string }

type plotsView struct {
	Spectrum, Rounds, Soak, Contributors, Shift, Waterfall template.HTML
}

type tableView struct {
	BaseLabel, HeadLabel string
	Rows                 []tableRow
	Note                 string
}

type tableRow struct{ Name, Base, Head, Change string }

type contribView struct {
	Variant, SlowThr, FastThr string
	SlowN, FastN              int
	Rows                      []contribRow
}

type contribRow struct {
	Name, Slow, Fast, Enrich, Time string
	Events                         int64
	Fix                            string
	After                          string // share in the all-fixes profile
	Stacks                         []stackRow
}

type stackRow struct {
	Frames      []string
	Time, Count string
}

type attrView struct {
	Q, Conf, Method string
	Blocks          int
	Rows            []attrRow
	Cum, CumP50     string
	CumEffect       string
	Variants        []variantRow
	Notes           []string
	Full            bool
}

type attrRow struct {
	Fix, Iso, LOO, Shapley, IsoP50, LOOP50, Effect string
	Interacts                                      bool
}

type variantRow struct {
	Name, P50, P99 string
	Rounds         int
}

type fixView struct {
	Name, Contributor, Hypothesis string
	Generated                     bool
	Iso, LOO, Shapley, Interact   string
	IsoP50, LOOP50                string
	Effect, P50Effect             string
	AloneP99, BaselineP99         string
	Before, After                 *contribRow
	BeforeVariant, AfterVariant   string
	Caveats                       []string
}

type flameView struct {
	Name, ALabel, BLabel string
	Grew, Shrank         []frameRow
	SVGs                 []svgView
}

type frameRow struct{ Name, A, B, Delta string }

type svgView struct {
	Name    string
	URI     template.URL
	Missing string
}

type soakView struct {
	Variant, Duration, Window, P99First, P99Last, Drift, Slope, Worst, WorstAt string
	HeapFirst, HeapLast, HeapGrowth, Errors                                    string
	Requests                                                                   int64
	OverSLO, Windows                                                           int
	DriftFlagged, HeapFlagged                                                  bool
	SLO                                                                        string
}

type p50View struct {
	Verdict, Ratio, Tolerance, Test, Noise, Base, Head string
	Pairs                                              int
}

type methodView struct {
	Rate, SLO, Quantile, Alpha, Checkpoints, RoundDuration, Warmup string
	MinRounds, MaxRounds, AARounds, Pairs, Bootstrap, Blocks       int
	Variants                                                       int
	ScheduleSeed                                                   int64
	Tool                                                           string
	AttrConf                                                       string
	Samples                                                        string
}

type armRow struct {
	Doc, Name, P50, P99 string
	Rounds, Invalid     int
	Requests, Errors    int64
}

type roundRow struct {
	Doc, Arm, Count, P50, P99, Max, Valid string
	Order, Block                          int
}

// buildView derives the view; svgDir resolves relative SVG paths.
func (f *figures) buildView() *view {
	v := &view{Title: "tailgate report"}
	d := f.docs()[0]
	v.Service = d.Service
	v.Heading = v.Title
	if d.Service != "" {
		v.Heading += ": " + d.Service
	}
	if !d.Finished.IsZero() {
		v.Date = d.Finished.UTC().Format(time.RFC1123)
	}
	if g := f.gate; g != nil {
		v.Verdict = strings.ToUpper(string(g.Verdict))
		v.VerdictClass = string(g.Verdict)
		line := fmt.Sprintf("%s of head %s", pctName(g.P99.Quantile), ms(g.P99.Head))
		if g.P99.Bound.HasUpper {
			line += fmt.Sprintf(" (%.4g%% upper bound %s)", 100*g.P99.Confidence, ms(g.P99.Bound.Upper))
		}
		line += " against the SLO of " + ms(g.P99.SLO)
		if g.P50.Pairs > 0 {
			line += fmt.Sprintf("; p50 head/base %.3f× [%.3f, %.3f], tolerance ±%.1f%%", g.P50.Ratio, g.P50.Lower, g.P50.Upper, 100*g.P50.Tolerance)
		}
		v.VerdictLine = line
		v.Reasons = g.Reasons
		v.P50 = &p50View{Verdict: string(g.P50.Verdict), Ratio: fmt.Sprintf("%.3f× [%.3f, %.3f]", g.P50.Ratio, g.P50.Lower, g.P50.Upper),
			Tolerance: fmt.Sprintf("±%.1f%% (rule %.1f%%)", 100*g.P50.Tolerance, 100*g.P50.RuleTolerance), Test: g.P50.Test, Pairs: g.P50.Pairs,
			Base: ms(g.P50.Base), Head: ms(g.P50.Head)}
		if g.NoiseFloor.Measured {
			v.P50.Noise = fmt.Sprintf("A/A noise floor %s over %d pairs (ratio %.3f)", gate.Pct(g.NoiseFloor.Floor), g.NoiseFloor.Pairs, g.NoiseFloor.Ratio)
		} else {
			v.P50.Noise = fmt.Sprintf("A/A noise floor not measured (%d pairs)", g.NoiseFloor.Pairs)
		}
	} else if a := f.attr; a != nil {
		v.Verdict = "EXPERIMENT"
		v.VerdictClass = "experiment"
		v.VerdictLine = fmt.Sprintf("all fixes change %s by %s; p50 by %s", pctName(a.Quantile), ciText(a.CumulativeP99), ciText(a.CumulativeP50))
	}
	if b := f.refName(false); b != "" {
		v.Refs = append(v.Refs, kv{f.baseLabel(), b})
	}
	if h := f.refName(true); h != "" {
		v.Refs = append(v.Refs, kv{f.headLabel(), h})
	}
	if d.Service != "" {
		v.Refs = append(v.Refs, kv{"service", d.Service})
	}
	if d.Rate > 0 {
		v.Refs = append(v.Refs, kv{"offered rate", fmt.Sprintf("%.0f req/s", d.Rate)})
	}
	if d.Tool != "" {
		v.Refs = append(v.Refs, kv{"tool", d.Tool})
	}
	v.Table = f.tableView()
	v.Plots = plotsView{
		Spectrum:     template.HTML(f.spectrumPlot()),
		Rounds:       template.HTML(f.roundsPlots()),
		Soak:         template.HTML(f.soakPlot()),
		Contributors: template.HTML(f.contributorPlot()),
		Shift:        template.HTML(f.shiftPlot()),
		Waterfall:    template.HTML(f.waterfallPlot()),
	}
	v.Unavailable = f.in.Profiles.Unavailable
	if set := f.contributorSet(); set != nil {
		v.Contributors = f.contribView(set)
	} else if v.Unavailable == "" {
		v.Unavailable = "no contributor breakdown in the profiles"
	}
	v.Attr = f.attrView()
	for _, fx := range f.fixes {
		v.Fixes = append(v.Fixes, f.fixView(fx))
	}
	for _, fd := range f.in.Profiles.Diffs {
		v.Flames = append(v.Flames, flameViewOf(fd))
	}
	for _, g := range f.in.Profiles.Graphs {
		v.Graphs = append(v.Graphs, svgOf(g))
	}
	if f.soak != nil {
		v.Soak = soakViewOf(f.soak)
	}
	v.Method = f.methodView()
	v.Notes = append(v.Notes, f.notes...)
	var docNotes []string
	for _, doc := range f.docs() {
		docNotes = append(docNotes, doc.Notes...)
		for _, r := range doc.Rounds {
			valid := "yes"
			switch {
			case r.LagBounded:
				valid = "lag only (bracketed): " + strings.Join(r.Invalid, "; ")
			case r.FloorOnly:
				valid = "lag only (left out of the noise floor): " + strings.Join(r.Invalid, "; ")
			case !r.Valid:
				valid = "no: " + strings.Join(r.Invalid, "; ")
			}
			v.Rounds = append(v.Rounds, roundRow{Doc: string(doc.Kind), Arm: r.Arm, Order: r.Order, Block: r.Block, Count: fmt.Sprint(r.Count),
				P50: ms(r.P50), P99: ms(r.P99), Max: ms(r.Max), Valid: valid})
		}
	}
	v.Notes = groupNotes(append(v.Notes, docNotes...))
	for _, doc := range f.docs() {
		as, _ := arms(doc)
		for _, a := range as {
			r := armRow{Doc: string(doc.Kind), Name: a.Name, Rounds: a.Rounds, Invalid: a.Invalid, Requests: a.Requests, Errors: a.Errors}
			if a.Hist != nil {
				r.P50, r.P99 = ms(gate.Quantile(a.Hist, 0.5)), ms(gate.Quantile(a.Hist, 0.99))
			}
			v.Arms = append(v.Arms, r)
		}
	}
	v.Summary = f.summary(v)
	v.Risks = f.risks()
	v.Recs = f.recommendations()
	return v
}

func (f *figures) tableView() *tableView {
	if f.base == nil || f.head == nil {
		return nil
	}
	t := &tableView{BaseLabel: f.baseLabel(), HeadLabel: f.headLabel(),
		Note: fmt.Sprintf("Intervals (%.0f%%): quantiles, distribution-free order-statistic bounds of the pooled valid rounds; rate, Student t over rounds; errors, Wilson.", 100*CIConfidence)}
	for _, q := range TableQuantiles {
		b, h := f.base.quantile(q), f.head.quantile(q)
		change := quantileChange(b, h)
		t.Rows = append(t.Rows, tableRow{pctName(q), qci(b), qci(h), change})
	}
	t.Rows = append(t.Rows, tableRow{"requests (valid rounds)", fmt.Sprintf("%d (%d)", f.base.Requests, f.base.Rounds), fmt.Sprintf("%d (%d)", f.head.Requests, f.head.Rounds), ""})
	if b, h, ok := f.rateRow(); ok {
		t.Rows = append(t.Rows, tableRow{"achieved rate (per round)", b, h, ""})
	}
	be, bl, bh := f.base.errorRate()
	he, hl, hh := f.head.errorRate()
	t.Rows = append(t.Rows, tableRow{"errors", fmt.Sprintf("%d = %s [%s, %s]", f.base.Errors, pct3(be), pct3(bl), pct3(bh)),
		fmt.Sprintf("%d = %s [%s, %s]", f.head.Errors, pct3(he), pct3(hl), pct3(hh)), ""})
	return t
}

func contribRowOf(c *Contributor) *contribRow {
	r := &contribRow{Name: c.Name, Slow: pct(c.SlowShare), Fast: pct(c.FastShare), Enrich: times(c.Enrich()), Events: c.Events, Time: ms(c.Time)}
	for _, s := range c.TopStacks {
		r.Stacks = append(r.Stacks, stackRow{Frames: s.Frames, Time: ms(s.Time), Count: fmt.Sprint(s.Count)})
	}
	return r
}

func (f *figures) contribView(set *ContributorSet) *contribView {
	cv := &contribView{Variant: set.Variant, SlowThr: ms(set.SlowThreshold), FastThr: ms(set.FastThreshold), SlowN: set.SlowRequests, FastN: set.FastRequests}
	after := f.in.Profiles.Set(f.allFixes)
	for i := range set.Contributors {
		c := &set.Contributors[i]
		r := contribRowOf(c)
		for _, fx := range f.fixes {
			if fx.Contributor == c.Name {
				r.Fix = fx.Name
			}
		}
		if after != nil && after != set {
			r.After = pct(share(after, c.Name))
		}
		cv.Rows = append(cv.Rows, *r)
	}
	return cv
}

func (f *figures) attrView() *attrView {
	a := f.attr
	if a == nil {
		return nil
	}
	_, _, method := f.waterfallSteps()
	av := &attrView{Q: pctName(a.Quantile), Conf: fmt.Sprintf("%.0f%%", 100*a.Confidence), Blocks: a.Blocks, Method: method,
		Cum: ciText(a.CumulativeP99), CumP50: ciText(a.CumulativeP50), CumEffect: effectWord(a.CumulativeP99), Notes: a.Notes, Full: a.Mode == experiment.ModeFull}
	for _, p := range a.PerFix {
		r := attrRow{Fix: p.Fix, Iso: ciText(p.IsolationP99), LOO: ciText(p.LeaveOneOutP99), IsoP50: ciText(p.IsolationP50), LOOP50: ciText(p.LeaveOneOutP50),
			Interacts: p.Interaction, Effect: effectWord(p.IsolationP99)}
		if p.ShapleyP99 != nil {
			r.Shapley = ciText(*p.ShapleyP99)
		}
		av.Rows = append(av.Rows, r)
	}
	for _, i := range f.sortedVariants() {
		vs := a.Variants[i]
		av.Variants = append(av.Variants, variantRow{Name: vs.Name, P50: ms(vs.P50), P99: ms(vs.P99), Rounds: vs.Rounds})
	}
	return av
}

func (f *figures) variantP99(name string) (time.Duration, bool) {
	if f.attr == nil {
		return 0, false
	}
	for _, v := range f.attr.Variants {
		if v.Name == name {
			return v.P99, true
		}
	}
	return 0, false
}

// fixContributor is the contributor a fix targets: declared, else the
// contributor of the same name.
func (f *figures) fixContributor(fx FixInfo) string {
	if fx.Contributor != "" {
		return fx.Contributor
	}
	for _, s := range f.in.Profiles.Contributors {
		if findContributor(&s, fx.Name) != nil {
			return fx.Name
		}
	}
	return ""
}

func (f *figures) fixView(fx FixInfo) fixView {
	fv := fixView{Name: fx.Name, Contributor: f.fixContributor(fx), Hypothesis: fx.Hypothesis}
	before := f.in.Profiles.Set("baseline", "base")
	after := f.in.Profiles.Set(fx.Name)
	if before != nil {
		fv.BeforeVariant = before.Variant
		if c := findContributor(before, fv.Contributor); c != nil {
			fv.Before = contribRowOf(c)
		}
	}
	if after != nil {
		fv.AfterVariant = after.Variant
		if c := findContributor(after, fv.Contributor); c != nil {
			fv.After = contribRowOf(c)
		} else if fv.Contributor != "" {
			fv.After = &contribRow{Name: fv.Contributor, Slow: pct(0), Fast: pct(0), Enrich: "-", Time: ms(0)}
		}
	}
	q := "p99"
	if f.attr != nil {
		q = pctName(f.attr.Quantile)
	}
	if fv.Hypothesis == "" {
		fv.Generated = true
		switch {
		case fv.Before != nil:
			fv.Hypothesis = fmt.Sprintf("%s targets the %s contributor, which takes %s of the slow requests' time against %s of the fast requests' (%s enrichment) in the %s profile; removing it should lower %s.",
				fx.Name, fv.Contributor, fv.Before.Slow, fv.Before.Fast, fv.Before.Enrich, fv.BeforeVariant, q)
		case fv.Contributor != "":
			fv.Hypothesis = fmt.Sprintf("%s targets the %s contributor; removing it should lower %s.", fx.Name, fv.Contributor, q)
		default:
			fv.Hypothesis = fmt.Sprintf("%s should lower %s (no contributor declared for it).", fx.Name, q)
		}
	}
	p := f.fixAttr(fx.Name)
	if p == nil {
		fv.Caveats = append(fv.Caveats, "not in the experiment's attribution: no measured effect")
		return fv
	}
	fv.Iso, fv.LOO, fv.IsoP50, fv.LOOP50 = ciText(p.IsolationP99), ciText(p.LeaveOneOutP99), ciText(p.IsolationP50), ciText(p.LeaveOneOutP50)
	fv.Interact = ciText(p.InteractionP99)
	if p.ShapleyP99 != nil {
		fv.Shapley = ciText(*p.ShapleyP99)
	}
	fv.Effect, fv.P50Effect = effectWord(p.IsolationP99), effectWord(p.IsolationP50)
	if v, ok := f.variantP99(fx.Name); ok {
		fv.AloneP99 = ms(v)
	}
	if v, ok := f.variantP99(experiment.Baseline); ok {
		fv.BaselineP99 = ms(v)
	}
	a := f.attr
	conf := fmt.Sprintf("%.0f%%", 100*a.Confidence)
	if !p.IsolationP99.Excludes0() {
		fv.Caveats = append(fv.Caveats, fmt.Sprintf("alone, its %s effect %s is not distinguishable from zero at %s over %d blocks", q, ciText(p.IsolationP99), conf, a.Blocks))
	}
	if !p.LeaveOneOutP99.Excludes0() {
		fv.Caveats = append(fv.Caveats, fmt.Sprintf("with the other fixes in place, removing it changes %s by %s: not distinguishable from zero", q, ciText(p.LeaveOneOutP99)))
	}
	if p.Interaction {
		fv.Caveats = append(fv.Caveats, fmt.Sprintf("it interacts with the other fixes: alone %s, last in %s", sms(p.IsolationP99.Value), sms(p.LeaveOneOutP99.Value)))
	}
	if p.IsolationP50.Lower > 0 {
		fv.Caveats = append(fv.Caveats, fmt.Sprintf("it costs median latency: p50 %s", ciText(p.IsolationP50)))
	}
	if a.Blocks < gate.DefaultMinRounds {
		fv.Caveats = append(fv.Caveats, fmt.Sprintf("only %d blocks: the intervals rest on few resampling units", a.Blocks))
	}
	if fv.Before == nil || fv.After == nil {
		why := f.in.Profiles.Unavailable
		if why == "" {
			why = "no contributor breakdown of the " + fx.Name + " variant"
		}
		fv.Caveats = append(fv.Caveats, "contributor evidence before/after incomplete: "+why)
	}
	var notes []string
	for _, doc := range f.docs() {
		for _, n := range doc.Notes {
			if noteAbout(n, fx.Name) {
				notes = append(notes, n)
			}
		}
	}
	fv.Caveats = append(fv.Caveats, groupNotes(notes)...)
	return fv
}

// groupNotes drops repeated notes (the gate's and the experiment's
// documents carry the same fleet notes) and folds notes that differ only
// in the arm they name ("arm X: text") into one ("arms X, Y: text"), in
// the order they first appear.
func groupNotes(notes []string) []string {
	type entry struct {
		note string   // a note that names no arm
		text string   // or the text shared by the arm notes of arms
		arms []string // in order of appearance
	}
	var entries []*entry
	byKey := map[string]*entry{}
	for _, n := range notes {
		name, text, isArm := subjectNote(n, "arm ")
		key := n
		if isArm {
			key = "arm\x00" + text
		}
		e := byKey[key]
		if e == nil {
			e = &entry{note: n, text: text}
			byKey[key] = e
			entries = append(entries, e)
		}
		if isArm && !slices.Contains(e.arms, name) {
			e.arms = append(e.arms, name)
		}
	}
	out := make([]string, len(entries))
	for i, e := range entries {
		switch len(e.arms) {
		case 0:
			out[i] = e.note
		case 1:
			out[i] = "arm " + e.arms[0] + ": " + e.text
		default:
			out[i] = "arms " + strings.Join(e.arms, ", ") + ": " + e.text
		}
	}
	return out
}

// noteAbout reports whether a run note concerns the fix alone: a note on
// an arm or variant ("arm NAME: ...", "variant NAME: ...") when NAME is
// the fix's own variant, and any other note that names the fix on its own,
// not as part of a combination such as gc+locks.
func noteAbout(n, fix string) bool {
	for _, prefix := range []string{"arm ", "variant "} {
		if name, _, ok := subjectNote(n, prefix); ok {
			return name == fix
		}
	}
	joins := func(b byte) bool {
		return b == '+' || b == '-' || b == '_' || b == '.' || b == '/' || b >= '0' && b <= '9' || b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z'
	}
	for i := 0; ; {
		j := strings.Index(n[i:], fix)
		if j < 0 {
			return false
		}
		at := i + j
		end := at + len(fix)
		if (at == 0 || !joins(n[at-1])) && (end == len(n) || !joins(n[end])) {
			return true
		}
		i = at + 1
	}
}

// subjectNote splits a run note "PREFIX NAME: text" ("arm gc: ...",
// "variant gc+locks: ...") into the one-word NAME and the text.
func subjectNote(n, prefix string) (name, text string, ok bool) {
	rest, found := strings.CutPrefix(n, prefix)
	if !found {
		return "", "", false
	}
	name, text, ok = strings.Cut(rest, ": ")
	if !ok || name == "" || strings.Contains(name, " ") {
		return "", "", false
	}
	return name, text, true
}

func flameViewOf(fd FlameDiff) flameView {
	fv := flameView{Name: fd.Name, ALabel: fd.ALabel, BLabel: fd.BLabel}
	rows := func(cs []FrameChange) []frameRow {
		var out []frameRow
		for i, c := range cs {
			if i == 12 {
				break
			}
			d := signedQuantityPlain(c.Delta, fd.Unit)
			if c.Share != 0 {
				d += " (" + spct(c.Share) + ")"
			}
			out = append(out, frameRow{c.Name, quantityPlain(c.A, fd.Unit), quantityPlain(c.B, fd.Unit), d})
		}
		return out
	}
	fv.Grew, fv.Shrank = rows(fd.Grew), rows(fd.Shrank)
	for _, p := range fd.SVGs {
		fv.SVGs = append(fv.SVGs, svgOf(p))
	}
	return fv
}

// svgOf embeds an SVG file as a data URI (an <img> keeps its script
// sandboxed and its ids apart from the page's).
func svgOf(p string) svgView {
	sv := svgView{Name: filepath.Base(p)}
	b, err := os.ReadFile(p)
	switch {
	case err != nil:
		sv.Missing = err.Error()
	case !strings.Contains(string(b[:min(len(b), 4096)]), "<svg"):
		sv.Missing = p + ": not an SVG file"
	default:
		sv.URI = template.URL("data:image/svg+xml;base64," + base64.StdEncoding.EncodeToString(b))
	}
	return sv
}

func quantityPlain(v float64, unit string) string {
	switch {
	case unit == "ns" || unit == "nanoseconds":
		return ms(timeDur(v))
	case strings.HasPrefix(unit, "ns/"):
		return ms(timeDur(v)) + "/" + unit[3:]
	case unit == "fraction":
		return pct(v)
	}
	return fmt.Sprintf("%.3g %s", v, unit)
}

func signedQuantityPlain(v float64, unit string) string {
	s := quantityPlain(v, unit)
	if v > 0 {
		return "+" + s
	}
	return s
}

func soakViewOf(t *soakTrend) *soakView {
	sv := &soakView{Variant: t.Variant, Duration: t.Duration.String(), Window: t.Window.String(), P99First: ms(t.P99First), P99Last: ms(t.P99Last),
		Drift: spct(t.Drift), Slope: sms(t.SlopePerHour) + "/h", Worst: ms(t.WorstP99), WorstAt: t.WorstAt.String(),
		Requests: t.Requests, OverSLO: t.OverSLO, Windows: len(t.Windows), DriftFlagged: t.DriftFlagged, HeapFlagged: t.HeapFlagged}
	if t.Requests > 0 {
		sv.Errors = fmt.Sprintf("%d (%s)", t.Errors, pct3(float64(t.Errors)/float64(t.Requests)))
	}
	if t.HeapFirst > 0 {
		sv.HeapFirst, sv.HeapLast, sv.HeapGrowth = bytesText(t.HeapFirst), bytesText(t.HeapLast), spct(t.HeapGrowth)
	}
	if t.SLO > 0 {
		sv.SLO = ms(t.SLO)
	}
	return sv
}

func (f *figures) methodView() methodView {
	m := methodView{}
	d := f.docs()[0]
	m.Rate = fmt.Sprintf("%.0f req/s", d.Rate)
	m.ScheduleSeed = d.ScheduleSeed
	m.Tool = d.Tool
	if g := f.gate; g != nil {
		c := g.Config
		m.SLO, m.Quantile = ms(c.SLO), pctName(c.Quantile)
		m.Alpha = fmt.Sprintf("%g", c.Alpha)
		var cps []string
		for _, x := range c.Checkpoints() {
			cps = append(cps, fmt.Sprint(x))
		}
		m.Checkpoints = strings.Join(cps, ", ")
		m.MinRounds, m.MaxRounds, m.AARounds, m.Pairs, m.Bootstrap = c.MinRounds, c.MaxRounds, c.AARounds, g.Pairs, c.Bootstrap
		m.RoundDuration, m.Warmup = c.RoundDuration.String(), c.Warmup.String()
		m.Samples = fmt.Sprintf("%d base, %d head", g.BaseSamples, g.HeadSamples)
	}
	if a := f.attr; a != nil {
		m.Blocks, m.Variants = a.Blocks, len(a.Variants)
		m.AttrConf = fmt.Sprintf("%.0f%%, %d block resamples", 100*a.Confidence, a.Bootstrap)
	}
	return m
}

// summary is the executive summary, sentence by sentence, from the data.
func (f *figures) summary(v *view) []string {
	var s []string
	if g := f.gate; g != nil {
		s = append(s, fmt.Sprintf("The latency gate's verdict is %s: %s.", strings.ToUpper(string(g.Verdict)), v.VerdictLine))
	}
	if f.base != nil && f.head != nil {
		b, h := f.base.quantile(0.99), f.head.quantile(0.99)
		if b.Value > 0 && h.Value > 0 {
			s = append(s, fmt.Sprintf("p99 moves from %s (%s) to %s (%s), %s.", ms(b.Value), f.baseLabel(), ms(h.Value), f.headLabel(), spct(float64(h.Value)/float64(b.Value)-1)))
		}
	}
	if set := f.contributorSet(); set != nil && len(set.Contributors) > 0 {
		var parts []string
		for i, c := range set.Contributors {
			if i == 4 {
				break
			}
			parts = append(parts, fmt.Sprintf("%s %s", c.Name, pct(c.SlowShare)))
		}
		s = append(s, fmt.Sprintf("In the %s profile the slowest requests (≥ %s) spend their time on: %s.", set.Variant, ms(set.SlowThreshold), strings.Join(parts, ", ")))
	} else {
		s = append(s, "Profiles are unavailable: "+f.in.Profiles.Unavailable+".")
	}
	if a := f.attr; a != nil {
		var best *experiment.FixAttribution
		for i := range a.PerFix {
			if best == nil || a.PerFix[i].IsolationP99.Value < best.IsolationP99.Value {
				best = &a.PerFix[i]
			}
		}
		s = append(s, fmt.Sprintf("All %d fixes together change %s by %s (%s CI over %d blocks); the largest single effect is %s alone at %s.",
			len(a.Fixes), pctName(a.Quantile), ciText(a.CumulativeP99), fmt.Sprintf("%.0f%%", 100*a.Confidence), a.Blocks, best.Fix, ciText(best.IsolationP99)))
		s = append(s, fmt.Sprintf("Their effect on the median is %s.", ciText(a.CumulativeP50)))
	}
	if t := f.soak; t != nil {
		word := "stable"
		if t.DriftFlagged || t.HeapFlagged {
			word = "drifting"
		}
		s = append(s, fmt.Sprintf("A %s soak of %s is %s: p99 %s in the first third, %s in the last (%s).", t.Duration, t.Variant, word, ms(t.P99First), ms(t.P99Last), spct(t.Drift)))
	}
	return s
}

// maxInvalidListed caps the invalid rounds named in the risks.
const maxInvalidListed = 5

// sloHeadroom: a p99 upper bound above this fraction of the SLO is a risk.
const sloHeadroom = 0.8

// risks lists the caveats the data itself raises.
func (f *figures) risks() []string {
	var r []string
	if g := f.gate; g != nil {
		if g.Verdict != gate.Pass {
			r = append(r, fmt.Sprintf("The gate did not pass (%s).", g.Verdict))
		}
		if g.NoiseFloor.Measured && g.NoiseFloor.Floor > g.Config.P50Tolerance {
			r = append(r, fmt.Sprintf("The host is noisy: the A/A noise floor (%s) is above the p50 tolerance (%.1f%%).", gate.Pct(g.NoiseFloor.Floor), 100*g.Config.P50Tolerance))
		}
		if g.P99.Bound.HasUpper && float64(g.P99.Bound.Upper) > sloHeadroom*float64(g.P99.SLO) {
			r = append(r, fmt.Sprintf("The p99 upper bound %s is above %s of the SLO %s: little headroom.", ms(g.P99.Bound.Upper), pct(sloHeadroom), ms(g.P99.SLO)))
		}
	}
	if f.base != nil && f.head != nil {
		b, h := f.base.quantile(0.999), f.head.quantile(0.999)
		if b.OK && h.OK && h.Lo > b.Hi {
			r = append(r, fmt.Sprintf("p99.9 is higher on %s (%s) than on %s (%s), beyond both intervals.", f.headLabel(), ms(h.Value), f.baseLabel(), ms(b.Value)))
		}
		if _, lo, _ := f.head.errorRate(); lo > 0.001 {
			r = append(r, fmt.Sprintf("The %s error rate is above 0.1%% (lower bound %s).", f.headLabel(), pct3(lo)))
		}
	}
	if a := f.attr; a != nil {
		for _, p := range a.PerFix {
			if p.Interaction {
				r = append(r, fmt.Sprintf("%s interacts with the other fixes: its effect depends on which are in place.", p.Fix))
			}
			if p.IsolationP50.Lower > 0 {
				r = append(r, fmt.Sprintf("%s costs median latency (p50 %s).", p.Fix, ciText(p.IsolationP50)))
			}
		}
		if a.Blocks < gate.DefaultMinRounds {
			r = append(r, fmt.Sprintf("The attribution rests on %d blocks; more blocks narrow the intervals.", a.Blocks))
		}
	}
	if t := f.soak; t != nil {
		if t.DriftFlagged {
			r = append(r, fmt.Sprintf("p99 drifted %s over the soak (threshold %s).", spct(t.Drift), pct(SoakMaxDrift)))
		}
		if t.HeapFlagged {
			r = append(r, fmt.Sprintf("The live heap grew %s over the soak (threshold %s).", spct(t.HeapGrowth), pct(SoakMaxHeapGrowth)))
		}
		if t.OverSLO > 0 {
			r = append(r, fmt.Sprintf("%d of %d soak windows had p99 over the SLO.", t.OverSLO, len(t.Windows)))
		}
	} else {
		why := f.in.SoakUnavailable
		if why == "" {
			why = "no soak result"
		}
		r = append(r, "No soak: slow drift (heap growth, fragmentation) is untested ("+why+").")
	}
	if f.in.Profiles.Unavailable != "" {
		r = append(r, "Profiles unavailable ("+f.in.Profiles.Unavailable+"): contributors are not evidenced.")
	}
	invalid, lagged := 0, 0
	for _, doc := range f.docs() {
		for _, rr := range doc.Rounds {
			if rr.LagBounded {
				lagged++
				continue
			}
			if rr.Valid {
				continue
			}
			if invalid++; invalid <= maxInvalidListed {
				r = append(r, fmt.Sprintf("Round %d (%s, %s) was invalid: %s.", rr.Order, doc.Kind, rr.Arm, strings.Join(rr.Invalid, "; ")))
			}
		}
	}
	if invalid > maxInvalidListed {
		r = append(r, fmt.Sprintf("… and %d more invalid rounds (see report.html).", invalid-maxInvalidListed))
	}
	if lagged > 0 {
		r = append(r, fmt.Sprintf("%d rounds went over the max-lag rule by the load generator's own lag alone. They count as measured (the lag included, which can only raise a latency); each verdict was checked with their lag counted and taken out, and stands only where both agree.", lagged))
	}
	if len(r) == 0 {
		r = append(r, "The data raises no risk flag.")
	}
	return r
}

// recommendations follow from the attribution and the gate.
func (f *figures) recommendations() []string {
	var r []string
	if a := f.attr; a != nil {
		var keep, weak []string
		for _, p := range a.PerFix {
			if p.IsolationP99.Upper < 0 || p.LeaveOneOutP99.Upper < 0 {
				keep = append(keep, fmt.Sprintf("%s (alone %s, last in %s)", p.Fix, sms(p.IsolationP99.Value), sms(p.LeaveOneOutP99.Value)))
			} else {
				weak = append(weak, p.Fix)
			}
		}
		if len(keep) > 0 {
			r = append(r, "Ship the fixes with a measured tail effect: "+strings.Join(keep, "; ")+".")
		}
		if len(weak) > 0 {
			r = append(r, "Re-measure before relying on "+strings.Join(weak, ", ")+": no effect distinguishable from zero here (more blocks, or the host lacks the condition it fixes).")
		}
		if a.CumulativeP99.Upper < 0 {
			r = append(r, fmt.Sprintf("Together the fixes cut %s by %s; keep the latency gate on to hold it.", pctName(a.Quantile), ms(-a.CumulativeP99.Value)))
		}
	}
	if g := f.gate; g != nil {
		switch g.Verdict {
		case gate.Pass:
			r = append(r, "Merge: the change keeps p99 under the SLO and p50 within tolerance.")
		case gate.Fail:
			r = append(r, "Do not merge until the regression is understood: see the contributors and the flame-graph diff.")
		case gate.Inconclusive:
			r = append(r, "Run more rounds (the next checkpoint) before deciding.")
		default:
			r = append(r, "Fix the invalid run (load generator lag, errors) and run the gate again.")
		}
	}
	if f.in.Profiles.Unavailable != "" {
		r = append(r, "Run on a host with BTF and root (or CAP_BPF + CAP_PERFMON) to get the contributor evidence.")
	}
	if f.soak == nil {
		r = append(r, "Add a soak run of all fixes together before relying on them in production.")
	}
	return r
}

// asWriteup retitles a view for the platform-lead write-up.
func (v *view) asWriteup(artifacts []string) {
	v.Title = "Tail latency: findings and fixes"
	v.Heading = v.Title
	if v.Service != "" {
		v.Heading = "Tail latency of " + v.Service + ": findings and fixes"
	}
	v.Artifacts = artifacts
}
