package flame

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func testDiff(t *testing.T, norm Normalization) *DiffProfile {
	t.Helper()
	a, b := mustRead(t, "base.folded"), mustRead(t, "head.folded")
	a.Requests, b.Requests = 4, 8
	d, err := Diff(a, b, norm)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestDiffGolden pins the diff arithmetic: per-frame inclusive and self
// values of both sides, per-function totals and the top changes, for each
// normalization.
func TestDiffGolden(t *testing.T) {
	for _, norm := range []Normalization{NormNone, NormPerRequest, NormPerTotal} {
		t.Run(norm.String(), func(t *testing.T) {
			d := testDiff(t, norm)
			var b bytes.Buffer
			fmt.Fprintf(&b, "# normalization %s, unit %s\n# frames: depth totalA totalB delta selfA selfB selfDelta stack\n", d.Norm, d.Unit)
			for _, f := range d.Frames() {
				fmt.Fprintf(&b, "%d %s %s %s %s %s %s %s\n", f.Depth, g(f.TotalA), g(f.TotalB), g(f.Delta()),
					g(f.SelfA), g(f.SelfB), g(f.SelfDelta()), f.Stack)
			}
			b.WriteString("# functions: totalA totalB delta selfA selfB selfDelta name\n")
			for _, f := range d.Functions() {
				fmt.Fprintf(&b, "%s %s %s %s %s %s %s\n", g(f.TotalA), g(f.TotalB), g(f.Delta()),
					g(f.SelfA), g(f.SelfB), g(f.SelfDelta()), f.Name)
			}
			for _, m := range []Metric{ByTotal, BySelf} {
				grew, shrank := d.TopChanges(3, m)
				fmt.Fprintf(&b, "# top 3 by %s\n", map[Metric]string{ByTotal: "total", BySelf: "self"}[m])
				for _, f := range grew {
					fmt.Fprintf(&b, "grew %s %s %s\n", g(f.Delta()), g(f.SelfDelta()), f.Name)
				}
				for _, f := range shrank {
					fmt.Fprintf(&b, "shrank %s %s %s\n", g(f.Delta()), g(f.SelfDelta()), f.Name)
				}
			}
			for _, m := range []Metric{ByTotal, BySelf} {
				grew, shrank := d.TopFrames(2, m)
				fmt.Fprintf(&b, "# top 2 frames by %s\n", map[Metric]string{ByTotal: "total", BySelf: "self"}[m])
				for _, f := range grew {
					fmt.Fprintf(&b, "grew %s %s %s\n", g(f.Delta()), g(f.SelfDelta()), f.Stack)
				}
				for _, f := range shrank {
					fmt.Fprintf(&b, "shrank %s %s %s\n", g(f.Delta()), g(f.SelfDelta()), f.Stack)
				}
			}
			b.WriteString("# difffolded\n")
			if err := WriteDiffFolded(&b, d); err != nil {
				t.Fatal(err)
			}
			golden(t, "diff-"+norm.String()+".golden", b.Bytes())
		})
	}
}

// g prints a value rounded to 9 decimals, so the golden files do not
// depend on the last bit of a float.
func g(v float64) string {
	s := fmt.Sprintf("%.9f", v)
	s = strings.TrimRight(s, "0")
	s = strings.TrimSuffix(s, ".")
	if s == "-0" {
		s = "0"
	}
	return s
}

func TestDiffInvariants(t *testing.T) {
	for _, norm := range []Normalization{NormNone, NormPerRequest, NormPerTotal} {
		d := testDiff(t, norm)
		// The frame tree must conserve value: a frame's total is its self
		// plus its children's totals, on both sides.
		frames := d.Frames()
		children := map[string][2]float64{}
		for _, f := range frames {
			if i := strings.LastIndex(f.Stack, Separator); i >= 0 {
				c := children[f.Stack[:i]]
				c[0] += f.TotalA
				c[1] += f.TotalB
				children[f.Stack[:i]] = c
			}
		}
		for _, f := range frames {
			c := children[f.Stack]
			if !near(f.TotalA, f.SelfA+c[0]) || !near(f.TotalB, f.SelfB+c[1]) {
				t.Errorf("%s: frame %s: totals %v/%v != self %v/%v + children %v", norm, f.Stack, f.TotalA, f.TotalB, f.SelfA, f.SelfB, c)
			}
		}
		var sa, sb float64
		for _, f := range frames {
			if f.Depth == 1 {
				sa += f.TotalA
				sb += f.TotalB
			}
		}
		if !near(sa, d.A.Total()) || !near(sb, d.B.Total()) {
			t.Errorf("%s: root frames sum to %v/%v, want %v/%v", norm, sa, sb, d.A.Total(), d.B.Total())
		}
		if norm == NormPerTotal && (!near(sa, 1) || !near(sb, 1)) {
			t.Errorf("per-total sides sum to %v/%v, want 1", sa, sb)
		}
	}
}

func near(a, b float64) bool { d := a - b; return d < 1e-9 && d > -1e-9 }

func TestDiffErrors(t *testing.T) {
	a, b := mustRead(t, "base.folded"), mustRead(t, "head.folded")
	if _, err := Diff(a, b, NormPerRequest); !errors.Is(err, ErrNoRequests) {
		t.Errorf("per-request without request counts: err = %v", err)
	}
	if _, err := Diff(a, New("samples"), NormPerTotal); !errors.Is(err, ErrEmpty) {
		t.Errorf("per-total of an empty side: err = %v", err)
	}
	if _, err := Diff(a, New("nanoseconds"), NormNone); err == nil {
		t.Error("diff of samples and nanoseconds succeeded")
	}
	if _, err := Diff(a, b, Normalization(9)); err == nil {
		t.Error("unknown normalization accepted")
	}
	if n, err := ParseNormalization("per-request"); err != nil || n != NormPerRequest {
		t.Errorf("ParseNormalization = %v, %v", n, err)
	}
	if _, err := ParseNormalization("request"); err == nil {
		t.Error("ParseNormalization accepted a bad name")
	}
}

func TestTopChangesIgnoresRoundingNoise(t *testing.T) {
	a := &Profile{Stacks: map[string]float64{"x;y": 0.1 + 0.2, "x;z": 1}}
	b := &Profile{Stacks: map[string]float64{"x;y": 0.3, "x;z": 1}}
	d, err := Diff(a, b, NormNone)
	if err != nil {
		t.Fatal(err)
	}
	if grew, shrank := d.TopChanges(5, BySelf); len(grew)+len(shrank) != 0 {
		t.Errorf("rounding noise reported as change: %v %v", grew, shrank)
	}
}

func TestDiffColor(t *testing.T) {
	tests := []struct {
		delta, max float64
		want       string
	}{
		{0, 10, "rgb(235,235,235)"},
		{10, 10, "rgb(255,0,0)"},
		{-10, 10, "rgb(0,0,255)"},
		{5, 10, "rgb(255,110,110)"},
		{-5, 10, "rgb(110,110,255)"},
		{1, 0, "rgb(235,235,235)"},
	}
	for _, tt := range tests {
		if got := diffColor(tt.delta, tt.max); got != tt.want {
			t.Errorf("diffColor(%v, %v) = %s, want %s", tt.delta, tt.max, got, tt.want)
		}
	}
}

func TestParseDiffFoldedRoundTrip(t *testing.T) {
	d := testDiff(t, NormNone)
	var buf bytes.Buffer
	if err := WriteDiffFolded(&buf, d); err != nil {
		t.Fatal(err)
	}
	a, b, err := ParseDiffFolded(&buf, "diff.folded")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a.Stacks, d.A.Stacks) || !reflect.DeepEqual(b.Stacks, d.B.Stacks) {
		t.Errorf("round trip changed the sides:\n%v\n%v", a.Stacks, b.Stacks)
	}
	for _, tt := range []struct{ in, msg string }{
		{"a;b 1\n", "want \"stack valueA valueB\""},
		{"a;b 1 x\n", "column 3"},
		{"a;;b 1 2\n", "empty frame"},
	} {
		_, _, err := ParseDiffFolded(strings.NewReader("x 1 1\n"+tt.in), "d")
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Line != 2 || !strings.Contains(pe.Msg, tt.msg) {
			t.Errorf("%q: err = %v, want line 2 with %q", tt.in, err, tt.msg)
		}
	}
}

// TestDiffOffCPU runs the off-CPU case: nanoseconds blocked, per request,
// slow requests (B) against fast ones (A), coloured by inclusive delta.
func TestDiffOffCPU(t *testing.T) {
	fast := &Profile{Unit: "nanoseconds", Requests: 100, Stacks: map[string]float64{
		"main;handler;sync.(*Mutex).Lock;runtime.gopark": 1_000_000,
		"main;handler;syscall.read":                      4_000_000,
	}}
	slow := &Profile{Unit: "nanoseconds", Requests: 10, Stacks: map[string]float64{
		"main;handler;sync.(*Mutex).Lock;runtime.gopark": 5_000_000,
		"main;handler;syscall.read":                      400_000,
		"main;handler;runtime.gcAssistAlloc":             1_000_000,
	}}
	d, err := Diff(fast, slow, NormPerRequest)
	if err != nil {
		t.Fatal(err)
	}
	if d.Unit != "nanoseconds/request" {
		t.Errorf("unit %q", d.Unit)
	}
	grew, shrank := d.TopChanges(2, BySelf)
	// gopark: 10,000 -> 500,000 ns/request; assist: 0 -> 100,000; read: 40,000 -> 40,000.
	if len(grew) != 2 || grew[0].Name != "runtime.gopark" || grew[0].SelfDelta() != 490_000 || grew[1].Name != "runtime.gcAssistAlloc" {
		t.Errorf("grew = %+v", grew)
	}
	if len(shrank) != 0 {
		t.Errorf("shrank = %+v, want none (syscall.read is unchanged per request)", shrank)
	}
	var buf bytes.Buffer
	if err := RenderDiffSVG(&buf, d, DiffOptions{ColorBy: ColorByTotal, ALabel: "fast", BLabel: "slow",
		Options: Options{Palette: PaletteOffCPU}}); err != nil {
		t.Fatal(err)
	}
	frames := parseSVG(t, buf.Bytes())
	fills := map[string]string{}
	for _, f := range frames {
		fills[f.Name] = f.Fill
	}
	// By inclusive delta the root grew most (+550,000 ns/request) and is
	// full red; the unchanged read is neutral.
	if fills["all"] != "rgb(255,0,0)" || fills["syscall.read"] != "rgb(235,235,235)" {
		t.Errorf("fills %v", fills)
	}
	if !strings.Contains(buf.String(), "red: grew in slow vs fast") {
		t.Error("subtitle does not name the sides")
	}
}
