package gort

import (
	"errors"
	"time"
)

// ErrNotSupported is wrapped by Start when the probes cannot run: not
// linux/amd64, no privileges (root, or CAP_BPF + CAP_PERFMON), a kernel
// without uprobes, or a target binary whose Go runtime cannot be analysed.
// The gate goes on without Go profiles and reports why.
var ErrNotSupported = errors.New("go runtime collectors not supported")

// Defaults applied for zero Options fields.
const (
	DefaultEventQueue = 8192     // Events channel capacity
	DefaultRingBytes  = 32 << 20 // ring buffer size (power of two)
)

// Options configures a session. The zero value of each field means its
// default.
type Options struct {
	// PID is the target process (required).
	PID int
	// Path is the target's executable; default /proc/PID/exe.
	Path string
	// Kinds to collect; nil means all of AllKinds. Block needs no other
	// kind; the join in internal/tail uses Run to follow goroutines across
	// threads, and Request for server-side windows.
	Kinds []Kind
	// MinBlock drops parks shorter than this (park to resume); zero keeps
	// every park, which is what lock-wait totals need.
	MinBlock time.Duration
	// EventQueue is the capacity of the Events channel.
	EventQueue int
	// RingBytes is the ring buffer size in bytes (power of two, multiple
	// of the page size).
	RingBytes int
}

func (o Options) withDefaults() Options {
	if o.Kinds == nil {
		o.Kinds = append([]Kind(nil), AllKinds...)
	}
	if o.EventQueue <= 0 {
		o.EventQueue = DefaultEventQueue
	}
	if o.RingBytes <= 0 {
		o.RingBytes = DefaultRingBytes
	}
	return o
}

// Info describes what a session attached to.
type Info struct {
	Path          string
	GoVersion     string
	OffsetsSource string // "dwarf" or "table go1.NN" (internal/goprobe)
	ReasonsSource string // where the wait-reason names came from
	GoidOffset    int64
	// Probes lists every uprobe: "runtime.gopark+0x0", "runtime.gopark+0x5c (RET)".
	Probes []string
}

// Stats summarizes a session. Lost events are never hidden: non-zero Lost
// or MapFull means the profile is incomplete.
type Stats struct {
	Events  map[Kind]uint64 // delivered, per kind
	Lost    map[Kind]uint64 // ring buffer full in the kernel
	MapFull map[Kind]uint64 // interval starts that could not be remembered
	Decode  uint64          // records that failed to decode
	Unread  uint64          // decoded but not delivered: the Start context ended first
	// Programs is each uprobe program's run count and CPU time from the
	// kernel's BPF run-time statistics, for programs that ran while they
	// were on (bpf.Options.ProgramStats turns them on for every program on
	// the host); empty otherwise. Runs count probe hits of the target.
	Programs map[string]ProgramCost
}

// ProgramCost is one program's kernel run-time statistics. Runtime is the
// program's own time: the uprobe's trap and the kernel's handling of it
// around the program are not in it.
type ProgramCost struct {
	Runs    uint64
	Runtime time.Duration
}

// TotalLost returns every event lost in the kernel or in decoding.
func (s Stats) TotalLost() uint64 {
	t := s.Decode + s.Unread
	for _, v := range s.Lost {
		t += v
	}
	for _, v := range s.MapFull {
		t += v
	}
	return t
}
