//go:build linux

package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/tailgate-ci/tailgate/internal/load"
)

// jitter measures the host's own wake-up lateness, the floor under any
// load generator's send lag (load.ProbeWakeups): one thread sleeps to
// absolute deadlines and records how late it wakes, by default as SCHED_RR
// 1 (as tailgate raises its load generator), optionally beside a
// one-thread CPU hog (as the bidder rules' neighbour). If this loop misses
// the 1 ms max-lag rule, no attacker on the host can meet it.
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
	st, err := load.ProbeWakeups(ctx, *dur, *period, *limit, *rt)
	if err != nil {
		return fmt.Errorf("jitter: %w", err)
	}
	fmt.Fprintf(stdout, "jitter: %d wake-ups every %v for %v (rt %v, hog %v): late p50 %v p99 %v p99.9 %v max %v; %d later than %v\n",
		st.N, *period, *dur, *rt, *hog, st.P50, st.P99, st.P999, st.Max, st.Late, *limit)
	return nil
}
