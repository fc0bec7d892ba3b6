//go:build linux

package main

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// consumerSched runs the recording consumer (ring readers, decoders,
// writers) under SCHED_IDLE, so that it never preempts the target on a
// CPU the target wants: it reads its events in the gaps. Under the normal
// policy the consumer woke every poll interval (or when the ring buffer
// filled to its wake-up mark) and, having slept, ran first, so that a
// request of the target waited for a whole batch of event decoding and
// writing. Should the host stay saturated, an idle-policy consumer would
// fall behind and the ring buffers fill: when an event it reads is older
// than maxLag, it goes back to the policy it started with for the rest of
// the recording, and the summary says when (never a silent loss: lost
// events are counted as always).
type consumerSched struct {
	maxLag time.Duration
	orig   *unix.SchedAttr // the policy the process started with

	lowered atomic.Bool
	seen    atomic.Uint64 // events observed, to check the lag every 64th

	mu       sync.Mutex
	raisedNs int64         // CLOCK_MONOTONIC when the consumer was raised; 0: never
	lag      time.Duration // the lag that raised it
	err      error         // the first failure to change a policy
}

// newConsumerSched reads the process's scheduling policy; lower applies
// SCHED_IDLE later.
func newConsumerSched(maxLag time.Duration) *consumerSched {
	c := &consumerSched{maxLag: maxLag}
	attr, err := unix.SchedGetAttr(0, 0)
	if err != nil {
		c.err = fmt.Errorf("sched_getattr: %w", err)
		return c
	}
	c.orig = attr
	return c
}

// lower moves every thread of the process to SCHED_IDLE. Threads the Go
// runtime creates afterwards inherit the policy of the thread that
// clones them.
func (c *consumerSched) lower() error {
	if c.orig == nil {
		return c.err
	}
	idle := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_IDLE}
	// Twice: a thread cloned by one not yet lowered keeps the old policy.
	for i := 0; i < 2; i++ {
		if err := setAllThreads(&idle); err != nil {
			c.restore()
			return err
		}
	}
	c.lowered.Store(true)
	return nil
}

// observe is called with the end of each event read (CLOCK_MONOTONIC ns);
// every 64th, it raises the consumer if that event is older than maxLag.
func (c *consumerSched) observe(endNs uint64) {
	if c == nil || !c.lowered.Load() || c.seen.Add(1)%64 != 0 || endNs == 0 {
		return
	}
	lag := time.Duration(monoNow() - int64(endNs))
	if lag <= c.maxLag {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.lowered.Load() {
		return
	}
	c.raisedNs, c.lag = monoNow(), lag
	c.restoreLocked()
}

// restore puts every thread back on the process's original policy.
func (c *consumerSched) restore() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.restoreLocked()
}

func (c *consumerSched) restoreLocked() {
	if c.orig == nil {
		return
	}
	orig := *c.orig
	orig.Size = unix.SizeofSchedAttr
	orig.Flags &= 1 // SCHED_FLAG_RESET_ON_FORK; no clamps or deadlines
	if err := setAllThreads(&orig); err != nil && c.err == nil {
		c.err = err
	}
	c.lowered.Store(false)
}

// raised reports whether, and when, the consumer fell behind and was
// raised, and any failure to set a policy.
func (c *consumerSched) raised() (whenNs int64, lag time.Duration, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.raisedNs, c.lag, c.err
}

// setAllThreads applies attr to every thread of this process.
func setAllThreads(attr *unix.SchedAttr) error {
	d, err := os.Open("/proc/self/task")
	if err != nil {
		return err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return err
	}
	for _, n := range names {
		tid, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		if err := unix.SchedSetAttr(tid, attr, 0); err != nil && err != unix.ESRCH {
			return fmt.Errorf("sched_setattr thread %d policy %d: %w", tid, attr.Policy, err)
		}
	}
	return nil
}
