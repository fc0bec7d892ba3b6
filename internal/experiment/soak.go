package experiment

// Soak: one arm at a constant (peak) rate for a long time, measured in
// back-to-back windows (one minute by default). It reports p99 per window,
// an overall verdict on the pooled histogram, drift of the p99 trend
// (Theil–Sen slope + Mann–Kendall test) and the service's memory and GC
// trend sampled at each window's end.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/tailgate-ci/tailgate/internal/gate"
	"github.com/tailgate-ci/tailgate/internal/latency"
	"github.com/tailgate-ci/tailgate/internal/load"
)

// Soak defaults.
const (
	DefaultSoakWindow = time.Minute
	// DefaultDriftThreshold is the relative change of p99 over the whole
	// soak (Theil–Sen slope × duration / median p99) above which a
	// significant Mann–Kendall trend is called drift.
	DefaultDriftThreshold = 0.10
	// DefaultDriftAlpha is the Mann–Kendall test's two-sided level.
	DefaultDriftAlpha = 0.05
	// SoakConfidence is the one-sided confidence of the pooled p99 bounds.
	SoakConfidence = 0.975
)

// SoakRun configures RunSoak.
type SoakRun struct {
	// Duration is the soak's length, split into Duration/Window windows.
	Duration, Window time.Duration
	// SLO is the p99 threshold (default gate.DefaultSLO).
	SLO time.Duration
	// DriftThreshold and DriftAlpha as the Default* constants.
	DriftThreshold, DriftAlpha float64
	// Arm is the Driver arm to load.
	Arm    string
	Driver Driver
	// Sample, if set, is called at each window's end for memory and GC
	// figures of the service.
	Sample   func(ctx context.Context) (Sample, error)
	Record   RecordFunc
	Progress io.Writer
}

// Sample is the service's memory and GC state at one moment.
type Sample struct {
	// RSSBytes is the resident set (VmRSS); 0 when unknown.
	RSSBytes int64 `json:"rss_bytes"`
	// GCCycles is the Go runtime's completed GC cycles (go_gc_cycles_total,
	// -1 unknown); HeapLiveBytes its live heap (go_gc_heap_live_bytes).
	GCCycles      float64 `json:"gc_cycles"`
	HeapLiveBytes float64 `json:"heap_live_bytes"`
	// GCCPUSeconds is go_cpu_classes_gc_total_cpu_seconds (-1 unknown).
	GCCPUSeconds float64 `json:"gc_cpu_seconds"`
	Err          string  `json:"error,omitempty"`
}

// SoakWindow is one window of a soak.
type SoakWindow struct {
	Index    int           `json:"index"`
	Start    time.Time     `json:"start"`
	End      time.Time     `json:"end"`
	Requests int64         `json:"requests"`
	Errors   int64         `json:"errors"`
	Timeouts int64         `json:"timeouts,omitempty"` // of Errors
	P50      time.Duration `json:"p50_ns"`
	P99      time.Duration `json:"p99_ns"`
	Max      time.Duration `json:"max_ns"`
	MaxLag   time.Duration `json:"max_lag_ns"`
	Valid    bool          `json:"valid"`
	Invalid  []string      `json:"invalid,omitempty"`
	Notes    []string      `json:"notes,omitempty"` // caveats (host stalls, timeouts)
	// LagBounded marks a window invalid only for the load generator's own
	// lag; HistLagFree is then its latencies from the actual send times,
	// and the soak's verdict brackets the lag (SoakResult.LagBracket).
	LagBounded  bool    `json:"lag_bounded,omitempty"`
	HistLagFree string  `json:"hist_lag_free,omitempty"`
	Sample      *Sample `json:"sample,omitempty"`
	// Hist is the window's histogram (latency.Encode).
	Hist string `json:"hist"`
}

// Trend is a robust linear trend of a series over the windows.
type Trend struct {
	// Slope is the Theil–Sen slope per hour, in the series' unit (ns for
	// latencies, bytes for memory, cycles for GC).
	SlopePerHour float64 `json:"slope_per_hour"`
	// Relative is the slope over the whole soak divided by the series'
	// median (0.1 = the series grew 10 % over the soak).
	Relative float64 `json:"relative"`
	// Z and P are the Mann–Kendall statistic and its two-sided p-value.
	Z     float64 `json:"mann_kendall_z"`
	P     float64 `json:"p_value"`
	N     int     `json:"n"`
	Drift bool    `json:"drift"`
}

// SoakResult is the versioned result of `tailgate soak` (soak.json).
type SoakResult struct {
	SchemaVersion int           `json:"schema_version"`
	Kind          string        `json:"kind"` // "soak"
	Service       string        `json:"service,omitempty"`
	Ref           *Ref          `json:"ref,omitempty"`
	Rate          float64       `json:"rate"`
	Window        time.Duration `json:"window_ns"`
	Started       time.Time     `json:"started"`
	Finished      time.Time     `json:"finished"`
	SLO           time.Duration `json:"slo_ns"`
	Windows       []SoakWindow  `json:"windows"`
	// P50 and P99 are pooled over the valid windows; P99Lower/Upper are
	// one-sided order-statistic bounds at SoakConfidence.
	P50      time.Duration `json:"p50_ns"`
	P99      time.Duration `json:"p99_ns"`
	P99Lower time.Duration `json:"p99_lower_ns"`
	P99Upper time.Duration `json:"p99_upper_ns"`
	// Trends over the windows.
	P99Trend  Trend  `json:"p99_trend"`
	RSSTrend  *Trend `json:"rss_trend,omitempty"`
	HeapTrend *Trend `json:"heap_trend,omitempty"`
	// GCPerMinute is the GC cycles per minute over the soak (-1 unknown).
	GCPerMinute float64 `json:"gc_per_minute"`
	// LagBracket is set when windows invalid only for the load generator's
	// own lag took part: the verdict as measured and with their lag taken
	// out (their latency from the actual send); it stands when they agree.
	LagBracket *SoakLagBracket `json:"lag_bracket,omitempty"`
	Verdict    gate.Verdict    `json:"verdict"`
	Reasons    []string        `json:"reasons"`
	Notes      []string        `json:"notes,omitempty"`
}

// SoakSchemaVersion is the version of SoakResult.
const SoakSchemaVersion = 1

// RunSoak runs the windows back to back and analyses them. The verdict is
// invalid when any window is invalid; fail when the pooled p99's lower
// bound is over the SLO or p99 drifts upwards; pass when its upper bound is
// under the SLO and there is no upward drift; else inconclusive.
func RunSoak(ctx context.Context, o SoakRun) (*SoakResult, error) {
	if o.Driver == nil {
		return nil, errors.New("soak: no driver")
	}
	if o.Window <= 0 {
		o.Window = DefaultSoakWindow
	}
	n := int(o.Duration / o.Window)
	if n < 1 {
		return nil, fmt.Errorf("soak: duration %s holds no %s window", o.Duration, o.Window)
	}
	if o.SLO == 0 {
		o.SLO = gate.DefaultSLO
	}
	res := &SoakResult{SchemaVersion: SoakSchemaVersion, Kind: "soak", Window: o.Window, SLO: o.SLO, Started: time.Now().UTC()}
	for i := 0; i < n; i++ {
		if err := ctx.Err(); err != nil {
			res.Notes = append(res.Notes, fmt.Sprintf("interrupted after %d of %d windows", i, n))
			break
		}
		s := Slot{Order: i, Block: i, Arm: o.Arm, Index: i}
		m, err := o.Driver.Round(ctx, o.Arm, s)
		if err != nil {
			if ctx.Err() != nil {
				res.Notes = append(res.Notes, fmt.Sprintf("interrupted in window %d of %d", i+1, n))
				break
			}
			return res, fmt.Errorf("soak window %d: %w", i, err)
		}
		if o.Record != nil {
			if err := o.Record(s, m); err != nil {
				return res, fmt.Errorf("record soak window %d: %w", i, err)
			}
		}
		w := SoakWindow{Index: i, Start: m.Start, End: m.End, Requests: m.Requests, Errors: m.Errors, Timeouts: m.Timeouts,
			MaxLag: m.MaxLag, Valid: m.Valid, Invalid: m.Invalid, Notes: m.Notes}
		if m.Hist != nil && m.Hist.TotalCount() > 0 {
			w.P50, w.P99, w.Max = latency.Quantile(m.Hist, 0.5), latency.Quantile(m.Hist, 0.99), latency.Max(m.Hist)
		}
		if !m.Valid && m.LagOnly && m.LagFree != nil {
			if enc, err := latency.Encode(m.LagFree); err == nil {
				w.LagBounded, w.HistLagFree = true, enc
			}
		}
		if m.Hist != nil {
			if enc, err := latency.Encode(m.Hist); err == nil {
				w.Hist = enc
			}
		}
		if o.Sample != nil {
			sm, err := o.Sample(ctx)
			if err != nil {
				sm.Err = err.Error()
			}
			w.Sample = &sm
		}
		res.Windows = append(res.Windows, w)
		valid := "valid"
		if hasNote(w.Notes, load.NoteHostStalls) {
			valid = "valid (host stalls)"
		}
		if !w.Valid {
			valid = fmt.Sprintf("INVALID: %v", w.Invalid)
		}
		rss := ""
		if w.Sample != nil && w.Sample.RSSBytes > 0 {
			rss = fmt.Sprintf(", rss %.0f MiB", float64(w.Sample.RSSBytes)/(1<<20))
		}
		logf(o.Progress, "window %d/%d: %d requests, p50 %s, p99 %s%s, %s", i+1, n, w.Requests, fmtDur(w.P50), fmtDur(w.P99), rss, valid)
	}
	res.Finished = time.Now().UTC()
	stalled := 0
	for _, w := range res.Windows {
		if w.Valid && hasNote(w.Notes, load.NoteHostStalls) {
			stalled++
		}
	}
	if stalled > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf(load.NoteHostStalls+" %d of %d windows are valid although some requests went out more than the max lag late, inside stalls of the host a real-time sleeper above the load generator shared; their latencies include the stall", stalled, len(res.Windows)))
	}
	if err := analyseSoak(res, o); err != nil {
		return res, err
	}
	return res, nil
}

// SoakLagBracket is the soak's verdict at both ends of the lag of its
// lag-bounded windows.
type SoakLagBracket struct {
	Windows  int          `json:"windows"`
	Measured gate.Verdict `json:"measured"`
	LagFree  gate.Verdict `json:"lag_free"`
	Agree    bool         `json:"agree"`
}

// analyseSoak analyses the windows; windows invalid only for the load
// generator's own lag are bracketed: the analysis runs as measured and
// with their lag-free histograms, and its verdict stands when both agree.
func analyseSoak(res *SoakResult, o SoakRun) error {
	n := 0
	for _, w := range res.Windows {
		if w.LagBounded {
			n++
		}
	}
	if n == 0 {
		return analyseSoakView(res, o)
	}
	free := *res
	free.Windows = slices.Clone(res.Windows)
	for i := range free.Windows {
		w := &free.Windows[i]
		if !w.LagBounded {
			continue
		}
		h, err := latency.Decode(w.HistLagFree)
		if err != nil {
			return fmt.Errorf("soak window %d: lag-free histogram: %w", w.Index, err)
		}
		w.Hist = w.HistLagFree
		w.P50, w.P99, w.Max = latency.Quantile(h, 0.5), latency.Quantile(h, 0.99), latency.Max(h)
	}
	if err := analyseSoakView(&free, o); err != nil {
		return err
	}
	if err := analyseSoakView(res, o); err != nil {
		return err
	}
	lb := &SoakLagBracket{Windows: n, Measured: res.Verdict, LagFree: free.Verdict, Agree: res.Verdict == free.Verdict}
	res.LagBracket = lb
	if lb.Agree {
		if res.Verdict != gate.Invalid {
			res.Reasons = append(res.Reasons, fmt.Sprintf("%d windows had more load-generator lag than the rule allows (and no other fault): the verdict is %s both as measured and with their lag taken out", n, res.Verdict))
		}
		return nil
	}
	res.Reasons = append([]string{fmt.Sprintf("the load generator's own lag in %d windows could decide the verdict: %s as measured, %s with it taken out", n, res.Verdict, free.Verdict)}, res.Reasons...)
	res.Verdict = gate.Invalid
	return nil
}

func analyseSoakView(res *SoakResult, o SoakRun) error {
	if o.DriftThreshold == 0 {
		o.DriftThreshold = DefaultDriftThreshold
	}
	if o.DriftAlpha == 0 {
		o.DriftAlpha = DefaultDriftAlpha
	}
	pooled := latency.New()
	var invalid []string
	var p99s, rss, heap, xs []float64
	var xsMem []float64
	for _, w := range res.Windows {
		if !w.Valid && !w.LagBounded {
			invalid = append(invalid, fmt.Sprintf("window %d invalid: %v", w.Index, w.Invalid))
		}
		if w.Hist == "" {
			continue
		}
		h, err := latency.Decode(w.Hist)
		if err != nil {
			return fmt.Errorf("soak window %d: %w", w.Index, err)
		}
		if h.TotalCount() == 0 {
			continue
		}
		if err := latency.Merge(pooled, h); err != nil {
			return err
		}
		xs = append(xs, float64(w.Index))
		p99s = append(p99s, float64(w.P99))
		if s := w.Sample; s != nil && s.Err == "" {
			xsMem = append(xsMem, float64(w.Index))
			rss = append(rss, float64(s.RSSBytes))
			heap = append(heap, s.HeapLiveBytes)
		}
	}
	perHour := float64(time.Hour) / float64(o.Window)
	span := float64(len(res.Windows))
	res.P99Trend = trend(xs, p99s, perHour, span, o.DriftAlpha, o.DriftThreshold)
	if len(rss) >= 3 {
		t := trend(xsMem, rss, perHour, span, o.DriftAlpha, o.DriftThreshold)
		res.RSSTrend = &t
		if heap[0] >= 0 {
			t := trend(xsMem, heap, perHour, span, o.DriftAlpha, o.DriftThreshold)
			res.HeapTrend = &t
		}
	}
	res.GCPerMinute = -1
	if k := len(res.Windows); k >= 2 {
		first, last := res.Windows[0].Sample, res.Windows[k-1].Sample
		if first != nil && last != nil && first.GCCycles >= 0 && last.GCCycles >= first.GCCycles {
			mins := res.Windows[k-1].End.Sub(res.Windows[0].End).Minutes()
			if mins <= 0 { // windows run back to back
				mins = float64(k-1) * o.Window.Minutes()
			}
			if mins > 0 {
				res.GCPerMinute = (last.GCCycles - first.GCCycles) / mins
			}
		}
	}
	res.Reasons = nil
	if pooled.TotalCount() > 0 {
		res.P50, res.P99 = latency.Quantile(pooled, 0.5), latency.Quantile(pooled, 0.99)
	}
	b, err := latency.QuantileBounds(pooled, 0.99, SoakConfidence)
	bounded := err == nil
	if bounded {
		res.P99Lower, res.P99Upper = b.Lo, b.Hi
	}
	up := res.P99Trend.Drift && res.P99Trend.SlopePerHour > 0
	switch {
	case len(invalid) > 0:
		res.Verdict = gate.Invalid
		res.Reasons = invalid
	case len(res.Windows) == 0 || !bounded:
		res.Verdict = gate.Inconclusive
		res.Reasons = []string{fmt.Sprintf("too few samples for a p99 bound (%d requests)", pooled.TotalCount())}
	case b.Lo > o.SLO:
		res.Verdict = gate.Fail
		res.Reasons = []string{fmt.Sprintf("p99 %s over the %s SLO (%.1f%% lower bound %s)", fmtDur(res.P99), o.SLO, SoakConfidence*100, fmtDur(b.Lo))}
	case up:
		res.Verdict = gate.Fail
		res.Reasons = []string{fmt.Sprintf("p99 drifts up %.0f%% over the soak (Mann–Kendall p = %.3g)", res.P99Trend.Relative*100, res.P99Trend.P)}
	case b.Hi < o.SLO:
		res.Verdict = gate.Pass
		res.Reasons = []string{fmt.Sprintf("p99 %s under the %s SLO (%.1f%% upper bound %s), no upward drift", fmtDur(res.P99), o.SLO, SoakConfidence*100, fmtDur(b.Hi))}
	default:
		res.Verdict = gate.Inconclusive
		res.Reasons = []string{fmt.Sprintf("p99 %s: its bounds [%s, %s] straddle the %s SLO", fmtDur(res.P99), fmtDur(b.Lo), fmtDur(b.Hi), o.SLO)}
	}
	if r := memoryReason(res); r != "" {
		res.Reasons = append(res.Reasons, r)
	}
	return nil
}

// memoryReason reads the RSS and live-heap trends together. RSS that grows
// while the live heap does not is, in a Go service, garbage waiting for the
// next GC cycle (a high GOGC lets the heap grow to several times the live
// heap before one starts): said as such, most plainly when no cycle ran
// during the soak at all, so a short soak is not read as a leak. A live heap
// that grows is.
func memoryReason(res *SoakResult) string {
	t := res.RSSTrend
	if t == nil || !t.Drift || t.SlopePerHour <= 0 {
		return ""
	}
	s := fmt.Sprintf("memory: RSS grows %.0f MiB/h (%.0f%% over the soak, Mann–Kendall p = %.3g)", t.SlopePerHour/(1<<20), t.Relative*100, t.P)
	h := res.HeapTrend
	switch {
	case h != nil && h.Drift && h.SlopePerHour > 0:
		return s + fmt.Sprintf(", and the live heap with it (%.0f MiB/h): live memory grows, a leak candidate", h.SlopePerHour/(1<<20))
	case h != nil && res.GCPerMinute == 0:
		return s + "; the live heap is flat and no GC cycle ran during the soak: garbage waiting for the next cycle (GOGC), not live growth; a longer soak spans GC cycles"
	case h != nil:
		return s + "; the live heap is flat: garbage between GC cycles or memory the runtime has not returned, not live growth"
	}
	return s
}

// trend computes the Theil–Sen slope and the Mann–Kendall test of ys over
// xs (window indexes); perHour converts a per-window slope to per hour and
// span is the number of windows the soak covered.
func trend(xs, ys []float64, perHour, span, alpha, threshold float64) Trend {
	t := Trend{N: len(ys)}
	if len(ys) < 3 {
		t.P = 1
		return t
	}
	slope := TheilSen(xs, ys)
	t.SlopePerHour = slope * perHour
	if med := median(ys); med != 0 {
		t.Relative = slope * span / med
	}
	t.Z, t.P = MannKendall(ys)
	t.Drift = t.P < alpha && math.Abs(t.Relative) > threshold
	return t
}

// TheilSen returns the median of the pairwise slopes (ys[j]-ys[i])/(xs[j]-xs[i]),
// a trend estimate that ignores up to ~29 % outliers (slow windows).
func TheilSen(xs, ys []float64) float64 {
	var slopes []float64
	for i := range ys {
		for j := i + 1; j < len(ys); j++ {
			if dx := xs[j] - xs[i]; dx != 0 {
				slopes = append(slopes, (ys[j]-ys[i])/dx)
			}
		}
	}
	if len(slopes) == 0 {
		return 0
	}
	return median(slopes)
}

// MannKendall returns the Mann–Kendall trend statistic Z (normal
// approximation with the tie-corrected variance and a continuity
// correction) and its two-sided p-value, for a series in time order.
func MannKendall(ys []float64) (z, p float64) {
	n := len(ys)
	if n < 3 {
		return 0, 1
	}
	s := 0.0
	for i := 0; i < n; i++ {
		for j := i + 1; j < n; j++ {
			switch {
			case ys[j] > ys[i]:
				s++
			case ys[j] < ys[i]:
				s--
			}
		}
	}
	ties := map[float64]int{}
	for _, y := range ys {
		ties[y]++
	}
	nf := float64(n)
	v := nf * (nf - 1) * (2*nf + 5)
	for _, t := range ties {
		tf := float64(t)
		v -= tf * (tf - 1) * (2*tf + 5)
	}
	v /= 18
	if v <= 0 {
		return 0, 1
	}
	switch {
	case s > 0:
		z = (s - 1) / math.Sqrt(v)
	case s < 0:
		z = (s + 1) / math.Sqrt(v)
	}
	p = math.Erfc(math.Abs(z) / math.Sqrt2)
	return z, p
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	k := len(s)
	if k == 0 {
		return 0
	}
	if k%2 == 1 {
		return s[k/2]
	}
	return (s[k/2-1] + s[k/2]) / 2
}
