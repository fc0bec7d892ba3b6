package bpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Kind says which collector produced an event.
type Kind uint8

// Event kinds, one per collector. The values are the `kind` field of the
// BPF `struct event` (collectors.bpf.c): keep them in sync.
const (
	OffCPU      Kind = 1 // time a thread spent blocked (voluntary sched_switch out → in)
	RunQueue    Kind = 2 // time a runnable thread waited for a CPU (wakeup/preempt → switch in)
	Futex       Kind = 3 // a futex wait syscall (sys_enter_futex → sys_exit_futex)
	PageFault   Kind = 4 // one accounted page fault (page_fault_user → PERF_COUNT_SW_PAGE_FAULTS_MAJ/MIN)
	NUMAMigrate Kind = 5 // a task moved to another CPU (sched_migrate_task, move/swap_numa)
	BlockIO     Kind = 6 // a block request issued by the target (issue → complete)
	OnCPU       Kind = 7 // a cpu-clock sample of a running target thread
)

// AllKinds lists every collector in a stable order.
var AllKinds = []Kind{OffCPU, RunQueue, Futex, PageFault, NUMAMigrate, BlockIO, OnCPU}

var kindNames = map[Kind]string{
	OffCPU:      "offcpu",
	RunQueue:    "runq",
	Futex:       "futex",
	PageFault:   "pagefault",
	NUMAMigrate: "numa",
	BlockIO:     "blockio",
	OnCPU:       "oncpu",
}

// String returns the collector's short name, as accepted by ParseKind.
func (k Kind) String() string {
	if n, ok := kindNames[k]; ok {
		return n
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// ParseKind parses a collector name such as "offcpu" or "pagefault".
func ParseKind(s string) (Kind, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	for k, n := range kindNames {
		if n == s {
			return k, nil
		}
	}
	names := make([]string, 0, len(AllKinds))
	for _, k := range AllKinds {
		names = append(names, k.String())
	}
	return 0, fmt.Errorf("unknown collector %q (want one of %s, or all)", s, strings.Join(names, ", "))
}

// ParseCollectors parses a comma-separated list of collector names; "all"
// (or the empty string) selects every collector.
func ParseCollectors(list string) ([]Kind, error) {
	list = strings.TrimSpace(list)
	if list == "" || list == "all" {
		return append([]Kind(nil), AllKinds...), nil
	}
	seen := map[Kind]bool{}
	var out []Kind
	for _, f := range strings.Split(list, ",") {
		k, err := ParseKind(f)
		if err != nil {
			return nil, err
		}
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out, nil
}

// Event is one decoded ring-buffer record. Times are CLOCK_MONOTONIC
// nanoseconds (bpf_ktime_get_ns), the clock the load generator stamps
// request windows with. Fields after the stacks are meaningful only for the
// kinds named in their comment.
type Event struct {
	Kind  Kind
	TsNs  uint64 // start of the interval (or the sample time)
	DurNs uint64 // length of the interval; OnCPU: the sampling period
	PID   uint32 // tgid
	TID   uint32
	CPU   uint32 // CPU where the event was recorded
	Comm  string // thread name

	// UserStack and KernelStack are return addresses, innermost first. A
	// stack that could not be taken is empty and its *StackErr holds the
	// negative errno from bpf_get_stack.
	UserStack      []uint64
	KernelStack    []uint64
	UserStackErr   int32
	KernelStackErr int32

	State     uint32 // OffCPU: prev_state at switch-out (TASK_INTERRUPTIBLE 1, TASK_UNINTERRUPTIBLE 2, ...)
	Preempted bool   // RunQueue: waited after a preemption, not a wakeup (OffCPU records blocking only: always false)
	PrevTID   uint32 // RunQueue: the thread switched out for this one

	UAddr    uint64 // Futex: futex word address
	FutexOp  uint32 // Futex: op argument (FUTEX_WAIT, ...)
	FutexRet int64  // Futex: syscall return value

	Addr      uint64 // PageFault: faulting address
	ErrorCode uint64 // PageFault: x86 page-fault error code
	Major     bool   // PageFault: counted as major by the kernel (the rule behind /proc/PID/stat majflt)
	NoStart   bool   // PageFault: the fault's start was not seen, DurNs is 0

	FromCPU, ToCPU   uint32 // NUMAMigrate
	FromNode, ToNode uint32 // NUMAMigrate: via the cpu→node map
	NUMAHow          uint32 // NUMAMigrate: 0 sched_migrate_task, 1 sched_move_numa, 2 sched_swap_numa

	Sector uint64 // BlockIO: start sector
	Bytes  uint32 // BlockIO: request length
	Dev    uint32 // BlockIO: major<<20 | minor
	Op     uint32 // BlockIO: cmd_flags (low byte is the REQ_OP)
	Status uint32 // BlockIO: blk_status_t at completion (0 = ok)
	// InFault (BlockIO): issued inside a page fault of the same thread.
	// The BPF program leaves such a request's user stack out, and the
	// session gives it the fault event's (see faultJoin); when that event
	// never comes, UserStackErr is ErrStackFaultNotSeen.
	InFault bool
}

// ErrStackFaultNotSeen is the UserStackErr of a BlockIO event issued in a
// page fault whose event never came (a minor fault under the minimum
// duration, or a fault start left stale by an error): its user stack,
// the fault's, is unknown.
const ErrStackFaultNotSeen int32 = -2

// ErrStackNotTaken is the UserStackErr and KernelStackErr of an event
// whose stacks were deliberately left out: a RunQueue wait shorter than
// Options.MinRunQueueStack.
const ErrStackNotTaken int32 = -3

// Duration returns DurNs as a time.Duration.
func (e *Event) Duration() time.Duration { return time.Duration(e.DurNs) }

// CrossNode reports whether a NUMAMigrate event moved the task between nodes.
func (e *Event) CrossNode() bool { return e.Kind == NUMAMigrate && e.FromNode != e.ToNode }

// Layout of struct event in collectors.bpf.c.
const (
	maxUserStack   = 127
	maxKernelStack = 64
	offUStack      = 88
	offKStack      = offUStack + 8*maxUserStack
	// EventSize is the size in bytes of one raw ring-buffer record.
	EventSize = offKStack + 8*maxKernelStack
)

// errShortRecord is returned by DecodeEvent for truncated records.
var errShortRecord = errors.New("short record")

// DecodeEvent decodes one raw ring-buffer record (little-endian
// struct event). The stacks are freshly allocated; raw is not retained.
func DecodeEvent(raw []byte) (Event, error) {
	if len(raw) < EventSize {
		return Event{}, fmt.Errorf("decode event: %w: %d bytes, want %d", errShortRecord, len(raw), EventSize)
	}
	le := binary.LittleEndian
	e := Event{
		Kind:  Kind(le.Uint32(raw[0:])),
		PID:   le.Uint32(raw[4:]),
		TID:   le.Uint32(raw[8:]),
		CPU:   le.Uint32(raw[12:]),
		TsNs:  le.Uint64(raw[16:]),
		DurNs: le.Uint64(raw[24:]),
	}
	if _, ok := kindNames[e.Kind]; !ok {
		return Event{}, fmt.Errorf("decode event: unknown kind %d", uint32(e.Kind))
	}
	arg0 := le.Uint64(raw[32:])
	arg1 := le.Uint64(raw[40:])
	arg2 := le.Uint64(raw[48:])
	arg3 := le.Uint32(raw[56:])
	flags := le.Uint32(raw[60:])
	ulen := int32(le.Uint32(raw[64:]))
	klen := int32(le.Uint32(raw[68:]))
	comm := raw[72:88]
	if i := indexByte(comm, 0); i >= 0 {
		comm = comm[:i]
	}
	e.Comm = string(comm)
	e.UserStack, e.UserStackErr = decodeStack(raw[offUStack:], ulen, maxUserStack)
	e.KernelStack, e.KernelStackErr = decodeStack(raw[offKStack:], klen, maxKernelStack)

	switch e.Kind {
	case OffCPU:
		e.State = uint32(arg0)
		e.Preempted = arg1 != 0
	case RunQueue:
		e.Preempted = arg0 != 0
		e.PrevTID = uint32(arg1)
	case Futex:
		e.UAddr = arg0
		e.FutexOp = uint32(arg1)
		e.FutexRet = int64(arg2)
	case PageFault:
		e.Addr = arg0
		e.ErrorCode = arg1
		e.Major = flags&1 != 0
		e.NoStart = flags&4 != 0
	case NUMAMigrate:
		e.FromCPU = uint32(arg0)
		e.ToCPU = uint32(arg1)
		e.FromNode = uint32(arg2)
		e.ToNode = arg3
		e.NUMAHow = flags
	case BlockIO:
		e.Sector = arg0
		e.Bytes = uint32(arg1)
		e.Dev = uint32(arg2)
		e.Op = arg3
		e.Status = flags & 0xff
		e.InFault = flags&bioInFault != 0
	}
	return e, nil
}

func decodeStack(b []byte, n int32, max int) ([]uint64, int32) {
	if n < 0 {
		return nil, n
	}
	if int(n) > max {
		n = int32(max)
	}
	out := make([]uint64, 0, n)
	for i := 0; i < int(n); i++ {
		pc := binary.LittleEndian.Uint64(b[8*i:])
		if pc == 0 {
			break
		}
		out = append(out, pc)
	}
	return out, 0
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}
