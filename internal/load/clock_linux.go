//go:build linux

package load

import (
	"encoding/binary"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// clockSupported reports whether CLOCK_MONOTONIC stamps are available.
const clockSupported = true

// monoNow reads CLOCK_MONOTONIC, the clock bpf_ktime_get_ns reads. The call
// cannot fail for CLOCK_MONOTONIC on Linux (a valid clock id and pointer).
func monoNow() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

// sleeper paces ticks with a periodic timerfd read through Go's netpoller.
// It replaces time.Sleep in the pacer because Go's timers wait in
// epoll_wait, whose timeout has millisecond granularity: a sleep oversleeps
// by up to 1 ms (median ~0.7 ms measured here), which alone breaks a 1 ms
// lag budget. A timerfd is an hrtimer: its expiry makes the fd readable and
// wakes epoll at once. A blocking clock_nanosleep would be as precise but
// would hold the goroutine's P in the syscall, stranding the worker the
// pacer just handed a tick to (it sits in that P's run queue until sysmon
// retakes the P, up to 10 ms later); the netpoller parks the goroutine and
// frees the P. The timer is periodic, armed on the schedule itself
// (began + (k+1)·interval), so a tick costs one read, not a settime and a
// read: syscalls are expensive in VMs.
type sleeper struct {
	fd    int
	f     *os.File
	iv    int64
	woken atomic.Bool

	// Only the pacer goroutine touches these.
	armed bool
	start int64  // the began the timer is armed on
	fired uint64 // ticks due so far by the timer's count
}

func newSleeper(interval time.Duration) (*sleeper, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("timerfd_create: %w", err)
	}
	// A non-blocking fd makes os.NewFile return a pollable File.
	return &sleeper{fd: fd, f: os.NewFile(uintptr(fd), "pacer-timerfd"), iv: int64(interval)}, nil
}

// rearmSlack is how far the estimate of began may move before the timer is
// re-armed on it.
const rearmSlack = 5_000 // ns

// tick blocks the calling goroutine until tick k (0-based), due at
// began + (k+1)·interval on CLOCK_MONOTONIC, is due.
func (s *sleeper) tick(began int64, k uint64) error {
	if s.woken.Load() {
		return nil
	}
	if d := began - s.start; !s.armed || d > rearmSlack || d < -rearmSlack {
		if err := s.arm(began); err != nil {
			return err
		}
	}
	var buf [8]byte // expirations since the last read
	for s.fired < k+1 {
		if _, err := s.f.Read(buf[:]); err != nil {
			return fmt.Errorf("read timerfd: %w", err)
		}
		if s.woken.Load() {
			return nil
		}
		s.fired += binary.LittleEndian.Uint64(buf[:])
	}
	return nil
}

// arm starts the periodic timer on the schedule of began.
func (s *sleeper) arm(began int64) error {
	due := (monoNow() - began) / s.iv // ticks already due
	if due < 0 {
		due = 0
	}
	spec := unix.ItimerSpec{
		Value:    unix.NsecToTimespec(began + (due+1)*s.iv),
		Interval: unix.NsecToTimespec(s.iv),
	}
	if err := unix.TimerfdSettime(s.fd, unix.TFD_TIMER_ABSTIME, &spec, nil); err != nil {
		return fmt.Errorf("timerfd_settime: %w", err)
	}
	s.armed, s.start, s.fired = true, began, uint64(due)
	return nil
}

// wake makes a pending and every later tick return at once (any
// goroutine).
func (s *sleeper) wake() {
	s.woken.Store(true)
	spec := unix.ItimerSpec{Value: unix.Timespec{Nsec: 1}} // long past
	_ = unix.TimerfdSettime(s.fd, unix.TFD_TIMER_ABSTIME, &spec, nil)
}

func (s *sleeper) close() error { return s.f.Close() }
