//go:build linux && amd64

package gort

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/arch/x86/x86asm"

	"github.com/tailgate-ci/tailgate/bpf/internal/ring"
	"github.com/tailgate-ci/tailgate/internal/goprobe"
)

// Session is a running set of Go-runtime uprobes on one process. Receive
// from Events until it is closed; Stop detaches the probes, delivers what is
// still in the ring buffer and then closes Events.
type Session struct {
	info    Info
	coll    *ebpf.Collection
	links   []link.Link
	rd      *ringbuf.Reader
	reasons []goprobe.WaitReason
	events  chan Event
	abort   <-chan struct{}
	done    chan struct{}

	mu       sync.Mutex
	stopping bool
	stopped  bool
	stats    Stats
	stopErr  error
}

// probe is one Go function and the programs on its entry and RETs.
type probe struct {
	fn       string
	entry    string // program on the entry; "" for none
	ret      string // program on every RET; "" for none
	kinds    []Kind // attached when any of these is collected
	optional bool   // absent from the binary: the kind is just not collected
	// retVia, when present in the binary, replaces the RET probes: the
	// ret program goes on this function's entry instead.
	retVia string
}

// A park ends when runtime.execute runs the goroutine again, not at
// gopark's RETs: see execute_entry in gort.bpf.c for why.
var probes = []probe{
	// A request ends where net/http.(*conn).serve calls finishRequest,
	// right after ServeHTTP returns (only w.cancelCtx() runs in between)
	// and before the buffered response is flushed: an entry probe the
	// kernel emulates instead of RET probes it must single-step.
	{fn: "net/http.serverHandler.ServeHTTP", entry: "serve_http_entry", ret: "serve_http_ret", kinds: []Kind{Request}, optional: true,
		retVia: "net/http.(*response).finishRequest"},
	{fn: "runtime.gcAssistAlloc", entry: "gc_assist_entry", ret: "gc_assist_ret", kinds: []Kind{Assist}},
	{fn: "runtime.gcStart", entry: "gc_start_entry", ret: "gc_start_ret", kinds: []Kind{GCCycle}},
	{fn: "runtime.stopTheWorldWithSema", entry: "stop_the_world_entry", kinds: []Kind{STW, GCCycle}},
	{fn: "runtime.startTheWorldWithSema", ret: "start_the_world_ret", kinds: []Kind{STW}},
	{fn: "runtime.gopark", entry: "gopark_entry", kinds: []Kind{Block}},
	{fn: "runtime.ready", entry: "ready_entry", kinds: []Kind{Block}},
	{fn: "runtime.execute", entry: "execute_entry", kinds: []Kind{Block, Run}},
}

func (p probe) wanted(enabled map[Kind]bool) bool {
	for _, k := range p.kinds {
		if enabled[k] {
			return true
		}
	}
	return false
}

// The registers gort.bpf.c reads arguments from follow Go's ABIInternal on
// amd64 (rax, rbx, rcx, ...): gopark's reason is its third integer
// argument (rcx); ready's, gcAssistAlloc's and execute's gp and
// stopTheWorldWithSema's reason are the first (rax). internal/goprobe's
// TestArgRegisters checks these against DWARF for Go 1.22-1.26, and this
// package's live tests check the decoded values.

// Start analyses the target binary with internal/goprobe (function
// ranges, RET offsets, goid offset, wait-reason names), loads the programs
// and attaches the uprobes for opts.PID. Missing privileges, uprobe support
// or runtime layout yield an error wrapping ErrNotSupported. When ctx ends,
// undelivered events are discarded (counted in Stats.Unread).
func Start(ctx context.Context, opts Options) (*Session, error) {
	opts = opts.withDefaults()
	if opts.PID <= 0 {
		return nil, fmt.Errorf("start go collectors: invalid pid %d", opts.PID)
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", opts.PID)); err != nil {
		return nil, fmt.Errorf("start go collectors: pid %d: no such process", opts.PID)
	}
	if opts.RingBytes&(opts.RingBytes-1) != 0 || opts.RingBytes < os.Getpagesize() {
		return nil, fmt.Errorf("start go collectors: ring buffer size %d is not a power of two >= page size", opts.RingBytes)
	}
	enabled := map[Kind]bool{}
	for _, k := range opts.Kinds {
		if _, ok := kindNames[k]; !ok {
			return nil, fmt.Errorf("start go collectors: unknown kind %d", uint8(k))
		}
		enabled[k] = true
	}
	path := opts.Path
	if path == "" {
		path = fmt.Sprintf("/proc/%d/exe", opts.PID)
	}
	if os.Geteuid() != 0 && !haveCaps() {
		return nil, fmt.Errorf("start go collectors: %w: need root or CAP_BPF+CAP_PERFMON", ErrNotSupported)
	}

	bin, err := goprobe.Open(path)
	if err != nil {
		return nil, fmt.Errorf("start go collectors: %w: %v", ErrNotSupported, err)
	}
	defer bin.Close()
	offs, err := bin.Offsets()
	if err != nil {
		return nil, fmt.Errorf("start go collectors: %w: %v", ErrNotSupported, err)
	}
	reasons, rsrc, err := bin.WaitReasons()
	if err != nil {
		return nil, fmt.Errorf("start go collectors: %w: %v", ErrNotSupported, err)
	}
	info := Info{Path: path, GoVersion: bin.GoVersion(), OffsetsSource: offs.Source, ReasonsSource: rsrc, GoidOffset: offs.GGoid}

	// Resolve every probe point before loading anything.
	type point struct {
		prog string
		addr uint64
		desc string
	}
	var points []point
	for _, p := range probes {
		if !p.wanted(enabled) {
			continue
		}
		f, err := bin.FuncRange(p.fn)
		if err != nil {
			if p.optional && errors.Is(err, goprobe.ErrNoFunc) {
				continue
			}
			return nil, fmt.Errorf("start go collectors: %w: %v", ErrNotSupported, err)
		}
		if p.entry != "" {
			off, err := entryOffset(path, f.FileOffset)
			if err != nil {
				return nil, fmt.Errorf("start go collectors: %s: %w", p.fn, err)
			}
			points = append(points, point{p.entry, f.FileOffset + off, fmt.Sprintf("%s+%#x", p.fn, off)})
		}
		if p.ret != "" && p.retVia != "" {
			if vf, err := bin.FuncRange(p.retVia); err == nil {
				off, err := entryOffset(path, vf.FileOffset)
				if err != nil {
					return nil, fmt.Errorf("start go collectors: %s: %w", p.retVia, err)
				}
				points = append(points, point{p.ret, vf.FileOffset + off, fmt.Sprintf("%s+%#x (end of %s)", p.retVia, off, p.fn)})
				continue
			}
		}
		if p.ret != "" {
			rets, err := bin.RetOffsets(p.fn)
			if err != nil {
				return nil, fmt.Errorf("start go collectors: %w: %v", ErrNotSupported, err)
			}
			if len(rets) == 0 {
				return nil, fmt.Errorf("start go collectors: %w: %s has no RET instruction", ErrNotSupported, p.fn)
			}
			for _, off := range rets {
				points = append(points, point{p.ret, f.FileOffset + off, fmt.Sprintf("%s+%#x (RET)", p.fn, off)})
			}
		}
	}

	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("start go collectors: %w: raise memlock rlimit: %v", ErrNotSupported, err)
	}
	spec, err := loadGort()
	if err != nil {
		return nil, fmt.Errorf("load go collector spec: %w", err)
	}
	vars := map[string]any{
		"target_tgid":  uint32(opts.PID),
		"goid_off":     offs.GGoid,
		"sched_bp_off": offs.SchedBP(),
		"min_block_ns": uint64(opts.MinBlock),
		"emit_run":     boolByte(enabled[Run]),
		"wakeup_bytes": uint64(opts.RingBytes / 8),
	}
	for name, v := range vars {
		sv, ok := spec.Variables[name]
		if !ok {
			return nil, fmt.Errorf("load go collector spec: variable %s missing", name)
		}
		if err := sv.Set(v); err != nil {
			return nil, fmt.Errorf("set %s: %w", name, err)
		}
	}
	spec.Maps["events"].MaxEntries = uint32(opts.RingBytes)
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			err = fmt.Errorf("%+v", ve)
		}
		return nil, fmt.Errorf("load go collectors: %w: %v", ErrNotSupported, err)
	}
	s := &Session{
		info:    info,
		coll:    coll,
		reasons: reasons,
		events:  make(chan Event, opts.EventQueue),
		abort:   ctx.Done(),
		done:    make(chan struct{}),
		stats:   Stats{Events: map[Kind]uint64{}, Lost: map[Kind]uint64{}, MapFull: map[Kind]uint64{}},
	}
	ex, err := link.OpenExecutable(path)
	if err != nil {
		s.close()
		return nil, fmt.Errorf("open executable for uprobes: %w", err)
	}
	for _, pt := range points {
		l, err := ex.Uprobe("", coll.Programs[pt.prog], &link.UprobeOptions{Address: pt.addr, PID: opts.PID})
		if err != nil {
			s.close()
			return nil, fmt.Errorf("attach uprobe %s: %w: %v", pt.desc, ErrNotSupported, err)
		}
		s.links = append(s.links, l)
		s.info.Probes = append(s.info.Probes, pt.desc)
	}
	s.rd, err = ringbuf.NewReader(coll.Maps["events"])
	if err != nil {
		s.close()
		return nil, fmt.Errorf("open ring buffer: %w", err)
	}
	go s.read()
	return s, nil
}

// entryOffset returns where to put a function's entry uprobe, relative to
// its entry. A Go function usually opens with its stack check: CMPQ SP,
// 0x10(R14) then JBE to morestack (a big frame first computes LEAQ
// -n(SP), R12 and compares R12). The kernel executes a probed CMP or LEA
// out of line, which costs a second, single-step trap (tens of
// microseconds of CPU per hit on virtual machines); a conditional jump it
// emulates within the first trap. Probing the JBE is as good as probing
// the entry: the argument registers and r14 are untouched by then (LEA
// writes only the scratch R12). If the stack must grow, the function
// restarts from its entry after morestack and the probe fires again,
// exactly as a probe at +0 would. Anything else is probed at +0.
func entryOffset(path string, fileOff uint64) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	code := make([]byte, 32)
	n, err := f.ReadAt(code, int64(fileOff))
	if n < 16 {
		return 0, fmt.Errorf("read function prologue: %v", err)
	}
	pc := 0
	inst, err := x86asm.Decode(code, 64)
	if err != nil {
		return 0, nil
	}
	if inst.Op == x86asm.LEA && inst.Args[0] == x86asm.R12 {
		pc += inst.Len
		if inst, err = x86asm.Decode(code[pc:], 64); err != nil {
			return 0, nil
		}
	}
	if inst.Op != x86asm.CMP || (inst.Args[0] != x86asm.RSP && inst.Args[0] != x86asm.R12) {
		return 0, nil
	}
	if m, ok := inst.Args[1].(x86asm.Mem); !ok || m.Base != x86asm.R14 {
		return 0, nil
	}
	pc += inst.Len
	jbe, err := x86asm.Decode(code[pc:], 64)
	if err != nil || jbe.Op != x86asm.JBE {
		return 0, nil
	}
	return uint64(pc), nil
}

// Info says what the session attached to.
func (s *Session) Info() Info { return s.info }

// Events returns the event stream. It is closed after Stop has delivered
// the last event.
func (s *Session) Events() <-chan Event { return s.events }

func (s *Session) read() {
	defer close(s.done)
	defer close(s.events)
	decode := func(raw []byte) (Event, error) {
		ev, err := DecodeEvent(raw)
		if err == nil && ev.Kind == Block && ev.Reason < uint64(len(s.reasons)) {
			ev.WaitReason = s.reasons[ev.Reason].Name
		}
		return ev, err
	}
	err := ring.Pump(s.rd, pollInterval, s.events, s.abort, ring.Hooks[Event]{
		Decode:       decode,
		DecodeFailed: func() { s.locked(func() { s.stats.Decode++ }) },
		Delivered:    func(ev Event) { s.locked(func() { s.stats.Events[ev.Kind]++ }) },
		Unread:       func() { s.locked(func() { s.stats.Unread++ }) },
		Stopping:     func() (b bool) { s.locked(func() { b = s.stopping }); return },
		Implied:      impliedRun,
	})
	if err != nil {
		s.locked(func() { s.stopErr = err })
	}
}

func (s *Session) locked(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f()
}

// Stop detaches every probe, delivers the events still in the ring buffer,
// closes Events and returns the session's statistics. Events must be
// drained concurrently (or the Start context cancelled) for Stop to return.
// Stop is idempotent.
func (s *Session) Stop() (Stats, error) {
	s.mu.Lock()
	if s.stopped {
		st, err := s.stats, s.stopErr
		s.mu.Unlock()
		return st, err
	}
	s.stopping = true
	s.mu.Unlock()

	var errs []error
	for _, l := range s.links {
		if err := l.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	s.links = nil
	if err := s.rd.Flush(); err != nil {
		errs = append(errs, fmt.Errorf("flush ring buffer: %w", err))
	}
	<-s.done

	progs := map[string]ProgramCost{}
	for name, p := range s.coll.Programs {
		if ps, err := p.Stats(); err == nil && ps.RunCount > 0 {
			progs[name] = ProgramCost{Runs: ps.RunCount, Runtime: ps.Runtime}
		}
	}
	lost, err := readDrops(s.coll.Maps["drops"])
	if err != nil {
		errs = append(errs, err)
	}
	s.mu.Lock()
	for k := range kindNames {
		if v := lost[int(k)]; v > 0 {
			s.stats.Lost[k] = v
		}
		if v := lost[nrKinds+int(k)]; v > 0 {
			s.stats.MapFull[k] = v
		}
	}
	if s.stopErr != nil {
		errs = append(errs, s.stopErr)
	}
	if len(progs) > 0 {
		s.stats.Programs = progs
	}
	s.stopped = true
	s.stopErr = errors.Join(errs...)
	st, serr := s.stats, s.stopErr
	s.mu.Unlock()
	s.close()
	return st, serr
}

func (s *Session) close() {
	for _, l := range s.links {
		l.Close()
	}
	s.links = nil
	if s.rd != nil {
		s.rd.Close()
	}
	s.coll.Close()
}

func boolByte(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// pollInterval bounds how long events wait in the ring buffer when fewer
// than wakeup_bytes are pending.
const pollInterval = 50 * time.Millisecond

const nrKinds = 8 // NR_KINDS in gort.bpf.c

func readDrops(m *ebpf.Map) (map[int]uint64, error) {
	out := map[int]uint64{}
	for i := 0; i < 2*nrKinds; i++ {
		var per []uint64
		if err := m.Lookup(uint32(i), &per); err != nil {
			return out, fmt.Errorf("read drop counter %d: %w", i, err)
		}
		for _, v := range per {
			out[i] += v
		}
	}
	return out, nil
}

// haveCaps reports whether the effective capability set holds CAP_BPF and
// CAP_PERFMON (bits 39 and 38).
func haveCaps() bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				return false
			}
			const capPerfmon, capBPF = 38, 39
			return caps&(1<<capBPF) != 0 && caps&(1<<capPerfmon) != 0
		}
	}
	return false
}
