//go:build linux

package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// jitter measures the host's own wake-up lateness, the floor under any
// load generator's send lag: one thread sleeps to absolute 1 ms deadlines
// with clock_nanosleep (no Go timers, no HTTP, no allocation) and records
// how late it wakes, optionally as SCHED_RR 1 (as tailgate raises its load
// generator) and beside a one-thread CPU hog (as the bidder rules'
// neighbour). If this loop misses the 1 ms max-lag rule, no attacker on the
// host can meet it.
func jitter(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("jitter", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		dur    = fs.Duration("duration", 20*time.Second, "how long to sleep-and-wake")
		period = fs.Duration("period", time.Millisecond, "the deadline interval")
		rt     = fs.Bool("rt", true, "run the sleeper as SCHED_RR 1 (needs root or CAP_SYS_NICE)")
		hog    = fs.Bool("hog", false, "also spin one thread at the default priority")
		limit  = fs.Duration("late", time.Millisecond, "count wake-ups later than this")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("jitter: unexpected arguments %q", fs.Args())
	}
	if *dur <= 0 || *period <= 0 || *period > *dur {
		return fmt.Errorf("jitter: want 0 < -period (%v) <= -duration (%v)", *period, *dur)
	}
	var stop atomic.Bool
	defer stop.Store(true)
	if *hog {
		go func() {
			runtime.LockOSThread()
			x := uint64(1)
			for !stop.Load() {
				for i := 0; i < 100000; i++ {
					x = x*6364136223846793005 + 1442695040888963407
				}
			}
			_ = x
		}()
	}
	lag, err := sleepToDeadlines(ctx, *dur, *period, *rt)
	if err != nil {
		return err
	}
	st := summarizeJitter(lag, *limit)
	fmt.Fprintf(stdout, "jitter: %d wake-ups every %v for %v (rt %v, hog %v): late p50 %v p99 %v p99.9 %v max %v; %d later than %v\n",
		st.N, *period, *dur, *rt, *hog, st.P50, st.P99, st.P999, st.Max, st.Late, *limit)
	return nil
}

type jitterStats struct {
	N                   int
	P50, P99, P999, Max time.Duration
	Late                int
}

func summarizeJitter(lag []time.Duration, limit time.Duration) jitterStats {
	if len(lag) == 0 {
		return jitterStats{}
	}
	s := slices.Clone(lag)
	slices.Sort(s)
	q := func(f float64) time.Duration { return s[min(len(s)-1, int(f*float64(len(s))))] }
	st := jitterStats{N: len(s), P50: q(0.5), P99: q(0.99), P999: q(0.999), Max: s[len(s)-1]}
	for _, l := range s {
		if l > limit {
			st.Late++
		}
	}
	return st
}

// sleepToDeadlines sleeps on one locked thread to t0 + k·period for dur
// and returns how late each wake-up was.
func sleepToDeadlines(ctx context.Context, dur, period time.Duration, rt bool) ([]time.Duration, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if rt {
		attr := unix.SchedAttr{Policy: unix.SCHED_RR, Priority: 1, Flags: unix.SCHED_FLAG_RESET_ON_FORK}
		attr.Size = uint32(unsafe.Sizeof(attr))
		if err := unix.SchedSetAttr(0, &attr, 0); err != nil {
			return nil, fmt.Errorf("jitter: sched_setattr SCHED_RR: %w (run as root, or pass -rt=false)", err)
		}
		// The thread goes back to the pool when unlocked; leave it as found.
		defer func() {
			attr := unix.SchedAttr{Policy: unix.SCHED_NORMAL}
			attr.Size = uint32(unsafe.Sizeof(attr))
			unix.SchedSetAttr(0, &attr, 0)
		}()
	}
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return nil, err
	}
	next, end := ts.Nano(), ts.Nano()+int64(dur)
	lag := make([]time.Duration, 0, int(dur/period)+1)
	for next+int64(period) <= end && ctx.Err() == nil {
		next += int64(period)
		want := unix.NsecToTimespec(next)
		for {
			err := unix.ClockNanosleep(unix.CLOCK_MONOTONIC, unix.TIMER_ABSTIME, &want, nil)
			if err == nil {
				break
			}
			if err != unix.EINTR {
				return nil, fmt.Errorf("jitter: clock_nanosleep: %w", err)
			}
		}
		unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
		lag = append(lag, time.Duration(ts.Nano()-next))
	}
	return lag, ctx.Err()
}
