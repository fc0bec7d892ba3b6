package rules

import (
	"os"
	"strings"
	"testing"
	"time"
)

const goodContributors = `contributors:
  - name: gc
    owns: [gc-stw, gc-assist]
    kinds: [offcpu, block]
    frames: ['^runtime\.gcBgMarkWorker$']
  - name: lock
    description: the pacing ledger's mutex
    owns: [lock-wait]
    kinds: [block]
    wait_reasons: ['^Sync(RW)?Mutex']
    min_duration: 50us
  - name: pagefault
    owns: [page-fault]
  - name: other
    owns: [off-cpu-other]
`

func TestParseContributors(t *testing.T) {
	r, err := Parse("good.yaml", []byte(good+goodContributors))
	if err != nil {
		t.Fatal(err)
	}
	cs := r.ContributorRules()
	if len(cs) != 4 || cs[1].Name != "lock" || cs[1].MinDuration != 50*time.Microsecond || cs[1].Description == "" {
		t.Fatalf("contributors = %+v", cs)
	}
	if !cs[1].WaitReasons[0].MatchString("SyncRWMutexLock") || cs[0].Frames[0].MatchString("runtime.gcStart") {
		t.Fatal("regexps not compiled as written")
	}
	// Absent section: the defaults.
	r, err = Parse("good.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if got := r.ContributorRules(); len(got) != len(ContributorNames) {
		t.Fatalf("default contributors = %d, want %d", len(got), len(ContributorNames))
	}
}

func TestBadContributors(t *testing.T) {
	lines := strings.Count(good, "\n")
	for _, tc := range []struct {
		name, yaml, want string
		line             int // 1-based line within yaml
	}{
		{"not a list", "contributors: gc\n", "contributors: want a list of contributors", 1},
		{"unknown key", "contributors:\n  - name: gc\n    owns: [gc-stw]\n    stacks: [x]\n", "contributors[0].stacks: unknown field", 4},
		{"unknown name", "contributors:\n  - name: garbage\n    owns: [gc-stw]\n", `contributors[0].name: unknown contributor "garbage"`, 2},
		{"missing name", "contributors:\n  - owns: [gc-stw]\n", "contributors[0].name: missing", 2},
		{"bad regexp", "contributors:\n  - name: lock\n    wait_reasons: ['Sync(']\n", `contributors[0].wait_reasons[0]: bad regexp "Sync("`, 3},
		{"bad frame regexp", "contributors:\n  - name: gc\n    frames:\n      - 'runtime\\.gc'\n      - '[z-a]'\n", "contributors[0].frames[1]: bad regexp", 5},
		{"empty regexp", "contributors:\n  - name: gc\n    frames: ['']\n", "contributors[0].frames[0]: empty regexp", 3},
		{"bad duration", "contributors:\n  - name: lock\n    owns: [lock-wait]\n    min_duration: 5 ms\n", `contributors[0].min_duration: "5 ms" is not a duration`, 4},
		{"negative duration", "contributors:\n  - name: lock\n    owns: [lock-wait]\n    min_duration: -1ms\n", "contributors[0].min_duration: -1ms is negative", 4},
		{"unknown component", "contributors:\n  - name: gc\n    owns: [gc-stw, gc]\n", `contributors[0].owns[1]: unknown component "gc"`, 3},
		{"unknown kind", "contributors:\n  - name: io\n    kinds: [disk]\n", `contributors[0].kinds[0]: unknown event kind "disk"`, 3},
		{"unknown match component", "contributors:\n  - name: io\n    kinds: [blockio]\n    components: [disk]\n", `contributors[0].components[0]: unknown component "disk"`, 4},
		{"matches nothing", "contributors:\n  - name: io\n    min_duration: 1ms\n", `contributors[0]: contributor "io" matches nothing`, 2},
		{"duplicate", "contributors:\n  - name: io\n    owns: [io]\n  - name: io\n    owns: [io]\n", `contributors[1].name: duplicate contributor "io"`, 4},
		{"scalar regexp list", "contributors:\n  - name: gc\n    frames: 'runtime'\n", "contributors[0].frames: want a list", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("bad.yaml", []byte(good+tc.yaml))
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
			prefix := "bad.yaml:" + itoa(lines+tc.line) + ":"
			if !strings.Contains(err.Error(), prefix) {
				t.Fatalf("error %q does not name %s", err, prefix)
			}
		})
	}
}

func TestMatchesEvidence(t *testing.T) {
	lock := Contributor{Name: "lock", Kinds: []string{"block"}, WaitReasons: []Regexp{MustRegexp(`^SyncMutex`)}, MinDuration: time.Millisecond}
	gc := Contributor{Name: "gc", Kinds: []string{"offcpu"}, Components: []string{"off-cpu-other"}, Frames: []Regexp{MustRegexp(`^runtime\.gcBgMarkWorker$`)}}
	owner := Contributor{Name: "cpu", Owns: []string{"on-cpu"}}
	frames := func(fs ...string) func() []string { return func() []string { return fs } }
	for _, tc := range []struct {
		name               string
		c                  Contributor
		kind, reason, comp string
		d                  time.Duration
		frames             []string
		want               bool
	}{
		{"lock match", lock, "block", "SyncMutexLock", "lock-wait", 2 * time.Millisecond, nil, true},
		{"lock too short", lock, "block", "SyncMutexLock", "lock-wait", time.Microsecond, nil, false},
		{"lock other reason", lock, "block", "ChanReceive", "off-cpu-other", 2 * time.Millisecond, nil, false},
		{"lock wrong kind", lock, "offcpu", "SyncMutexLock", "off-cpu-other", 2 * time.Millisecond, nil, false},
		{"gc frame", gc, "offcpu", "", "off-cpu-other", time.Millisecond, []string{"main.main", "runtime.gcBgMarkWorker"}, true},
		{"gc no frame", gc, "offcpu", "", "off-cpu-other", time.Millisecond, []string{"main.main"}, false},
		{"gc wrong component", gc, "offcpu", "", "page-fault", time.Millisecond, []string{"runtime.gcBgMarkWorker"}, false},
		{"owner only matches no evidence", owner, "oncpu", "", "on-cpu", time.Millisecond, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.c.MatchesEvidence(tc.kind, tc.reason, tc.comp, tc.d, frames(tc.frames...)); got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestDefaultContributorsValid(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range DefaultContributors() {
		if !inList(c.Name, ContributorNames) || seen[c.Name] {
			t.Fatalf("default contributor %q unknown or repeated", c.Name)
		}
		seen[c.Name] = true
		for _, o := range append(append([]string{}, c.Owns...), c.Components...) {
			if !inList(o, ComponentNames) {
				t.Fatalf("%s: unknown component %q", c.Name, o)
			}
		}
		for _, k := range c.Kinds {
			if !inList(k, EventKindNames) {
				t.Fatalf("%s: unknown kind %q", c.Name, k)
			}
		}
	}
	if strings.Join(ContributorNames, ",") != strings.Join(FixContributors, ",") {
		t.Fatalf("ContributorNames %v != FixContributors %v", ContributorNames, FixContributors)
	}
}

// TestReadmeContributorsExample keeps the contributors example of
// perf-rules/README.md valid and meaning what its comments say.
func TestReadmeContributorsExample(t *testing.T) {
	b, err := os.ReadFile("../../perf-rules/README.md")
	if err != nil {
		t.Fatal(err)
	}
	var example string
	for _, block := range strings.Split(string(b), "```yaml\n")[1:] {
		block, _, _ = strings.Cut(block, "```")
		if strings.HasPrefix(block, "contributors:") {
			example = block
			break
		}
	}
	if example == "" {
		t.Fatal("README.md has no yaml block starting with contributors:")
	}
	r, err := Parse("README.md contributors example", []byte(good+example))
	if err != nil {
		t.Fatal(err)
	}
	cs := r.ContributorRules()
	byName := map[string]Contributor{}
	for _, c := range cs {
		byName[c.Name] = c
	}
	if len(cs) != 7 || byName["lock"].MinDuration != 50*time.Microsecond {
		t.Fatalf("contributors %+v", cs)
	}
	io := byName["io"]
	if !io.MatchesEvidence("blockio", "", "io", time.Millisecond, func() []string { return []string{"main.main", "bidder.(*Index).Lookup"} }) {
		t.Error("io example does not match a block I/O under bidder.(*Index).Lookup")
	}
	gc := byName["gc"]
	if !gc.MatchesEvidence("offcpu", "", "off-cpu-other", time.Millisecond, func() []string { return []string{"runtime.gcBgMarkWorker", "runtime.gcDrainN"} }) {
		t.Error("gc example does not match off-CPU time in runtime.gcDrainN")
	}
}

// TestDefaultContributorsMatchBidderYAML keeps the built-in defaults and
// the contributors perf-rules/bidder.yaml writes out the same rules
// (descriptions aside).
func TestDefaultContributorsMatchBidderYAML(t *testing.T) {
	r, err := Load("../../perf-rules/bidder.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got, want := r.ContributorRules(), DefaultContributors()
	if len(r.Contributors) != len(want) {
		t.Fatalf("bidder.yaml has %d contributors, the defaults %d", len(r.Contributors), len(want))
	}
	res := func(l []Regexp) []string {
		var out []string
		for _, re := range l {
			out = append(out, re.String())
		}
		return out
	}
	for i := range want {
		g, w := got[i], want[i]
		same := g.Name == w.Name && g.MinDuration == w.MinDuration &&
			strings.Join(g.Owns, ",") == strings.Join(w.Owns, ",") &&
			strings.Join(g.Kinds, ",") == strings.Join(w.Kinds, ",") &&
			strings.Join(g.Components, ",") == strings.Join(w.Components, ",") &&
			strings.Join(res(g.WaitReasons), "\x00") == strings.Join(res(w.WaitReasons), "\x00") &&
			strings.Join(res(g.Frames), "\x00") == strings.Join(res(w.Frames), "\x00")
		if !same {
			t.Errorf("contributor %d: bidder.yaml %+v\ndefault %+v", i, g, w)
		}
	}
}
