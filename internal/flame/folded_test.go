package flame

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestParseFoldedErrors(t *testing.T) {
	tests := []struct {
		name, in string
		line     int
		msg      string
	}{
		{"no value", "a;b 1\na;b\n", 2, "missing value"},
		{"not a number", "a;b x1\n", 1, `bad value "x1"`},
		{"negative", "\n\na;b -3\n", 3, `bad value "-3"`},
		{"nan", "a NaN\n", 1, "finite"},
		{"inf", "a +Inf\n", 1, "finite"},
		{"empty frame", "a;;b 1\n", 1, "empty frame 2"},
		{"trailing separator", "a;b; 1\n", 1, "empty frame 3"},
		{"leading separator", ";a 1\n", 1, "empty frame 1"},
		{"empty stack", "   7\n", 1, "empty stack"},
		{"missing value after space", "a;b \n", 1, "missing value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseFolded(strings.NewReader(tt.in), "in.folded")
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want *ParseError", err)
			}
			if pe.Line != tt.line || !strings.Contains(pe.Msg, tt.msg) {
				t.Errorf("err = %v, want line %d containing %q", err, tt.line, tt.msg)
			}
			if want := fmt.Sprintf("in.folded:%d: ", tt.line); !strings.HasPrefix(err.Error(), want) {
				t.Errorf("err = %q, want prefix %q", err, want)
			}
		})
	}
}

func TestParseFoldedLineTooLong(t *testing.T) {
	in := "a 1\n" + strings.Repeat("x", MaxLineBytes+10) + " 1\n"
	_, err := ParseFolded(strings.NewReader(in), "big")
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Line != 2 {
		t.Fatalf("err = %v, want a ParseError at line 2", err)
	}
}

func TestParseWriteGolden(t *testing.T) {
	for _, name := range []string{"base", "head"} {
		t.Run(name, func(t *testing.T) {
			p := mustRead(t, name+".folded")
			out := folded(t, p)
			golden(t, name+".folded.golden", out)
			// Writing is a fixed point: parse(write(p)) writes the same bytes.
			q, err := ParseFolded(bytes.NewReader(out), "rewritten")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(p.Stacks, q.Stacks) {
				t.Errorf("round trip changed the stacks:\n%v\n%v", p.Stacks, q.Stacks)
			}
		})
	}
}

func TestParseFoldedAggregatesAndCounts(t *testing.T) {
	p, err := ParseFolded(strings.NewReader("a;b 1\r\na;b 2\n\nx y;z 0.5\nq 0\n"), "in")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"a;b": 3, "x y;z": 0.5}
	if !reflect.DeepEqual(p.Stacks, want) {
		t.Errorf("stacks = %v, want %v", p.Stacks, want)
	}
	if p.Samples != 4 || p.Total() != 3.5 {
		t.Errorf("samples %d total %v, want 4 and 3.5", p.Samples, p.Total())
	}
}

func TestAddSanitizes(t *testing.T) {
	p := New("samples")
	p.Add([]string{"main", "a;b", "", "line\nbreak"}, 2)
	p.Add([]string{"main", "a;b", "", "line\nbreak"}, 1)
	p.Add(nil, 5)
	want := map[string]float64{"main;a:b;[unknown];line break": 3}
	if !reflect.DeepEqual(p.Stacks, want) || p.Samples != 2 {
		t.Errorf("stacks = %v samples %d, want %v and 2", p.Stacks, p.Samples, want)
	}
	if got := JoinStack([]string{"main", "a;b", "", "line\nbreak"}); got != "main;a:b;[unknown];line break" {
		t.Errorf("JoinStack = %q", got)
	}
}

func TestAggregateGolden(t *testing.T) {
	a, b := mustRead(t, "base.folded"), mustRead(t, "head.folded")
	a.Requests, b.Requests = 4, 6
	sum, err := Aggregate(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Samples != a.Samples+b.Samples || sum.Requests != 10 {
		t.Errorf("samples %d requests %d", sum.Samples, sum.Requests)
	}
	if got, want := sum.Total(), a.Total()+b.Total(); got != want {
		t.Errorf("total %v, want %v", got, want)
	}
	golden(t, "aggregate.folded.golden", folded(t, sum))

	c := New("nanoseconds")
	if err := sum.Merge(c); err == nil {
		t.Error("merging samples with nanoseconds succeeded, want an error")
	}
}

func TestNormalizeGolden(t *testing.T) {
	p := mustRead(t, "head.folded")
	if _, err := p.PerRequest(); !errors.Is(err, ErrNoRequests) {
		t.Errorf("PerRequest with no request count: err = %v, want ErrNoRequests", err)
	}
	p.Requests = 8
	pr, err := p.PerRequest()
	if err != nil {
		t.Fatal(err)
	}
	if pr.Unit != "samples/request" {
		t.Errorf("unit %q", pr.Unit)
	}
	pt, err := p.PerTotal()
	if err != nil {
		t.Fatal(err)
	}
	if got := pt.Total(); got < 1-1e-12 || got > 1+1e-12 {
		t.Errorf("per-total sums to %v, want 1", got)
	}
	if pt.Unit != "fraction" {
		t.Errorf("unit %q", pt.Unit)
	}
	var b bytes.Buffer
	b.WriteString("# per request (8 requests), unit " + pr.Unit + "\n")
	b.Write(folded(t, pr))
	b.WriteString("# per total, unit " + pt.Unit + "\n")
	b.Write(folded(t, pt))
	golden(t, "normalize.golden", b.Bytes())

	if _, err := New("samples").PerTotal(); !errors.Is(err, ErrEmpty) {
		t.Errorf("PerTotal of an empty profile: err = %v, want ErrEmpty", err)
	}
}

func TestFolderMatchesProfileAdd(t *testing.T) {
	stacks := [][]string{
		{"main", "a", "b"}, {"main", "a"}, {"main", "a", "b"}, {"x;y", "", "z\nw"}, {}, {"main", "a", "b"},
	}
	f := NewFolder("nanoseconds")
	p := New("nanoseconds")
	for i, s := range stacks {
		f.Add(s, float64(i+1))
		p.Add(s, float64(i+1))
	}
	q := f.Profile()
	if !reflect.DeepEqual(q.Stacks, p.Stacks) || q.Samples != p.Samples || q.Unit != p.Unit || f.Len() != 3 {
		t.Errorf("Folder %+v (len %d) != Profile.Add %+v", q, f.Len(), p)
	}
	want := map[string]float64{"main;a;b": 1 + 3 + 6, "main;a": 2, "x:y;[unknown];z w": 4}
	if !reflect.DeepEqual(q.Stacks, want) {
		t.Errorf("stacks %v, want %v", q.Stacks, want)
	}
}
