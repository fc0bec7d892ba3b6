package report

import (
	"bytes"
	"fmt"
	"html/template"
	"io"
)

// HTML renders the single-file HTML report: no script, no CDN, every
// plot an inline SVG drawn from the data, flame graphs embedded as data
// URIs (so their own scripts stay sandboxed in <img>).
func HTML(w io.Writer, in *Input) error {
	f, err := derive(in)
	if err != nil {
		return err
	}
	return execute(w, "report", f.buildView())
}

// Writeup renders the platform-lead write-up (about eight printed
// pages): executive summary, method, the contributors with evidence, the
// fixes, results, risks, recommendations and an appendix of artifacts.
func Writeup(w io.Writer, in *Input, artifacts []string) error {
	f, err := derive(in)
	if err != nil {
		return err
	}
	v := f.buildView()
	v.asWriteup(artifacts)
	return execute(w, "writeup", v)
}

func execute(w io.Writer, name string, v *view) error {
	var b bytes.Buffer
	if err := templates.ExecuteTemplate(&b, name, v); err != nil {
		return fmt.Errorf("render %s: %w", name, err)
	}
	_, err := w.Write(b.Bytes())
	return err
}

var templates = template.Must(template.New("").Funcs(template.FuncMap{
	"inc": func(i int) int { return i + 1 },
}).Parse(tmplText))

const tmplText = `
{{define "style"}}<style>
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:60em;color:#222;line-height:1.45;padding:0 1em}
h1{font-size:1.7em;margin-bottom:.2em} h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em} h3{margin-top:1.2em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em} th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}
td.n,th.n{text-align:right;white-space:nowrap} code{font-size:.9em;background:#f4f4f4;padding:0 .2em;word-break:break-all}
.verdict{font-size:1.3em;font-weight:bold;padding:.4em .8em;border-radius:4px;display:inline-block}
.pass{background:#d9f2e0;color:#0a5c2b} .fail{background:#fbdada;color:#8a1010} .inconclusive{background:#fff1c9;color:#6b4c00}
.invalid{background:#e9e2f5;color:#40207a} .experiment{background:#dde9f7;color:#123f73}
.muted{color:#666} figure{margin:1em 0} svg.plot{max-width:100%;height:auto;border:1px solid #eee;background:#fff}
img.flame{width:100%;border:1px solid #ddd;margin:.4em 0} .stack{font-size:.85em}
.warn{color:#8a1010;font-weight:bold}
table#attribution td.n,table#attribution th.n{white-space:normal;font-size:.92em}
@media print{body{max-width:none;margin:0;font-size:10.5pt} h2{break-before:page} h2.first{break-before:auto} figure,table{break-inside:avoid}}
@page{size:A4;margin:16mm 14mm}
</style>{{end}}

{{define "header"}}
<h1>{{.Heading}}</h1>
<p><span class="verdict {{.VerdictClass}}" id="verdict">{{.Verdict}}</span> {{.VerdictLine}}</p>
<table class="refs">{{range .Refs}}<tr><th>{{.K}}</th><td><code>{{.V}}</code></td></tr>{{end}}{{if .Date}}<tr><th>finished</th><td>{{.Date}}</td></tr>{{end}}</table>
{{if .Reasons}}<ul class="reasons">{{range .Reasons}}<li>{{.}}</li>{{end}}</ul>{{end}}
{{end}}

{{define "table"}}{{with .Table}}
<table id="quantiles"><tr><th></th><th class="n">{{.BaseLabel}}</th><th class="n">{{.HeadLabel}}</th><th class="n">change</th></tr>
{{range .Rows}}<tr><td>{{.Name}}</td><td class="n">{{.Base}}</td><td class="n">{{.Head}}</td><td class="n">{{.Change}}</td></tr>{{end}}</table>
<p class="muted">{{.Note}}</p>{{end}}{{end}}

{{define "contributors"}}
{{if .Contributors}}{{with .Contributors}}
<p>{{.Variant}}: {{.SlowN}} slow requests (≥ {{.SlowThr}}) against {{.FastN}} fast ones (≤ {{.FastThr}}).</p>
<table id="contributors"><tr><th>contributor</th><th class="n">share of slow-request time</th><th class="n">share of fast</th><th class="n">enrichment</th><th class="n">events</th><th class="n">time in slow requests</th><th>fix</th><th class="n">after all fixes</th></tr>
{{range .Rows}}<tr><td>{{.Name}}</td><td class="n">{{.Slow}}</td><td class="n">{{.Fast}}</td><td class="n">{{.Enrich}}</td><td class="n">{{.Events}}</td><td class="n">{{.Time}}</td><td>{{.Fix}}</td><td class="n">{{.After}}</td></tr>{{end}}</table>
{{end}}{{else}}<p class="warn">Profiles unavailable: {{.Unavailable}}.</p>{{end}}
{{end}}

{{define "stacks"}}{{if .Stacks}}<table class="stack"><tr><th>stack (root → leaf)</th><th class="n">time</th><th class="n">events</th></tr>
{{range .Stacks}}<tr><td>{{range $i, $f := .Frames}}{{if $i}} → {{end}}<code>{{$f}}</code>{{end}}</td><td class="n">{{.Time}}</td><td class="n">{{.Count}}</td></tr>{{end}}</table>{{end}}{{end}}

{{define "attribution"}}{{with .Attr}}
<p>Change in {{.Q}} (negative = faster), {{.Conf}} bootstrap intervals over {{.Blocks}} blocks of interleaved rounds. Isolation: the fix alone against the baseline; leave-one-out: all fixes against all but this one{{if .Full}}; Shapley: the fix's mean marginal effect over all orders{{end}}.</p>
<table id="attribution"><tr><th>fix</th><th class="n">isolation Δ{{.Q}}</th><th class="n">leave-one-out Δ{{.Q}}</th>{{if .Full}}<th class="n">Shapley Δ{{.Q}}</th>{{end}}<th class="n">isolation Δp50</th><th class="n">leave-one-out Δp50</th><th>interacts</th></tr>
{{range .Rows}}<tr><td><code>{{.Fix}}</code></td><td class="n">{{.Iso}}</td><td class="n">{{.LOO}}</td>{{if $.Attr.Full}}<td class="n">{{.Shapley}}</td>{{end}}<td class="n">{{.IsoP50}}</td><td class="n">{{.LOOP50}}</td><td>{{if .Interacts}}<b>yes</b>{{else}}no{{end}}</td></tr>{{end}}
<tr><th>all fixes (cumulative)</th><th class="n">{{.Cum}}</th><th></th>{{if .Full}}<th></th>{{end}}<th class="n">{{.CumP50}}</th><th></th><th></th></tr></table>
{{range .Notes}}<p class="muted">{{.}}</p>{{end}}
{{end}}{{end}}

{{define "variants"}}{{with .Attr}}<table id="variants"><tr><th>variant</th><th class="n">rounds</th><th class="n">p50</th><th class="n">{{.Q}}</th></tr>
{{range .Variants}}<tr><td><code>{{.Name}}</code></td><td class="n">{{.Rounds}}</td><td class="n">{{.P50}}</td><td class="n">{{.P99}}</td></tr>{{end}}</table>{{end}}{{end}}

{{define "flames"}}{{range .Flames}}
<h3>{{.Name}}: {{.BLabel}} over {{.ALabel}}</h3>
<table class="frames"><tr><th></th><th>function</th><th class="n">{{.ALabel}}</th><th class="n">{{.BLabel}}</th><th class="n">change</th></tr>
{{range .Grew}}<tr><td>grew</td><td><code>{{.Name}}</code></td><td class="n">{{.A}}</td><td class="n">{{.B}}</td><td class="n">{{.Delta}}</td></tr>{{end}}
{{range .Shrank}}<tr><td>shrank</td><td><code>{{.Name}}</code></td><td class="n">{{.A}}</td><td class="n">{{.B}}</td><td class="n">{{.Delta}}</td></tr>{{end}}</table>
{{range .SVGs}}{{if .Missing}}<p class="warn">{{.Name}}: {{.Missing}}</p>{{else}}<figure><img class="flame" alt="{{.Name}}" src="{{.URI}}"><figcaption>{{.Name}}</figcaption></figure>{{end}}{{end}}
{{else}}<p class="muted">No flame-graph diffs{{if .Unavailable}}: profiles unavailable: {{.Unavailable}}{{end}}.</p>{{end}}
{{range .Graphs}}{{if .Missing}}<p class="warn">{{.Name}}: {{.Missing}}</p>{{else}}<figure><img class="flame" alt="{{.Name}}" src="{{.URI}}"><figcaption>{{.Name}}</figcaption></figure>{{end}}{{end}}{{end}}

{{define "flamesBrief"}}{{range .Flames}}
<h3>{{.Name}}: {{.BLabel}} over {{.ALabel}}</h3>
<table class="frames"><tr><th></th><th>function</th><th class="n">{{.ALabel}}</th><th class="n">{{.BLabel}}</th><th class="n">change</th></tr>
{{range .Grew}}<tr><td>grew</td><td><code>{{.Name}}</code></td><td class="n">{{.A}}</td><td class="n">{{.B}}</td><td class="n">{{.Delta}}</td></tr>{{end}}
{{range .Shrank}}<tr><td>shrank</td><td><code>{{.Name}}</code></td><td class="n">{{.A}}</td><td class="n">{{.B}}</td><td class="n">{{.Delta}}</td></tr>{{end}}</table>
{{range $i, $s := .SVGs}}{{if not $i}}{{if .Missing}}<p class="warn">{{.Name}}: {{.Missing}}</p>{{else}}<figure><img class="flame" alt="{{.Name}}" src="{{.URI}}"><figcaption>{{.Name}} (the other graphs are in the artifacts)</figcaption></figure>{{end}}{{end}}{{end}}
{{else}}<p class="muted">No flame-graph diffs{{if .Unavailable}}: profiles unavailable: {{.Unavailable}}{{end}}.</p>{{end}}{{end}}

{{define "arms"}}<table id="arms"><tr><th>run</th><th>arm</th><th class="n">valid rounds</th><th class="n">invalid</th><th class="n">requests</th><th class="n">errors</th><th class="n">p50</th><th class="n">p99</th></tr>
{{range .Arms}}<tr><td>{{.Doc}}</td><td><code>{{.Name}}</code></td><td class="n">{{.Rounds}}</td><td class="n">{{.Invalid}}</td><td class="n">{{.Requests}}</td><td class="n">{{.Errors}}</td><td class="n">{{.P50}}</td><td class="n">{{.P99}}</td></tr>{{end}}</table>{{end}}

{{define "soak"}}{{with .Soak}}
<table id="soak"><tr><th>variant</th><td><code>{{.Variant}}</code></td></tr><tr><th>duration</th><td>{{.Duration}} in {{.Windows}} windows of {{.Window}}</td></tr>
<tr><th>p99, first third → last third</th><td>{{.P99First}} → {{.P99Last}} ({{.Drift}}){{if .DriftFlagged}} <span class="warn">drift</span>{{end}}</td></tr>
<tr><th>p99 trend (least squares)</th><td>{{.Slope}}</td></tr><tr><th>worst window</th><td>{{.Worst}} at {{.WorstAt}}</td></tr>
{{if .SLO}}<tr><th>windows over the SLO ({{.SLO}})</th><td>{{.OverSLO}}</td></tr>{{end}}
{{if .HeapFirst}}<tr><th>live heap, first → last third</th><td>{{.HeapFirst}} → {{.HeapLast}} ({{.HeapGrowth}}){{if .HeapFlagged}} <span class="warn">growth</span>{{end}}</td></tr>{{end}}
<tr><th>requests, errors</th><td>{{.Requests}}, {{.Errors}}</td></tr></table>
{{end}}{{end}}

{{define "p50"}}{{with .P50}}<table id="p50"><tr><th>verdict</th><td>{{.Verdict}}</td></tr><tr><th>p50 base → head</th><td>{{.Base}} → {{.Head}}</td></tr>
<tr><th>head/base ratio</th><td>{{.Ratio}} over {{.Pairs}} pairs ({{.Test}})</td></tr><tr><th>tolerance</th><td>{{.Tolerance}}</td></tr><tr><th>noise</th><td>{{.Noise}}</td></tr></table>{{end}}{{end}}

{{define "rounds"}}<table id="rounds" class="stack"><tr><th>run</th><th class="n">order</th><th class="n">block</th><th>arm</th><th class="n">requests</th><th class="n">p50</th><th class="n">p99</th><th class="n">max</th><th>valid</th></tr>
{{range .Rounds}}<tr><td>{{.Doc}}</td><td class="n">{{.Order}}</td><td class="n">{{.Block}}</td><td><code>{{.Arm}}</code></td><td class="n">{{.Count}}</td><td class="n">{{.P50}}</td><td class="n">{{.P99}}</td><td class="n">{{.Max}}</td><td>{{.Valid}}</td></tr>{{end}}</table>{{end}}

{{define "report"}}<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>{{template "style"}}</head><body>
{{template "header" .}}
<h2 class="first">Latency</h2>
{{template "table" .}}
<figure id="fig-spectrum">{{.Plots.Spectrum}}</figure>
<figure id="fig-rounds">{{.Plots.Rounds}}</figure>
{{if .Plots.Soak}}<figure id="fig-soak">{{.Plots.Soak}}</figure>{{end}}
<h2>Slow-request contributors</h2>
{{template "contributors" .}}
{{if .Plots.Contributors}}<figure id="fig-contributors">{{.Plots.Contributors}}</figure>{{end}}
{{if .Plots.Shift}}<figure id="fig-shift">{{.Plots.Shift}}</figure>{{end}}
{{if .Contributors}}{{range .Contributors.Rows}}<h3>{{.Name}}</h3>{{template "stacks" .}}{{end}}{{end}}
{{if .Attr}}<h2>Per-fix attribution</h2>
{{template "attribution" .}}
<figure id="fig-waterfall">{{.Plots.Waterfall}}</figure>
{{template "variants" .}}{{end}}
<h2>Flame graphs</h2>
{{template "flames" .}}
{{if .Soak}}<h2>Soak</h2>{{template "soak" .}}{{end}}
{{if .P50}}<h2>p50 check</h2>{{template "p50" .}}{{end}}
<h2>Rounds</h2>
{{template "rounds" .}}
{{if .Notes}}<h2>Notes</h2><ul>{{range .Notes}}<li>{{.}}</li>{{end}}</ul>{{end}}
</body></html>
{{end}}

{{define "writeup"}}<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>{{template "style"}}</head><body>
{{template "header" .}}
<h2 class="first" id="summary">1. Executive summary</h2>
<ul>{{range .Summary}}<li>{{.}}</li>{{end}}</ul>
{{template "table" .}}
<figure id="fig-spectrum">{{.Plots.Spectrum}}</figure>

<h2 id="method">2. Method</h2>
<p>The service is built at each revision and run on one host. A constant-rate open-loop load of {{.Method.Rate}} drives it; each request's latency is measured from its intended send time, so a stalled server cannot hide its queue (coordinated omission). Rounds of the compared arms run interleaved in mirrored (ABBA) order, so drift of the host hits every arm alike, and the unit of evidence is the round, not the request.</p>
<table id="method"><tr><th>offered load</th><td>{{.Method.Rate}}</td></tr>
{{if .Method.SLO}}<tr><th>SLO</th><td>{{.Method.Quantile}} &lt; {{.Method.SLO}}</td></tr>
<tr><th>rounds</th><td>{{.Method.Pairs}} base/head pairs run (first checkpoint {{.Method.MinRounds}}, at most {{.Method.MaxRounds}}; checkpoints {{.Method.Checkpoints}}), {{.Method.AARounds}} A/A rounds for the noise floor; {{.Method.RoundDuration}} per round after {{.Method.Warmup}} warm-up</td></tr>
<tr><th>samples</th><td>{{.Method.Samples}}</td></tr>
<tr><th>statistics</th><td>order-statistic (binomial) and round-bootstrap ({{.Method.Bootstrap}} resamples) bounds on {{.Method.Quantile}}, α = {{.Method.Alpha}} split over the checkpoints; p50: paired per-round test with a tolerance no tighter than the A/A noise floor</td></tr>{{end}}
{{if .Attr}}<tr><th>attribution</th><td>{{.Method.Variants}} variants × {{.Method.Blocks}} complete blocks; intervals {{.Method.AttrConf}}; method of the waterfall: {{.Attr.Method}}</td></tr>{{end}}
<tr><th>schedule seed</th><td>{{.Method.ScheduleSeed}}</td></tr></table>
<p>Profiles come from eBPF collectors (off-CPU, run queue, futex, page faults, NUMA migrations, block I/O, on-CPU samples) and Go-runtime uprobes (GC stop-the-world and assists, goroutine park/ready with wait reasons), joined to request windows on one monotonic clock. Each slow request's time is split into components and classified into contributors; a contributor's enrichment is its share of slow-request time over its share of fast-request time.</p>
<figure id="fig-rounds">{{.Plots.Rounds}}</figure>

<h2 id="contributors">3. The contributors, with evidence</h2>
{{template "contributors" .}}
{{if .Plots.Contributors}}<figure id="fig-contributors">{{.Plots.Contributors}}</figure>{{end}}
{{if .Contributors}}{{range $i, $c := .Contributors.Rows}}<h3>3.{{inc $i}} {{.Name}}</h3>
<p>{{.Name}} takes {{.Slow}} of the slow requests' time against {{.Fast}} of the fast requests' ({{.Enrich}}), {{.Events}} events and {{.Time}} in slow requests{{if .Fix}}; the fix <code>{{.Fix}}</code> targets it{{end}}{{if .After}}; with all fixes its share is {{.After}}{{end}}.</p>
{{template "stacks" .}}{{end}}{{end}}

<h2 id="fixes">4. The fixes</h2>
{{range $i, $f := .Fixes}}<h3>4.{{inc $i}} <code>{{.Name}}</code></h3>
<p><b>Hypothesis{{if .Generated}} (from the profile){{end}}:</b> {{.Hypothesis}}</p>
{{if .Iso}}<table class="fix"><tr><th>{{$.Attr.Q}} alone vs baseline</th><td>{{.AloneP99}} vs {{.BaselineP99}}</td></tr><tr><th>isolation</th><td>{{.Iso}} ({{.Effect}})</td></tr><tr><th>leave-one-out</th><td>{{.LOO}}</td></tr>{{if .Shapley}}<tr><th>Shapley</th><td>{{.Shapley}}</td></tr>{{end}}<tr><th>interaction (isolation − leave-one-out)</th><td>{{.Interact}}</td></tr><tr><th>p50, isolation</th><td>{{.IsoP50}} ({{.P50Effect}})</td></tr></table>{{end}}
{{if or .Before .After}}<table class="fix"><tr><th>contributor <code>{{.Contributor}}</code></th><th class="n">share of slow time</th><th class="n">share of fast</th><th class="n">time in slow requests</th></tr>
{{with .Before}}<tr><td>before ({{$f.BeforeVariant}})</td><td class="n">{{.Slow}}</td><td class="n">{{.Fast}}</td><td class="n">{{.Time}}</td></tr>{{end}}
{{with .After}}<tr><td>after ({{$f.AfterVariant}})</td><td class="n">{{.Slow}}</td><td class="n">{{.Fast}}</td><td class="n">{{.Time}}</td></tr>{{end}}</table>{{end}}
{{if .Caveats}}<p><b>Caveats:</b></p><ul>{{range .Caveats}}<li>{{.}}</li>{{end}}</ul>{{end}}
{{else}}<p class="muted">No fixes were declared or attributed.</p>{{end}}

<h2 id="results">5. Results</h2>
{{if .Attr}}{{template "attribution" .}}<figure id="fig-waterfall">{{.Plots.Waterfall}}</figure>{{template "variants" .}}{{end}}
{{if .Plots.Shift}}<figure id="fig-shift">{{.Plots.Shift}}</figure>{{end}}
{{if .Soak}}<h3>Soak</h3>{{template "soak" .}}<figure id="fig-soak">{{.Plots.Soak}}</figure>{{end}}
{{if .P50}}<h3>p50 check</h3>{{template "p50" .}}{{end}}
<h3>Flame-graph diffs</h3>
{{template "flamesBrief" .}}

<h2 id="risks">6. Risks</h2>
<ul>{{range .Risks}}<li>{{.}}</li>{{end}}</ul>

<h2 id="recommendations" class="first">7. Recommendations</h2>
<ol>{{range .Recs}}<li>{{.}}</li>{{end}}</ol>

<h2 id="appendix">Appendix: artifacts and runs</h2>
{{if .Artifacts}}<ul>{{range .Artifacts}}<li><code>{{.}}</code></li>{{end}}</ul>{{end}}
<p>Every round is listed in report.html; per arm:</p>
{{template "arms" .}}
{{if .Notes}}<h3>Notes</h3><ul>{{range .Notes}}<li>{{.}}</li>{{end}}</ul>{{end}}
</body></html>
{{end}}
`
