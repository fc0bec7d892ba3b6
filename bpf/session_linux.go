//go:build linux && amd64

package bpf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/tailgate-ci/tailgate/bpf/internal/ring"
	"github.com/tailgate-ci/tailgate/internal/goprobe"
)

// Session is a running set of collectors. Receive from Events until it is
// closed; Stop detaches the probes, delivers what is still in the ring
// buffer and then closes Events.
type Session struct {
	coll    *ebpf.Collection
	links   []link.Link
	perfFDs []int
	rd      *ringbuf.Reader
	events  chan Event
	abort   <-chan struct{}
	done    chan struct{}

	statsFD io.Closer // kernel BPF run-time statistics, while the session runs

	// goSeen: processes already checked for a Go runtime (go_procs).
	goSeen map[uint32]bool
	goWG   sync.WaitGroup // addGoRuntime calls for followed children

	mu       sync.Mutex
	stopping bool
	stopped  bool
	stats    Stats
	unread   uint64
	stopErr  error
}

// hook is one BPF program and how to attach it.
type hook struct {
	prog     string
	kinds    []Kind // collectors that need it; nil: always (fork following)
	optional bool   // a missing hook degrades the collector instead of failing it
	attach   func(p *ebpf.Program, o Options) ([]link.Link, []int, error)
}

func tracing(p *ebpf.Program, _ Options) ([]link.Link, []int, error) {
	l, err := link.AttachTracing(link.TracingOptions{Program: p})
	if err != nil {
		return nil, nil, err
	}
	return []link.Link{l}, nil, nil
}

func tracepoint(group, name string) func(*ebpf.Program, Options) ([]link.Link, []int, error) {
	return func(p *ebpf.Program, _ Options) ([]link.Link, []int, error) {
		l, err := link.Tracepoint(group, name, p, nil)
		if err != nil {
			return nil, nil, err
		}
		return []link.Link{l}, nil, nil
	}
}

var hooks = []hook{
	{prog: "handle_fork", attach: tracing},
	{prog: "handle_sched_switch", kinds: []Kind{OffCPU, RunQueue}, attach: tracing},
	{prog: "handle_sched_wakeup", kinds: []Kind{RunQueue}, attach: tracing},
	{prog: "handle_sched_wakeup_new", kinds: []Kind{RunQueue}, attach: tracing},
	{prog: "handle_futex_enter", kinds: []Kind{Futex}, attach: tracepoint("syscalls", "sys_enter_futex")},
	{prog: "handle_futex_exit", kinds: []Kind{Futex}, attach: tracepoint("syscalls", "sys_exit_futex")},
	{prog: "handle_page_fault_user", kinds: []Kind{PageFault}, attach: tracing},
	{prog: "handle_page_fault_kernel", kinds: []Kind{PageFault}, optional: true, attach: tracing},
	{prog: "handle_fault_major", kinds: []Kind{PageFault}, attach: perfSW(unix.PERF_COUNT_SW_PAGE_FAULTS_MAJ, false)},
	{prog: "handle_fault_minor", kinds: []Kind{PageFault}, attach: perfSW(unix.PERF_COUNT_SW_PAGE_FAULTS_MIN, false)},
	{prog: "handle_migrate_task", kinds: []Kind{NUMAMigrate}, attach: tracing},
	{prog: "handle_move_numa", kinds: []Kind{NUMAMigrate}, optional: true, attach: tracing},
	{prog: "handle_swap_numa", kinds: []Kind{NUMAMigrate}, optional: true, attach: tracing},
	{prog: "handle_block_rq_issue", kinds: []Kind{BlockIO}, attach: tracing},
	{prog: "handle_block_rq_complete", kinds: []Kind{BlockIO}, attach: tracing},
	{prog: "handle_cpu_sample", kinds: []Kind{OnCPU}, attach: perfSW(unix.PERF_COUNT_SW_CPU_CLOCK, true)},
}

func (h hook) wanted(enabled map[Kind]bool, o Options) bool {
	if h.kinds == nil {
		return !o.NoFollowChildren
	}
	for _, k := range h.kinds {
		if enabled[k] {
			return true
		}
	}
	return false
}

// Start loads and attaches the chosen collectors for opts.PIDs. Missing
// privileges or kernel hooks yield an error wrapping ErrNotSupported. When
// ctx ends, undelivered events are discarded (counted in Stats.Unread) so
// that a consumer that went away cannot wedge Stop.
func Start(ctx context.Context, opts Options) (*Session, error) {
	opts = opts.withDefaults()
	if len(opts.PIDs) == 0 {
		return nil, errors.New("start collectors: no target pid")
	}
	for _, pid := range opts.PIDs {
		if pid <= 0 {
			return nil, fmt.Errorf("start collectors: invalid pid %d", pid)
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
			return nil, fmt.Errorf("start collectors: pid %d: no such process", pid)
		}
	}
	if opts.RingBytes&(opts.RingBytes-1) != 0 || opts.RingBytes < os.Getpagesize() {
		return nil, fmt.Errorf("start collectors: ring buffer size %d is not a power of two >= page size", opts.RingBytes)
	}
	enabled := map[Kind]bool{}
	for _, k := range opts.Collectors {
		if _, ok := kindNames[k]; !ok {
			return nil, fmt.Errorf("start collectors: unknown collector %d", uint8(k))
		}
		enabled[k] = true
	}
	if os.Geteuid() != 0 && !haveCaps() {
		return nil, fmt.Errorf("start collectors: %w: need root or CAP_BPF+CAP_PERFMON", ErrNotSupported)
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("start collectors: %w: raise memlock rlimit: %v", ErrNotSupported, err)
	}

	skipped := map[Kind]string{}
	for {
		s, failed, err := tryStart(opts, enabled)
		if err == nil {
			s.stats.Skipped = skipped
			if opts.ProgramStats {
				// Best effort: without it Stats.Programs stays empty.
				if c, err := ebpf.EnableStats(unix.BPF_STATS_RUN_TIME); err == nil {
					s.statsFD = c
				}
			}
			s.abort = ctx.Done()
			go s.read()
			return s, nil
		}
		if !opts.BestEffort || failed == 0 {
			return nil, err
		}
		skipped[failed] = err.Error()
		delete(enabled, failed)
		if len(enabled) == 0 {
			return nil, fmt.Errorf("start collectors: %w: every collector failed (last: %v)", ErrNotSupported, err)
		}
	}
}

// tryStart loads and attaches once. On failure it names the collector that
// failed (0 when the failure is not specific to one).
func tryStart(opts Options, enabled map[Kind]bool) (*Session, Kind, error) {
	spec, err := loadCollectors()
	if err != nil {
		return nil, 0, fmt.Errorf("load collector spec: %w", err)
	}
	var mask uint32
	for k := range enabled {
		mask |= 1 << k
	}
	vars := map[string]any{
		"enabled_mask":       mask,
		"min_offcpu_ns":      uint64(opts.MinOffCPU),
		"min_futex_ns":       uint64(opts.MinFutex),
		"min_runq_ns":        uint64(opts.MinRunQueue),
		"min_runq_stack_ns":  uint64(opts.MinRunQueueStack),
		"wakeup_bytes":       uint64(opts.RingBytes / 8),
		"min_minor_fault_ns": uint64(opts.MinMinorFault),
		"sample_period_ns":   uint64(time.Second) / uint64(opts.SampleHz),
		"follow_children":    boolByte(!opts.NoFollowChildren),
	}
	for name, v := range vars {
		sv, ok := spec.Variables[name]
		if !ok {
			return nil, 0, fmt.Errorf("load collector spec: variable %s missing", name)
		}
		if err := sv.Set(v); err != nil {
			return nil, 0, fmt.Errorf("set %s: %w", name, err)
		}
	}
	spec.Maps["events"].MaxEntries = uint32(opts.RingBytes)

	var use []hook
	for _, h := range hooks {
		if h.wanted(enabled, opts) {
			use = append(use, h)
		}
	}
	wantProg := map[string]bool{}
	for _, h := range use {
		wantProg[h.prog] = true
	}
	for name := range spec.Programs {
		if !wantProg[name] {
			delete(spec.Programs, name)
		}
	}
	if enabled[Futex] {
		if err := ensureTracefs(); err != nil {
			return nil, Futex, fmt.Errorf("futex collector: %w: %v", ErrNotSupported, err)
		}
	}

	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{})
	if err != nil {
		return nil, failedKind(err, use), fmt.Errorf("load collectors: %w: %v", ErrNotSupported, permHint(err))
	}
	s := &Session{coll: coll, done: make(chan struct{}), events: make(chan Event, opts.EventQueue)}
	s.stats = Stats{Events: map[Kind]uint64{}, Lost: map[Kind]uint64{}, MapFull: map[Kind]uint64{}, GoIdle: map[Kind]uint64{}}
	if !opts.KeepGoIdle && (enabled[OffCPU] || enabled[Futex]) {
		s.goSeen = map[uint32]bool{}
	}

	one := uint32(1)
	for _, pid := range opts.PIDs {
		if err := coll.Maps["targets"].Put(uint32(pid), one); err != nil {
			s.close()
			return nil, 0, fmt.Errorf("add target pid %d: %w", pid, err)
		}
	}
	for _, pid := range opts.PIDs {
		s.addGoRuntime(uint32(pid))
	}
	if enabled[NUMAMigrate] {
		if err := fillCPUNode(coll.Maps["cpu_node"], "/sys/devices/system/node"); err != nil {
			s.close()
			return nil, NUMAMigrate, fmt.Errorf("numa collector: cpu→node map: %w", err)
		}
	}

	for _, h := range use {
		links, fds, err := h.attach(coll.Programs[h.prog], opts)
		s.links = append(s.links, links...)
		s.perfFDs = append(s.perfFDs, fds...)
		if err != nil {
			if h.optional {
				continue
			}
			s.close()
			var k Kind
			if len(h.kinds) == 1 {
				k = h.kinds[0]
			} else if len(h.kinds) > 1 {
				k = h.kinds[0]
				for _, c := range h.kinds {
					if enabled[c] {
						k = c
						break
					}
				}
			}
			return nil, k, fmt.Errorf("attach %s: %w: %v", h.prog, ErrNotSupported, permHint(err))
		}
	}
	rd, err := ringbuf.NewReader(coll.Maps["events"])
	if err != nil {
		s.close()
		return nil, 0, fmt.Errorf("open ring buffer: %w", err)
	}
	s.rd = rd
	return s, 0, nil
}

// failedKind guesses from a collection load error which collector's
// program the kernel rejected.
func failedKind(err error, use []hook) Kind {
	msg := err.Error()
	for _, h := range use {
		if strings.Contains(msg, h.prog) && len(h.kinds) > 0 {
			return h.kinds[len(h.kinds)-1]
		}
	}
	return 0
}

func permHint(err error) error {
	var ve *ebpf.VerifierError
	if errors.As(err, &ve) {
		return fmt.Errorf("%+v", ve)
	}
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		return fmt.Errorf("%v (need root or CAP_BPF+CAP_PERFMON)", err)
	}
	return err
}

func boolByte(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// haveCaps reports whether the effective capability set holds CAP_BPF and
// CAP_PERFMON (bits 39 and 38), read from /proc/self/status.
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

// ensureTracefs mounts tracefs at /sys/kernel/tracing when no tracefs is
// reachable: the syscalls tracepoints are attached by event id from tracefs.
func ensureTracefs() error {
	for _, d := range []string{"/sys/kernel/tracing", "/sys/kernel/debug/tracing"} {
		if _, err := os.Stat(filepath.Join(d, "events")); err == nil {
			return nil
		}
	}
	if err := unix.Mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, ""); err != nil {
		return fmt.Errorf("mount tracefs on /sys/kernel/tracing: %w", err)
	}
	return nil
}

// fillCPUNode writes cpu→node from sysfs nodeN/cpulist files under dir.
func fillCPUNode(m *ebpf.Map, dir string) error {
	cpuNode, err := ReadCPUNodes(dir)
	if err != nil {
		return err
	}
	for cpu, node := range cpuNode {
		if err := m.Put(uint32(cpu), uint32(node)); err != nil {
			return fmt.Errorf("cpu %d: %w", cpu, err)
		}
	}
	return nil
}

// perfSW returns an attach function that opens a software perf event on
// every online CPU (all processes; the program filters by tgid) and links
// the program to each. A sampling event fires o.SampleHz times a second;
// otherwise the program runs on every occurrence (period 1).
func perfSW(config uint64, sampling bool) func(*ebpf.Program, Options) ([]link.Link, []int, error) {
	return func(p *ebpf.Program, o Options) ([]link.Link, []int, error) {
		cpus, err := onlineCPUs()
		if err != nil {
			return nil, nil, err
		}
		var links []link.Link
		var fds []int
		for _, cpu := range cpus {
			attr := unix.PerfEventAttr{
				Type:   unix.PERF_TYPE_SOFTWARE,
				Config: config,
				Size:   uint32(unsafe.Sizeof(unix.PerfEventAttr{})),
				Sample: 1,
			}
			if sampling {
				attr.Sample = uint64(o.SampleHz)
				attr.Bits = unix.PerfBitFreq
			}
			fd, err := unix.PerfEventOpen(&attr, -1, cpu, -1, unix.PERF_FLAG_FD_CLOEXEC)
			if err != nil {
				return links, fds, fmt.Errorf("perf_event_open software event %d on cpu %d: %w", config, cpu, err)
			}
			fds = append(fds, fd)
			l, err := link.AttachRawLink(link.RawLinkOptions{Target: fd, Program: p, Attach: ebpf.AttachPerfEvent})
			if err != nil {
				return links, fds, fmt.Errorf("link perf event on cpu %d: %w", cpu, err)
			}
			links = append(links, l)
		}
		return links, fds, nil
	}
}

func onlineCPUs() ([]int, error) {
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return nil, fmt.Errorf("online cpus: %w", err)
	}
	cpus, err := ParseCPUList(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("/sys/devices/system/cpu/online: %w", err)
	}
	return cpus, nil
}

// Events returns the event stream. It is closed after Stop has delivered
// the last event.
func (s *Session) Events() <-chan Event { return s.events }

// AddPID adds a process to the target set of a running session.
func (s *Session) AddPID(pid int) error {
	if pid <= 0 {
		return fmt.Errorf("add target: invalid pid %d", pid)
	}
	if err := s.coll.Maps["targets"].Put(uint32(pid), uint32(1)); err != nil {
		return fmt.Errorf("add target pid %d: %w", pid, err)
	}
	s.addGoRuntime(uint32(pid))
	return nil
}

// addGoRuntime tells the collectors where a Go target keeps its current
// g, g.m and m.curg, so that its idle runtime threads' waits are not
// recorded (go_idle in collectors.bpf.c). Anything else — not a Go
// binary, offsets unknown, a process gone — leaves the process
// unfiltered: its events are all kept. Once per process.
func (s *Session) addGoRuntime(pid uint32) {
	s.mu.Lock()
	if s.goSeen == nil || s.goSeen[pid] {
		s.mu.Unlock()
		return
	}
	s.goSeen[pid] = true
	s.mu.Unlock()
	rt, ok := goRuntimeOf(fmt.Sprintf("/proc/%d/exe", pid))
	if !ok {
		return
	}
	if err := s.coll.Maps["go_procs"].Put(pid, rt); err != nil {
		return
	}
	s.locked(func() { s.stats.GoTargets++ })
}

// goRT mirrors struct go_rt in collectors.bpf.c.
type goRT struct {
	TLSG, GM, MCurg int64
}

func goRuntimeOf(exe string) (goRT, bool) {
	b, err := goprobe.Open(exe)
	if err != nil {
		return goRT{}, false
	}
	defer b.Close()
	off, err := b.Offsets()
	if err != nil || off.GM < 0 || off.MCurg < 0 {
		return goRT{}, false
	}
	tlsg, err := b.TLSGOffset()
	if err != nil {
		return goRT{}, false
	}
	return goRT{TLSG: tlsg, GM: off.GM, MCurg: off.MCurg}, true
}

func (s *Session) read() {
	defer close(s.done)
	defer close(s.events)
	// The ring's events pass through a faultJoin (block requests issued
	// in a page fault get the fault's user stack) on their way to Events.
	raw := make(chan Event, cap(s.events))
	var err error
	go func() {
		defer close(raw)
		err = ring.Pump(s.rd, pollInterval, raw, s.abort, ring.Hooks[Event]{
			Decode:       DecodeEvent,
			DecodeFailed: func() { s.locked(func() { s.stats.Decode++ }) },
			Delivered:    func(ev Event) { s.locked(func() { s.stats.Events[ev.Kind]++ }) },
			Unread:       func() { s.locked(func() { s.unread++ }) },
			Stopping:     func() (b bool) { s.locked(func() { b = s.stopping }); return },
		})
	}()
	send := func(evs []Event) {
		for _, ev := range evs {
			select {
			case s.events <- ev:
			case <-s.abort:
				s.locked(func() { s.unread++ })
			}
		}
	}
	var j faultJoin
	var buf []Event
	checked := map[uint32]bool{}
	for ev := range raw {
		if s.goSeen != nil && !checked[ev.PID] {
			// A followed child (fork) is checked on its first event, off
			// the event path: reading its binary's DWARF takes a while.
			// checked is this goroutine's own: no lock per event.
			checked[ev.PID] = true
			s.goWG.Add(1)
			go func(pid uint32) {
				defer s.goWG.Done()
				s.addGoRuntime(pid) // once per process: it checks goSeen
			}(ev.PID)
		}
		buf = j.add(ev, buf[:0])
		send(buf)
	}
	send(j.flush(buf[:0]))
	if err != nil { // written before raw was closed
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
	for _, fd := range s.perfFDs {
		unix.Close(fd)
	}
	s.perfFDs = nil
	if err := s.rd.Flush(); err != nil {
		errs = append(errs, fmt.Errorf("flush ring buffer: %w", err))
	}
	<-s.done
	s.goWG.Wait() // read has returned: no more are started

	if s.statsFD != nil {
		progs := map[string]ProgramCost{}
		for name, p := range s.coll.Programs {
			if ps, err := p.Stats(); err == nil {
				progs[name] = ProgramCost{Runs: ps.RunCount, Runtime: ps.Runtime}
			}
		}
		s.statsFD.Close()
		s.statsFD = nil
		s.mu.Lock()
		s.stats.Programs = progs
		s.mu.Unlock()
	}
	lost, err := readDrops(s.coll.Maps["drops"])
	if err != nil {
		errs = append(errs, err)
	}
	s.mu.Lock()
	for k := range kindNames {
		if lost[int(k)] > 0 {
			s.stats.Lost[k] = lost[int(k)]
		}
		if v := lost[dropMapFull+int(k)]; v > 0 {
			s.stats.MapFull[k] = v
		}
		if v := lost[2*dropMapFull+int(k)]; v > 0 {
			s.stats.GoIdle[k] = v
		}
	}
	s.stats.SameNodeMigrations = lost[dropSameNode]
	s.stats.Unread = s.unread
	if s.stopErr != nil {
		errs = append(errs, s.stopErr)
	}
	s.stopped = true
	s.stopErr = errors.Join(errs...)
	st, serr := s.stats, s.stopErr
	s.mu.Unlock()
	s.close()
	return st, serr
}

func (s *Session) close() {
	if s.statsFD != nil {
		s.statsFD.Close()
	}
	for _, l := range s.links {
		l.Close()
	}
	for _, fd := range s.perfFDs {
		unix.Close(fd)
	}
	if s.rd != nil {
		s.rd.Close()
	}
	s.coll.Close()
}

const (
	dropMapFull  = 8               // NR_KINDS in collectors.bpf.c
	dropSameNode = 3 * dropMapFull // SKIP_SAME_NODE
)

// pollInterval bounds how long an event can wait in the ring buffer when
// fewer than RingBytes/8 bytes are pending (the kernel then skips the
// wake-up, see wake_flags in collectors.bpf.c).
const pollInterval = 50 * time.Millisecond

// readDrops sums the per-CPU drop counters.
func readDrops(m *ebpf.Map) (map[int]uint64, error) {
	out := map[int]uint64{}
	for i := 0; i <= dropSameNode; i++ {
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
