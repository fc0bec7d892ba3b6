package report

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tailgate-ci/tailgate/internal/gate"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/report -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the output (go test ./internal/report -update refreshes it); got:\n%s", path, got)
	}
}

func TestMarkerMatchesGhapi(t *testing.T) {
	// internal/ghapi.Marker; report may not import ghapi.
	if Marker != "<!-- tailgate:latency-gate -->" {
		t.Fatalf("Marker = %q, want the literal ghapi finds sticky comments by", Marker)
	}
}

func TestCommentGolden(t *testing.T) {
	in := fixtureInput(t)
	got, err := Comment(in)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got, Marker+"\n") {
		t.Error("comment does not start with the sticky marker")
	}
	if len(got) > MaxCommentBytes {
		t.Errorf("comment is %d bytes, over %d", len(got), MaxCommentBytes)
	}
	for _, want := range []string{"Latency gate: **PASS**", "| p99.9 |", "### Slow-request contributors", "### Per-fix attribution",
		"```mermaid", "xychart-beta", "offcpu-head-vs-base-head-over-base.svg", "all fixes (cumulative)"} {
		if !strings.Contains(got, want) {
			t.Errorf("comment lacks %q", want)
		}
	}
	golden(t, "comment.golden.md", got)
}

// hostile are names a branch, symbol or fix could carry.
var hostile = []string{
	`<img src=x onerror=alert(1)>`,
	`</details><script>alert("x")</script>`,
	"evil`code`|cell|[link](javascript:alert(1))",
	"**bold** _it_ ~~s~~ # head\n\n## injected heading\n| a | b |",
	"@octocat please merge www.evil.example http://evil.example/x",
	"![img](http://evil.example/p.png) <!-- --> &amp; $x^2$",
	"\u202eevil\u202c\x00\x1b[31m\xff",
}

var codeSpan = regexp.MustCompile("`[^`\n]*`")

// unescaped finds markdown/HTML that could only come from an unescaped
// hostile string.
var unescaped = regexp.MustCompile(`(?i)(^|[^\\])(<img|<script|!\[img|@octocat|www\.evil)|[^\\]\]\(javascript|\n## injected|\x1b|\x00|\x{202e}`)

func TestCommentEscapesHostileStrings(t *testing.T) {
	for i, h := range hostile {
		in := fixtureInput(t)
		in.Gate.Base.Name = h
		in.Gate.Head.Name = h
		in.Gate.Service = h
		set := contributorSet("head", 1, h, "locks")
		set.Contributors[0].TopStacks[0].Frames = []string{h, h}
		in.Profiles.Contributors = []ContributorSet{set}
		in.Profiles.Diffs = []FlameDiff{fixtureDiff(t, h)}
		in.Profiles.Diffs[0].SVGs = append(in.Profiles.Diffs[0].SVGs, h+".svg")
		in.Experiment.Notes = []string{h}
		raw, err := Comment(in)
		if err != nil {
			t.Fatal(err)
		}
		// Code spans render their content literally: drop them, then
		// look for anything live.
		got := codeSpan.ReplaceAllString(raw, "CODE")
		if m := unescaped.FindString(got); m != "" {
			for _, l := range strings.Split(got, "\n") {
				if unescaped.MatchString(l) {
					t.Errorf("hostile string %d: unescaped %q in line %q", i, m, l)
				}
			}
		}
		// Nothing hostile may open or close a code fence, a details
		// element or a comment besides the marker.
		if n := strings.Count(raw, "```"); n != 2 {
			t.Errorf("hostile string %d: %d code fences, want 2", i, n)
		}
		if n := strings.Count(got, "<!--"); n != 1 {
			t.Errorf("hostile string %d: %d HTML comments, want 1 (the marker)", i, n)
		}
		if n := strings.Count(got, "</details>"); n != 1 {
			t.Errorf("hostile string %d: %d </details>, want 1", i, n)
		}
		// Every table row keeps its column count.
		checkTables(t, raw)
	}
}

// checkTables checks every markdown table row has as many cells as its
// header (an unescaped '|' would add one).
func checkTables(t *testing.T, doc string) {
	t.Helper()
	cells := func(l string) int {
		l = strings.ReplaceAll(l, `\|`, "")
		return strings.Count(l, "|")
	}
	want := -1
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(l, "|") {
			want = -1
			continue
		}
		if want < 0 {
			want = cells(l)
			continue
		}
		if c := cells(l); c != want {
			t.Errorf("table row has %d pipes, header %d: %s", c, want, l)
		}
	}
}

func TestMD(t *testing.T) {
	tests := []struct{ in, want string }{
		{"runtime.gcStart", "runtime.gcStart"},
		{"sync.(*Mutex).Lock", `sync.(\*Mutex).Lock`},
		{"- item", `\- item`},
		{"12. x", `12\. x`},
		{"see www.x.org or https://x.org/a", `see www\.x.org or https\://x.org/a`},
		{"[l](u)", `\[l\](u)`},
		{"a|b", `a\|b`},
		{"<b>", `\<b\>`},
		{"x\ny", "x y"},
		{"@me", "@\u200bme"},
		{"é", "é"},
		{"\xff", "\uFFFD"},
		{"\u202e", " "},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := md(tt.in); got != tt.want {
				t.Errorf("md(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	if got := md(strings.Repeat("a", 500)); len([]rune(got)) != MaxNameRunes+1 {
		t.Errorf("long name not cut: %d runes", len([]rune(got)))
	}
	if got := mdCode("sync.(*Mutex).Lock"); got != "`sync.(*Mutex).Lock`" {
		t.Errorf("mdCode = %q", got)
	}
	if got := mdCode("a`b"); got != "a\\`b" {
		t.Errorf("mdCode with a backtick = %q", got)
	}
}

func TestCommentFitsLimit(t *testing.T) {
	in := fixtureInput(t)
	// A profile with thousands of huge contributor and frame names.
	long := strings.Repeat("very.long/package.(*Type).Method·", 20)
	set := contributorSet("head", 1)
	for i := 0; i < 3000; i++ {
		set.Contributors = append(set.Contributors, set.Contributors[0])
	}
	in.Profiles.Contributors = []ContributorSet{set}
	d := fixtureDiff(t, long)
	for j := 0; j < 50; j++ {
		d.Grew = append(d.Grew, d.Grew[0])
	}
	for i := 0; i < 200; i++ {
		in.Profiles.Diffs = append(in.Profiles.Diffs, d)
	}
	for i := 0; i < 2000; i++ {
		in.Gate.Notes = append(in.Gate.Notes, long)
	}
	got, err := Comment(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) > MaxCommentBytes {
		t.Fatalf("comment is %d bytes, over %d", len(got), MaxCommentBytes)
	}
	if !strings.Contains(got, "left out to fit GitHub's comment limit") {
		t.Error("no truncation note")
	}
	if !strings.Contains(got, "Latency gate:") || !strings.HasPrefix(got, Marker) {
		t.Error("verdict or marker lost in truncation")
	}
}

func TestCommentNeedsADocument(t *testing.T) {
	if _, err := Comment(&Input{}); err == nil {
		t.Fatal("no error for an input without documents")
	}
}

func TestCommentWithoutProfiles(t *testing.T) {
	g, _ := fixtureDocs(t)
	in := &Input{Gate: g, Profiles: Profiles{Unavailable: "not root: the eBPF collectors need CAP_BPF and CAP_PERFMON"}}
	got, err := Comment(in)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got, "Profiles unavailable: not root") {
		t.Errorf("missing unavailable reason:\n%s", got)
	}
	if strings.Contains(got, "Per-fix attribution") {
		t.Error("attribution section without an experiment")
	}
}

func TestCommentInvalidRun(t *testing.T) {
	g, _ := fixtureDocs(t)
	for i := range g.Rounds {
		g.Rounds[i].Valid = false
		g.Rounds[i].Invalid = []string{"attacker lagged 3ms behind the schedule"}
	}
	g.Gate.Verdict, g.Gate.Reasons = "invalid", []string{"round 0 (base #0, block 0) invalid: attacker lagged"}
	g.Gate.P99 = gate.P99Result{Quantile: 0.99, SLO: g.Gate.P99.SLO}
	g.Gate.P50 = gate.P50Result{}
	in := &Input{Gate: g, Profiles: Profiles{Unavailable: "not root"}}
	got, err := Comment(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Latency gate: **INVALID**", "no valid head rounds", "attacker lagged", "| p99 | n/a | n/a |"} {
		if !strings.Contains(got, want) {
			t.Errorf("comment lacks %q:\n%s", want, got)
		}
	}
	var b strings.Builder
	if err := HTML(&b, in); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "no: attacker lagged") {
		t.Error("HTML report does not show the invalid rounds")
	}
	b.Reset()
	if err := Writeup(&b, in, nil); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "was invalid: attacker lagged") || !strings.Contains(b.String(), "more invalid rounds") {
		t.Error("write-up risks do not list the invalid rounds (capped)")
	}
}

// TestNoValidHeadRoundsIsNotASpeedup: with every head round invalid the
// base still has figures; the change column and the summary must not read
// the empty head as a -100% change.
func TestNoValidHeadRoundsIsNotASpeedup(t *testing.T) {
	g, _ := fixtureDocs(t)
	for i := range g.Rounds {
		if g.Rounds[i].Arm == gate.ArmHead {
			g.Rounds[i].Valid = false
			g.Rounds[i].Invalid = []string{"attacker lagged 3ms behind the schedule"}
		}
	}
	g.Gate.Verdict, g.Gate.Reasons = "invalid", []string{"no valid head rounds"}
	in := &Input{Gate: g, Profiles: Profiles{Unavailable: "not root"}}
	got, err := Comment(in)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := Writeup(&b, in, nil); err != nil {
		t.Fatal(err)
	}
	var h strings.Builder
	if err := HTML(&h, in); err != nil {
		t.Fatal(err)
	}
	for name, doc := range map[string]string{"comment": got, "write-up": b.String(), "html": h.String()} {
		if strings.Contains(doc, "-100.0%") {
			t.Errorf("%s reads the empty head as -100%%:\n%s", name, doc)
		}
	}
	if !strings.Contains(got, "| n/a | - |") {
		t.Errorf("comment table lacks an n/a head with no change:\n%s", got)
	}
}
