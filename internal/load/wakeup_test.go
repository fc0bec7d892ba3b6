package load

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestSummarizeWakeups(t *testing.T) {
	var lag []time.Duration
	for i := 1; i <= 1000; i++ {
		lag = append(lag, time.Duration(i)*2*time.Microsecond) // 2 µs … 2 ms
	}
	st := summarizeWakeups(lag, time.Millisecond)
	if st.N != 1000 || st.P50 != 1002*time.Microsecond || st.Max != 2*time.Millisecond || st.Late != 500 {
		t.Errorf("summary %+v", st)
	}
	if st := summarizeWakeups(nil, time.Millisecond); st.N != 0 || st.Max != 0 {
		t.Errorf("empty: %+v", st)
	}
	st.Period, st.Duration, st.Realtime = time.Millisecond, time.Second, true
	if n := st.Note(); !strings.Contains(n, "SCHED_RR sleeper woke up to 2.00 ms late") || !strings.Contains(n, "breaks the 1ms max-lag rule") {
		t.Errorf("note %q", n)
	}
	st.Limit = 3 * time.Millisecond
	if n := st.Note(); strings.Contains(n, "breaks") {
		t.Errorf("a floor under the limit reads as breaking it: %q", n)
	}
}

// TestProbeWakeups: one wake-up per period, none skipped or doubled; the
// lateness is the host's and is not asserted.
func TestProbeWakeups(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("linux only")
	}
	st, err := ProbeWakeups(context.Background(), 300*time.Millisecond, 10*time.Millisecond, time.Millisecond, false)
	if err != nil {
		t.Fatal(err)
	}
	if st.N != 30 || st.Max < st.P50 || st.Period != 10*time.Millisecond {
		t.Errorf("stats %+v", st)
	}
	if _, err := ProbeWakeups(context.Background(), time.Second, 2*time.Second, time.Millisecond, false); err == nil {
		t.Error("period > duration accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ProbeWakeups(ctx, time.Second, time.Millisecond, time.Millisecond, false); err == nil {
		t.Error("cancelled probe returned no error")
	}
}
