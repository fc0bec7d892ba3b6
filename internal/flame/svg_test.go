package flame

import (
	"bytes"
	"encoding/xml"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

type svgDoc struct {
	Width  string     `xml:"width,attr"`
	Height string     `xml:"height,attr"`
	Texts  []svgText  `xml:"text"`
	Groups []svgGroup `xml:"g"`
}

type svgText struct {
	ID    string `xml:"id,attr"`
	Class string `xml:"class,attr"`
	Text  string `xml:",chardata"`
}

type svgGroup struct {
	ID     string     `xml:"id,attr"`
	Frames []svgFrame `xml:"g"`
}

type svgFrame struct {
	Class  string    `xml:"class,attr"`
	Titles []string  `xml:"title"`
	Rects  []svgRect `xml:"rect"`
	Texts  []string  `xml:"text"`
}

type svgRect struct {
	X      float64 `xml:"x,attr"`
	Y      float64 `xml:"y,attr"`
	Width  float64 `xml:"width,attr"`
	Height float64 `xml:"height,attr"`
	Fill   string  `xml:"fill,attr"`
}

// frame is one parsed frame with its name split off the title.
type frame struct {
	Name, Info, Label string
	svgRect
}

// parseSVG parses an SVG with encoding/xml, checks the elements every graph
// has and that each frame is exactly one title, rect and text, and returns
// the frames.
func parseSVG(t *testing.T, data []byte) []frame {
	t.Helper()
	var doc svgDoc
	if err := xml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("svg is not well-formed XML: %v", err)
	}
	ids := map[string]bool{}
	for _, tx := range doc.Texts {
		ids[tx.ID] = true
	}
	for _, id := range []string{"title", "details", "unzoom", "search", "reset", "matched"} {
		if !ids[id] {
			t.Errorf("svg has no <text id=%q>", id)
		}
	}
	if len(doc.Groups) != 1 || doc.Groups[0].ID != "frames" {
		t.Fatalf("want exactly one <g id=\"frames\">, got %d groups", len(doc.Groups))
	}
	var out []frame
	for i, f := range doc.Groups[0].Frames {
		if f.Class != "f" || len(f.Titles) != 1 || len(f.Rects) != 1 || len(f.Texts) != 1 {
			t.Fatalf("frame %d: class %q with %d titles, %d rects, %d texts; want f, 1, 1, 1",
				i, f.Class, len(f.Titles), len(f.Rects), len(f.Texts))
		}
		out = append(out, frame{Name: titleName.ReplaceAllString(f.Titles[0], ""), Info: f.Titles[0], Label: f.Texts[0], svgRect: f.Rects[0]})
	}
	return out
}

// titleName strips the value part, as the inline script does.
var titleName = regexp.MustCompile(` \([^()]*\)$`)

func renderT(t *testing.T, p *Profile, o Options) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := RenderSVG(&b, p, o); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestRenderSVGGolden(t *testing.T) {
	golden(t, "base.svg.golden", renderT(t, mustRead(t, "base.folded"), Options{Title: "base on-CPU"}))
	golden(t, "head-offcpu-icicle.svg.golden", renderT(t, mustRead(t, "head.folded"), Options{Palette: PaletteOffCPU, Icicle: true}))
}

func TestSVGStructure(t *testing.T) {
	p := mustRead(t, "base.folded")
	frames := parseSVG(t, renderT(t, p, Options{}))
	// all + main.main, serve, Bid, Lookup, Marshal, Lock, futex
	// + gcBgMarkWorker, gcDrain, scanobject + "func (x) with spaces", leaf.
	if len(frames) != 13 {
		t.Fatalf("%d frames, want 13", len(frames))
	}
	root := frames[0]
	if root.Name != "all" || root.X != xpad || root.Width != DefaultWidth-2*xpad {
		t.Errorf("root frame %+v, want all at x=%d with the full width", root, xpad)
	}
	info := regexp.MustCompile(`^(.*) \(([0-9,.]+) samples, ([0-9.]+)%\)$`)
	byName := map[string]frame{}
	for _, f := range frames {
		byName[f.Name] = f
		m := info.FindStringSubmatch(f.Info)
		if m == nil {
			t.Errorf("title %q does not read \"name (value samples, pct%%)\"", f.Info)
			continue
		}
		v, _ := strconv.ParseFloat(strings.ReplaceAll(m[2], ",", ""), 64)
		pct, _ := strconv.ParseFloat(m[3], 64)
		if math.Abs(v/p.Total()*100-pct) > 0.01 {
			t.Errorf("%s: %v samples is not %v%% of %v", f.Name, v, pct, p.Total())
		}
		if want := v / p.Total() * (DefaultWidth - 2*xpad); math.Abs(f.Width-want) > 0.01 {
			t.Errorf("%s: width %v, want %v", f.Name, f.Width, want)
		}
		if f.Label != "" && f.Label != f.Name && !strings.HasSuffix(f.Label, "..") {
			t.Errorf("%s: label %q is neither the name nor a truncation", f.Name, f.Label)
		}
		if f.Width < 30 && len(f.Label) > 5 {
			t.Errorf("%s: label %q does not fit %v px", f.Name, f.Label, f.Width)
		}
	}
	if got := byName["bidder.(*Server).Bid"].Info; got != "bidder.(*Server).Bid (65 samples, 65.00%)" {
		t.Errorf("Bid title = %q", got)
	}
	// A flame graph grows upwards: a child sits one level above its
	// parent and inside its x range.
	parent, child := byName["bidder.(*Server).Bid"], byName["bidder.(*Index).Lookup"]
	if child.Y != parent.Y-DefaultFrameHeight || child.X < parent.X || child.X+child.Width > parent.X+parent.Width+0.01 {
		t.Errorf("child %+v not above and within parent %+v", child.svgRect, parent.svgRect)
	}
	// Siblings are sorted by name and do not overlap.
	lock, bid := byName["sync.(*Mutex).Lock"], byName["bidder.(*Server).Bid"]
	if lock.X < bid.X+bid.Width-0.01 {
		t.Errorf("sibling Lock at %v overlaps Bid ending at %v", lock.X, bid.X+bid.Width)
	}
}

func TestSVGIcicle(t *testing.T) {
	frames := parseSVG(t, renderT(t, mustRead(t, "base.folded"), Options{Icicle: true}))
	byName := map[string]frame{}
	for _, f := range frames {
		byName[f.Name] = f
	}
	if p, c := byName["bidder.(*Server).Bid"], byName["bidder.(*Index).Lookup"]; c.Y != p.Y+DefaultFrameHeight {
		t.Errorf("icicle child at y=%v, want parent y %v + %d", c.Y, p.Y, DefaultFrameHeight)
	}
	if frames[0].Y != DefaultFontSize*3 {
		t.Errorf("icicle root at y=%v, want the top", frames[0].Y)
	}
}

func TestSVGMinWidthPrunes(t *testing.T) {
	p := &Profile{Stacks: map[string]float64{"big;child": 1e6, "tiny;tinychild": 1}}
	frames := parseSVG(t, renderT(t, p, Options{}))
	for _, f := range frames {
		if strings.HasPrefix(f.Name, "tiny") {
			t.Errorf("frame %s of width %v drawn, want it pruned below %v px", f.Name, f.Width, DefaultMinWidth)
		}
	}
	if len(frames) != 3 {
		t.Errorf("%d frames, want all, big, child", len(frames))
	}
}

// TestSVGEscapesNames feeds names that would break out of the XML text,
// the CDATA section or an attribute, and checks the document still has one
// script, no event-handler attributes, and the names back as plain text.
func TestSVGEscapesNames(t *testing.T) {
	evil := []string{
		`</title></g><script>alert(1)</script>`,
		`]]><script>alert(2)</script>`,
		`x" onload="alert(3)`,
		`a & b <c> 'd'`,
		"ctl\x01\x7f bad utf8 \xff",
	}
	p := New("samples")
	for _, e := range evil {
		p.Add([]string{"main", e}, 10)
	}
	data := renderT(t, p, Options{})
	dec := xml.NewDecoder(bytes.NewReader(data))
	scripts := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if se.Name.Local == "script" {
				scripts++
			}
			for _, a := range se.Attr {
				if strings.HasPrefix(strings.ToLower(a.Name.Local), "on") {
					t.Errorf("element %s has event attribute %s=%q", se.Name.Local, a.Name.Local, a.Value)
				}
			}
		}
	}
	if scripts != 1 {
		t.Errorf("%d script elements, want 1", scripts)
	}
	frames := parseSVG(t, data)
	got := map[string]bool{}
	for _, f := range frames {
		got[f.Name] = true
	}
	for _, e := range evil[:4] {
		if !got[e] {
			t.Errorf("name %q not found as text in a title", e)
		}
	}
	if !got["ctl\uFFFD\x7f bad utf8 \uFFFD"] {
		t.Errorf("control characters and bad UTF-8 not replaced; names: %v", got)
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		name string
		n    int
		want string
	}{
		{"runtime.mallocgc", 40, "runtime.mallocgc"},
		{"runtime.mallocgc", 9, "runtime.."},
		{"runtime.mallocgc", 2, ""},
		{"ünïcödé", 5, "ünï.."},
	}
	for _, tt := range tests {
		if got := truncate(tt.name, tt.n); got != tt.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", tt.name, tt.n, got, tt.want)
		}
	}
}

func TestFrameColorDeterministic(t *testing.T) {
	rgb := regexp.MustCompile(`^rgb\((\d+),(\d+),(\d+)\)$`)
	for _, name := range []string{"runtime.mallocgc", "main.main", "bidder.(*Index).Lookup"} {
		on, off := frameColor(name, PaletteOnCPU), frameColor(name, PaletteOffCPU)
		if on != frameColor(name, PaletteOnCPU) {
			t.Errorf("%s: colour changes between calls", name)
		}
		m1, m2 := rgb.FindStringSubmatch(on), rgb.FindStringSubmatch(off)
		if m1 == nil || m2 == nil {
			t.Fatalf("bad colours %q %q", on, off)
		}
		r1, _ := strconv.Atoi(m1[1])
		b1, _ := strconv.Atoi(m1[3])
		r2, _ := strconv.Atoi(m2[1])
		b2, _ := strconv.Atoi(m2[3])
		if r1 <= b1 || b2 <= r2 {
			t.Errorf("%s: on-CPU %s should be warm and off-CPU %s blue", name, on, off)
		}
	}
	if got := frameColor("do_syscall_64_[k]", PaletteOnCPU); !strings.HasSuffix(got, ",0)") {
		t.Errorf("kernel frame on-CPU colour %s, want orange (no blue)", got)
	}
	if frameColor("a", PaletteOnCPU) == frameColor("b", PaletteOnCPU) {
		t.Error("different names got the same colour")
	}
}

func TestDiffSVG(t *testing.T) {
	d := testDiff(t, NormNone)
	for _, dir := range []Direction{BOverA, AOverB} {
		t.Run(dir.String(), func(t *testing.T) {
			var b bytes.Buffer
			if err := RenderDiffSVG(&b, d, DiffOptions{Direction: dir, ALabel: "base", BLabel: "head"}); err != nil {
				t.Fatal(err)
			}
			golden(t, "diff-"+dir.String()+".svg.golden", b.Bytes())
			frames := parseSVG(t, b.Bytes())
			byName := map[string]frame{}
			for _, f := range frames {
				byName[f.Name] = f
			}
			_, hasOld := byName["func (x) with spaces"]
			_, hasNew := byName["runtime.markroot"]
			if dir == BOverA && (hasOld || !hasNew) {
				t.Errorf("B over A: want head-only frames and no base-only ones; old %v new %v", hasOld, hasNew)
			}
			if dir == AOverB && (!hasOld || hasNew) {
				t.Errorf("A over B: want base-only frames and no head-only ones; old %v new %v", hasOld, hasNew)
			}
			// scanobject has the largest self growth, Lookup shrank.
			if got := byName["runtime.scanobject"].Fill; got != "rgb(255,0,0)" {
				t.Errorf("scanobject fill %s, want full red", got)
			}
			if got := byName["bidder.(*Index).Lookup"].Fill; !strings.HasSuffix(got, ",255)") || strings.HasPrefix(got, "rgb(255") {
				t.Errorf("Lookup fill %s, want blue", got)
			}
			if got := byName["encoding/json.Marshal"].Fill; got != "rgb(235,235,235)" {
				t.Errorf("unchanged Marshal fill %s, want neutral", got)
			}
			if got := byName["runtime.scanobject"].Info; got != "runtime.scanobject (base 25 samples, head 60 samples, delta +35 samples, +140.00%; self delta +35 samples)" {
				t.Errorf("scanobject title %q", got)
			}
			total := d.B.Total()
			if dir == AOverB {
				total = d.A.Total()
			}
			if f := byName["runtime.scanobject"]; dir == BOverA && math.Abs(f.Width-60/total*(DefaultWidth-2*xpad)) > 0.01 {
				t.Errorf("B over A: scanobject width %v does not follow head's value", f.Width)
			}
		})
	}
}

func TestAppendEscapedMatchesEncodingXML(t *testing.T) {
	for _, s := range []string{"", "plain", `<a href="x">&'</a>`, "tab\tnl\ncr\r", "ctl\x01\x7f", "bad \xff\xfe utf8", "ünï €", "\uFFFE\U0001F600", "]]>"} {
		var want bytes.Buffer
		if err := xml.EscapeText(&want, []byte(s)); err != nil {
			t.Fatal(err)
		}
		if got := appendEscaped(nil, s); string(got) != want.String() {
			t.Errorf("appendEscaped(%q) = %q, want %q", s, got, want.String())
		}
	}
}

func TestFF(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 10: "10", 1.5: "1.5", 1.25: "1.25", 1.004: "1", -0.001: "0", 29.499: "29.5", 1180: "1180"} {
		if got := ff(v); got != want {
			t.Errorf("ff(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestFormatQuantity(t *testing.T) {
	tests := []struct {
		v    float64
		unit string
		want string
	}{
		{1234, "samples", "1,234 samples"},
		{0.375, "fraction", "0.375 fraction"},
		{999, "nanoseconds", "999 ns"},
		{1500, "nanoseconds", "1.500 µs"},
		{2_345_678, "nanoseconds", "2.346 ms"},
		{-3e9, "nanoseconds", "-3.000 s"},
		{12.5, "nanoseconds/request", "12.500 ns/request"},
		{12_500, "nanoseconds/request", "12.500 µs/request"},
		{7, "nanosecondsish", "7 nanosecondsish"},
	}
	for _, tt := range tests {
		if got := formatQuantity(tt.v, tt.unit); got != tt.want {
			t.Errorf("formatQuantity(%v, %q) = %q, want %q", tt.v, tt.unit, got, tt.want)
		}
	}
}
