package load

import (
	"fmt"
	"slices"
	"time"
)

// WakeupStats is how late a bare sleeper woke on this host: the floor
// under any load generator's send lag (ProbeWakeups).
type WakeupStats struct {
	Period, Duration    time.Duration
	Realtime            bool // the sleeper ran as SCHED_RR 1
	N                   int  // wake-ups
	P50, P99, P999, Max time.Duration
	Limit               time.Duration // Late counts wake-ups later than this
	Late                int
}

// summarizeWakeups fills the quantiles and the late count from lag.
func summarizeWakeups(lag []time.Duration, limit time.Duration) WakeupStats {
	st := WakeupStats{N: len(lag), Limit: limit}
	if len(lag) == 0 {
		return st
	}
	s := slices.Clone(lag)
	slices.Sort(s)
	q := func(f float64) time.Duration { return s[min(len(s)-1, int(f*float64(len(s))))] }
	st.P50, st.P99, st.P999, st.Max = q(0.5), q(0.99), q(0.999), s[len(s)-1]
	for _, l := range s {
		if l > limit {
			st.Late++
		}
	}
	return st
}

func (s WakeupStats) String() string {
	who := "a bare sleeper"
	if s.Realtime {
		who = "a bare SCHED_RR sleeper"
	}
	return fmt.Sprintf("%s woke up to %s late over %s of %s ticks (p50 %s, p99 %s, p99.9 %s; %d of %d later than %s)",
		who, fmtLag(s.Max), s.Duration, s.Period, fmtLag(s.P50), fmtLag(s.P99), fmtLag(s.P999), s.Late, s.N, s.Limit)
}

// Note is the line a gate records about its host: the floor, and when the
// floor alone breaks the max-lag rule, what that means for the rounds.
func (s WakeupStats) Note() string {
	n := "host wake-up floor: " + s.String()
	if s.Max > s.Limit {
		n += fmt.Sprintf("; the host alone breaks the %s max-lag rule, so rounds may be invalid however good the load generator is: use a quieter runner", s.Limit)
	}
	return n
}

func fmtLag(d time.Duration) string {
	switch {
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%d µs", d.Microseconds())
	}
}
