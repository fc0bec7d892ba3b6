package bpf

import (
	"errors"
	"sort"
	"time"
)

// ErrNotSupported is wrapped by Start when the kernel lacks a hook or the
// caller lacks the privileges (root, or CAP_BPF + CAP_PERFMON). The gate
// goes on without profiles and reports why.
var ErrNotSupported = errors.New("bpf collectors not supported")

// Defaults applied for zero Options fields.
const (
	DefaultMinOffCPU        = 100 * time.Microsecond // shorter off-CPU intervals are not reported
	DefaultMinFutex         = 10 * time.Microsecond  // shorter futex waits are not reported
	DefaultMinRunQueue      = 50 * time.Microsecond  // shorter run-queue waits are not reported
	DefaultMinRunQueueStack = 500 * time.Microsecond // shorter run-queue waits go without a kernel stack
	DefaultMinMinorFault    = 20 * time.Microsecond  // faster minor faults are not reported
	DefaultSampleHz         = 499                    // on-CPU sampling rate per CPU
	DefaultEventQueue       = 4096                   // Events channel capacity
	DefaultRingBytes        = 16 << 20               // ring buffer size (power of two)
)

// Options configures a profiling session. The zero value of each field
// means its default.
type Options struct {
	// PIDs are the target processes (tgids). More can be added while the
	// session runs with Session.AddPID.
	PIDs []int
	// Collectors to run; nil means all of AllKinds.
	Collectors []Kind
	// MinOffCPU drops off-CPU intervals shorter than this (default
	// DefaultMinOffCPU; use 1ns to keep everything).
	MinOffCPU time.Duration
	// MinRunQueue drops run-queue waits shorter than this (default
	// DefaultMinRunQueue; use 1ns to keep everything).
	MinRunQueue time.Duration
	// MinRunQueueStack is the shortest run-queue wait whose event carries
	// the waiting task's kernel stack (default DefaultMinRunQueueStack; use
	// 1ns to take every one). Shorter waits are reported with their
	// duration, CPU and the task that ran instead, and ErrStackNotTaken
	// for stacks: the unwind of a task that is not running cost ~6 µs a
	// wait on the 2-vCPU reference VM, on the CPU the task was about to
	// run on, and was most of what the collectors cost a Go service
	// (bpf/doc.go "Overhead").
	MinRunQueueStack time.Duration
	// MinFutex drops futex waits shorter than this (default
	// DefaultMinFutex; use 1ns to keep everything).
	MinFutex time.Duration
	// MinMinorFault drops minor page faults shorter than this (default
	// DefaultMinMinorFault; use 1ns to keep all). Major faults are always
	// kept.
	MinMinorFault time.Duration
	// SampleHz is the on-CPU sampling frequency per CPU (default 499).
	SampleHz int
	// NoFollowChildren stops new processes forked by a target from being
	// added to the target set (by default they are, so a placement
	// launcher's per-node children are profiled too).
	NoFollowChildren bool
	// KeepGoIdle records the off-CPU intervals and futex waits of Go
	// runtime threads that have no goroutine (idle Ms parked in stopm, the
	// netpoller's wait, sysmon). By default, for targets that are Go
	// binaries with known runtime offsets, they are not recorded (the
	// thread's g.m.curg is read in the kernel; Stats.GoIdle counts them):
	// no request waits on them, and they are most of a Go service's
	// off-CPU and futex events.
	KeepGoIdle bool
	// BestEffort skips a collector whose hooks cannot be loaded or attached
	// instead of failing Start; Session.Skipped says which and why.
	BestEffort bool
	// ProgramStats turns the kernel's BPF run-time statistics on for the
	// session (BPF_ENABLE_STATS: every BPF program on the host then takes
	// two clock reads per run) so that Stats.Programs shows what the
	// collectors cost. Off by default: on the reference VM the statistics
	// cost ~90 ns a program run, more than some of the programs themselves
	// (a futex syscall of an untraced process: 0.31 µs with the collectors
	// attached, 0.49 µs with the statistics on; bpf/doc.go "Overhead").
	ProgramStats bool
	// EventQueue is the capacity of the Events channel.
	EventQueue int
	// RingBytes is the ring buffer size in bytes (power of two, multiple of
	// the page size).
	RingBytes int
}

func (o Options) withDefaults() Options {
	if o.Collectors == nil {
		o.Collectors = append([]Kind(nil), AllKinds...)
	}
	if o.MinOffCPU <= 0 {
		o.MinOffCPU = DefaultMinOffCPU
	}
	if o.MinFutex <= 0 {
		o.MinFutex = DefaultMinFutex
	}
	if o.MinRunQueue <= 0 {
		o.MinRunQueue = DefaultMinRunQueue
	}
	if o.MinRunQueueStack <= 0 {
		o.MinRunQueueStack = DefaultMinRunQueueStack
	}
	if o.MinMinorFault <= 0 {
		o.MinMinorFault = DefaultMinMinorFault
	}
	if o.SampleHz <= 0 {
		o.SampleHz = DefaultSampleHz
	}
	if o.EventQueue <= 0 {
		o.EventQueue = DefaultEventQueue
	}
	if o.RingBytes <= 0 {
		o.RingBytes = DefaultRingBytes
	}
	return o
}

// Stats summarizes a session. Lost events are never hidden: a non-zero
// Lost or MapFull means the profile is incomplete.
type Stats struct {
	Events  map[Kind]uint64 // events delivered, per kind
	Lost    map[Kind]uint64 // ring buffer full in the kernel (bpf_ringbuf_reserve/output failed)
	MapFull map[Kind]uint64 // interval starts that could not be remembered (start map full)
	Decode  uint64          // records that failed to decode
	Unread  uint64          // decoded but not delivered: the Start context ended first
	Skipped map[Kind]string // collectors not run (BestEffort) and why
	// GoIdle counts intervals not recorded because the thread was an idle
	// Go runtime thread (Options.KeepGoIdle), per kind; GoTargets the
	// target processes recognised as Go, whose idle threads are filtered.
	GoIdle    map[Kind]uint64
	GoTargets int
	// SameNodeMigrations counts the load-balancing migrations of targets
	// between CPUs of one node (sched_migrate_task): not NUMA moves, so
	// the NUMAMigrate collector counts them and sends no event.
	SameNodeMigrations uint64
	// Programs is the kernel's accounting of each BPF program's runs and
	// CPU time during the session (all processes: the programs run on
	// every traced event and filter in the kernel). Empty when statistics
	// were off or unavailable.
	Programs map[string]ProgramCost
}

// ProgramCost is the CPU one BPF program used.
type ProgramCost struct {
	Runs    uint64
	Runtime time.Duration
}

// TotalRuntime returns the CPU time of all programs.
func (s Stats) TotalRuntime() time.Duration {
	var t time.Duration
	for _, p := range s.Programs {
		t += p.Runtime
	}
	return t
}

// TotalEvents returns the number of events delivered.
func (s Stats) TotalEvents() uint64 { return sum(s.Events) }

// TotalLost returns every event lost in the kernel or in decoding.
func (s Stats) TotalLost() uint64 { return sum(s.Lost) + sum(s.MapFull) + s.Decode + s.Unread }

func sum(m map[Kind]uint64) uint64 {
	var t uint64
	for _, v := range m {
		t += v
	}
	return t
}

// Kinds returns the kinds present in s.Events, sorted.
func (s Stats) Kinds() []Kind {
	ks := make([]Kind, 0, len(s.Events))
	for k := range s.Events {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool { return ks[i] < ks[j] })
	return ks
}
