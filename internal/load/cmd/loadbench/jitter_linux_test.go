//go:build linux

package main

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestSummarizeJitter(t *testing.T) {
	var lag []time.Duration
	for i := 1; i <= 1000; i++ {
		lag = append(lag, time.Duration(i)*time.Microsecond*2) // 2 µs … 2 ms
	}
	st := summarizeJitter(lag, time.Millisecond)
	if st.N != 1000 || st.P50 != 1002*time.Microsecond || st.Max != 2*time.Millisecond || st.Late != 500 {
		t.Errorf("summary %+v", st)
	}
	if st := summarizeJitter(nil, time.Millisecond); st.N != 0 {
		t.Errorf("empty: %+v", st)
	}
}

// TestJitterWakesOnSchedule: the sleeper wakes once per period (no tick
// skipped or doubled) and reports it; lateness itself is the host's.
func TestJitterWakesOnSchedule(t *testing.T) {
	var out, errb strings.Builder
	err := jitter(context.Background(), []string{"-duration", "300ms", "-period", "10ms", "-rt=false", "-hog"}, &out, &errb)
	if err != nil {
		t.Fatalf("%v\n%s", err, errb.String())
	}
	if !regexp.MustCompile(`^jitter: 30 wake-ups every 10ms for 300ms \(rt false, hog true\): late p50 \S+ p99 \S+ p99\.9 \S+ max \S+; \d+ later than 1ms\n$`).MatchString(out.String()) {
		t.Errorf("output %q", out.String())
	}
	if err := jitter(context.Background(), []string{"-period", "2s", "-duration", "1s"}, &out, &errb); err == nil || !strings.Contains(err.Error(), "-period") {
		t.Errorf("period > duration: %v", err)
	}
}
