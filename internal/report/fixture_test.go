package report

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tailgate-ci/tailgate/internal/experiment"
	"github.com/tailgate-ci/tailgate/internal/flame"
	"github.com/tailgate-ci/tailgate/internal/gate"
	"github.com/tailgate-ci/tailgate/internal/latency"
)

// The fixture is a synthetic but realistic run of the bidder: a lognormal
// body (median ~2.5 ms) plus the four classic tail contributors, each a
// rare delay that its fix removes. Every figure in the golden files comes
// from these histograms through the same code the CLI runs.

var fixtureFixes = []string{"gc", "locks", "mlock", "placement"}

// contributorModel is one tail cause: the fraction of requests it hits and
// the delay range it adds.
type contributorModel struct {
	fix      string
	prob     float64
	min, max time.Duration
}

var models = []contributorModel{
	{"gc", 0.020, 6 * time.Millisecond, 22 * time.Millisecond},
	{"locks", 0.012, 4 * time.Millisecond, 16 * time.Millisecond},
	{"mlock", 0.006, 10 * time.Millisecond, 30 * time.Millisecond},
	{"placement", 0.010, 2 * time.Millisecond, 9 * time.Millisecond},
}

func sampleRound(t *testing.T, fixes []string, seed uint64, n int) string {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 0x7a11))
	h := latency.New()
	for i := 0; i < n; i++ {
		d := time.Duration(2.5e6 * math.Exp(0.35*rng.NormFloat64()))
		for _, m := range models {
			p := m.prob
			if slices.Contains(fixes, m.fix) {
				p /= 20 // a fix removes most, not all, of its cause
			}
			if rng.Float64() < p {
				d += m.min + time.Duration(rng.Int64N(int64(m.max-m.min)))
			}
		}
		if err := latency.Record(h, d); err != nil {
			t.Fatal(err)
		}
	}
	s, err := latency.Encode(h)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func record(t *testing.T, sl experiment.Slot, fixes []string, n int) (experiment.RoundRecord, gate.Round) {
	enc := sampleRound(t, fixes, uint64(sl.Order)*7919+uint64(len(sl.Arm)), n)
	h, err := latency.Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	gr := gate.Round{Arm: sl.Arm, Index: sl.Index, Block: sl.Block, Order: sl.Order, Hist: h, Valid: true}
	errs := int64(sl.Order % 3)
	rr := experiment.RoundRecord{
		RoundSummary: gate.RoundSummary{Arm: sl.Arm, Index: sl.Index, Block: sl.Block, Order: sl.Order, Count: h.TotalCount(),
			P50: gate.Quantile(h, 0.5), P99: gate.Quantile(h, 0.99), Max: latency.Max(h), Valid: true},
		Requests: h.TotalCount() + errs, Errors: errs, Hist: enc,
	}
	return rr, gr
}

var fixtureStart = time.Date(2026, 11, 25, 22, 0, 0, 0, time.UTC)

// gateDoc is a gate run: the PR (head) applies gc and locks.
func gateDoc(t *testing.T, baseRef, headRef string) *experiment.Document {
	t.Helper()
	cfg := gate.Config{}
	slots, err := experiment.GateSchedule(cfg, 42)
	if err != nil {
		t.Fatal(err)
	}
	first := slots[0].Block
	for _, s := range slots {
		first = min(first, s.Block)
	}
	doc := &experiment.Document{SchemaVersion: experiment.SchemaVersion, Kind: experiment.KindGate, Tool: "tailgate test",
		Service: "bidder", Base: &experiment.Ref{Name: baseRef, Commit: "1f2e3d4c5b6a79881f2e3d4c5b6a79881f2e3d4c"},
		Head:    &experiment.Ref{Name: headRef, Commit: "a1b2c3d4e5f60718a1b2c3d4e5f60718a1b2c3d4"},
		Started: fixtureStart, Finished: fixtureStart.Add(4 * time.Minute), Rate: 250, ScheduleSeed: 42}
	var rounds []gate.Round
	for _, s := range slots {
		if s.Block >= first+gate.DefaultMinRounds {
			continue
		}
		var fixes []string
		if s.Arm == gate.ArmHead {
			fixes = []string{"gc", "locks"}
		}
		rr, gr := record(t, s, fixes, 2000)
		doc.Schedule = append(doc.Schedule, s)
		doc.Rounds = append(doc.Rounds, rr)
		rounds = append(rounds, gr)
	}
	res := gate.Evaluate(cfg, rounds)
	doc.Gate = &res
	return roundTrip(t, doc)
}

// experimentDoc is a standard-mode attribution of the four fixes.
func experimentDoc(t *testing.T) *experiment.Document {
	t.Helper()
	vs, err := experiment.Variants(fixtureFixes, experiment.ModeStandard)
	if err != nil {
		t.Fatal(err)
	}
	slots, err := experiment.ExperimentSchedule(vs, 4, 7)
	if err != nil {
		t.Fatal(err)
	}
	fixesOf := map[string][]string{}
	for _, v := range vs {
		fixesOf[v.Name] = v.Fixes
	}
	doc := &experiment.Document{SchemaVersion: experiment.SchemaVersion, Kind: experiment.KindExperiment, Tool: "tailgate test",
		Service: "bidder", Base: &experiment.Ref{Name: "main", Commit: "1f2e3d4c5b6a79881f2e3d4c5b6a79881f2e3d4c"},
		Started: fixtureStart, Finished: fixtureStart.Add(12 * time.Minute), Rate: 250, ScheduleSeed: 7, Schedule: slots}
	var rounds []gate.Round
	for _, s := range slots {
		rr, gr := record(t, s, fixesOf[s.Arm], 1500)
		doc.Rounds = append(doc.Rounds, rr)
		rounds = append(rounds, gr)
	}
	a, err := experiment.Attribute(experiment.AttributionConfig{Fixes: fixtureFixes, Bootstrap: 400}, rounds)
	if err != nil {
		t.Fatal(err)
	}
	doc.Attribution = a
	return roundTrip(t, doc)
}

func roundTrip(t *testing.T, d *experiment.Document) *experiment.Document {
	t.Helper()
	b, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	out, err := experiment.ParseDocument(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func contributorSet(variant string, scale float64, names ...string) ContributorSet {
	if len(names) == 0 {
		names = []string{"gc", "locks", "page-faults", "numa"}
	}
	stacks := [][]string{
		{"net/http.(*conn).serve", "bidder.(*Bidder).auction", "runtime.mallocgc", "runtime.gcAssistAlloc"},
		{"net/http.(*conn).serve", "bidder.(*Bidder).auction", "bidder.(*budget).charge", "sync.(*Mutex).Lock"},
		{"net/http.(*conn).serve", "bidder.(*Index).Lookup", "bidder.(*Index).segment", "[k] handle_mm_fault"},
		{"net/http.(*conn).serve", "bidder.(*Bidder).auction", "runtime.mcall", "[k] finish_task_switch"},
	}
	shares := []float64{0.31, 0.22, 0.17, 0.09}
	set := ContributorSet{Variant: variant, SlowThreshold: 19 * time.Millisecond, FastThreshold: 2600 * time.Microsecond, SlowRequests: 120, FastRequests: 6000}
	for i, n := range names {
		s := shares[i%len(shares)] * scale
		set.Contributors = append(set.Contributors, Contributor{
			Name: n, SlowShare: s, FastShare: s / (8 + float64(i)*3), Events: int64(400 * s * 10), Time: time.Duration(s * 2.4e9),
			TopStacks: []Stack{{Frames: stacks[i%len(stacks)], Time: time.Duration(s * 1.9e9), Count: int64(300 * s * 10)}},
		})
	}
	return set
}

func fixtureDiff(t *testing.T, hostile string) FlameDiff {
	t.Helper()
	a, b := flame.New("ns"), flame.New("ns")
	a.Add([]string{"main", "serve", "auction", "runtime.mallocgc"}, 9e6)
	a.Add([]string{"main", "serve", "auction", "sync.(*Mutex).Lock"}, 6e6)
	a.Add([]string{"main", "serve", "Index.Lookup", "[k] handle_mm_fault"}, 4e6)
	a.Add([]string{"main", "serve", "encode"}, 2e6)
	b.Add([]string{"main", "serve", "auction", "runtime.mallocgc"}, 3e6)
	b.Add([]string{"main", "serve", "auction", "sync.(*Mutex).Lock"}, 1e6)
	b.Add([]string{"main", "serve", "Index.Lookup", "[k] handle_mm_fault"}, 4.2e6)
	b.Add([]string{"main", "serve", "encode"}, 2.5e6)
	if hostile != "" {
		b.Add([]string{"main", "serve", hostile}, 7e6)
	}
	dir := t.TempDir()
	paths, d, err := flame.WriteDiffSet(dir, flame.DiffSet{Name: "offcpu-head-vs-base", A: a, B: b, ALabel: flame.LabelBase, BLabel: flame.LabelHead,
		Palette: flame.PaletteOffCPU, Title: "off-CPU"})
	if err != nil {
		t.Fatal(err)
	}
	var svgs []string
	for _, p := range paths {
		if strings.HasSuffix(p, "-over-base.svg") || strings.HasSuffix(p, "-over-head.svg") {
			svgs = append(svgs, p)
		}
	}
	return DiffFrom("offcpu-head-vs-base", flame.LabelBase, flame.LabelHead, d, svgs)
}

// fixtureDocs returns the gate and experiment documents of the fixture.
// They are generated (by the real gate.Evaluate and experiment.Attribute)
// only with -update and otherwise read from testdata, so the golden files
// change only when the report does, not when the statistics evolve.
func fixtureDocs(t *testing.T) (g, e *experiment.Document) {
	t.Helper()
	load := func(name string, gen func() *experiment.Document) *experiment.Document {
		path := filepath.Join("testdata", name)
		if *update {
			b, err := gen().Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (go test ./internal/report -update creates it)", err)
		}
		d, err := experiment.ParseDocument(b)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		return d
	}
	fixtureOnce.Do(func() {
		fixtureGate = load("gate.json", func() *experiment.Document { return gateDoc(t, "main", "feature/pool-buffers") })
		fixtureExp = load("experiment.json", func() *experiment.Document { return experimentDoc(t) })
	})
	return roundTrip(t, fixtureGate), roundTrip(t, fixtureExp)
}

var (
	fixtureOnce             sync.Once
	fixtureGate, fixtureExp *experiment.Document
)

// fixtureInput is the full input of the golden files.
func fixtureInput(t *testing.T) *Input {
	t.Helper()
	g, e := fixtureDocs(t)
	return &Input{
		Gate:       g,
		Experiment: e,
		Profiles: Profiles{
			Contributors: []ContributorSet{
				contributorSet("head", 0.6),
				contributorSet("baseline", 1),
				contributorSet("gc", 0.8, "locks", "page-faults", "numa", "gc"),
				contributorSet(experiment.VariantName(fixtureFixes), 0.3),
			},
			Diffs: []FlameDiff{fixtureDiff(t, "")},
		},
		Soak: fixtureSoak(),
		// placement has no declared hypothesis: its note's is generated.
		Fixes: []FixInfo{
			{Name: "gc", Contributor: "gc", Hypothesis: "A smaller, pooled allocation rate and GOMEMLIMIT headroom cut GC cycles and mark assists in requests."},
			{Name: "locks", Contributor: "locks", Hypothesis: "Sharding the budget map removes the hot sync.Mutex that slow requests park on."},
			{Name: "mlock", Contributor: "page-faults", Hypothesis: "Locking the index mapping in memory stops major faults after the neighbour pages it out."},
			{Name: "placement", Contributor: "numa"},
		},
	}
}

func fixtureSoak() *SoakResult {
	s := &SoakResult{Variant: experiment.VariantName(fixtureFixes), Window: time.Minute, SLO: 25 * time.Millisecond}
	for i := 0; i < 20; i++ {
		wig := time.Duration((i*7919)%11) * 80 * time.Microsecond
		s.Windows = append(s.Windows, SoakWindow{Start: time.Duration(i) * time.Minute, Requests: 15000, Errors: int64(i % 4),
			P50: 2500*time.Microsecond + wig/10, P99: 7*time.Millisecond + wig + time.Duration(i)*20*time.Microsecond,
			HeapBytes: uint64(180<<20 + i*(1<<20)), RSSBytes: uint64(1300<<20 + i*(2<<20)), GCCycles: 12})
	}
	return s
}
