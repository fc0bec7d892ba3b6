package report

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// The plots are drawn here as plain SVG (no script, no external font or
// CDN), so the HTML report and the write-up are single files that render
// the same in a browser and in Chromium's PDF printer. Every plot's <svg>
// carries class="plot" and data-plot="<kind>"; its marks are <path> (lines)
// and <rect> (bars) elements with class "mark", which the tests count.

// palette is colour-blind safe (Okabe–Ito), base first.
var palette = []string{"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000", "#999999",
	"#882255", "#44AA99", "#332288", "#AA4499", "#117733", "#DDCC77"}

func color(i int) string { return palette[i%len(palette)] }

func esc(s string) string { return html.EscapeString(s) }

// Series is one line of a line plot.
type Series struct {
	Name string
	X, Y []float64
	// Dots draws markers instead of a line.
	Dots bool
}

// LinePlot is a line chart; with LogX the x axis is logarithmic.
type LinePlot struct {
	Kind, Title, XLabel, YLabel string
	LogX                        bool
	// XTicks overrides the x ticks (value -> label).
	XTicks []Tick
	// HLine draws a dashed reference line at this y (0: none), labelled.
	HLine      float64
	HLineLabel string
	Series     []Series
	W, H       int
}

// Tick is an axis tick.
type Tick struct {
	V     float64
	Label string
}

const (
	mLeft, mRight, mTop, mBottom = 64, 16, 34, 64
)

func niceStep(span float64, n int) float64 {
	if span <= 0 {
		return 1
	}
	raw := span / float64(n)
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

func fnum(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e9 {
		return fmt.Sprintf("%.0f", v)
	}
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.3f", v), "0"), ".")
}

func svgOpen(b *strings.Builder, kind, title string, w, h int) {
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" class="plot" data-plot="%s" viewBox="0 0 %d %d" width="%d" height="%d" role="img" font-family="sans-serif" font-size="11">`,
		esc(kind), w, h, w, h)
	fmt.Fprintf(b, `<title>%s</title><text x="%d" y="18" font-size="13" font-weight="bold">%s</text>`, esc(title), mLeft, esc(title))
}

func emptyPlot(kind, title, why string, w, h int) string {
	var b strings.Builder
	svgOpen(&b, kind, title, w, h)
	fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#666">%s</text></svg>`, mLeft, h/2, esc(why))
	return b.String()
}

// SVG renders the plot.
func (p LinePlot) SVG() string {
	w, h := p.W, p.H
	if w == 0 {
		w = 720
	}
	if h == 0 {
		h = 360
	}
	tx := func(x float64) float64 {
		if p.LogX {
			return math.Log10(x)
		}
		return x
	}
	xmin, xmax, ymax := math.Inf(1), math.Inf(-1), 0.0
	n := 0
	for _, s := range p.Series {
		for i := range s.X {
			if p.LogX && s.X[i] <= 0 || math.IsNaN(s.Y[i]) || math.IsInf(s.X[i], 0) {
				continue
			}
			xmin, xmax = math.Min(xmin, tx(s.X[i])), math.Max(xmax, tx(s.X[i]))
			ymax = math.Max(ymax, s.Y[i])
			n++
		}
	}
	if n == 0 {
		return emptyPlot(p.Kind, p.Title, "no data", w, h)
	}
	ymax = math.Max(ymax, p.HLine)
	if xmax == xmin {
		xmin, xmax = xmin-1, xmax+1
	}
	step := niceStep(ymax, 5)
	ytop := math.Ceil(ymax*1.05/step) * step
	if ytop == 0 {
		ytop = 1
	}
	pw, ph := float64(w-mLeft-mRight), float64(h-mTop-mBottom)
	items, lh := layoutLegend(p.Series, w, float64(h-12))
	h += int(lh) - 16
	X := func(x float64) float64 { return mLeft + (tx(x)-xmin)/(xmax-xmin)*pw }
	Y := func(y float64) float64 { return mTop + ph - y/ytop*ph }
	var b strings.Builder
	svgOpen(&b, p.Kind, p.Title, w, h)
	// Grid and y ticks.
	for y := 0.0; y <= ytop+step/2; y += step {
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" text-anchor="end">%s</text>`,
			mLeft, w-mRight, Y(y), Y(y), mLeft-6, Y(y)+4, fnum(y))
	}
	ticks := p.XTicks
	if len(ticks) == 0 {
		lo, hi := xmin, xmax
		if p.LogX {
			for e := math.Ceil(lo); e <= hi; e++ {
				ticks = append(ticks, Tick{math.Pow(10, e), fnum(math.Pow(10, e))})
			}
		} else {
			st := niceStep(hi-lo, 6)
			for x := math.Ceil(lo/st) * st; x <= hi+st/1e6; x += st {
				ticks = append(ticks, Tick{x, fnum(x)})
			}
		}
	}
	for _, t := range ticks {
		if tx(t.V) < xmin-1e-9 || tx(t.V) > xmax+1e-9 {
			continue
		}
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%.1f" stroke="#eee"/><text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`,
			X(t.V), X(t.V), mTop, mTop+ph, X(t.V), mTop+ph+16, esc(t.Label))
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.0f" height="%.0f" fill="none" stroke="#888"/>`, mLeft, mTop, pw, ph)
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle">%s</text>`, mLeft+pw/2, mTop+ph+34, esc(p.XLabel))
	fmt.Fprintf(&b, `<text transform="translate(14 %.0f) rotate(-90)" text-anchor="middle">%s</text>`, mTop+ph/2, esc(p.YLabel))
	if p.HLine > 0 {
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#c00" stroke-dasharray="6 4"/><text x="%d" y="%.1f" fill="#c00" text-anchor="end">%s</text>`,
			mLeft, w-mRight, Y(p.HLine), Y(p.HLine), w-mRight-4, Y(p.HLine)-4, esc(p.HLineLabel))
	}
	for i, s := range p.Series {
		var d strings.Builder
		for j := range s.X {
			if p.LogX && s.X[j] <= 0 || math.IsNaN(s.Y[j]) {
				continue
			}
			if s.Dots {
				fmt.Fprintf(&d, "M%.1f %.1fm-3 0a3 3 0 1 0 6 0a3 3 0 1 0 -6 0", X(s.X[j]), Y(s.Y[j]))
				continue
			}
			cmd := "L"
			if d.Len() == 0 {
				cmd = "M"
			}
			fmt.Fprintf(&d, "%s%.1f %.1f", cmd, X(s.X[j]), Y(s.Y[j]))
		}
		if d.Len() == 0 {
			continue
		}
		fill := "none"
		if s.Dots {
			fill = color(i)
		}
		fmt.Fprintf(&b, `<path class="mark" d="%s" fill="%s" stroke="%s" stroke-width="2"><title>%s</title></path>`, d.String(), fill, color(i), esc(s.Name))
	}
	drawLegend(&b, items)
	b.WriteString("</svg>")
	return b.String()
}

// legendItem is a placed legend entry.
type legendItem struct {
	x, y  float64
	label string
	color string
}

// layoutLegend places the series names in rows under the plot, starting
// at y0; it returns the items and the height they take.
func layoutLegend(ss []Series, w int, y0 float64) ([]legendItem, float64) {
	var items []legendItem
	x, y := float64(mLeft), y0
	for i, s := range ss {
		label := s.Name
		if r := []rune(label); len(r) > 40 {
			label = string(r[:40]) + "…"
		}
		width := 22 + 6.5*float64(len([]rune(label)))
		if x+width > float64(w-mRight) && x > mLeft {
			x, y = mLeft, y+16
		}
		items = append(items, legendItem{x, y, label, color(i)})
		x += width + 10
	}
	if len(items) == 0 {
		return nil, 0
	}
	return items, y - y0 + 16
}

func drawLegend(b *strings.Builder, items []legendItem) {
	for _, it := range items {
		fmt.Fprintf(b, `<line x1="%.0f" x2="%.0f" y1="%.0f" y2="%.0f" stroke="%s" stroke-width="3"/><text x="%.0f" y="%.0f">%s</text>`,
			it.x, it.x+14, it.y-4, it.y-4, it.color, it.x+18, it.y, esc(it.label))
	}
}

// Bar is one bar of a BarPlot: Values are drawn side by side (one per
// group name), with optional error bars [Lo, Hi].
type Bar struct {
	Label  string
	Values []float64
}

// BarPlot is a horizontal grouped bar chart.
type BarPlot struct {
	Kind, Title, XLabel string
	Groups              []string // name of each value of a Bar
	Bars                []Bar
	Format              func(float64) string
	W                   int
}

// SVG renders the plot.
func (p BarPlot) SVG() string {
	w := p.W
	if w == 0 {
		w = 720
	}
	rowH := 14 * max(1, len(p.Groups))
	h := mTop + len(p.Bars)*(rowH+10) + 56
	if len(p.Bars) == 0 {
		return emptyPlot(p.Kind, p.Title, "no data", w, 120)
	}
	vmax := 0.0
	for _, br := range p.Bars {
		for _, v := range br.Values {
			if !math.IsInf(v, 0) && !math.IsNaN(v) {
				vmax = math.Max(vmax, v)
			}
		}
	}
	if vmax == 0 {
		vmax = 1
	}
	left := 170
	pw := float64(w - left - 80)
	var b strings.Builder
	svgOpen(&b, p.Kind, p.Title, w, h)
	format := p.Format
	if format == nil {
		format = fnum
	}
	y := mTop + 4
	for _, br := range p.Bars {
		label := br.Label
		if r := []rune(label); len(r) > 26 {
			label = string(r[:26]) + "…"
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`, left-6, y+rowH/2+4, esc(label))
		for g, v := range br.Values {
			bw := v / vmax * pw
			if math.IsNaN(bw) || bw < 0 {
				bw = 0
			}
			fmt.Fprintf(&b, `<rect class="mark" x="%d" y="%d" width="%.1f" height="12" fill="%s"><title>%s %s: %s</title></rect><text x="%.1f" y="%d">%s</text>`,
				left, y+g*14, math.Max(bw, 1), color(g), esc(br.Label), esc(p.groupName(g)), esc(format(v)), float64(left)+math.Max(bw, 1)+4, y+g*14+10, esc(format(v)))
		}
		y += rowH + 10
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`, left, y+14, esc(p.XLabel))
	var ss []Series
	for _, g := range p.Groups {
		ss = append(ss, Series{Name: g})
	}
	items, _ := layoutLegend(ss, w, float64(h-12))
	drawLegend(&b, items)
	b.WriteString("</svg>")
	return b.String()
}

func (p BarPlot) groupName(g int) string {
	if g < len(p.Groups) {
		return p.Groups[g]
	}
	return ""
}

// Step is one step of a waterfall: a change with its interval.
type Step struct {
	Label          string
	Delta, Lo, Hi  float64
	HasCI, IsTotal bool
}

// Waterfall is a waterfall chart from Start through the steps; a step
// with IsTotal is drawn from zero to its Delta (a level, not a change).
type Waterfall struct {
	Kind, Title, YLabel string
	Start               Step // IsTotal level the chart starts from
	Steps               []Step
	W, H                int
}

// SVG renders the plot.
func (p Waterfall) SVG() string {
	w, h := p.W, p.H
	if w == 0 {
		w = 720
	}
	if h == 0 {
		h = 380
	}
	all := append([]Step{p.Start}, p.Steps...)
	level := 0.0
	top := 0.0
	type bar struct {
		s      Step
		y0, y1 float64
	}
	var bars []bar
	for _, s := range all {
		if s.IsTotal {
			bars = append(bars, bar{s, 0, s.Delta})
			level = s.Delta
		} else {
			bars = append(bars, bar{s, level, level + s.Delta})
			level += s.Delta
		}
		top = math.Max(top, math.Max(bars[len(bars)-1].y0, bars[len(bars)-1].y1))
		if s.HasCI {
			top = math.Max(top, bars[len(bars)-1].y0+s.Hi)
		}
	}
	if top <= 0 {
		return emptyPlot(p.Kind, p.Title, "no data", w, h)
	}
	step := niceStep(top, 5)
	ytop := math.Ceil(top*1.05/step) * step
	pw, ph := float64(w-mLeft-mRight), float64(h-mTop-mBottom)
	Y := func(y float64) float64 { return mTop + ph - math.Max(0, y)/ytop*ph }
	slot := pw / float64(len(bars))
	var b strings.Builder
	svgOpen(&b, p.Kind, p.Title, w, h)
	for y := 0.0; y <= ytop+step/2; y += step {
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" text-anchor="end">%s</text>`,
			mLeft, w-mRight, Y(y), Y(y), mLeft-6, Y(y)+4, fnum(y))
	}
	fmt.Fprintf(&b, `<text transform="translate(14 %.0f) rotate(-90)" text-anchor="middle">%s</text>`, mTop+ph/2, esc(p.YLabel))
	for i, br := range bars {
		x := mLeft + float64(i)*slot + slot*0.15
		bw := slot * 0.7
		lo, hi := math.Min(br.y0, br.y1), math.Max(br.y0, br.y1)
		fill := "#777"
		switch {
		case br.s.IsTotal:
			fill = palette[0]
		case br.s.Delta < 0:
			fill = palette[2]
		case br.s.Delta > 0:
			fill = palette[1]
		}
		fmt.Fprintf(&b, `<rect class="mark" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %s</title></rect>`,
			x, Y(hi), bw, math.Max(Y(lo)-Y(hi), 1), fill, esc(br.s.Label), esc(fnum(math.Round(br.s.Delta*1000)/1000)))
		if br.s.HasCI {
			cx := x + bw/2
			fmt.Fprintf(&b, `<path d="M%.1f %.1fV%.1fM%.1f %.1fh8M%.1f %.1fh8" stroke="#000" fill="none"/>`,
				cx, Y(br.y0+br.s.Lo), Y(br.y0+br.s.Hi), cx-4, Y(br.y0+br.s.Lo), cx-4, Y(br.y0+br.s.Hi))
		}
		if i+1 < len(bars) && !bars[i+1].s.IsTotal {
			end := br.y1
			fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#999" stroke-dasharray="3 3"/>`, x+bw, x+slot, Y(end), Y(end))
		}
		label := br.s.Label
		if r := []rune(label); len(r) > 18 {
			label = string(r[:18]) + "…"
		}
		val := fnum(math.Round(br.s.Delta*100) / 100)
		if !br.s.IsTotal && br.s.Delta > 0 {
			val = "+" + val
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text><text x="%.1f" y="%.1f" text-anchor="middle" fill="#333">%s</text>`,
			x+bw/2, mTop+ph+16, esc(label), x+bw/2, mTop+ph+30, esc(val))
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.0f" height="%.0f" fill="none" stroke="#888"/></svg>`, mLeft, mTop, pw, ph)
	return b.String()
}
