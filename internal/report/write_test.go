package report

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tailgate-ci/tailgate/internal/experiment"
	"github.com/tailgate-ci/tailgate/internal/gate"
)

func TestWriteDegrades(t *testing.T) {
	g, _ := fixtureDocs(t)
	in := &Input{Gate: g, Profiles: Profiles{Unavailable: "not root"}, SoakUnavailable: "soak skipped (--soak 0)"}
	dir := t.TempDir()
	m, err := Write(context.Background(), dir, in, Options{Chromium: filepath.Join(dir, "no-such-chromium")})
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"profiles": "not root", "soak": "soak skipped", WriteupPDF: "no-such-chromium"} {
		if !strings.Contains(m.Unavailable[k], want) {
			t.Errorf("unavailable[%s] = %q, want it to mention %q", k, m.Unavailable[k], want)
		}
	}
	for _, f := range m.Files {
		if f == WriteupPDF {
			t.Error("manifest lists a PDF that could not be printed")
		}
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, WriteupHTML))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Profiles unavailable: not root", "No soak", "No fixes were declared"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("write-up lacks %q", want)
		}
	}
}

// TestFullModeExperiment renders an experiment-only input whose
// attribution ran every subset, so it has Shapley values.
func TestFullModeExperiment(t *testing.T) {
	fixes := []string{"gc", "mlock"}
	vs, err := experiment.Variants(fixes, experiment.ModeFull)
	if err != nil {
		t.Fatal(err)
	}
	slots, err := experiment.ExperimentSchedule(vs, 4, 3)
	if err != nil {
		t.Fatal(err)
	}
	fixesOf := map[string][]string{}
	for _, v := range vs {
		fixesOf[v.Name] = v.Fixes
	}
	doc := &experiment.Document{SchemaVersion: experiment.SchemaVersion, Kind: experiment.KindExperiment, Rate: 100, Schedule: slots}
	var rounds []gate.Round
	for _, s := range slots {
		rr, gr := record(t, s, fixesOf[s.Arm], 800)
		doc.Rounds = append(doc.Rounds, rr)
		rounds = append(rounds, gr)
	}
	if doc.Attribution, err = experiment.Attribute(experiment.AttributionConfig{Fixes: fixes, Mode: experiment.ModeFull, Bootstrap: 200}, rounds); err != nil {
		t.Fatal(err)
	}
	in := &Input{Experiment: roundTrip(t, doc), Profiles: Profiles{Unavailable: "no BTF"}}
	c, err := Comment(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Tail-latency experiment: all fixes change p99", "### Baseline vs all fixes", "Per-fix attribution"} {
		if !strings.Contains(c, want) {
			t.Errorf("comment lacks %q:\n%s", want, c)
		}
	}
	f, err := derive(in)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, method := f.waterfallSteps(); method != "Shapley" {
		t.Errorf("waterfall method %q, want Shapley", method)
	}
	var b strings.Builder
	if err := HTML(&b, in); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "Shapley Δp99") {
		t.Error("HTML report has no Shapley column")
	}
}
