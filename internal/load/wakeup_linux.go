//go:build linux

package load

import (
	"context"
	"fmt"
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
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if realtime {
		attr := unix.SchedAttr{Policy: unix.SCHED_RR, Priority: 1, Flags: unix.SCHED_FLAG_RESET_ON_FORK}
		attr.Size = uint32(unsafe.Sizeof(attr))
		if err := unix.SchedSetAttr(0, &attr, 0); err != nil {
			return WakeupStats{}, fmt.Errorf("probe wake-ups: sched_setattr SCHED_RR: %w (needs root or CAP_SYS_NICE)", err)
		}
		defer func() { // the thread returns to the runtime's pool
			attr := unix.SchedAttr{Policy: unix.SCHED_NORMAL}
			attr.Size = uint32(unsafe.Sizeof(attr))
			unix.SchedSetAttr(0, &attr, 0)
		}()
	}
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return WakeupStats{}, err
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
				return WakeupStats{}, fmt.Errorf("probe wake-ups: clock_nanosleep: %w", err)
			}
		}
		unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
		lag = append(lag, time.Duration(ts.Nano()-next))
	}
	if err := ctx.Err(); err != nil {
		return WakeupStats{}, err
	}
	st := summarizeWakeups(lag, limit)
	st.Period, st.Duration, st.Realtime = period, dur, realtime
	return st, nil
}
