package flame

import (
	"bufio"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Defaults for Options; a zero field means the default.
const (
	DefaultWidth       = 1200 // pixels
	DefaultFrameHeight = 16   // pixels
	DefaultFontSize    = 12   // pixels
	DefaultMinWidth    = 0.1  // pixels: narrower frames (and their children) are omitted
	fontWidth          = 0.59 // average glyph width / font size, for truncating names
	xpad               = 10
	highlight          = "rgb(230,0,230)"
)

// Palette selects the colours of a plain flame graph.
type Palette int

const (
	// PaletteOnCPU is the warm (red–yellow) palette of on-CPU profiles.
	PaletteOnCPU Palette = iota
	// PaletteOffCPU is the blue palette of off-CPU (blocked time) profiles.
	PaletteOffCPU
)

// Options control an SVG flame graph. The zero value gives an on-CPU flame
// graph DefaultWidth pixels wide.
type Options struct {
	Title       string  // heading; default "Flame Graph" or "Off-CPU Flame Graph"
	Subtitle    string  // optional second line
	Width       int     // image width in pixels
	FrameHeight int     // pixels per stack level
	FontSize    float64 // pixels
	MinWidth    float64 // pixels; frames narrower than this are not drawn
	Palette     Palette
	Icicle      bool // root at the top, stacks growing down
}

func (o Options) withDefaults() Options {
	if o.Width <= 0 {
		o.Width = DefaultWidth
	} else if o.Width < 200 {
		o.Width = 200 // room for the title and buttons
	}
	if o.FrameHeight <= 0 {
		o.FrameHeight = DefaultFrameHeight
	}
	if o.FontSize <= 0 {
		o.FontSize = DefaultFontSize
	}
	if o.MinWidth <= 0 {
		o.MinWidth = DefaultMinWidth
	}
	if o.Title == "" {
		o.Title = "Flame Graph"
		if o.Palette == PaletteOffCPU {
			o.Title = "Off-CPU Flame Graph"
		}
	}
	return o
}

// RenderSVG writes p as a self-contained interactive SVG flame graph:
// every frame is a rect whose width is its inclusive value, with its name
// truncated to fit and a <title> giving the value and the percentage of the
// total. The inline script adds click-to-zoom, search (click "Search", press
// Ctrl-F, or open the file with ?s=regexp) with the matched percentage, and
// ?z=N zooms on the N-th frame. Names are XML-escaped and only ever handled
// as text by the script, so a symbol cannot inject markup or code.
func RenderSVG(w io.Writer, p *Profile, o Options) error {
	o = o.withDefaults()
	root, depth := buildTree(p)
	unit := p.UnitOrDefault()
	total := root.total[0]
	pal := o.Palette
	style := func(n *node) (string, string) {
		info := fmt.Sprintf("%s (%s, %s%%)", n.name, formatQuantity(n.total[0], unit), formatPct(n.total[0], total))
		return frameColor(n.name, pal), info
	}
	return render(w, root, depth, 0, o, style)
}

// render lays out the tree with widths taken from series s and writes the
// SVG. style gives each frame's fill colour and hover text.
func render(w io.Writer, root *node, depth, s int, o Options, style func(*node) (fill, info string)) error {
	fs := o.FontSize
	fh := float64(o.FrameHeight)
	width := float64(o.Width)
	ypad1 := fs * 3
	if o.Subtitle != "" {
		ypad1 += fs * 1.5
	}
	ypad2 := fs*2 + 10
	height := math.Ceil(float64(depth+1)*fh + ypad1 + ypad2)
	full := width - 2*xpad
	total := root.total[s]
	// base is the y of the root frame; the script derives depths from it.
	base := height - ypad2 - fh
	if o.Icicle {
		base = ypad1
	}

	sw := &svgWriter{w: bufio.NewWriterSize(w, 64<<10)}
	sw.printf(`<?xml version="1.0" standalone="no"?>
<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">
<svg version="1.1" width="%d" height="%s" viewBox="0 0 %d %s" xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">
`, o.Width, ff(height), o.Width, ff(height))
	sw.printf(`<defs><linearGradient id="background" y1="0" y2="1" x1="0" x2="0"><stop stop-color="#eeeeee" offset="5%%"/><stop stop-color="#eeeeb0" offset="95%%"/></linearGradient></defs>
<style type="text/css">
text { font-family: Verdana, sans-serif; font-size: %spx; fill: rgb(0,0,0); }
#title { text-anchor: middle; font-size: %spx; }
#subtitle { text-anchor: middle; fill: rgb(100,100,100); }
#search, #unzoom, #reset { cursor: pointer; }
.f { cursor: pointer; }
.f:hover rect { stroke: rgb(0,0,0); stroke-width: 0.5; }
.f text { pointer-events: none; }
.hide { display: none; }
.parent { opacity: 0.5; }
</style>
`, ff(fs), ff(fs+5))
	sw.printf("<script type=\"text/ecmascript\"><![CDATA[\n\"use strict\";\nvar CFG = {W: %d, pad: %d, fh: %s, fs: %s, fw: %s, base: %s, icicle: %t, hl: %q};\n%s]]></script>\n",
		o.Width, xpad, ff(fh), ff(fs), ff(fontWidth), ff(base), o.Icicle, highlight, script)
	sw.printf(`<rect x="0" y="0" width="%d" height="%s" fill="url(#background)"/>`+"\n", o.Width, ff(height))
	sw.printf(`<text id="title" x="%s" y="%s">`, ff(width/2), ff(fs*2))
	sw.text(o.Title)
	sw.printf("</text>\n")
	if o.Subtitle != "" {
		sw.printf(`<text id="subtitle" x="%s" y="%s">`, ff(width/2), ff(fs*3.5))
		sw.text(o.Subtitle)
		sw.printf("</text>\n")
	}
	sw.printf(`<text id="unzoom" class="hide" x="%d" y="%s">Reset Zoom</text>`+"\n", xpad, ff(fs*2))
	sw.printf(`<text id="search" x="%s" y="%s">Search</text>`+"\n", ff(width-xpad-60), ff(fs*2))
	sw.printf(`<text id="reset" class="hide" x="%s" y="%s">Reset Search</text>`+"\n", ff(width-xpad-170), ff(fs*2))
	sw.printf(`<text id="details" x="%d" y="%s"> </text>`+"\n", xpad, ff(height-ypad2/2))
	sw.printf(`<text id="matched" x="%s" y="%s"> </text>`+"\n", ff(width-xpad-120), ff(height-ypad2/2))
	sw.printf("<g id=\"frames\">\n")

	maxChars := func(px float64) int { return int((px - 6) / (fs * fontWidth)) }
	var walk func(n *node, d int, x float64)
	walk = func(n *node, d int, x float64) {
		fw := 0.0
		if total > 0 {
			fw = n.total[s] / total * full
		}
		if fw < o.MinWidth {
			return
		}
		y := base - float64(d)*fh
		if o.Icicle {
			y = base + float64(d)*fh
		}
		fill, info := style(n)
		b := append(sw.scratch[:0], `<g class="f"><title>`...)
		b = appendEscaped(b, info)
		b = append(b, `</title><rect x="`...)
		b = appendFF(b, x)
		b = append(b, `" y="`...)
		b = appendFF(b, y)
		b = append(b, `" width="`...)
		b = appendFF(b, fw)
		b = append(b, `" height="`...)
		b = appendFF(b, fh-1)
		b = append(b, `" fill="`...)
		b = append(b, fill...)
		b = append(b, `" rx="2" ry="2"/><text x="`...)
		b = appendFF(b, x+3)
		b = append(b, `" y="`...)
		b = appendFF(b, y+fh/2+fs/2-2)
		b = append(b, `">`...)
		b = appendEscaped(b, truncate(n.name, maxChars(fw)))
		b = append(b, "</text></g>\n"...)
		sw.scratch = b
		sw.write(b)
		cx := x
		for _, c := range n.children {
			walk(c, d+1, cx)
			if total > 0 {
				cx += c.total[s] / total * full
			}
		}
	}
	walk(root, 0, xpad)
	sw.printf("</g>\n</svg>\n")
	if sw.err != nil {
		return fmt.Errorf("render svg: %w", sw.err)
	}
	if err := sw.w.Flush(); err != nil {
		return fmt.Errorf("render svg: %w", err)
	}
	return nil
}

type svgWriter struct {
	w       *bufio.Writer
	err     error
	scratch []byte
}

func (s *svgWriter) write(b []byte) {
	if s.err == nil {
		_, s.err = s.w.Write(b)
	}
}

func (s *svgWriter) printf(format string, args ...any) {
	if s.err != nil {
		return
	}
	if len(args) == 0 {
		_, s.err = s.w.WriteString(format)
		return
	}
	_, s.err = fmt.Fprintf(s.w, format, args...)
}

// text writes s escaped for XML character data. Characters XML cannot
// carry (controls, invalid UTF-8) become U+FFFD.
func (s *svgWriter) text(t string) {
	if s.err != nil {
		return
	}
	s.scratch = appendEscaped(s.scratch[:0], t)
	s.write(s.scratch)
}

// ff formats a coordinate with at most two decimals.
func ff(v float64) string { return string(appendFF(nil, v)) }

func appendFF(b []byte, v float64) []byte {
	start := len(b)
	b = strconv.AppendFloat(b, v, 'f', 2, 64)
	for len(b) > start && b[len(b)-1] == '0' {
		b = b[:len(b)-1]
	}
	if len(b) > start && b[len(b)-1] == '.' {
		b = b[:len(b)-1]
	}
	if len(b) == start || string(b[start:]) == "-0" {
		b = append(b[:start], '0')
	}
	return b
}

// appendEscaped appends s escaped for XML character data, as
// xml.EscapeText does: markup characters become entities, and characters
// XML cannot carry (controls, invalid UTF-8) become U+FFFD.
func appendEscaped(b []byte, s string) []byte {
	last := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < utf8.RuneSelf && c != '<' && c != '>' && c != '&' && c != '"' && c != '\'' {
			i++
			continue
		}
		r, width := utf8.DecodeRuneInString(s[i:])
		var esc string
		switch {
		case r == '<':
			esc = "&lt;"
		case r == '>':
			esc = "&gt;"
		case r == '&':
			esc = "&amp;"
		case r == '"':
			esc = "&#34;"
		case r == '\'':
			esc = "&#39;"
		case r == '\t':
			esc = "&#x9;"
		case r == '\n':
			esc = "&#xA;"
		case r == '\r':
			esc = "&#xD;"
		case r == utf8.RuneError && width == 1, !isXMLChar(r):
			esc = "\uFFFD"
		default:
			i += width
			continue
		}
		b = append(b, s[last:i]...)
		b = append(b, esc...)
		i += width
		last = i
	}
	return append(b, s[last:]...)
}

// isXMLChar reports whether r may appear in an XML 1.0 document.
func isXMLChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}

// truncate fits name into n characters, marking a cut with "..". Names
// that cannot show three characters are dropped, as flamegraph.pl does.
func truncate(name string, n int) string {
	if n < 3 {
		return ""
	}
	if len(name) <= n { // bytes >= runes, so this is a cheap sufficient test
		return name
	}
	r := []rune(name)
	if len(r) <= n {
		return name
	}
	return string(r[:n-2]) + ".."
}

// frameColor derives a colour from a hash of the function name, so a
// function keeps its colour across graphs and runs. Kernel frames (names
// ending in "_[k]", as the folded files of `tailgate profile` mark them)
// get an orange (on-CPU) or violet (off-CPU) range of their own.
func frameColor(name string, p Palette) string {
	h := fnv.New64a()
	h.Write([]byte(name))
	x := h.Sum64()
	v1 := float64(x&0xffff) / 0xffff
	v2 := float64(x>>16&0xffff) / 0xffff
	v3 := float64(x>>32&0xffff) / 0xffff
	var r, g, b int
	kernel := strings.HasSuffix(name, "_[k]") // flamegraph.pl's kernel-frame annotation
	switch {
	case kernel && p == PaletteOffCPU:
		r = 130 + int(40*v1)
		g = 110 + int(40*v1)
		b = 210 + int(45*v2)
	case kernel:
		r = 190 + int(65*v1)
		g = 90 + int(65*v1)
		b = 0
	case p == PaletteOffCPU:
		r = 40 + int(70*v1)
		g = 100 + int(90*v2)
		b = 195 + int(60*v3)
	default:
		r = 205 + int(50*v3)
		g = int(230 * v1)
		b = int(55 * v2)
	}
	return "rgb(" + strconv.Itoa(r) + "," + strconv.Itoa(g) + "," + strconv.Itoa(b) + ")"
}

// formatValue prints a value for humans: integers with thousands
// separators, fractions with four significant digits.
func formatValue(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		neg := v < 0
		s := strconv.FormatInt(int64(math.Abs(v)), 10)
		var b strings.Builder
		if neg {
			b.WriteByte('-')
		}
		for i, c := range s {
			if i > 0 && (len(s)-i)%3 == 0 {
				b.WriteByte(',')
			}
			b.WriteRune(c)
		}
		return b.String()
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

// formatQuantity prints a value with its unit; nanoseconds (also per
// request) are scaled to the largest of s, ms, µs that keeps them >= 1.
func formatQuantity(v float64, unit string) string {
	if rest, ok := strings.CutPrefix(unit, "nanoseconds"); ok && (rest == "" || rest[0] == '/') {
		a := math.Abs(v)
		scale, name := 1.0, "ns"
		switch {
		case a >= 1e9:
			scale, name = 1e9, "s"
		case a >= 1e6:
			scale, name = 1e6, "ms"
		case a >= 1e3:
			scale, name = 1e3, "µs"
		}
		if scale == 1 && v == math.Trunc(v) {
			return formatValue(v) + " " + name + rest
		}
		return strconv.FormatFloat(v/scale, 'f', 3, 64) + " " + name + rest
	}
	return formatValue(v) + " " + unit
}

func formatPct(v, total float64) string {
	if total == 0 {
		return "0.00"
	}
	return strconv.FormatFloat(v/total*100, 'f', 2, 64)
}

// script is the inline ECMAScript of every graph. It reads frame names
// from the <title> text and writes them back only through textContent, so
// escaped names stay text. It marks the document with data-ready="1" once
// initialised and data-jserror on any uncaught error, which the Chromium
// test checks.
const script = `var svg = document.documentElement, frames = [], term = null;
var details, matched, unzoomBtn, resetBtn;
window.addEventListener("error", function (e) { svg.setAttribute("data-jserror", String(e.message)); });
window.addEventListener("load", init);
function byId(id) { return document.getElementById(id); }
function nameOf(info) { return info.replace(/ \([^()]*\)$/, ""); }
function init() {
  details = byId("details"); matched = byId("matched"); unzoomBtn = byId("unzoom"); resetBtn = byId("reset");
  var gs = byId("frames").getElementsByTagName("g");
  for (var i = 0; i < gs.length; i++) {
    var g = gs[i], r = g.getElementsByTagName("rect")[0], t = g.getElementsByTagName("text")[0];
    var info = g.getElementsByTagName("title")[0].textContent, y = parseFloat(r.getAttribute("y"));
    frames.push({g: g, r: r, t: t, info: info, name: nameOf(info),
      x: parseFloat(r.getAttribute("x")), w: parseFloat(r.getAttribute("width")), fill: r.getAttribute("fill"),
      depth: Math.round(CFG.icicle ? (y - CFG.base) / CFG.fh : (CFG.base - y) / CFG.fh)});
    hook(i);
  }
  unzoomBtn.addEventListener("click", unzoom);
  byId("search").addEventListener("click", askSearch);
  resetBtn.addEventListener("click", resetSearch);
  window.addEventListener("keydown", function (e) {
    if ((e.ctrlKey || e.metaKey) && e.key === "f") { e.preventDefault(); askSearch(); }
    else if (e.key === "Escape") { resetSearch(); unzoom(); }
  });
  var q = new URLSearchParams(window.location.search);
  if (q.has("z")) zoom(parseInt(q.get("z"), 10));
  if (q.has("s")) search(q.get("s"));
  svg.setAttribute("data-frames", String(frames.length));
  svg.setAttribute("data-ready", "1");
}
function hook(i) {
  var f = frames[i];
  f.g.addEventListener("click", function () { zoom(i); });
  f.g.addEventListener("mouseover", function () { details.textContent = f.info; });
  f.g.addEventListener("mouseout", function () { details.textContent = " "; });
}
function fit(name, w) {
  var n = Math.floor((w - 6) / (CFG.fs * CFG.fw));
  if (n < 3) return "";
  var r = Array.from(name);
  if (r.length <= n) return name;
  return r.slice(0, n - 2).join("") + "..";
}
function place(f, x, w) {
  f.r.setAttribute("x", x.toFixed(2)); f.r.setAttribute("width", w.toFixed(2));
  f.t.setAttribute("x", (x + 3).toFixed(2)); f.t.textContent = fit(f.name, w);
}
function zoom(i) {
  var z = frames[i];
  if (!z) return;
  var full = CFG.W - 2 * CFG.pad, k = full / z.w, eps = 0.005;
  for (var j = 0; j < frames.length; j++) {
    var f = frames[j], c = f.g.classList;
    var inside = f.x >= z.x - eps && f.x + f.w <= z.x + z.w + eps;
    var covers = f.x <= z.x + eps && f.x + f.w >= z.x + z.w - eps;
    if (f.depth >= z.depth && inside) { c.remove("hide"); c.remove("parent"); place(f, CFG.pad + (f.x - z.x) * k, f.w * k); }
    else if (f.depth < z.depth && covers) { c.remove("hide"); c.add("parent"); place(f, CFG.pad, full); }
    else c.add("hide");
  }
  unzoomBtn.classList.remove("hide");
  svg.setAttribute("data-zoomed", String(i));
}
function unzoom() {
  for (var j = 0; j < frames.length; j++) {
    var f = frames[j];
    f.g.classList.remove("hide"); f.g.classList.remove("parent"); place(f, f.x, f.w);
  }
  unzoomBtn.classList.add("hide");
  svg.removeAttribute("data-zoomed");
}
function askSearch() {
  var s = window.prompt("Search for a function (regular expression):", term || "");
  if (s !== null && s !== "") search(s);
}
function search(s) {
  var re;
  try { re = new RegExp(s); } catch (e) { matched.textContent = "Bad regular expression"; return; }
  term = s;
  var iv = [];
  for (var j = 0; j < frames.length; j++) {
    var f = frames[j];
    if (re.test(f.name)) { f.r.setAttribute("fill", CFG.hl); iv.push([f.x, f.x + f.w]); }
    else f.r.setAttribute("fill", f.fill);
  }
  iv.sort(function (a, b) { return a[0] - b[0] || b[1] - a[1]; });
  var covered = 0, end = -Infinity;
  for (var j = 0; j < iv.length; j++) {
    if (iv[j][0] >= end) { covered += iv[j][1] - iv[j][0]; end = iv[j][1]; }
    else if (iv[j][1] > end) { covered += iv[j][1] - end; end = iv[j][1]; }
  }
  var pct = covered / (CFG.W - 2 * CFG.pad) * 100;
  matched.textContent = "Matched: " + pct.toFixed(1) + "%";
  svg.setAttribute("data-matched", pct.toFixed(2));
  resetBtn.classList.remove("hide");
}
function resetSearch() {
  for (var j = 0; j < frames.length; j++) frames[j].r.setAttribute("fill", frames[j].fill);
  term = null; matched.textContent = " "; resetBtn.classList.add("hide");
  svg.removeAttribute("data-matched");
}
`
