package load

import "time"

// clockMap maps Go times that carry a monotonic reading to CLOCK_MONOTONIC
// nanoseconds.
//
// Why not stamp each request with unix.ClockGettime in a custom transport?
// vegeta already stamps every hit: Result.Timestamp is taken under the same
// lock that assigns Result.Seq (so stamps and sequence numbers are ordered
// alike) and is computed as began.Add(time.Since(began)), so it carries Go's
// monotonic reading; Result.Latency is a monotonic difference too. On Linux
// Go's monotonic clock is runtime.nanotime, i.e. clock_gettime
// (CLOCK_MONOTONIC) through the vDSO, the clock bpf_ktime_get_ns reads. So
// Timestamp and Timestamp+Latency differ from CLOCK_MONOTONIC by one
// constant, which we measure once: time.Now() bracketed by two
// ClockGettime reads, keeping the narrowest bracket (error <= half its
// width, typically well under 100 ns). Stamping in a transport instead
// would need the seq threaded through request headers into a shared map
// (memory and a lock per request) and would miss the targeter's time.
type clockMap struct {
	ref     time.Time
	refMono int64
	// width is the bracket width of the calibration, the bound on its error
	// times two.
	width time.Duration
}

// calibrate measures the offset between Go's monotonic clock and
// CLOCK_MONOTONIC.
func calibrate() clockMap {
	best := clockMap{width: time.Duration(1 << 62)}
	for i := 0; i < 64; i++ {
		a := monoNow()
		t := time.Now()
		b := monoNow()
		if w := time.Duration(b - a); w < best.width {
			best = clockMap{ref: t, refMono: a + (b-a)/2, width: w}
		}
	}
	return best
}

// mono returns t on CLOCK_MONOTONIC. t must carry a monotonic reading
// (time.Now and values derived from it with Add do).
func (c clockMap) mono(t time.Time) int64 {
	return c.refMono + int64(t.Sub(c.ref))
}

// wall returns the Go time of CLOCK_MONOTONIC instant m.
func (c clockMap) wall(m int64) time.Time {
	return c.ref.Add(time.Duration(m - c.refMono))
}
