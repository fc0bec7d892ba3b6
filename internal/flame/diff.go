package flame

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Normalization says how the two sides of a diff are made comparable.
type Normalization int

const (
	// NormNone compares raw values (same load, same duration).
	NormNone Normalization = iota
	// NormPerRequest divides each side by its request count, so a side
	// that served more requests does not look slower.
	NormPerRequest
	// NormPerTotal divides each side by its total, comparing shapes: how
	// the time is split, whatever the amount.
	NormPerTotal
)

// String returns the normalization's name as used in flags and reports.
func (n Normalization) String() string {
	switch n {
	case NormNone:
		return "none"
	case NormPerRequest:
		return "per-request"
	case NormPerTotal:
		return "per-total"
	}
	return "Normalization(" + strconv.Itoa(int(n)) + ")"
}

// ParseNormalization parses "none", "per-request" or "per-total".
func ParseNormalization(s string) (Normalization, error) {
	for _, n := range []Normalization{NormNone, NormPerRequest, NormPerTotal} {
		if s == n.String() {
			return n, nil
		}
	}
	return 0, fmt.Errorf("normalization %q: want none, per-request or per-total", s)
}

// DiffProfile is a differential profile: A is the reference side (before,
// fast requests, base) and B the compared side (after, slow requests,
// head), both normalized the same way. A positive delta means B has more.
type DiffProfile struct {
	A, B *Profile
	Norm Normalization
	Unit string // unit of the normalized values
}

// Diff normalizes a and b with norm and pairs them. Per-request
// normalization needs both request counts; per-total needs non-empty sides.
// Both sides must share a unit.
func Diff(a, b *Profile, norm Normalization) (*DiffProfile, error) {
	if a.UnitOrDefault() != b.UnitOrDefault() {
		return nil, fmt.Errorf("diff profiles: unit %q differs from %q", b.UnitOrDefault(), a.UnitOrDefault())
	}
	na, nb := a, b
	var err error
	switch norm {
	case NormNone:
		na, nb = a.Clone(), b.Clone()
	case NormPerRequest:
		if na, err = a.PerRequest(); err != nil {
			return nil, fmt.Errorf("diff side A: %w", err)
		}
		if nb, err = b.PerRequest(); err != nil {
			return nil, fmt.Errorf("diff side B: %w", err)
		}
	case NormPerTotal:
		if na, err = a.PerTotal(); err != nil {
			return nil, fmt.Errorf("diff side A: %w", err)
		}
		if nb, err = b.PerTotal(); err != nil {
			return nil, fmt.Errorf("diff side B: %w", err)
		}
	default:
		return nil, fmt.Errorf("diff profiles: unknown normalization %d", int(norm))
	}
	return &DiffProfile{A: na, B: nb, Norm: norm, Unit: na.UnitOrDefault()}, nil
}

// FrameDelta is one frame (a stack prefix) of a differential profile with
// its inclusive (Total) and exclusive (Self) value on each side.
type FrameDelta struct {
	Stack        string // folded path from the root to this frame
	Name         string // the frame's function name
	Depth        int    // 1 for a root frame
	TotalA       float64
	TotalB       float64
	SelfA, SelfB float64
}

// Delta is the inclusive change, B - A.
func (f FrameDelta) Delta() float64 { return f.TotalB - f.TotalA }

// SelfDelta is the exclusive change, B - A.
func (f FrameDelta) SelfDelta() float64 { return f.SelfB - f.SelfA }

// Frames returns every frame of the union of both sides, in depth-first
// order with siblings sorted by name (the order of the flame graph).
func (d *DiffProfile) Frames() []FrameDelta {
	root, _ := buildTree(d.A, d.B)
	var out []FrameDelta
	var walk func(n *node, path string, depth int)
	walk = func(n *node, path string, depth int) {
		for _, c := range n.children {
			p := c.name
			if path != "" {
				p = path + Separator + c.name
			}
			out = append(out, FrameDelta{Stack: p, Name: c.name, Depth: depth,
				TotalA: c.total[0], TotalB: c.total[1], SelfA: c.self[0], SelfB: c.self[1]})
			walk(c, p, depth+1)
		}
	}
	walk(root, "", 1)
	return out
}

// FunctionDelta is the change of one function over all the stacks it
// appears in. Total counts a stack once even when the function recurses.
type FunctionDelta struct {
	Name           string
	TotalA, TotalB float64
	SelfA, SelfB   float64
}

// Delta is the inclusive change, B - A.
func (f FunctionDelta) Delta() float64 { return f.TotalB - f.TotalA }

// SelfDelta is the exclusive change, B - A.
func (f FunctionDelta) SelfDelta() float64 { return f.SelfB - f.SelfA }

// Functions returns the per-function totals of both sides, sorted by name.
func (d *DiffProfile) Functions() []FunctionDelta {
	m := make(map[string]*FunctionDelta)
	get := func(name string) *FunctionDelta {
		f := m[name]
		if f == nil {
			f = &FunctionDelta{Name: name}
			m[name] = f
		}
		return f
	}
	seen := make(map[string]bool)
	for side, p := range []*Profile{d.A, d.B} {
		for _, k := range p.sortedKeys() {
			v := p.Stacks[k]
			frames := SplitStack(k)
			clear(seen)
			for _, name := range frames {
				if seen[name] {
					continue
				}
				seen[name] = true
				f := get(name)
				if side == 0 {
					f.TotalA += v
				} else {
					f.TotalB += v
				}
			}
			f := get(frames[len(frames)-1])
			if side == 0 {
				f.SelfA += v
			} else {
				f.SelfB += v
			}
		}
	}
	out := make([]FunctionDelta, 0, len(m))
	for _, f := range m {
		out = append(out, *f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Metric selects which value TopChanges ranks by.
type Metric int

const (
	// ByTotal ranks by inclusive change: the function and what it calls.
	ByTotal Metric = iota
	// BySelf ranks by exclusive change: time in the function itself.
	BySelf
)

// TopChanges returns up to n functions that grew most (largest positive
// delta first) and up to n that shrank most (most negative first), ranked
// by metric. Functions whose delta is zero are in neither list; ties break
// by name so the result is deterministic. This is the table of the PR
// comment.
func (d *DiffProfile) TopChanges(n int, metric Metric) (grew, shrank []FunctionDelta) {
	delta := func(f FunctionDelta) float64 {
		if metric == BySelf {
			return f.SelfDelta()
		}
		return f.Delta()
	}
	for _, f := range d.Functions() {
		dv := delta(f)
		// Normalized sides carry rounding noise; a change below a
		// billionth of the function's value is no change.
		if math.Abs(dv) <= 1e-9*math.Max(f.TotalA, f.TotalB) {
			continue
		}
		switch {
		case dv > 0:
			grew = append(grew, f)
		case dv < 0:
			shrank = append(shrank, f)
		}
	}
	sort.SliceStable(grew, func(i, j int) bool { return delta(grew[i]) > delta(grew[j]) })
	sort.SliceStable(shrank, func(i, j int) bool { return delta(shrank[i]) < delta(shrank[j]) })
	if len(grew) > n {
		grew = grew[:n]
	}
	if len(shrank) > n {
		shrank = shrank[:n]
	}
	return grew, shrank
}

// TopFrames is TopChanges for frames, i.e. stack positions: up to n frames
// (with their full stack) that grew most and up to n that shrank most. Use
// it where a function's place matters, e.g. runtime.mallocgc under the
// handler but not under the GC.
func (d *DiffProfile) TopFrames(n int, metric Metric) (grew, shrank []FrameDelta) {
	delta := func(f FrameDelta) float64 {
		if metric == BySelf {
			return f.SelfDelta()
		}
		return f.Delta()
	}
	for _, f := range d.Frames() {
		dv := delta(f)
		if math.Abs(dv) <= 1e-9*math.Max(f.TotalA, f.TotalB) {
			continue
		}
		if dv > 0 {
			grew = append(grew, f)
		} else {
			shrank = append(shrank, f)
		}
	}
	sort.SliceStable(grew, func(i, j int) bool { return delta(grew[i]) > delta(grew[j]) })
	sort.SliceStable(shrank, func(i, j int) bool { return delta(shrank[i]) < delta(shrank[j]) })
	if len(grew) > n {
		grew = grew[:n]
	}
	if len(shrank) > n {
		shrank = shrank[:n]
	}
	return grew, shrank
}

// WriteDiffFolded writes the diff in the two-column folded format of
// difffolded.pl ("stack valueA valueB"), sorted by stack, which
// flamegraph.pl also renders.
func WriteDiffFolded(w io.Writer, d *DiffProfile) error {
	keys := make(map[string]bool, len(d.A.Stacks)+len(d.B.Stacks))
	for k := range d.A.Stacks {
		keys[k] = true
	}
	for k := range d.B.Stacks {
		keys[k] = true
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	bw := bufio.NewWriter(w)
	for _, k := range sorted {
		fmt.Fprintf(bw, "%s %s %s\n", k, FormatValue(d.A.Stacks[k]), FormatValue(d.B.Stacks[k]))
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write diff folded stacks: %w", err)
	}
	return nil
}

// Direction says which side gives a differential graph its shape.
type Direction int

const (
	// BOverA draws B's frames (widths from B) coloured by the change from
	// A: where the time goes now, and what grew.
	BOverA Direction = iota
	// AOverB draws A's frames coloured by the same change: it shows what
	// shrank or vanished, which B's shape cannot (a frame absent from B
	// has no width there).
	AOverB
)

// String returns "b-over-a" or "a-over-b".
func (d Direction) String() string {
	if d == AOverB {
		return "a-over-b"
	}
	return "b-over-a"
}

// ColorBy selects which delta colours a differential flame graph.
type ColorBy int

const (
	// ColorBySelf colours a frame by the change of its own (exclusive)
	// value, the flamegraph.pl convention: the frame where time grew is
	// red, not all its callers.
	ColorBySelf ColorBy = iota
	// ColorByTotal colours a frame by its inclusive change.
	ColorByTotal
)

// DiffOptions control a differential flame graph. The zero value draws B
// over A, coloured by self delta, with sides labelled "A" and "B".
type DiffOptions struct {
	Options
	Direction Direction
	// ColorBy selects the delta that colours a frame.
	ColorBy ColorBy
	// ALabel and BLabel name the sides in titles, e.g. "base"/"head" or
	// "fast"/"slow".
	ALabel, BLabel string
}

// RenderDiffSVG writes a differential flame graph: frames take their width
// from one side (see Direction) and their colour from the change B - A,
// red where B grew and blue where it shrank, saturation proportional to
// |delta| relative to the largest change in the graph. Hover titles give
// both values, the delta and the relative change.
func RenderDiffSVG(w io.Writer, d *DiffProfile, o DiffOptions) error {
	if o.ALabel == "" {
		o.ALabel = "A"
	}
	if o.BLabel == "" {
		o.BLabel = "B"
	}
	shape, other := 1, 0
	if o.Direction == AOverB {
		shape, other = 0, 1
	}
	labels := [2]string{o.ALabel, o.BLabel}
	if o.Title == "" {
		o.Title = fmt.Sprintf("Differential flame graph: %s over %s", labels[shape], labels[other])
	}
	if o.Subtitle == "" {
		o.Subtitle = fmt.Sprintf("width: %s; red: grew in %s vs %s, blue: shrank; normalized %s (%s)",
			labels[shape], o.BLabel, o.ALabel, d.Norm, d.Unit)
	}
	opts := o.Options.withDefaults()
	root, depth := buildTree(d.A, d.B)
	delta := func(n *node) float64 {
		if o.ColorBy == ColorByTotal {
			return n.total[1] - n.total[0]
		}
		return n.self[1] - n.self[0]
	}
	// The colour scale is set by the largest change among drawn frames.
	full := float64(opts.Width) - 2*xpad
	tot := root.total[shape]
	var maxDelta float64
	var scan func(n *node)
	scan = func(n *node) {
		if tot <= 0 || n.total[shape]/tot*full < opts.MinWidth {
			return
		}
		if dv := math.Abs(delta(n)); dv > maxDelta {
			maxDelta = dv
		}
		for _, c := range n.children {
			scan(c)
		}
	}
	scan(root)
	style := func(n *node) (string, string) {
		return diffColor(delta(n), maxDelta), diffInfo(n, o.ALabel, o.BLabel, d.Unit)
	}
	return render(w, root, depth, shape, opts, style)
}

// diffColor maps a delta to white-to-red (grew) or white-to-blue (shrank),
// saturation proportional to |delta|/max.
func diffColor(delta, max float64) string {
	if delta == 0 || max == 0 {
		return "rgb(235,235,235)"
	}
	c := int(math.Round(220 * (1 - math.Abs(delta)/max)))
	cs := strconv.Itoa(c)
	if delta > 0 {
		return "rgb(255," + cs + "," + cs + ")"
	}
	return "rgb(" + cs + "," + cs + ",255)"
}

func diffInfo(n *node, al, bl, unit string) string {
	a, b := n.total[0], n.total[1]
	var b2 strings.Builder
	b2.WriteString(n.name)
	fmt.Fprintf(&b2, " (%s %s, %s %s, delta %s", al, formatQuantity(a, unit), bl, formatQuantity(b, unit), signed(b-a, unit))
	switch {
	case a == 0 && b == 0:
	case a == 0:
		b2.WriteString(", new")
	case b == 0:
		b2.WriteString(", gone")
	default:
		fmt.Fprintf(&b2, ", %s%%", signedPct((b-a)/a*100))
	}
	if sd := n.self[1] - n.self[0]; sd != 0 {
		fmt.Fprintf(&b2, "; self delta %s", signed(sd, unit))
	}
	b2.WriteString(")")
	return b2.String()
}

func signed(v float64, unit string) string {
	if v > 0 {
		return "+" + formatQuantity(v, unit)
	}
	return formatQuantity(v, unit)
}

func signedPct(v float64) string {
	s := strconv.FormatFloat(v, 'f', 2, 64)
	if v > 0 {
		return "+" + s
	}
	return s
}

// ParseDiffFolded reads the two-column folded format ("stack valueA
// valueB" per line, as written by WriteDiffFolded and difffolded.pl) into
// the two sides. Errors are *ParseError naming name and the line.
func ParseDiffFolded(r io.Reader, name string) (a, b *Profile, err error) {
	a, b = New(DefaultUnit), New(DefaultUnit)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxLineBytes)
	line := 0
	for sc.Scan() {
		line++
		l := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(l) == "" {
			continue
		}
		j := strings.LastIndexByte(l, ' ')
		i := -1
		if j > 0 {
			i = strings.LastIndexByte(l[:j], ' ')
		}
		if i < 0 {
			return nil, nil, &ParseError{name, line, "want \"stack valueA valueB\""}
		}
		stack := strings.TrimRight(l[:i], " \t")
		if stack == "" {
			return nil, nil, &ParseError{name, line, "empty stack"}
		}
		if err := checkStack([]byte(stack)); err != nil {
			return nil, nil, &ParseError{name, line, err.Error()}
		}
		for side, num := range []string{l[i+1 : j], l[j+1:]} {
			v, err := parseValue([]byte(num))
			if err != nil {
				return nil, nil, &ParseError{name, line, fmt.Sprintf("column %d: %v", side+2, err)}
			}
			p := a
			if side == 1 {
				p = b
			}
			p.Samples++
			if v != 0 {
				p.AddStack(stack, v)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, nil, &ParseError{name, line + 1, err.Error()}
	}
	return a, b, nil
}
