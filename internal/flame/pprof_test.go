package flame

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
)

func TestPprofRoundTrip(t *testing.T) {
	p := mustRead(t, "head.folded")
	var b bytes.Buffer
	if err := WritePprof(&b, p, PprofOptions{Comments: []string{"head"}}); err != nil {
		t.Fatal(err)
	}
	pp, err := profile.Parse(&b)
	if err != nil {
		t.Fatal(err)
	}
	if got := pp.SampleType[0]; got.Type != "samples" || got.Unit != "count" {
		t.Errorf("sample type %s/%s, want samples/count", got.Type, got.Unit)
	}
	if len(pp.Sample) != len(p.Stacks) {
		t.Errorf("%d samples, want one per stack (%d)", len(pp.Sample), len(p.Stacks))
	}
	// Every distinct frame name is one function.
	names := map[string]bool{}
	for k := range p.Stacks {
		for _, f := range SplitStack(k) {
			names[f] = true
		}
	}
	if len(pp.Function) != len(names) {
		t.Errorf("%d functions, want %d", len(pp.Function), len(names))
	}
	back, err := FromPprof(pp, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Stacks, p.Stacks) || back.Unit != "samples" {
		t.Errorf("round trip changed the profile:\n%v\n%v", back.Stacks, p.Stacks)
	}
	if _, err := FromPprof(pp, 1); err == nil {
		t.Error("FromPprof accepted an out-of-range sample index")
	}
}

func TestPprofScaleAndUnits(t *testing.T) {
	p := mustRead(t, "base.folded")
	p.Requests = 4
	pt, err := p.PerTotal()
	if err != nil {
		t.Fatal(err)
	}
	pp, err := ToPprof(pt, PprofOptions{Scale: 1e6, SampleType: "share", SampleUnit: "ppm"})
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, s := range pp.Sample {
		sum += s.Value[0]
	}
	if sum != 1_000_000 {
		t.Errorf("per-total at 1e6 scale sums to %d ppm, want 1000000", sum)
	}
	ns := &Profile{Stacks: map[string]float64{"a;b": 1500}, Unit: "nanoseconds"}
	if pp, err := ToPprof(ns, PprofOptions{}); err != nil || pp.SampleType[0].Unit != "nanoseconds" {
		t.Errorf("nanoseconds profile: %v %v", pp, err)
	}
	if _, err := ToPprof(p, PprofOptions{Scale: -1}); err == nil {
		t.Error("negative scale accepted")
	}
}

// TestGoToolPprof checks that `go tool pprof` reads the exported files,
// alone with -top and against a base with -diff_base.
func TestGoToolPprof(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs go tool pprof; skipped with -short")
	}
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gobin); err != nil {
		if gobin, err = exec.LookPath("go"); err != nil {
			t.Skip("no go command to run go tool pprof")
		}
	}
	dir := t.TempDir()
	save := func(name string, p *Profile) string {
		path := filepath.Join(dir, name)
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := WritePprof(f, p, PprofOptions{}); err != nil {
			t.Fatal(err)
		}
		return path
	}
	base := save("base.pb.gz", mustRead(t, "base.folded"))
	head := save("head.pb.gz", mustRead(t, "head.folded"))
	pprof := func(args ...string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // the first call builds cmd/pprof
		defer cancel()
		cmd := exec.CommandContext(ctx, gobin, append([]string{"tool", "pprof"}, args...)...)
		cmd.Env = append(os.Environ(), "PPROF_TMPDIR="+dir) // keep HOME: GOCACHE holds the built pprof
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go tool pprof %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	// flat count, flat%, sum%, cum, cum%, name
	row := func(out, name string) []string {
		re := regexp.MustCompile(`(?m)^\s*(-?[\d.]+)\s+(-?[\d.]+)%\s+(-?[\d.]+)%\s+(-?[\d.]+)\s+(-?[\d.]+)%\s+` + regexp.QuoteMeta(name) + `\s*$`)
		m := re.FindStringSubmatch(out)
		if m == nil {
			t.Errorf("pprof output has no row for %s:\n%s", name, out)
			return []string{"", "", "", "", "", ""}
		}
		return m
	}

	top := pprof("-top", "-nodecount=50", head)
	if !strings.Contains(top, "Type: samples") {
		t.Errorf("pprof -top does not report the sample type:\n%s", top)
	}
	// scanobject: 60 of 160 self; Bid: 5 self, 55 cumulative.
	if m := row(top, "runtime.scanobject"); m[1] != "60" || m[2] != "37.50" {
		t.Errorf("scanobject flat %s (%s%%), want 60 (37.50%%)", m[1], m[2])
	}
	if m := row(top, "bidder.(*Server).Bid"); m[1] != "5" || m[4] != "55" {
		t.Errorf("Bid flat %s cum %s, want 5 and 55", m[1], m[4])
	}

	diff := pprof("-top", "-nodecount=50", "-diff_base="+base, head)
	// scanobject grew 25 -> 60, Lookup shrank 40 -> 20, futex grew 7.5 -> 30
	// (the base's 7.5 is rounded to 8 by the integer export).
	if m := row(diff, "runtime.scanobject"); m[1] != "35" {
		t.Errorf("diff: scanobject flat %s, want +35", m[1])
	}
	if m := row(diff, "bidder.(*Index).Lookup"); m[1] != "-20" {
		t.Errorf("diff: Lookup flat %s, want -20", m[1])
	}
	if m := row(diff, "runtime.futex"); m[1] != "22" {
		t.Errorf("diff: futex flat %s, want +22", m[1])
	}
}
