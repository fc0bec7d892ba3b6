package experiment

import (
	"bufio"
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/tailgate-ci/tailgate/internal/gate"
)

func TestTheilSenMannKendall(t *testing.T) {
	for _, tc := range []struct {
		name      string
		ys        []float64
		slope     float64
		trendSign int // sign of Z when p < 0.05, 0 for no significant trend
	}{
		{"flat", []float64{5, 5, 5, 5, 5, 5, 5, 5}, 0, 0},
		{"rising", []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 1, 1},
		{"rising with outlier", []float64{1, 2, 30, 4, 5, 6, 7, 8, 9, 10}, 1, 1},
		{"falling", []float64{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}, -1, -1},
		{"noise", []float64{5, 7, 4, 6, 5, 7, 4, 6, 5, 6}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			xs := make([]float64, len(tc.ys))
			for i := range xs {
				xs[i] = float64(i)
			}
			if s := TheilSen(xs, tc.ys); math.Abs(s-tc.slope) > 1e-9 {
				t.Fatalf("slope %v, want %v", s, tc.slope)
			}
			z, p := MannKendall(tc.ys)
			sig := 0
			if p < 0.05 {
				sig = int(math.Copysign(1, z))
			}
			if sig != tc.trendSign {
				t.Fatalf("Mann–Kendall z %.2f p %.3g: trend %d, want %d", z, p, sig, tc.trendSign)
			}
		})
	}
}

func TestRunSoak(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name    string
		tail    func(i int) time.Duration
		invalid map[int]bool
		want    gate.Verdict
		drift   bool
		lagged  map[int]int // windows over the lag rule only (bracketed)
	}{
		{"steady", func(int) time.Duration { return 5 * ms }, nil, gate.Pass, false, nil},
		{"drifting", func(i int) time.Duration { return time.Duration(5+2*i) * ms }, nil, gate.Fail, true, nil},
		{"over slo", func(int) time.Duration { return 60 * ms }, nil, gate.Fail, false, nil},
		{"invalid window", func(int) time.Duration { return 5 * ms }, map[int]bool{3: true}, gate.Invalid, false, nil},
		{"lag-bounded windows", func(int) time.Duration { return 5 * ms }, nil, gate.Pass, false, map[int]int{2: 1, 7: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeDriver{n: 3000, invalid: tc.invalid, lagged: tc.lagged, lagFree: true, median: map[string]time.Duration{}, tail: map[string]time.Duration{}}
			d := driverFunc(func(ctx context.Context, svc string, s Slot) (*Measured, error) {
				f.median[svc], f.tail[svc] = 2*ms, tc.tail(s.Index)
				return f.Round(ctx, svc, s)
			})
			rss := int64(100 << 20)
			res, err := RunSoak(context.Background(), SoakRun{Duration: 10 * time.Minute, Window: time.Minute, Arm: "soak", Driver: d,
				Sample: func(context.Context) (Sample, error) {
					rss += 1 << 20
					return Sample{RSSBytes: rss, GCCycles: float64(rss >> 20)}, nil
				}})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Windows) != 10 || res.Verdict != tc.want || res.P99Trend.Drift != tc.drift {
				t.Fatalf("%d windows, verdict %s (want %s), drift %v: %v", len(res.Windows), res.Verdict, tc.want, res.P99Trend.Drift, res.Reasons)
			}
			if lb := res.LagBracket; (lb != nil) != (tc.lagged != nil) || lb != nil && (!lb.Agree || lb.Windows != len(tc.lagged)) {
				t.Fatalf("lag bracket %+v for %d lagged windows", lb, len(tc.lagged))
			}
			if res.RSSTrend == nil || math.Abs(res.RSSTrend.SlopePerHour-60*(1<<20)) > 1 || math.Abs(res.GCPerMinute-1) > 1e-9 {
				t.Fatalf("memory trend %+v, gc/min %v", res.RSSTrend, res.GCPerMinute)
			}
		})
	}
}

type driverFunc func(ctx context.Context, svc string, s Slot) (*Measured, error)

func (f driverFunc) Round(ctx context.Context, svc string, s Slot) (*Measured, error) {
	return f(ctx, svc, s)
}

func TestParseMetrics(t *testing.T) {
	m, err := parseMetrics(bufio.NewScanner(strings.NewReader("# HELP go_gc_cycles_total x\ngo_gc_cycles_total 42\ngo_sched_latencies_seconds_bucket{le=\"1\"} 3\ngo_gc_heap_live_bytes 1.5e+08\n")))
	if err != nil || m["go_gc_cycles_total"] != 42 || m["go_gc_heap_live_bytes"] != 1.5e8 || len(m) != 2 {
		t.Fatalf("%v %v", m, err)
	}
}

// TestMemoryReason: RSS growth with a flat live heap and no GC cycle is
// garbage awaiting a collection, not a leak; with the live heap growing
// it is a leak candidate; no RSS drift, no reason.
func TestMemoryReason(t *testing.T) {
	up := &Trend{SlopePerHour: 100 << 20, Relative: 0.4, P: 0.008, Drift: true}
	flat := &Trend{P: 1}
	heapUp := &Trend{SlopePerHour: 50 << 20, Relative: 0.3, P: 0.01, Drift: true}
	for _, tc := range []struct {
		name string
		res  SoakResult
		want string
	}{
		{"no drift", SoakResult{RSSTrend: flat, HeapTrend: flat}, ""},
		{"no GC", SoakResult{RSSTrend: up, HeapTrend: flat, GCPerMinute: 0}, "no GC cycle ran during the soak"},
		{"between cycles", SoakResult{RSSTrend: up, HeapTrend: flat, GCPerMinute: 3}, "garbage between GC cycles"},
		{"leak", SoakResult{RSSTrend: up, HeapTrend: heapUp, GCPerMinute: 3}, "a leak candidate"},
		{"no heap figure", SoakResult{RSSTrend: up, GCPerMinute: -1}, "memory: RSS grows 100 MiB/h"},
	} {
		got := memoryReason(&tc.res)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
