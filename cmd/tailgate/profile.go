package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tailgate-ci/tailgate/bpf"
	"github.com/tailgate-ci/tailgate/bpf/gort"
	"github.com/tailgate-ci/tailgate/internal/flame"
	"github.com/tailgate-ci/tailgate/internal/symbol"
	"github.com/tailgate-ci/tailgate/internal/tail"
	perfrules "github.com/tailgate-ci/tailgate/perf-rules"
)

func init() {
	register(command{
		name:    "profile",
		summary: "capture eBPF tail profiles (off-CPU, run queue, futex, faults, NUMA, block I/O, on-CPU) of a process",
		run:     runProfile,
	})
}

// ProfileSchemaVersion is the version of the profile directory's files
// (events JSONL and summary.json); bump it when a field changes meaning.
const ProfileSchemaVersion = 1

const profileUsage = `usage: tailgate profile --pid PID[,PID...] --duration D --out DIR [--analyze] [flags]
       tailgate profile --analyze --in DIR [--out DIR] [--base DIR] [--windows PATH] [flags]

Runs the kernel collectors against the processes (and the processes they
fork) for --duration, or until interrupted, and writes into DIR, per
collector KIND (offcpu, runq, futex, pagefault, numa, blockio, oncpu):

  KIND.events.jsonl  one JSON object per event: kind, ts_ns and dur_ns
                     (CLOCK_MONOTONIC ns), pid, tid, cpu, comm, ustack and
                     kstack (hex return addresses, innermost first; *_err is
                     the bpf_get_stack errno when a stack is missing), and the
                     kind's fields (state, preempted, prev_tid; uaddr,
                     futex_op, futex_ret; addr, error_code, major, no_start;
                     from_cpu, to_cpu, from_node, to_node, how; sector, bytes,
                     dev, op, status, in_fault).
  KIND.folded        folded stacks, root first: comm; user frames; kernel
                     frames (suffix _[k]). Values are nanoseconds of the
                     interval for every kind except oncpu (samples) and numa
                     (events).
  summary.json       schema, pids, collectors, duration, events, lost and
                     map-full counts per kind, skipped collectors, why kernel
                     stacks could not be symbolized, with
                     --program-stats the kernel's run count and CPU time
                     per BPF program (bpf_programs),
                     the CLOCK_MONOTONIC interval profiled (mono_start_ns,
                     mono_end_ns), the Go collectors' counts and how the
                     consumer was scheduled (consumer).
  go.events.jsonl    with --go or --analyze: the Go-runtime events (GC
                     pauses, assists, parks with wait reasons, ServeHTTP
                     request windows, goroutine scheduling) of internal/tail.
  proc/PID/maps      the target's mappings (at the start, again at the end
                     if it still runs), so the stacks can be symbolized
                     after it exits.

--analyze then splits every request (the client windows of --windows, a
'tailgate run' results directory or windows file, else the server-side
ServeHTTP windows) into contributors (perf-rules 'contributors'), compares
slow requests (above p99, or above --slo) with fast ones (at or below p50)
and writes contributors.json, contributors.txt, profiles.json and, under
flame/, folded stacks, SVG and differential flame graphs (slow vs fast,
and head vs base with --base) and pprof profiles. With --in it analyzes an
already-recorded directory instead of recording (no root needed). The
layout is documented in internal/tail/ARTIFACTS.md.

Recording needs root (or CAP_BPF + CAP_PERFMON). Lost events are reported,
never hidden. While recording, the process reads events under SCHED_IDLE
(--consumer-priority idle), so it takes no CPU the target wants; if it
falls a second behind the events it goes back to normal priority, and the
summary says when.

flags:
`

// profileOptions are the parsed flags of `tailgate profile`.
type profileOptions struct {
	pids         []int
	duration     time.Duration
	out          string
	collectors   []bpf.Kind
	minOffCPU    time.Duration
	minRunq      time.Duration
	minRunqStack time.Duration
	sampleHz     int
	bestEffort   bool
	keepGoIdle   bool
	progStats    bool
	// consumerPolicy is the recording consumer's scheduling: "idle"
	// (SCHED_IDLE while recording, the default) or "normal".
	consumerPolicy string

	// goEvents records the Go-runtime events (go.events.jsonl), of
	// goKinds.
	goEvents bool
	goKinds  []gort.Kind
	// analyze, and the analysis inputs (profile_analyze.go).
	analyze     bool
	in          string
	base        string
	windows     string
	baseWindows string
	slo         time.Duration
	rulesPath   string
	variant     string
}

func parseProfileFlags(args []string, stderr io.Writer) (*profileOptions, error) {
	o := &profileOptions{}
	fs := flag.NewFlagSet("profile", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, profileUsage)
		fs.PrintDefaults()
	}
	fs.Func("pid", "target process id(s), comma-separated (required)", func(s string) error {
		for _, f := range strings.Split(s, ",") {
			pid, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || pid <= 0 {
				return fmt.Errorf("%q is not a process id", f)
			}
			o.pids = append(o.pids, pid)
		}
		return nil
	})
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "how long to profile")
	fs.StringVar(&o.out, "out", "", "output directory (required; created if missing)")
	collectors := fs.String("collectors", "all", "comma-separated collectors: offcpu, runq, futex, pagefault, numa, blockio, oncpu, or all")
	fs.DurationVar(&o.minOffCPU, "min-offcpu", bpf.DefaultMinOffCPU, "drop off-CPU intervals shorter than this")
	fs.DurationVar(&o.minRunq, "min-runq", bpf.DefaultMinRunQueue, "drop run-queue waits shorter than this")
	fs.DurationVar(&o.minRunqStack, "min-runq-stack", bpf.DefaultMinRunQueueStack, "take the kernel stack of run-queue waits at least this long (shorter ones are kept without)")
	fs.IntVar(&o.sampleHz, "sample-hz", bpf.DefaultSampleHz, "on-CPU samples per second per CPU")
	fs.BoolVar(&o.bestEffort, "best-effort", false, "skip collectors whose hooks this kernel lacks instead of failing")
	fs.BoolVar(&o.keepGoIdle, "keep-go-idle", false, "also record off-CPU and futex waits of idle Go runtime threads (no goroutine); by default a Go target's are skipped and counted")
	fs.BoolVar(&o.progStats, "program-stats", false, "turn the kernel's BPF run-time statistics on and report each program's runs and CPU time (bpf_programs in summary.json); they cost every BPF program on the host two clock reads a run, and sessions with them held a loaded target's requests for up to a second (bpf/doc.go \"Overhead\"): for measuring the collectors, not beside a gate")
	fs.StringVar(&o.consumerPolicy, "consumer-priority", "idle", "while recording, the event consumer runs under SCHED_IDLE (idle: it never preempts the target and reads events in the gaps; raised back if it falls 1 s behind) or keeps the process's policy (normal)")
	fs.BoolVar(&o.goEvents, "go", false, "also record the Go-runtime events (go.events.jsonl); implied by --analyze")
	goKinds := fs.String("go-kinds", "all", "with --go: comma-separated Go collectors: gc, stw, assist, block (gopark, ready and execute probes), request (ServeHTTP), run (execute), or all; the join needs all")
	fs.BoolVar(&o.analyze, "analyze", false, "attribute the tail to contributors and write flame graphs (see above)")
	fs.StringVar(&o.in, "in", "", "with --analyze: analyze this recorded profile directory instead of recording")
	fs.StringVar(&o.base, "base", "", "with --analyze: the base commit's recorded profile directory (head-vs-base graphs)")
	fs.StringVar(&o.windows, "windows", "", "with --analyze: client request windows: a 'tailgate run' results directory (its *.windows) or one windows file")
	fs.StringVar(&o.baseWindows, "base-windows", "", "with --base: the base run's client request windows")
	fs.DurationVar(&o.slo, "slo", 0, "with --analyze: slow requests are those above this latency instead of those at or above p99")
	fs.StringVar(&o.rulesPath, "rules", "", "with --analyze: perf-rules file whose contributors classify the time (default: the embedded "+perfrules.BidderName+")")
	fs.StringVar(&o.variant, "variant", flame.LabelHead, "with --analyze: label of the analyzed run")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usageErrorf("profile: %v", err)
	}
	if fs.NArg() > 0 {
		return nil, usageErrorf("profile: unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !o.analyze {
		for _, name := range []string{"in", "base", "windows", "base-windows", "slo", "rules", "variant"} {
			if set[name] {
				return nil, usageErrorf("profile: --%s needs --analyze", name)
			}
		}
	}
	if o.baseWindows != "" && o.base == "" {
		return nil, usageErrorf("profile: --base-windows needs --base")
	}
	if o.slo < 0 {
		return nil, usageErrorf("profile: --slo %v: must not be negative", o.slo)
	}
	if o.analyze && !safeLabel.MatchString(o.variant) {
		return nil, usageErrorf("profile: --variant %q: want letters, digits, '.', '_' or '-'", o.variant)
	}
	if o.in != "" {
		// Analysis of a recorded directory: nothing is recorded.
		for _, name := range []string{"pid", "duration", "collectors", "min-offcpu", "min-runq", "sample-hz", "best-effort", "go", "go-kinds"} {
			if set[name] {
				return nil, usageErrorf("profile: --%s records a profile; --in analyzes a recorded one", name)
			}
		}
		if o.out == "" {
			o.out = o.in
		}
		return o, nil
	}
	if len(o.pids) == 0 {
		return nil, usageErrorf("profile: --pid is required")
	}
	if o.out == "" {
		return nil, usageErrorf("profile: --out is required")
	}
	o.goEvents = o.goEvents || o.analyze
	if o.consumerPolicy != "idle" && o.consumerPolicy != "normal" {
		return nil, usageErrorf("profile: --consumer-priority %q: want idle or normal", o.consumerPolicy)
	}
	if o.duration <= 0 {
		return nil, usageErrorf("profile: --duration %v: must be positive", o.duration)
	}
	if o.minOffCPU <= 0 {
		return nil, usageErrorf("profile: --min-offcpu %v: must be positive", o.minOffCPU)
	}
	if o.minRunq <= 0 {
		return nil, usageErrorf("profile: --min-runq %v: must be positive", o.minRunq)
	}
	if o.minRunqStack <= 0 {
		return nil, usageErrorf("profile: --min-runq-stack %v: must be positive", o.minRunqStack)
	}
	if o.sampleHz <= 0 || o.sampleHz > 10000 {
		return nil, usageErrorf("profile: --sample-hz %d: want 1..10000", o.sampleHz)
	}
	ks, err := bpf.ParseCollectors(*collectors)
	if err != nil {
		return nil, usageErrorf("profile: --collectors: %v", err)
	}
	o.collectors = ks
	if set["go-kinds"] && !o.goEvents {
		return nil, usageErrorf("profile: --go-kinds needs --go")
	}
	if set["go-kinds"] && o.analyze {
		return nil, usageErrorf("profile: --go-kinds: --analyze records every Go collector (its join needs them all)")
	}
	gks, err := gort.ParseKinds(*goKinds)
	if err != nil {
		return nil, usageErrorf("profile: --go-kinds: %v", err)
	}
	o.goKinds = gks
	return o, nil
}

func runProfile(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	o, err := parseProfileFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if o.in != "" {
		return analyzeProfile(o, nil, stdout, stderr)
	}
	if o.analyze {
		// Bad analysis inputs fail now, not after the recording.
		if _, err := loadContributors(o.rulesPath); err != nil {
			return withExit(ExitUsage, fmt.Errorf("profile: %w", err))
		}
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return fmt.Errorf("profile: %w", err)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	monoStart := monoNow()
	// The mappings now, and again at the end if the targets still run: a
	// target that exits before the profile ends keeps its stacks readable.
	startMapsErr := snapshotMaps(o.out, o.pids)
	sched := newConsumerSched(consumerMaxLag)
	var gos *goRecorder
	if o.goEvents {
		// Go collectors first: the kernel ones then see no probe set-up.
		gos = startGoRecorder(ctx, o.pids, o.goKinds, stderr, sched)
	}
	sess, err := bpf.Start(ctx, bpf.Options{
		PIDs:             o.pids,
		Collectors:       o.collectors,
		MinOffCPU:        o.minOffCPU,
		MinRunQueue:      o.minRunq,
		MinRunQueueStack: o.minRunqStack,
		SampleHz:         o.sampleHz,
		BestEffort:       o.bestEffort,
		KeepGoIdle:       o.keepGoIdle,
		ProgramStats:     o.progStats,
	})
	if err != nil {
		if gos != nil {
			gos.stop()
		}
		if errors.Is(err, bpf.ErrNotSupported) && os.Geteuid() != 0 {
			return fmt.Errorf("profile: run as root (or with CAP_BPF and CAP_PERFMON): %w", err)
		}
		return fmt.Errorf("profile: %w", err)
	}
	names := make([]string, len(o.collectors))
	for i, k := range o.collectors {
		names[i] = k.String()
	}
	fmt.Fprintf(stdout, "profiling pid %s for %v: %s\n", joinInts(o.pids), o.duration, strings.Join(names, ","))
	// While recording, the consumer runs on one P: its goroutines (ring
	// readers, decoders, writers) hand events to each other over channels,
	// and with a P per CPU every hand-off woke another thread on the CPUs
	// the target needs. Measured against the bidder at 600 req/s with
	// --go: 3.2 % of a CPU and ~1,300 context switches a second, 1.7–2.3 %
	// and ~430 with one P (bpf/doc.go "Overhead"). The symbolization and
	// writing after the recording get the machine back. A GOMAXPROCS in
	// the environment is honoured.
	restoreProcs := func() {}
	if getenv("GOMAXPROCS") == "" {
		prev := runtime.GOMAXPROCS(1)
		restoreProcs = func() {
			if prev > 0 {
				runtime.GOMAXPROCS(prev)
				prev = 0
			}
		}
	}
	defer restoreProcs()
	if o.consumerPolicy == "idle" {
		if err := sched.lower(); err != nil {
			fmt.Fprintf(stderr, "tailgate profile: warning: the consumer keeps its scheduling policy: %v\n", err)
		}
	}
	defer sched.restore()
	res := symbol.NewResolver()
	for _, pid := range o.pids {
		res.Prime(pid) // best effort: an exited process keeps its addresses
	}
	w := newProfileWriter(o.out, res)
	w.sched = sched
	consumed := make(chan error, 1)
	go func() { consumed <- w.consume(sess.Events()) }()

	start := time.Now()
	cpu0 := processCPU()
	select {
	case <-ctx.Done():
	case <-time.After(o.duration):
	}
	elapsed := time.Since(start)
	// The mappings while the targets still run: the analysis, now or
	// later (--in), symbolizes with them.
	mapsErr := snapshotMaps(o.out, o.pids)
	var goErr error
	if gos != nil {
		goErr = gos.stop()
	}
	stats, stopErr := sess.Stop()
	monoEnd := monoNow()
	werr := <-consumed
	recCPU := processCPU() - cpu0
	restoreProcs()
	sched.restore()
	if err := errors.Join(stopErr, werr, goErr); err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	w.monoStart, w.monoEnd = monoStart, monoEnd
	w.consumer = consumerSummary{Priority: o.consumerPolicy, RecordingCPUSec: recCPU.Seconds()}
	if at, lag, err := sched.raised(); at != 0 || err != nil {
		if at != 0 {
			w.consumer.RaisedAtSec = float64(at-monoStart) / 1e9
			w.consumer.RaisedLagMs = float64(lag) / 1e6
			fmt.Fprintf(stderr, "tailgate profile: the consumer fell %v behind the events %.1f s in and ran at normal priority from then\n", lag.Round(time.Millisecond), w.consumer.RaisedAtSec)
		}
		if err != nil {
			w.consumer.Error = err.Error()
		}
	}
	if gos != nil {
		w.goSum = gos.summary()
		if err := gos.write(filepath.Join(o.out, tail.GoEventsFile)); err != nil {
			return fmt.Errorf("profile: %w", err)
		}
	}
	if mapsErr != nil && startMapsErr != nil {
		fmt.Fprintf(stderr, "tailgate profile: warning: %v; stacks can be symbolized only while the process runs\n", mapsErr)
	}
	if err := w.finish(o, stats, elapsed); err != nil {
		return fmt.Errorf("profile: %w", err)
	}

	fmt.Fprintf(stdout, "profiled pid %s for %v into %s\n", joinInts(o.pids), elapsed.Round(time.Millisecond), o.out)
	for _, k := range o.collectors {
		if why, ok := stats.Skipped[k]; ok {
			fmt.Fprintf(stdout, "  %-9s skipped: %s\n", k, why)
			continue
		}
		fmt.Fprintf(stdout, "  %-9s %8d events", k, stats.Events[k])
		if n := stats.Lost[k] + stats.MapFull[k]; n > 0 {
			fmt.Fprintf(stdout, "  (%d LOST)", n)
		}
		if n := stats.GoIdle[k]; n > 0 {
			fmt.Fprintf(stdout, "  (%d of idle Go runtime threads not recorded)", n)
		}
		if n := stats.SameNodeMigrations; k == bpf.NUMAMigrate && n > 0 {
			fmt.Fprintf(stdout, "  (%d migrations within a node counted, not recorded)", n)
		}
		fmt.Fprintln(stdout)
	}
	if rt := stats.TotalRuntime(); rt > 0 {
		fmt.Fprintf(stdout, "  BPF programs used %v of CPU (%.2f%% of one CPU)\n", rt.Round(time.Microsecond), 100*rt.Seconds()/elapsed.Seconds())
	}
	if gos != nil {
		gos.report(stdout)
	}
	if n := stats.TotalLost(); n > 0 {
		fmt.Fprintf(stderr, "tailgate profile: warning: %d events lost (ring buffer or start maps full); the profile is incomplete\n", n)
	}
	if o.analyze {
		return analyzeProfile(o, res, stdout, stderr)
	}
	return nil
}

// profileWriter streams events to KIND.events.jsonl and folds them, keyed by
// raw addresses, for symbolization once at the end.
type profileWriter struct {
	dir    string
	res    *symbol.Resolver
	files  map[bpf.Kind]*os.File
	bufs   map[bpf.Kind]*bufio.Writer
	folds  map[bpf.Kind]map[rawStack]*rawFold
	primed map[uint32]bool
	line   []byte // the event being encoded, reused

	// Set before finish: the CLOCK_MONOTONIC interval profiled and the
	// Go collectors' summary (nil without them).
	monoStart, monoEnd int64
	goSum              *goSummary
	consumer           consumerSummary

	sched *consumerSched // told each event's end, to catch a lagging consumer
}

// rawStack identifies a stack before symbolization.
type rawStack struct {
	pid    uint32
	comm   string
	ustack string // little-endian addresses
	kstack string
}

type rawFold struct {
	u, k  []uint64
	value float64
	n     int64
}

func newProfileWriter(dir string, res *symbol.Resolver) *profileWriter {
	return &profileWriter{
		dir: dir, res: res,
		files:  map[bpf.Kind]*os.File{},
		bufs:   map[bpf.Kind]*bufio.Writer{},
		folds:  map[bpf.Kind]map[rawStack]*rawFold{},
		primed: map[uint32]bool{},
	}
}

// jsonEvent is one line of KIND.events.jsonl (schema ProfileSchemaVersion).
type jsonEvent struct {
	Kind      string   `json:"kind"`
	TsNs      uint64   `json:"ts_ns"`
	DurNs     uint64   `json:"dur_ns"`
	PID       uint32   `json:"pid"`
	TID       uint32   `json:"tid"`
	CPU       uint32   `json:"cpu"`
	Comm      string   `json:"comm"`
	UStack    []string `json:"ustack"`
	KStack    []string `json:"kstack"`
	UStackErr int32    `json:"ustack_err,omitempty"`
	KStackErr int32    `json:"kstack_err,omitempty"`

	State     *uint32 `json:"state,omitempty"`
	Preempted *bool   `json:"preempted,omitempty"`
	PrevTID   *uint32 `json:"prev_tid,omitempty"`

	UAddr    string  `json:"uaddr,omitempty"`
	FutexOp  *uint32 `json:"futex_op,omitempty"`
	FutexRet *int64  `json:"futex_ret,omitempty"`

	Addr      string  `json:"addr,omitempty"`
	ErrorCode *uint64 `json:"error_code,omitempty"`
	Major     *bool   `json:"major,omitempty"`
	NoStart   bool    `json:"no_start,omitempty"`

	FromCPU  *uint32 `json:"from_cpu,omitempty"`
	ToCPU    *uint32 `json:"to_cpu,omitempty"`
	FromNode *uint32 `json:"from_node,omitempty"`
	ToNode   *uint32 `json:"to_node,omitempty"`
	How      *uint32 `json:"how,omitempty"`

	Sector *uint64 `json:"sector,omitempty"`
	Bytes  *uint32 `json:"bytes,omitempty"`
	Dev    *uint32 `json:"dev,omitempty"`
	Op     *uint32 `json:"op,omitempty"`
	Status *uint32 `json:"status,omitempty"`
	// InFault: issued inside a page fault of the thread; its ustack is
	// that fault's (ustack_err -2 when the fault's event never came).
	InFault bool `json:"in_fault,omitempty"`
}

// appendJSONEvent appends e as one line of KIND.events.jsonl: exactly what
// json.Marshal of the jsonEvent above gives (TestAppendJSONEventMatches
// Marshal holds it to that), without reflection or a string per address;
// it is the consumer's per-event cost (BenchmarkProfileConsume).
func appendJSONEvent(b []byte, e *bpf.Event) []byte {
	u := func(b []byte, key string, v uint64) []byte {
		b = append(b, ',', '"')
		b = append(b, key...)
		b = append(b, '"', ':')
		return strconv.AppendUint(b, v, 10)
	}
	i := func(b []byte, key string, v int64) []byte {
		b = append(b, ',', '"')
		b = append(b, key...)
		b = append(b, '"', ':')
		return strconv.AppendInt(b, v, 10)
	}
	hex := func(b []byte, v uint64) []byte {
		b = append(b, '"', '0', 'x')
		b = strconv.AppendUint(b, v, 16)
		return append(b, '"')
	}
	stack := func(b []byte, key string, pcs []uint64) []byte {
		b = append(b, ',', '"')
		b = append(b, key...)
		b = append(b, '"', ':', '[')
		for n, pc := range pcs {
			if n > 0 {
				b = append(b, ',')
			}
			b = hex(b, pc)
		}
		return append(b, ']')
	}
	flag := func(b []byte, key string, v bool) []byte {
		b = append(b, ',', '"')
		b = append(b, key...)
		b = append(b, '"', ':')
		return strconv.AppendBool(b, v)
	}
	b = append(b, `{"kind":`...)
	b = appendJSONString(b, e.Kind.String())
	b = u(b, "ts_ns", e.TsNs)
	b = u(b, "dur_ns", e.DurNs)
	b = u(b, "pid", uint64(e.PID))
	b = u(b, "tid", uint64(e.TID))
	b = u(b, "cpu", uint64(e.CPU))
	b = append(b, `,"comm":`...)
	b = appendJSONString(b, e.Comm)
	b = stack(b, "ustack", e.UserStack)
	b = stack(b, "kstack", e.KernelStack)
	if e.UserStackErr != 0 {
		b = i(b, "ustack_err", int64(e.UserStackErr))
	}
	if e.KernelStackErr != 0 {
		b = i(b, "kstack_err", int64(e.KernelStackErr))
	}
	switch e.Kind {
	case bpf.OffCPU:
		b = u(b, "state", uint64(e.State))
		b = flag(b, "preempted", e.Preempted)
	case bpf.RunQueue:
		b = flag(b, "preempted", e.Preempted)
		b = u(b, "prev_tid", uint64(e.PrevTID))
	case bpf.Futex:
		b = append(b, `,"uaddr":`...)
		b = hex(b, e.UAddr)
		b = u(b, "futex_op", uint64(e.FutexOp))
		b = i(b, "futex_ret", e.FutexRet)
	case bpf.PageFault:
		b = append(b, `,"addr":`...)
		b = hex(b, e.Addr)
		b = u(b, "error_code", e.ErrorCode)
		b = flag(b, "major", e.Major)
		if e.NoStart {
			b = flag(b, "no_start", true)
		}
	case bpf.NUMAMigrate:
		b = u(b, "from_cpu", uint64(e.FromCPU))
		b = u(b, "to_cpu", uint64(e.ToCPU))
		b = u(b, "from_node", uint64(e.FromNode))
		b = u(b, "to_node", uint64(e.ToNode))
		b = u(b, "how", uint64(e.NUMAHow))
	case bpf.BlockIO:
		b = u(b, "sector", e.Sector)
		b = u(b, "bytes", uint64(e.Bytes))
		b = u(b, "dev", uint64(e.Dev))
		b = u(b, "op", uint64(e.Op))
		b = u(b, "status", uint64(e.Status))
		if e.InFault {
			b = flag(b, "in_fault", true)
		}
	}
	return append(b, '}')
}

// appendJSONString appends s quoted as encoding/json does (HTML-safe
// escapes, invalid UTF-8 as U+FFFD); plain printable ASCII, the usual
// thread name, takes the short way.
func appendJSONString(b []byte, s string) []byte {
	for k := 0; k < len(s); k++ {
		if c := s[k]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// foldUnit is the unit of a kind's folded values.
func foldUnit(k bpf.Kind) string {
	switch k {
	case bpf.OnCPU:
		return flame.DefaultUnit
	case bpf.NUMAMigrate:
		return "events"
	}
	return "nanoseconds"
}

func foldValue(e *bpf.Event) float64 {
	switch e.Kind {
	case bpf.OnCPU, bpf.NUMAMigrate:
		return 1
	}
	return float64(e.DurNs)
}

func packStack(pcs []uint64) string {
	b := make([]byte, 8*len(pcs))
	for i, pc := range pcs {
		for j := 0; j < 8; j++ {
			b[8*i+j] = byte(pc >> (8 * j))
		}
	}
	return string(b)
}

func (w *profileWriter) consume(events <-chan bpf.Event) error {
	var firstErr error
	for e := range events {
		w.sched.observe(e.TsNs + e.DurNs)
		if firstErr != nil {
			continue // keep draining so the session can stop
		}
		if !w.primed[e.PID] {
			w.primed[e.PID] = true
			w.res.Prime(int(e.PID)) // a followed child: remember its mappings now
		}
		bw, err := w.writer(e.Kind)
		if err != nil {
			firstErr = err
			continue
		}
		w.line = append(appendJSONEvent(w.line[:0], &e), '\n')
		bw.Write(w.line)

		m := w.folds[e.Kind]
		if m == nil {
			m = map[rawStack]*rawFold{}
			w.folds[e.Kind] = m
		}
		key := rawStack{pid: e.PID, comm: e.Comm, ustack: packStack(e.UserStack), kstack: packStack(e.KernelStack)}
		f := m[key]
		if f == nil {
			f = &rawFold{u: e.UserStack, k: e.KernelStack}
			m[key] = f
		}
		f.value += foldValue(&e)
		f.n++
	}
	return firstErr
}

func (w *profileWriter) writer(k bpf.Kind) (*bufio.Writer, error) {
	if bw, ok := w.bufs[k]; ok {
		return bw, nil
	}
	path := filepath.Join(w.dir, k.String()+".events.jsonl")
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	w.files[k] = f
	w.bufs[k] = bufio.NewWriterSize(f, 1<<20)
	return w.bufs[k], nil
}

type programCost struct {
	Runs      uint64 `json:"runs"`
	RuntimeNs int64  `json:"runtime_ns"`
}

// profileSummary is summary.json (schema ProfileSchemaVersion).
type profileSummary struct {
	Schema      int               `json:"schema"`
	PIDs        []int             `json:"pids"`
	Collectors  []string          `json:"collectors"`
	DurationSec float64           `json:"duration_sec"`
	Events      map[string]uint64 `json:"events"`
	Lost        map[string]uint64 `json:"lost"`
	MapFull     map[string]uint64 `json:"map_full"`
	Decode      uint64            `json:"decode_errors"`
	Unread      uint64            `json:"unread"`
	Skipped     map[string]string `json:"skipped,omitempty"`
	// GoIdle counts intervals not recorded because their thread was an
	// idle Go runtime thread (no goroutine) of one of GoTargets Go
	// targets (bpf.Options.KeepGoIdle; --keep-go-idle).
	GoIdle    map[string]uint64 `json:"go_idle_skipped,omitempty"`
	GoTargets int               `json:"go_targets"`
	// NUMASameNode counts the targets' migrations between CPUs of one
	// node: not NUMA moves, counted and not recorded (numa.events.jsonl
	// has the cross-node ones and NUMA balancing).
	NUMASameNode uint64            `json:"numa_same_node_migrations"`
	Units        map[string]string `json:"units"`
	// BPFPrograms is the kernel's run count and CPU time per program
	// (every process's events pass through them, filtered in the kernel).
	BPFPrograms map[string]programCost `json:"bpf_programs,omitempty"`
	BPFCPUSec   float64                `json:"bpf_cpu_sec"`
	KernelSyms  string                 `json:"kernel_symbols"`
	// MonoStartNs and MonoEndNs bound the profiled interval
	// (CLOCK_MONOTONIC, the clock of the events and of request windows).
	MonoStartNs int64 `json:"mono_start_ns,omitempty"`
	MonoEndNs   int64 `json:"mono_end_ns,omitempty"`
	// Go is the Go-runtime collectors' summary (go.events.jsonl).
	Go *goSummary `json:"go,omitempty"`
	// Consumer is how the recording process was scheduled.
	Consumer consumerSummary `json:"consumer"`
}

// consumerSummary is summary.json's "consumer".
type consumerSummary struct {
	// Priority is --consumer-priority: idle (SCHED_IDLE while recording)
	// or normal.
	Priority string `json:"priority"`
	// RaisedAtSec, when set, is when (seconds into the profile) the idle
	// consumer fell RaisedLagMs behind the events and went back to
	// normal priority for the rest of the recording.
	RaisedAtSec float64 `json:"raised_at_sec,omitempty"`
	RaisedLagMs float64 `json:"raised_lag_ms,omitempty"`
	// RecordingCPUSec is the CPU this process used from the start of the
	// recording until the programs were detached and the last event read:
	// what it took from the target's machine while measuring. Loading the
	// programs before and symbolizing after are not counted.
	RecordingCPUSec float64 `json:"recording_cpu_sec"`
	// Error is a failure to change the consumer's policy.
	Error string `json:"error,omitempty"`
}

// consumerMaxLag is how far behind the events an idle-priority consumer
// may fall before it is raised. The rings (16 MiB kernel, 32 MiB Go) hold
// several seconds of events at the rates measured against the bidder
// (~1,200 kernel events a second of at most ~2 KiB; bpf/doc.go
// "Overhead").
const consumerMaxLag = time.Second

func kindMap[V any](m map[bpf.Kind]V) map[string]V {
	out := make(map[string]V, len(m))
	for k, v := range m {
		out[k.String()] = v
	}
	return out
}

// finish closes the event files, writes the symbolized folded stacks and
// summary.json.
func (w *profileWriter) finish(o *profileOptions, st bpf.Stats, elapsed time.Duration) error {
	var errs []error
	for k, bw := range w.bufs {
		if err := bw.Flush(); err != nil {
			errs = append(errs, err)
		}
		if err := w.files[k].Close(); err != nil {
			errs = append(errs, err)
		}
	}
	sum := profileSummary{
		Schema: ProfileSchemaVersion, PIDs: o.pids, DurationSec: elapsed.Seconds(),
		Events: kindMap(st.Events), Lost: kindMap(st.Lost), MapFull: kindMap(st.MapFull),
		GoIdle: kindMap(st.GoIdle), GoTargets: st.GoTargets, NUMASameNode: st.SameNodeMigrations,
		Decode: st.Decode, Unread: st.Unread, Skipped: kindMap(st.Skipped), Units: map[string]string{},
		KernelSyms: "ok", MonoStartNs: w.monoStart, MonoEndNs: w.monoEnd, Go: w.goSum,
		Consumer: w.consumer,
	}
	if len(st.Programs) > 0 {
		sum.BPFPrograms = map[string]programCost{}
		for name, c := range st.Programs {
			sum.BPFPrograms[name] = programCost{Runs: c.Runs, RuntimeNs: c.Runtime.Nanoseconds()}
		}
		sum.BPFCPUSec = st.TotalRuntime().Seconds()
	}
	if err := w.res.KernelErr(); err != nil {
		sum.KernelSyms = err.Error()
	}
	for _, k := range o.collectors {
		sum.Collectors = append(sum.Collectors, k.String())
		sum.Units[k.String()] = foldUnit(k)
		if _, skipped := st.Skipped[k]; skipped {
			continue
		}
		if err := w.writeFolded(k); err != nil {
			errs = append(errs, err)
		}
	}
	b, err := json.MarshalIndent(sum, "", "  ")
	if err == nil {
		err = os.WriteFile(filepath.Join(w.dir, "summary.json"), append(b, '\n'), 0o644)
	}
	if err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (w *profileWriter) writeFolded(k bpf.Kind) error {
	p := flame.New(foldUnit(k))
	keys := make([]rawStack, 0, len(w.folds[k]))
	for key := range w.folds[k] {
		keys = append(keys, key)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].pid < keys[j].pid })
	for _, key := range keys {
		f := w.folds[k][key]
		if f.value <= 0 {
			continue // e.g. page faults whose start was not seen
		}
		frames := []string{key.comm}
		user := w.res.UserInline(int(key.pid), f.u) // inlined calls expanded
		for i := len(user) - 1; i >= 0; i-- {
			frames = append(frames, user[i].Func)
		}
		kern := w.res.Kernel(f.k)
		for i := len(kern) - 1; i >= 0; i-- {
			frames = append(frames, kern[i].Func+"_[k]")
		}
		p.Add(frames, f.value)
		p.Samples += f.n - 1 // Add counted one
	}
	out, err := os.Create(filepath.Join(w.dir, k.String()+".folded"))
	if err != nil {
		return err
	}
	if err := flame.WriteFolded(out, p); err != nil {
		out.Close()
		return fmt.Errorf("write %s folded stacks: %w", k, err)
	}
	return out.Close()
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}
