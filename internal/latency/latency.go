// Package latency owns how tailgate stores and reads request latencies:
// HdrHistograms in microseconds (1 µs–60 s, 3 significant digits), recording
// that never loses a count, quantiles with q in [0,1], merging that fails
// loudly when anything is dropped, the V2 compressed (base64) encoding, the
// HdrHistogram interval-log (.hlog) format, order-statistic confidence
// bounds for a quantile and percentile-spectrum data for plots.
//
// Histograms are not goroutine-safe (hdrhistogram-go gives no
// synchronization); each round owns its own.
package latency

import (
	"errors"
	"fmt"
	"math"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram geometry. Values are microseconds.
const (
	// MinValue is the lowest discernible value, 1 µs.
	MinValue int64 = 1
	// MaxValue is the highest trackable value, 60 s; larger latencies are
	// clamped to it so that their count is never lost.
	MaxValue int64 = 60_000_000
	// SigFigs is the number of significant decimal digits kept.
	SigFigs = 3
)

// ErrDropped is returned by Merge when the destination could not hold some
// of the source's counts.
var ErrDropped = errors.New("histogram merge dropped counts")

// New returns an empty histogram in microseconds, 1 µs–60 s, 3 significant
// digits.
func New() *hdrhistogram.Histogram {
	return hdrhistogram.New(MinValue, MaxValue, SigFigs)
}

// Micros converts d to whole microseconds for recording, rounding to the
// nearest microsecond and clamping to [MinValue, MaxValue]. A negative d
// (a clock bug upstream) is clamped to MinValue rather than dropped, so the
// request still counts.
func Micros(d time.Duration) int64 {
	us := (d + time.Microsecond/2) / time.Microsecond
	switch {
	case us < time.Duration(MinValue):
		return MinValue
	case us > time.Duration(MaxValue):
		return MaxValue
	}
	return int64(us)
}

// Record records one latency into h with RecordValue (never the
// coordinated-omission RecordCorrectedValue: callers pass latencies already
// measured from the intended send time). Values outside the range are
// clamped, so a count is never lost; the error only reports a histogram whose
// geometry cannot hold MinValue..MaxValue.
func Record(h *hdrhistogram.Histogram, d time.Duration) error {
	if err := h.RecordValue(Micros(d)); err != nil {
		return fmt.Errorf("record latency %s: %w", d, err)
	}
	return nil
}

// Quantile returns the value at quantile q of h, with q in [0,1] (0.99 is
// p99); hdrhistogram's own ValueAtQuantile takes a percentile in 0–100,
// which is why this wrapper exists. q is clamped to [0,1]; NaN reads as 0.
// The result is the highest value equivalent to the recorded one (the HDR
// convention), and 0 for an empty histogram.
func Quantile(h *hdrhistogram.Histogram, q float64) time.Duration {
	switch {
	case math.IsNaN(q) || q < 0:
		q = 0
	case q > 1:
		q = 1
	}
	return time.Duration(h.ValueAtQuantile(q*100)) * time.Microsecond
}

// Max returns the largest recorded value of h (highest equivalent value).
func Max(h *hdrhistogram.Histogram) time.Duration {
	if h.TotalCount() == 0 {
		return 0
	}
	return time.Duration(h.Max()) * time.Microsecond
}

// Merge adds every count of src into dst. It returns an error wrapping
// ErrDropped if dst could not hold some of them (values out of dst's range
// or a total-count overflow); dst then holds the rest.
func Merge(dst, src *hdrhistogram.Histogram) error {
	if dropped := dst.Merge(src); dropped != 0 {
		return fmt.Errorf("merge %d counts into histogram [%d, %d]: %d counts: %w",
			src.TotalCount(), dst.LowestTrackableValue(), dst.HighestTrackableValue(), dropped, ErrDropped)
	}
	return nil
}

// Encode returns h in the HdrHistogram V2 compressed encoding, base64, the
// form used in .hlog lines and readable by every HdrHistogram
// implementation.
func Encode(h *hdrhistogram.Histogram) (string, error) {
	b, err := h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		return "", fmt.Errorf("encode histogram: %w", err)
	}
	return string(b), nil
}

// Decode parses a base64 V2 compressed histogram as written by Encode (or
// any HdrHistogram implementation).
func Decode(s string) (*hdrhistogram.Histogram, error) {
	if s == "" {
		return nil, errors.New("decode histogram: empty input")
	}
	h, err := hdrhistogram.Decode([]byte(s))
	if err != nil {
		return nil, fmt.Errorf("decode histogram: %w", err)
	}
	return h, nil
}

// SpectrumPoint is one point of a percentile spectrum: the value at or
// below which Percentile percent (0–100) of the requests fall.
type SpectrumPoint struct {
	Percentile float64
	Value      time.Duration
}

// SpectrumTicks is the number of reporting ticks per half-distance to 100 %
// used by Spectrum, the HdrHistogram default: points get denser towards the
// tail (p50, p75, p87.5, ... each with 5 ticks in between).
const SpectrumTicks = 5

// Spectrum returns the percentile spectrum of h, as HdrHistogram's
// percentile-distribution output does, ending at 100 % (the max). Plot it
// against 1/(1-Percentile/100) on a log axis to show the tail. An empty
// histogram has no spectrum.
func Spectrum(h *hdrhistogram.Histogram) []SpectrumPoint {
	if h.TotalCount() == 0 {
		return nil
	}
	br := h.CumulativeDistributionWithTicks(SpectrumTicks)
	out := make([]SpectrumPoint, 0, len(br))
	for _, b := range br {
		out = append(out, SpectrumPoint{Percentile: b.Quantile, Value: time.Duration(b.ValueAt) * time.Microsecond})
	}
	return out
}
