//go:build linux

package load

import (
	"context"
	"fmt"
	"math"
	"os"
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ProbeWakeups sleeps on one locked thread to absolute deadlines every
// period for dur, with clock_nanosleep (no Go timers, no I/O, no
// allocation), and reports how late each wake-up was, with realtime as
// SCHED_RR 1 (how tailgate raises its load generator). No load generator
// on the host can keep its sends more punctual than this.
func ProbeWakeups(ctx context.Context, dur, period, limit time.Duration, realtime bool) (WakeupStats, error) {
	if dur <= 0 || period <= 0 || period > dur {
		return WakeupStats{}, fmt.Errorf("probe wake-ups: want 0 < period (%v) <= duration (%v)", period, dur)
	}
	prio := 0
	if realtime {
		prio = loadGeneratorRTPriority
	}
	ws, err := sleepToDeadlines(ctx, nil, dur, period, prio)
	if err != nil {
		return WakeupStats{}, err
	}
	if err := ctx.Err(); err != nil {
		return WakeupStats{}, err
	}
	lag := make([]time.Duration, len(ws))
	for i, w := range ws {
		lag[i] = w.late
	}
	st := summarizeWakeups(lag, limit)
	st.Period, st.Duration, st.Realtime = period, dur, realtime
	return st, nil
}

// wakeup is one deadline (CLOCK_MONOTONIC ns) and how late it was met.
type wakeup struct {
	at   int64
	late time.Duration
}

// loadGeneratorRTPriority is the SCHED_RR priority tailgate raises its
// load generator to (experiment.RaiseAttackerPriority); witnessRTPriority
// the one of the sleeper beside a round, above it, so that no thread of
// the load generator can delay the sleeper: only the kernel, the
// hypervisor or a higher real-time task can.
const (
	loadGeneratorRTPriority = 1
	witnessRTPriority       = 2
)

// sleepToDeadlines sleeps to t0 + k·period on a locked thread until dur
// has passed (dur > 0), stop is closed or ctx ends; as SCHED_RR at
// rtPrio when that is > 0.
func sleepToDeadlines(ctx context.Context, stop <-chan struct{}, dur, period time.Duration, rtPrio int) ([]wakeup, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if rtPrio > 0 {
		attr := unix.SchedAttr{Policy: unix.SCHED_RR, Priority: uint32(rtPrio), Flags: unix.SCHED_FLAG_RESET_ON_FORK}
		attr.Size = uint32(unsafe.Sizeof(attr))
		if err := unix.SchedSetAttr(0, &attr, 0); err != nil {
			return nil, fmt.Errorf("probe wake-ups: sched_setattr SCHED_RR %d: %w (needs root or CAP_SYS_NICE)", rtPrio, err)
		}
		defer func() { // the thread returns to the runtime's pool
			attr := unix.SchedAttr{Policy: unix.SCHED_NORMAL}
			attr.Size = uint32(unsafe.Sizeof(attr))
			unix.SchedSetAttr(0, &attr, 0)
		}()
	}
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return nil, err
	}
	next := ts.Nano()
	end := int64(math.MaxInt64)
	if dur > 0 {
		end = next + int64(dur)
	}
	out := make([]wakeup, 0, 4096)
	for next+int64(period) <= end && ctx.Err() == nil {
		select {
		case <-stop:
			return out, nil
		default:
		}
		next += int64(period)
		want := unix.NsecToTimespec(next)
		for {
			err := unix.ClockNanosleep(unix.CLOCK_MONOTONIC, unix.TIMER_ABSTIME, &want, nil)
			if err == nil {
				break
			}
			if err != unix.EINTR {
				return nil, fmt.Errorf("probe wake-ups: clock_nanosleep: %w", err)
			}
		}
		unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
		out = append(out, wakeup{at: next, late: time.Duration(ts.Nano() - next)})
	}
	return out, nil
}

// processRealtime reports whether this process's main thread runs
// SCHED_RR or SCHED_FIFO: tailgate raises every thread of the load
// generator, the main one included, so the sleeper beside a round then
// runs real-time too. (The calling thread may be one the runtime started
// since, at the default policy.)
func processRealtime() bool {
	attr, err := unix.SchedGetAttr(os.Getpid(), 0)
	return err == nil && (attr.Policy == unix.SCHED_RR || attr.Policy == unix.SCHED_FIFO)
}

// hostProbe runs a bare sleeper beside a round (startHostProbe): the
// wake-ups it saw, collected when the round ends.
type hostProbe struct {
	stop chan struct{}
	done chan probeResult
}

type probeResult struct {
	ws      []wakeup
	witness bool // ran SCHED_RR above a real-time load generator
}

// startHostProbe starts a sleeper at 1 ms. When the load generator runs
// real-time, the sleeper runs real-time one priority above it: a witness
// of the host's own stalls (falling back to the default policy, and no
// witness, if that is refused).
func startHostProbe(ctx context.Context) *hostProbe {
	p := &hostProbe{stop: make(chan struct{}), done: make(chan probeResult, 1)}
	rt := processRealtime()
	go func() {
		prio := 0
		if rt {
			prio = witnessRTPriority
		}
		ws, err := sleepToDeadlines(ctx, p.stop, 0, time.Millisecond, prio)
		if err != nil && rt {
			rt = false
			ws, _ = sleepToDeadlines(ctx, p.stop, 0, time.Millisecond, 0)
		}
		p.done <- probeResult{ws: ws, witness: rt}
	}()
	return p
}

// finish stops the sleeper and returns its wake-ups.
func (p *hostProbe) finish() probeResult {
	close(p.stop)
	return <-p.done
}
