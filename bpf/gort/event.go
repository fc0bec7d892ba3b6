package gort

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Kind says which Go-runtime probe produced an event.
type Kind uint8

// Event kinds. The values are the `kind` field of struct gevent in
// gort.bpf.c: keep them in sync.
const (
	// GCCycle is a runtime.gcStart call that started a GC cycle (it
	// stopped the world for sweep termination), entry to RET.
	GCCycle Kind = 1
	// STW is a stop-the-world pause: runtime.stopTheWorldWithSema entry to
	// the RET of runtime.startTheWorldWithSema, when the world has restarted.
	// AccountedEndNs is where runtime/metrics' /sched/pauses/total/*:seconds
	// end the same pause.
	STW Kind = 2
	// Assist is a GC mark assist, runtime.gcAssistAlloc entry to RET on
	// the goroutine that assists (it includes parks in "GC assist wait").
	Assist Kind = 3
	// Block is a goroutine parked by runtime.gopark until it ran again
	// (runtime.execute of it), with the wait reason, the time
	// runtime.ready made it runnable and the user stack at the park.
	Block Kind = 4
	// Request is net/http.serverHandler.ServeHTTP, entry to RET: a
	// server-side request window of one goroutine.
	Request Kind = 5
	// Run is runtime.execute: goroutine Goid starts running on thread TID
	// at StartNs (a point event).
	Run Kind = 6
)

// AllKinds lists every kind in a stable order.
var AllKinds = []Kind{GCCycle, STW, Assist, Block, Request, Run}

var kindNames = map[Kind]string{
	GCCycle: "gc",
	STW:     "stw",
	Assist:  "assist",
	Block:   "block",
	Request: "request",
	Run:     "run",
}

// ParseKinds parses a comma-separated list of kind names (gc, stw, assist,
// block, request, run); "all" or the empty string selects AllKinds.
func ParseKinds(list string) ([]Kind, error) {
	list = strings.TrimSpace(list)
	if list == "" || list == "all" {
		return append([]Kind(nil), AllKinds...), nil
	}
	seen := map[Kind]bool{}
	var out []Kind
	for _, f := range strings.Split(list, ",") {
		name := strings.ToLower(strings.TrimSpace(f))
		k, ok := Kind(0), false
		for kk, n := range kindNames {
			if n == name {
				k, ok = kk, true
			}
		}
		if !ok {
			names := make([]string, len(AllKinds))
			for i, kk := range AllKinds {
				names[i] = kk.String()
			}
			return nil, fmt.Errorf("unknown Go collector %q (want one of %s, or all)", name, strings.Join(names, ", "))
		}
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out, nil
}

// String returns the kind's short name.
func (k Kind) String() string {
	if n, ok := kindNames[k]; ok {
		return n
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// STW reasons of the Go runtime (runtime.stwReason) that are GC pauses;
// the same values in Go 1.22 through 1.26.
const (
	STWGCMarkTerm  = 1 // runtime.stwGCMarkTerm
	STWGCSweepTerm = 2 // runtime.stwGCSweepTerm
)

// Event is one decoded Go-runtime event. Times are CLOCK_MONOTONIC
// nanoseconds (bpf_ktime_get_ns), the clock of package bpf's events and of
// internal/load's request windows.
type Event struct {
	Kind    Kind
	PID     uint32
	TID     uint32 // thread at the start (Block: the thread the goroutine parked on)
	EndTID  uint32 // thread at the end (Block: the thread it resumed on)
	StartNs uint64
	EndNs   uint64 // == StartNs for Run
	// Goid is the goroutine: the assisting one (Assist), the parked one
	// (Block), the request's (Request), the one scheduled (Run), the caller
	// of gcStart (GCCycle); 0 for STW.
	Goid uint64
	// ReadyNs is when runtime.ready made a parked goroutine runnable; 0 if
	// it was not seen (netpoll and some scheduler paths make goroutines
	// runnable without runtime.ready).
	ReadyNs uint64
	// AccountedEndNs (STW only) is the end of the pause as the runtime
	// accounts it in runtime/metrics: the `now` startTheWorldWithSema
	// returns (mark termination takes it a little before the world
	// restarts). Use AccountedDuration to compare with runtime/metrics.
	AccountedEndNs uint64
	// Reason is the raw argument: Block: runtime.waitReason value; STW:
	// runtime.stwReason; GCCycle: the number of cycles started so far.
	Reason uint64
	// WaitReason is the wait reason's constant name without its prefix
	// ("SyncMutexLock", "IOWait", "ChanReceive"), filled by the Session
	// from the binary's own table (values differ between Go releases).
	WaitReason string
	// Stack is the user stack at the park (Block only), innermost first:
	// runtime.gopark's pc, then return addresses. It is unwound when the
	// goroutine runs again, from the frame pointer the park saved
	// (gort.bpf.c parked_stack).
	Stack []uint64
	// StackErr is a negative errno when the stack could not be taken, 0
	// if fine (recordings before the unwind at resume: bpf_get_stack's).
	StackErr int32

	// runImplied (Block): the record also stands for the Run event of the
	// runtime.execute that ended the park (same goroutine, thread EndTID,
	// at EndNs); the Session delivers that Run right after the Block.
	runImplied bool
}

// impliedRun is the Run event a Block record stands for, if any.
func impliedRun(e Event) (Event, bool) {
	if e.Kind != Block || !e.runImplied {
		return Event{}, false
	}
	return Event{Kind: Run, PID: e.PID, TID: e.EndTID, EndTID: e.EndTID, StartNs: e.EndNs, EndNs: e.EndNs, Goid: e.Goid}, true
}

// Duration returns EndNs - StartNs.
func (e *Event) Duration() time.Duration {
	if e.EndNs < e.StartNs {
		return 0
	}
	return time.Duration(e.EndNs - e.StartNs)
}

// AccountedDuration is an STW event's pause as runtime/metrics counts it.
func (e *Event) AccountedDuration() time.Duration {
	if e.Kind != STW || e.AccountedEndNs < e.StartNs {
		return 0
	}
	return time.Duration(e.AccountedEndNs - e.StartNs)
}

// IsGCSTW reports whether e is a stop-the-world pause of the garbage
// collector (sweep or mark termination), what runtime/metrics counts in
// /sched/pauses/total/gc:seconds.
func (e *Event) IsGCSTW() bool {
	return e.Kind == STW && (e.Reason == STWGCMarkTerm || e.Reason == STWGCSweepTerm)
}

// Layout of struct gevent in gort.bpf.c.
const (
	maxStack = 64
	// HeaderSize is the size of a record without a stack (every kind but
	// Block).
	HeaderSize = 64
	// EventSize is the size of a Block record.
	EventSize = HeaderSize + 8*maxStack
	// flagRun in gevent.flags: FLAG_RUN.
	flagRun = 1
)

var errShortRecord = errors.New("short record")

// DecodeEvent decodes one raw ring-buffer record (little-endian struct
// gevent, the stack present for Block only). WaitReason is left empty.
func DecodeEvent(raw []byte) (Event, error) {
	if len(raw) < HeaderSize {
		return Event{}, fmt.Errorf("decode go event: %w: %d bytes, want %d", errShortRecord, len(raw), HeaderSize)
	}
	le := binary.LittleEndian
	e := Event{
		Kind:    Kind(le.Uint32(raw[0:])),
		PID:     le.Uint32(raw[4:]),
		TID:     le.Uint32(raw[8:]),
		EndTID:  le.Uint32(raw[12:]),
		StartNs: le.Uint64(raw[16:]),
		EndNs:   le.Uint64(raw[24:]),
		Goid:    le.Uint64(raw[32:]),
		ReadyNs: le.Uint64(raw[40:]),
		Reason:  le.Uint64(raw[48:]),
	}
	if _, ok := kindNames[e.Kind]; !ok {
		return Event{}, fmt.Errorf("decode go event: unknown kind %d", uint32(le.Uint32(raw[0:])))
	}
	if e.Kind == STW {
		e.AccountedEndNs, e.ReadyNs = e.ReadyNs, 0
	}
	if e.Kind != Block {
		return e, nil
	}
	if len(raw) < EventSize {
		return Event{}, fmt.Errorf("decode go event: %w: block record of %d bytes, want %d", errShortRecord, len(raw), EventSize)
	}
	e.runImplied = le.Uint32(raw[60:])&flagRun != 0
	n := int32(le.Uint32(raw[56:]))
	if n < 0 {
		e.StackErr = n
		return e, nil
	}
	n = min(n, maxStack)
	e.Stack = make([]uint64, 0, n)
	for i := 0; i < int(n); i++ {
		pc := le.Uint64(raw[HeaderSize+8*i:])
		if pc == 0 {
			if i == 1 {
				continue // the return address could not be read
			}
			break
		}
		e.Stack = append(e.Stack, pc)
	}
	return e, nil
}
