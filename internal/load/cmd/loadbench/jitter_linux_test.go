//go:build linux

package main

import (
	"context"
	"regexp"
	"strings"
	"testing"
)

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
	if err := jitter(context.Background(), []string{"-period", "2s", "-duration", "1s"}, &out, &errb); err == nil || !strings.Contains(err.Error(), "period") {
		t.Errorf("period > duration: %v", err)
	}
}
