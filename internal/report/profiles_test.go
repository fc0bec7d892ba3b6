package report

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tailgate-ci/tailgate/internal/flame"
)

func TestLoadProfiles(t *testing.T) {
	dir := t.TempDir()
	a, b := flame.New("ns"), flame.New("ns")
	a.Add([]string{"main", "serve", "runtime.gcAssistAlloc"}, 8e6)
	a.Add([]string{"main", "serve", "encode"}, 1e6)
	b.Add([]string{"main", "serve", "runtime.gcAssistAlloc"}, 2e6)
	b.Add([]string{"main", "serve", "encode"}, 1.5e6)
	if _, _, err := flame.WriteDiffSet(filepath.Join(dir, "offcpu"), flame.DiffSet{Name: "offcpu-slow-vs-fast", A: a, B: b,
		ALabel: flame.LabelFast, BLabel: flame.LabelSlow}); err != nil {
		t.Fatal(err)
	}
	pj, _ := json.Marshal(map[string]any{"contributors": []ContributorSet{contributorSet("head", 1)}})
	if err := os.WriteFile(filepath.Join(dir, ProfilesFile), pj, 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := LoadProfiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	if p.Unavailable != "" || len(p.Contributors) != 1 || len(p.Diffs) != 1 {
		t.Fatalf("profiles = %+v", p)
	}
	d := p.Diffs[0]
	if d.Name != "offcpu-slow-vs-fast" || d.ALabel != flame.LabelFast || d.BLabel != flame.LabelSlow || d.Unit != "ns" {
		t.Errorf("diff %s: labels %s/%s unit %s", d.Name, d.ALabel, d.BLabel, d.Unit)
	}
	if len(d.SVGs) != 4 || !strings.HasSuffix(d.SVGs[0], "offcpu-slow-vs-fast-slow-over-fast.svg") {
		t.Errorf("svgs = %v, want 4 with the differential ones first", d.SVGs)
	}
	if len(d.Shrank) == 0 || d.Shrank[0].Name != "runtime.gcAssistAlloc" || d.Shrank[0].Delta != -6e6 {
		t.Errorf("shrank = %+v", d.Shrank)
	}
	if len(d.Grew) != 1 || d.Grew[0].Name != "encode" {
		t.Errorf("grew = %+v", d.Grew)
	}

	// Degrade, never fail, on a missing directory; fail on a corrupt file.
	p, err = LoadProfiles(filepath.Join(dir, "absent"))
	if err != nil || !strings.Contains(p.Unavailable, "no profiles directory") {
		t.Errorf("missing dir: %+v, %v", p, err)
	}
	if err := os.WriteFile(filepath.Join(dir, ProfilesFile), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadProfiles(dir); err == nil || !strings.Contains(err.Error(), ProfilesFile) {
		t.Errorf("corrupt %s: err = %v", ProfilesFile, err)
	}
}

func TestSoakTrend(t *testing.T) {
	tests := []struct {
		name         string
		growth       time.Duration // p99 added per window
		heapGrowth   uint64
		drift, heapF bool
	}{
		{"flat", 0, 0, false, false},
		{"p99 drifts", 400 * time.Microsecond, 0, true, false},
		{"heap leaks", 0, 8 << 20, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &SoakResult{Variant: "all", Window: time.Minute, SLO: 25 * time.Millisecond}
			for i := 0; i < 15; i++ {
				s.Windows = append(s.Windows, SoakWindow{Start: time.Duration(i) * time.Minute, Requests: 1000,
					P50: 2 * time.Millisecond, P99: 8*time.Millisecond + time.Duration(i)*tt.growth, HeapBytes: 100<<20 + uint64(i)*tt.heapGrowth})
			}
			if err := s.Validate(); err != nil {
				t.Fatal(err)
			}
			tr := trend(s)
			if tr.DriftFlagged != tt.drift || tr.HeapFlagged != tt.heapF {
				t.Errorf("drift %v (%.3f) heap %v (%.3f), want %v %v", tr.DriftFlagged, tr.Drift, tr.HeapFlagged, tr.HeapGrowth, tt.drift, tt.heapF)
			}
			wantSlope := time.Duration(float64(tt.growth) * 60)
			if d := tr.SlopePerHour - wantSlope; d > time.Microsecond || d < -time.Microsecond {
				t.Errorf("slope %v/h, want %v/h", tr.SlopePerHour, wantSlope)
			}
		})
	}
	bad := &SoakResult{Window: 0, Windows: []SoakWindow{{P50: 3, P99: 1}}}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "window_ns") || !strings.Contains(err.Error(), "windows[0]") {
		t.Errorf("Validate = %v", err)
	}
}

func TestWaterfallAddsUp(t *testing.T) {
	in := fixtureInput(t)
	f, err := derive(in)
	if err != nil {
		t.Fatal(err)
	}
	start, steps, _ := f.waterfallSteps()
	level := start.Delta
	for _, s := range steps[:len(steps)-1] {
		level += s.Delta
	}
	end := steps[len(steps)-1]
	if !end.IsTotal || math.Abs(level-end.Delta) > 1e-6 {
		t.Errorf("steps reach %.6f ms, the all-fixes level is %.6f ms", level, end.Delta)
	}
	var allP99 time.Duration
	for _, v := range f.attr.Variants {
		if v.Name == f.allFixes {
			allP99 = v.P99
		}
	}
	if math.Abs(end.Delta-msf(allP99)) > 1e-6 {
		t.Errorf("all-fixes level %.6f ms, variant p99 %v", end.Delta, allP99)
	}
}

func TestNotesGolden(t *testing.T) {
	in := fixtureInput(t)
	for _, fix := range fixtureFixes {
		got, err := FixNote(in, fix)
		if err != nil {
			t.Fatal(err)
		}
		golden(t, "fix-"+fix+".golden.md", got)
	}
	got, err := Cumulative(in)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "cumulative.golden.md", got)
	if _, err := FixNote(in, "nope"); err == nil {
		t.Error("no error for an unknown fix")
	}
}

func TestNotesEscapeHostileStrings(t *testing.T) {
	for i, h := range hostile {
		in := fixtureInput(t)
		in.Fixes = append(in.Fixes, FixInfo{Name: h, Contributor: h, Hypothesis: h})
		set := contributorSet("baseline", 1, h)
		set.Contributors[0].TopStacks[0].Frames = []string{h}
		in.Profiles.Contributors = append([]ContributorSet{set}, in.Profiles.Contributors...)
		in.Experiment.Base.Name = h
		in.Soak.Variant = h
		note, err := FixNote(in, h)
		if err != nil {
			t.Fatal(err)
		}
		cum, err := Cumulative(in)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range []string{note, cum} {
			got := codeSpan.ReplaceAllString(doc, "CODE")
			for _, l := range strings.Split(got, "\n") {
				if unescaped.MatchString(l) || liveHTML.MatchString(l) {
					t.Errorf("hostile string %d: unescaped in line %q", i, l)
				}
			}
			checkTables(t, doc)
		}
		if FixNoteFile(h) == "" || strings.ContainsAny(strings.TrimPrefix(FixNoteFile(h), FixNotesDir+"/"), `/\<>|`) {
			t.Errorf("hostile string %d: note file %q", i, FixNoteFile(h))
		}
	}
}

var liveHTML = regexp.MustCompile(`(^|[^\\])(<!--|</details)`)

// TestDiffShareNeedsABase: against a nearly empty side A the share of A's
// total is not shown (it would read +100000%); against a real one it is.
func TestDiffShareNeedsABase(t *testing.T) {
	a, b := flame.New("ns"), flame.New("ns")
	a.Add([]string{"main", "tiny"}, 10)
	a.Add([]string{"main", "steady"}, 1e6)
	b.Add([]string{"main", "tiny"}, 1e6)
	b.Add([]string{"main", "steady"}, 1.5e6)
	d, err := flame.Diff(a, b, flame.NormNone)
	if err != nil {
		t.Fatal(err)
	}
	fd := DiffFrom("x", "a", "b", d, nil)
	got := map[string]float64{}
	for _, c := range fd.Grew {
		got[c.Name] = c.Share
	}
	if s := got["steady"]; math.Abs(s-0.5e6/(1e6+10)) > 1e-9 {
		t.Errorf("steady grew by half of A's total, share %v", s)
	}
	if s := got["tiny"]; math.Abs(s-(1e6-10)/(1e6+10)) > 1e-9 {
		t.Errorf("tiny grew 100000-fold, but A as a whole is a real base: share %v, want %v", s, (1e6-10)/(1e6+10))
	}
	if s := got["main"]; math.Abs(s-(1.5e6-10)/(1e6+10)) > 1e-9 {
		t.Errorf("main share %v", s)
	}
	a2, b2 := flame.New("ns"), flame.New("ns")
	a2.Add([]string{"main", "x"}, 10)
	b2.Add([]string{"main", "x"}, 1e6)
	d2, err := flame.Diff(a2, b2, flame.NormNone)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range DiffFrom("y", "a", "b", d2, nil).Grew {
		if c.Share != 0 {
			t.Errorf("%s: share %v of a 10 ns side A shown", c.Name, c.Share)
		}
	}
}
