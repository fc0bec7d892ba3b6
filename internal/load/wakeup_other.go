//go:build !linux

package load

import (
	"context"
	"errors"
	"time"
)

// ProbeWakeups needs Linux (clock_nanosleep, SCHED_RR).
func ProbeWakeups(context.Context, time.Duration, time.Duration, time.Duration, bool) (WakeupStats, error) {
	return WakeupStats{}, errors.New("probe wake-ups: needs Linux")
}

type wakeup struct {
	at   int64
	late time.Duration
}

type hostProbe struct{}

type probeResult struct {
	ws         []wakeup
	perSleeper [][]wakeup
	witness    bool
	sleepers   int
}

func startHostProbe(context.Context) *hostProbe { return nil }

func (p *hostProbe) finish() probeResult { return probeResult{} }
