package tail

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/tailgate-ci/tailgate/bpf"
	"github.com/tailgate-ci/tailgate/bpf/gort"
	"github.com/tailgate-ci/tailgate/internal/rules"
)

// fakeSym names pcs from a table, root first, kernel frames suffixed.
func fakeSym(names map[uint64]string) Symbolizer {
	return func(user, kernel []uint64) []string {
		var out []string
		for i := len(user) - 1; i >= 0; i-- {
			n, ok := names[user[i]]
			if !ok {
				n = "?"
			}
			out = append(out, n)
		}
		for i := len(kernel) - 1; i >= 0; i-- {
			out = append(out, names[kernel[i]]+"_[k]")
		}
		return out
	}
}

var testNames = map[uint64]string{
	0x1000: "bidder.(*Ledger).Spend", 0x2000: "bidder.(*Bidder).auction", // park() stacks, innermost first
	0x3000: "runtime.gcBgMarkWorker", 0x4000: "runtime.goexit",
	0x5000: "bidder.(*Index).Lookup", 0x9000: "handle_mm_fault",
}

// tailRun is 197 fast requests (1 ms, 50 µs of it in the run queue) and
// three slow ones (times in µs):
//
//	A [0,20000):        lock park 1000-11000, major fault 11000-16000, GC STW 17000-19000
//	B [0,22000):        lock park 1000-21000 (the STW 17000-19000 wins there)
//	C [100000,114000):  run queue 101000-109000, off-CPU in gcBgMarkWorker 109000-113000
func tailRun() Input {
	in := Input{Go: []gort.Event{
		req(1000, 10, 0, 20000),
		park(1000, 10, 10, 1000, 11000, 11000, "SyncMutexLock"),
		stw(17000, 19000, gort.STWGCMarkTerm),
		req(1001, 11, 0, 22000),
		park(1001, 11, 11, 1000, 21000, 21000, "SyncMutexLock"),
		req(1002, 12, 100000, 114000),
	}}
	pf := kev(bpf.PageFault, 10, 11000, 5000)
	pf.Major, pf.UserStack, pf.KernelStack = true, []uint64{0x5000, 0x2000}, []uint64{0x9000}
	off := kev(bpf.OffCPU, 12, 109000, 4000)
	off.UserStack = []uint64{0x3000, 0x4000}
	in.Kernel = append(in.Kernel, pf, kev(bpf.RunQueue, 12, 101000, 8000), off)
	for i := int64(0); i < 197; i++ {
		s := 200000 + 2000*i
		in.Go = append(in.Go, req(uint64(i+1), 20, s, s+1000))
		in.Kernel = append(in.Kernel, kev(bpf.RunQueue, 20, s+100, 50))
	}
	return in
}

func TestClassifyRanksTailContributors(t *testing.T) {
	bds := Join(tailRun())
	cl := Classify(bds, Options{Symbolize: fakeSym(testNames)})
	if cl.SlowRequests != 3 || cl.FastRequests != 197 || cl.SlowThreshold != d(14000) || cl.FastThreshold != d(1000) || cl.SlowBy != "p99" {
		t.Fatalf("groups: slow %d (>= %v) fast %d (<= %v) by %s", cl.SlowRequests, cl.SlowThreshold, cl.FastRequests, cl.FastThreshold, cl.SlowBy)
	}
	// Per request: the contributors split the whole window.
	for _, rc := range append(append([]RequestContributors{}, cl.Slow...), cl.Fast...) {
		var sum time.Duration
		for _, x := range rc.Time {
			sum += x
		}
		if sum != rc.Latency {
			t.Fatalf("request %d: contributors sum to %v, window %v", rc.Seq, sum, rc.Latency)
		}
	}
	want := []struct {
		name             string
		slow, fast       time.Duration
		slowEvents       int64
		slowRequestsWith int
	}{
		{"lock", d(10000 + 18000), 0, 2, 2},
		{"gc", d(2000 + 2000 + 4000), 0, 3, 3}, // 2 STW overlaps + the off-CPU under gcBgMarkWorker
		{"numa", d(8000), d(197 * 50), 198 - 197, 1},
		{"pagefault", d(5000), 0, 1, 1},
		{"cpu", d(3000 + 2000 + 2000), d(197 * 950), 0, 3},
	}
	for i, w := range want {
		s := cl.Contributors[i]
		if s.Name != w.name || s.SlowTime != w.slow || s.FastTime != w.fast || s.SlowEvents != w.slowEvents || s.SlowRequestsWith != w.slowRequestsWith {
			t.Errorf("rank %d: got %s slow %v fast %v events %d with %d; want %+v", i+1, s.Name, s.SlowTime, s.FastTime, s.SlowEvents, s.SlowRequestsWith, w)
		}
	}
	if got := strings.Join(cl.Top, ","); got != "lock,gc,numa,pagefault" {
		t.Fatalf("top = %s", got)
	}
	lock, _ := cl.Contributor("lock")
	if !math.IsInf(lock.Enrichment, 1) || lock.SlowShare != float64(28000)/56000 {
		t.Fatalf("lock enrichment %v share %v", lock.Enrichment, lock.SlowShare)
	}
	numa, _ := cl.Contributor("numa")
	if want := (8000.0 / 56000) / (50.0 / 1000); math.Abs(numa.Enrichment-want) > 1e-9 {
		t.Fatalf("numa enrichment %v, want %v", numa.Enrichment, want)
	}
	if len(lock.TopStacks) != 1 || strings.Join(lock.TopStacks[0].Frames, ";") != "bidder.(*Bidder).auction;bidder.(*Ledger).Spend" ||
		lock.TopStacks[0].Count != 2 || lock.TopStacks[0].Time != d(10000+20000) {
		t.Fatalf("lock stacks = %+v", lock.TopStacks)
	}
	pf, _ := cl.Contributor("pagefault")
	if len(pf.TopStacks) != 1 || pf.TopStacks[0].Frames[2] != "handle_mm_fault_[k]" {
		t.Fatalf("page-fault stacks = %+v", pf.TopStacks)
	}
}

func TestClassifySLO(t *testing.T) {
	cl := Classify(Join(tailRun()), Options{SLO: 15 * time.Millisecond})
	if cl.SlowBy != "slo" || cl.SlowRequests != 2 || cl.SlowThreshold != 15*time.Millisecond {
		t.Fatalf("slow by %s: %d requests over %v", cl.SlowBy, cl.SlowRequests, cl.SlowThreshold)
	}
	// Without frame symbols the gc frame rule cannot match: C is not slow
	// anyway, and the lock still leads.
	if cl.Top[0] != "lock" {
		t.Fatalf("top = %v", cl.Top)
	}
}

func TestClassifierRequest(t *testing.T) {
	cs := rules.Contributors{
		{Name: "lock", Owns: []string{"lock-wait"}},
		// Lock waits under the index are charged to pagefault here (a
		// rule's frames override the component's owner).
		{Name: "pagefault", Owns: []string{"page-fault"}, Kinds: []string{"block"}, Frames: []rules.Regexp{rules.MustRegexp(`Index`)}},
		{Name: "cpu", Owns: []string{"on-cpu"}},
	}
	c := NewClassifier(cs, fakeSym(testNames))
	if got := strings.Join(c.Names(), ","); got != "lock,pagefault,cpu,other" {
		t.Fatalf("names = %s (other must be added)", got)
	}
	tests := []struct {
		name string
		b    Breakdown
		want []time.Duration // lock, pagefault, cpu, other
	}{
		{"owners only", Breakdown{Time: times(LockWait, 300, OnCPU, 700, Runnable, 100)}, []time.Duration{d(300), 0, d(700), d(100)}},
		{"evidence split in proportion, capped at the component", Breakdown{
			Time: times(LockWait, 600),
			Evidence: []Evidence{
				{Component: LockWait, Kind: "block", Overlap: d(400), Stack: []uint64{0x1000}},
				{Component: LockWait, Kind: "block", Overlap: d(800), Stack: []uint64{0x5000}},
			}}, []time.Duration{d(200), d(400), 0, 0}},
		{"evidence covers part: the owner keeps the rest", Breakdown{
			Time:     times(LockWait, 1000),
			Evidence: []Evidence{{Component: LockWait, Kind: "block", Overlap: d(250), Stack: []uint64{0x5000}}},
		}, []time.Duration{d(750), d(250), 0, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rc := c.Request(&tc.b)
			for i := range tc.want {
				if rc.Time[i] != tc.want[i] {
					t.Fatalf("time = %v, want %v", rc.Time, tc.want)
				}
			}
		})
	}
}

func TestClassifyEmpty(t *testing.T) {
	cl := Classify(nil, Options{})
	if cl.SlowRequests != 0 || len(cl.Top) != 0 || len(cl.Contributors) != len(rules.ContributorNames) {
		t.Fatalf("empty run: %+v", cl)
	}
}

// TestRuleNamesMatchTail keeps internal/rules' name lists in step with
// the components and event kinds they name.
func TestRuleNamesMatchTail(t *testing.T) {
	for i, n := range rules.ComponentNames {
		if Component(i).String() != n {
			t.Fatalf("rules.ComponentNames[%d] = %q, tail has %q", i, n, Component(i))
		}
	}
	if len(rules.ComponentNames) != int(NumComponents) {
		t.Fatalf("%d component names, tail has %d", len(rules.ComponentNames), NumComponents)
	}
	known := map[string]bool{}
	for _, k := range rules.EventKindNames {
		known[k] = true
	}
	for _, k := range []bpf.Kind{bpf.OffCPU, bpf.RunQueue, bpf.Futex, bpf.PageFault, bpf.NUMAMigrate, bpf.BlockIO, bpf.OnCPU} {
		if !known[k.String()] {
			t.Fatalf("bpf kind %q missing from rules.EventKindNames", k)
		}
	}
	for _, k := range gort.AllKinds {
		if !known[k.String()] {
			t.Fatalf("gort kind %q missing from rules.EventKindNames", k)
		}
	}
}
