//go:build linux

package load

import (
	"bufio"
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
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
	ws, err := sleepToDeadlines(ctx, nil, dur, period, prio, false)
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
// rtPrio when that is > 0. With raw the sleeps are raw system calls: the
// goroutine keeps its P, so the runtime neither hands the P off nor has
// sysmon poll faster while it sleeps (see witnessChild) — but nothing else
// may run on that P meanwhile, and a stop-the-world waits out a sleep, so
// raw is for the witness child alone.
func sleepToDeadlines(ctx context.Context, stop <-chan struct{}, dur, period time.Duration, rtPrio int, raw bool) ([]wakeup, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if rtPrio > 0 {
		if err := setThreadRR(rtPrio); err != nil {
			return nil, err
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
			var err error
			if raw {
				if _, _, e := unix.RawSyscall6(unix.SYS_CLOCK_NANOSLEEP, unix.CLOCK_MONOTONIC, unix.TIMER_ABSTIME,
					uintptr(unsafe.Pointer(&want)), 0, 0, 0); e != 0 {
					err = e
				}
			} else {
				err = unix.ClockNanosleep(unix.CLOCK_MONOTONIC, unix.TIMER_ABSTIME, &want, nil)
			}
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

// setThreadRR puts the calling (locked) thread in SCHED_RR at prio, with
// SCHED_RESET_ON_FORK.
func setThreadRR(prio int) error {
	attr := unix.SchedAttr{Policy: unix.SCHED_RR, Priority: uint32(prio), Flags: unix.SCHED_FLAG_RESET_ON_FORK}
	attr.Size = uint32(unsafe.Sizeof(attr))
	if err := unix.SchedSetAttr(0, &attr, 0); err != nil {
		return fmt.Errorf("probe wake-ups: sched_setattr SCHED_RR %d: %w (needs root or CAP_SYS_NICE)", prio, err)
	}
	return nil
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
	// The witness child process, or the in-process fallback.
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	stdout   io.ReadCloser
	stop     chan struct{}
	done     chan probeResult
	sleepers int // of the child
}

type probeResult struct {
	ws         []wakeup   // every sleeper's, in time order
	perSleeper [][]wakeup // each sleeper's own
	witness    bool       // ran in its own process, SCHED_RR above the load generator
	sleepers   int        // threads that slept: one per watched CPU, or 1
}

// witnessEnv makes a binary that links this package run as a witness child
// (see init): the sleeper beside a round runs in its own process, so that
// neither its blocking sleeps (each of which makes the Go runtime hand its P
// off and sysmon poll faster: measured, 10–15 % of a CPU more for the load
// generator at 1000 req/s) nor the load generator's own GC pauses (a
// goroutine returning from a syscall waits out a stop-the-world) touch it.
const (
	witnessEnv     = "TAILGATE_WITNESS_CHILD"
	witnessPrioEnv = "TAILGATE_WITNESS_PRIO"
)

func init() {
	if os.Getenv(witnessEnv) == "1" {
		os.Exit(witnessChild())
	}
}

// witnessChild sleeps to 1 ms deadlines, as SCHED_RR at $TAILGATE_WITNESS_PRIO
// (exit status 3 if that is refused), on one thread pinned to each CPU it
// may run on (witnessCPUs), until its standard input closes, then writes
// each thread's wake-ups to standard output (little-endian: the thread's
// count, then int64 deadline and lateness in ns per wake-up) and exits 0.
func witnessChild() int {
	prio, _ := strconv.Atoi(os.Getenv(witnessPrioEnv))
	cpus := witnessCPUs()
	// Each sleeper holds a P through its raw sleeps; two more keep the
	// main goroutine (reading standard input) and sysmon's bookkeeping off
	// them. With plain system calls and a P per CPU, the runtime handed a
	// sleeping thread's P off at every tick and sysmon polled every 20 µs:
	// a stand-alone copy of this loop took 18–20 % of a CPU at two 1 ms
	// sleepers on this 2-vCPU VM, 10 % with raw sleeps (/tmp/wexp,
	// 2026-12-03; the rest is the VM's cost of a timer wake-up).
	runtime.GOMAXPROCS(len(cpus) + 2)
	stop := make(chan struct{})
	type out struct {
		ws  []wakeup
		err error
	}
	ready := make(chan error, len(cpus))
	outs := make(chan out, len(cpus))
	for _, cpu := range cpus {
		go func() {
			runtime.LockOSThread() // sleepToDeadlines runs on this thread too
			err := pinThread(cpu)
			if err == nil {
				err = setThreadRR(prio)
			}
			ready <- err
			if err != nil {
				return
			}
			ws, err := sleepToDeadlines(context.Background(), stop, 0, witnessPeriod(), 0, true)
			outs <- out{ws, err}
		}()
	}
	for range cpus {
		if err := <-ready; err != nil {
			fmt.Fprintln(os.Stderr, "witness:", err)
			return 3
		}
	}
	if _, err := os.Stdout.Write([]byte{witnessReady, byte(len(cpus))}); err != nil {
		return 1
	}
	io.Copy(io.Discard, os.Stdin)
	close(stop)
	w := bufio.NewWriter(os.Stdout)
	var b [16]byte
	for range cpus {
		o := <-outs
		if o.err != nil {
			fmt.Fprintln(os.Stderr, o.err)
			return 3
		}
		// Each sleeper's run: its count, then its wake-ups.
		binary.LittleEndian.PutUint64(b[:8], uint64(len(o.ws)))
		w.Write(b[:8])
		for _, x := range o.ws {
			binary.LittleEndian.PutUint64(b[:8], uint64(x.at))
			binary.LittleEndian.PutUint64(b[8:], uint64(x.late))
			w.Write(b[:])
		}
	}
	if err := w.Flush(); err != nil {
		return 1
	}
	return 0
}

// witnessPeriodEnv overrides the witness's 1 ms tick (a Go duration), for
// measuring what a finer grid sees: a stall is only seen from the first
// tick due inside it, so up to one period of it counts as the load
// generator's own lag.
const witnessPeriodEnv = "TAILGATE_WITNESS_PERIOD"

func witnessPeriod() time.Duration {
	if d, err := time.ParseDuration(os.Getenv(witnessPeriodEnv)); err == nil && d >= 50*time.Microsecond && d <= 10*time.Millisecond {
		return d
	}
	return time.Millisecond
}

// maxWitnessCPUs bounds the CPUs watched one by one.
const maxWitnessCPUs = 16

// witnessCPUs lists the CPUs the witness watches, one sleeper each, or
// {-1}: one sleeper wherever the kernel runs it. A virtual machine's vCPUs
// stall one at a time (the hypervisor runs something else on the physical
// CPU, or is slow to wake a halted vCPU): measured here, two sleepers
// pinned to the two vCPUs saw stalls > 200 µs of 0.1–15 % of the time
// each, with only part of it shared, and an unpinned sleeper mostly
// escapes to the vCPU that runs. A load generator's send path runs on
// several threads (pacer, worker, netpoller) on any CPU, so a stall of any
// CPU it may use can delay a send: each is watched. Past maxWitnessCPUs
// (large hosts, usually bare metal) one unpinned sleeper is kept.
func witnessCPUs() []int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return []int{-1}
	}
	n := set.Count()
	if n < 2 || n > maxWitnessCPUs {
		return []int{-1}
	}
	var cpus []int
	for c := 0; len(cpus) < n && c < len(set)*64; c++ {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	return cpus
}

// pinThread binds the calling (locked) thread to cpu; -1 leaves it free.
func pinThread(cpu int) error {
	if cpu < 0 {
		return nil
	}
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return fmt.Errorf("pin witness to CPU %d: %w", cpu, err)
	}
	return nil
}

// startHostProbe starts a sleeper at 1 ms. Where it may run real-time (as
// root, or beside a real-time load generator) it is a witness: a child
// process (this binary, in witness mode) running SCHED_RR one priority
// above the load generator's real-time priority, so nothing of the
// generator, real-time or not, can delay it. Otherwise, or if the child
// cannot be started, the sleeper runs in-process at the default policy and
// is no witness.
func startHostProbe(ctx context.Context) *hostProbe {
	p := &hostProbe{stop: make(chan struct{}), done: make(chan probeResult, 1)}
	if (os.Geteuid() == 0 || processRealtime()) && p.startChild() == nil {
		return p
	}
	go func() {
		ws, _ := sleepToDeadlines(ctx, p.stop, 0, time.Millisecond, 0, false)
		p.done <- probeResult{ws: ws, perSleeper: [][]wakeup{ws}, sleepers: 1}
	}()
	return p
}

func (p *hostProbe) startChild() error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), witnessEnv+"=1", fmt.Sprintf("%s=%d", witnessPrioEnv, witnessRTPriority), "GOGC=off")
	cmd.Stderr = io.Discard
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		return err
	}
	if p.stdout, err = cmd.StdoutPipe(); err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	// The round starts once the witness runs real-time: started from a
	// real-time thread it begins at the default policy (SCHED_RESET_ON_FORK)
	// and must get a CPU to raise itself.
	ready := make(chan error, 1)
	go func() {
		var b [2]byte // witnessReady, the number of sleepers
		_, err := io.ReadFull(p.stdout, b[:])
		if err == nil && (b[0] != witnessReady || b[1] == 0) {
			err = fmt.Errorf("witness: unexpected greeting %#x", b)
		}
		p.sleepers = int(b[1])
		ready <- err
	}()
	select {
	case err = <-ready:
	case <-time.After(witnessStartTimeout):
		err = fmt.Errorf("witness: not ready after %v", witnessStartTimeout)
	}
	if err != nil {
		cmd.Process.Kill()
		p.stdin.Close()
		cmd.Wait()
		return err
	}
	p.cmd = cmd
	return nil
}

const (
	witnessReady        = 'R'
	witnessStartTimeout = 5 * time.Second
)

// finish stops the sleeper and returns its wake-ups.
func (p *hostProbe) finish() probeResult {
	if p.cmd == nil {
		close(p.stop)
		return <-p.done
	}
	p.stdin.Close()
	// It answers within a tick; one that does not is killed, not waited on.
	kill := time.AfterFunc(witnessStartTimeout, func() { p.cmd.Process.Kill() })
	defer kill.Stop()
	raw, rerr := io.ReadAll(p.stdout)
	werr := p.cmd.Wait()
	if rerr != nil || werr != nil {
		return probeResult{} // no witness: nothing is excused
	}
	var ws []wakeup
	var per [][]wakeup
	for len(raw) >= 8 {
		n := binary.LittleEndian.Uint64(raw)
		raw = raw[8:]
		if n > uint64(len(raw)/16) {
			return probeResult{} // truncated: no witness, nothing is excused
		}
		one := make([]wakeup, n)
		for i := range one {
			one[i] = wakeup{at: int64(binary.LittleEndian.Uint64(raw)), late: time.Duration(binary.LittleEndian.Uint64(raw[8:]))}
			raw = raw[16:]
		}
		per = append(per, one)
		ws = append(ws, one...)
	}
	if len(per) != p.sleepers {
		return probeResult{}
	}
	slices.SortStableFunc(ws, func(a, b wakeup) int { return cmp.Compare(a.at, b.at) })
	return probeResult{ws: ws, perSleeper: per, witness: true, sleepers: p.sleepers}
}
