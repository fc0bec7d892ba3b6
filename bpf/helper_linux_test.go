//go:build linux && amd64

package bpf

import (
	"bufio"
	"debug/elf"
	"debug/gosym"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The acceptance tests profile workloads that they start themselves: the
// test binary re-executed with TAILGATE_BPF_HELPER=<mode>. A helper prints
// "ready [info]" and then obeys one command per stdin line, answering each
// with one line; it exits when stdin closes.
const helperEnv = "TAILGATE_BPF_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode, os.Args[len(os.Args)-1]))
	}
	os.Exit(m.Run())
}

func runHelper(mode, arg string) int {
	out := bufio.NewWriter(os.Stdout)
	say := func(format string, a ...any) {
		fmt.Fprintf(out, format+"\n", a...)
		out.Flush()
	}
	in := bufio.NewScanner(os.Stdin)
	switch mode {
	case "block":
		say("ready")
		for in.Scan() {
			runtime.LockOSThread()
			helperBlockingSleep(10, 20*time.Millisecond)
			runtime.UnlockOSThread()
			say("done")
		}
	case "futex":
		say("ready %#x", uintptr(unsafe.Pointer(&helperFutexWord)))
		for in.Scan() {
			helperFutexContend(2, 200)
			say("done")
		}
	case "fault":
		return helperFault(arg, in, say)
	case "spin":
		threads, _ := strconv.Atoi(arg)
		say("ready")
		var stop atomic.Bool
		var wg sync.WaitGroup
		for i := 0; i < threads; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				runtime.LockOSThread()
				helperSpinHot(&stop)
			}()
		}
		for in.Scan() {
		}
		stop.Store(true)
		wg.Wait()
	case "idle":
		// Goroutines that sleep on Go timers leave the runtime's threads
		// idle between wake-ups (stopm, the netpoller's wait), beside one
		// locked thread blocking in nanosleep (a goroutine's own wait).
		say("ready")
		for in.Scan() {
			var wg sync.WaitGroup
			for i := 0; i < 4; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); {
						time.Sleep(2 * time.Millisecond)
					}
				}()
			}
			runtime.LockOSThread()
			helperBlockingSleep(5, 20*time.Millisecond)
			runtime.UnlockOSThread()
			wg.Wait()
			say("done")
		}
	case "wakeups":
		say("ready")
		for in.Scan() {
			runtime.LockOSThread()
			helperBlockingSleep(300, time.Millisecond)
			runtime.UnlockOSThread()
			say("done")
		}
	default:
		fmt.Fprintln(os.Stderr, "unknown helper mode", mode)
		return 2
	}
	return 0
}

// helperBlockingSleep blocks its OS thread in nanosleep n times.
//
//go:noinline
func helperBlockingSleep(n int, d time.Duration) {
	ts := unix.NsecToTimespec(int64(d))
	for i := 0; i < n; i++ {
		for {
			rem := unix.Timespec{}
			if err := unix.Nanosleep(&ts, &rem); err != syscall.EINTR {
				break
			}
		}
	}
}

var helperFutexWord uint32

const (
	futexWaitPrivate = 0 | 128
	futexWakePrivate = 1 | 128
)

// helperFutexLock is a three-state futex mutex (Drepper, "Futexes are
// tricky"): 0 free, 1 locked, 2 locked with waiters.
//
//go:noinline
func helperFutexLock(w *uint32) {
	if atomic.CompareAndSwapUint32(w, 0, 1) {
		return
	}
	for atomic.SwapUint32(w, 2) != 0 {
		helperFutexWait(w, 2)
	}
}

//go:noinline
func helperFutexWait(w *uint32, val uint32) {
	syscall.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(w)), futexWaitPrivate, uintptr(val), 0, 0, 0)
}

func helperFutexUnlock(w *uint32) {
	if atomic.SwapUint32(w, 0) == 2 {
		syscall.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(w)), futexWakePrivate, 1, 0, 0, 0)
	}
}

var helperSink uint64

//go:noinline
func helperHold(n int) {
	x := helperSink
	for i := 0; i < n; i++ {
		x = x*6364136223846793005 + 1442695040888963407
	}
	helperSink = x
}

// helperFutexContend runs threads OS threads that take and hold the futex
// lock iters times each.
func helperFutexContend(threads, iters int) {
	var wg sync.WaitGroup
	for t := 0; t < threads; t++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			for i := 0; i < iters; i++ {
				helperFutexLock(&helperFutexWord)
				helperHold(200_000)
				helperFutexUnlock(&helperFutexWord)
			}
		}()
	}
	wg.Wait()
}

// helperSpinHot burns CPU until stop is set.
//
//go:noinline
func helperSpinHot(stop *atomic.Bool) {
	x := uint64(1)
	for !stop.Load() {
		for i := 0; i < 1_000_000; i++ {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	helperSink = x
}

// helperFault maps path read-only, and on "pageout" evicts it with
// MADV_PAGEOUT (answering with the pages still resident), on "touch" reads
// one byte per page (answering "done").
func helperFault(path string, in *bufio.Scanner, say func(string, ...any)) int {
	f, err := os.Open(path)
	if err != nil {
		say("error %v", err)
		return 1
	}
	st, _ := f.Stat()
	size := int(st.Size())
	mem, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		say("error mmap: %v", err)
		return 1
	}
	if err := unix.Madvise(mem, unix.MADV_RANDOM); err != nil {
		say("error madvise random: %v", err)
		return 1
	}
	helperTouch(mem)
	say("ready %d", size/os.Getpagesize())
	for in.Scan() {
		switch in.Text() {
		case "pageout":
			if err := unix.Madvise(mem, unix.MADV_PAGEOUT); err != nil {
				say("error madvise pageout: %v", err)
				continue
			}
			vec := make([]byte, (size+os.Getpagesize()-1)/os.Getpagesize())
			if _, _, errno := syscall.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&mem[0])), uintptr(len(mem)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
				say("error mincore: %v", errno)
				continue
			}
			resident := 0
			for _, v := range vec {
				resident += int(v & 1)
			}
			say("resident %d", resident)
		case "touch":
			helperTouch(mem)
			say("done")
		}
	}
	return 0
}

//go:noinline
func helperTouch(mem []byte) {
	var s byte
	for i := 0; i < len(mem); i += os.Getpagesize() {
		s += mem[i]
	}
	helperSink += uint64(s)
}

// helper is a running helper process.
type helper struct {
	t     *testing.T
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Scanner
	Ready string // text after "ready"
}

func startHelper(t *testing.T, mode, arg string) *helper {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$", arg)
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start helper %s: %v", mode, err)
	}
	h := &helper{t: t, cmd: cmd, stdin: stdin, out: bufio.NewScanner(stdout)}
	t.Cleanup(h.stop)
	line := h.read()
	rest, ok := strings.CutPrefix(line, "ready")
	if !ok {
		t.Fatalf("helper %s: want ready, got %q", mode, line)
	}
	h.Ready = strings.TrimSpace(rest)
	return h
}

func (h *helper) PID() int { return h.cmd.Process.Pid }

// helperHang bounds how long a helper may take to answer. It is a guard
// that turns a hung workload into a failure naming it, not a timing
// assertion: every answer normally comes within a second or two.
const helperHang = 3 * time.Minute

func (h *helper) read() string {
	h.t.Helper()
	watchdog := time.AfterFunc(helperHang, func() { h.cmd.Process.Kill() })
	ok := h.out.Scan()
	if !watchdog.Stop() {
		h.t.Fatalf("helper %v did not answer within %v: killed", h.cmd.Args, helperHang)
	}
	if !ok {
		h.t.Fatalf("helper exited early: %v", h.out.Err())
	}
	line := h.out.Text()
	if strings.HasPrefix(line, "error") {
		h.t.Fatalf("helper: %s", line)
	}
	return line
}

// do sends one command and returns the helper's answer.
func (h *helper) do(cmd string) string {
	h.t.Helper()
	if _, err := fmt.Fprintln(h.stdin, cmd); err != nil {
		h.t.Fatalf("helper command %q: %v", cmd, err)
	}
	return h.read()
}

func (h *helper) stop() {
	h.stdin.Close()
	done := make(chan struct{})
	go func() { h.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		h.cmd.Process.Kill()
		<-done
	}
}

// symtab resolves PCs of the (non-PIE) test binary to function names with
// debug/gosym, so the tests do not depend on internal/symbol.
type symtab struct {
	tab  *gosym.Table
	bias uint64
}

func loadSymtab(t *testing.T, pid int) *symtab {
	t.Helper()
	exe := fmt.Sprintf("/proc/%d/exe", pid)
	f, err := elf.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pcln := f.Section(".gopclntab")
	text := f.Section(".text")
	if pcln == nil || text == nil {
		t.Fatalf("%s: no .gopclntab or .text", exe)
	}
	data, err := pcln.Data()
	if err != nil {
		t.Fatal(err)
	}
	tab, err := gosym.NewTable(nil, gosym.NewLineTable(data, text.Addr))
	if err != nil {
		t.Fatal(err)
	}
	st := &symtab{tab: tab}
	if f.Type == elf.ET_DYN {
		st.bias = pieBias(t, pid, text)
	}
	return st
}

// pieBias finds the load bias of a PIE executable from /proc/PID/maps.
func pieBias(t *testing.T, pid int, text *elf.Section) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		t.Fatal(err)
	}
	exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	for _, line := range strings.Split(string(b), "\n") {
		fs := strings.Fields(line)
		if len(fs) < 6 || fs[5] != exe || !strings.Contains(fs[1], "x") {
			continue
		}
		lo, _, _ := strings.Cut(fs[0], "-")
		start, _ := strconv.ParseUint(lo, 16, 64)
		off, _ := strconv.ParseUint(fs[2], 16, 64)
		return start - off - (text.Addr - text.Offset)
	}
	t.Fatalf("no executable mapping of %s in /proc/%d/maps", exe, pid)
	return 0
}

// funcs names the frames of a user stack, innermost first.
func (s *symtab) funcs(stack []uint64) []string {
	out := make([]string, 0, len(stack))
	for i, pc := range stack {
		pc -= s.bias
		if i > 0 {
			pc-- // a return address points after the call
		}
		if fn := s.tab.PCToFunc(pc); fn != nil {
			out = append(out, fn.Name)
		} else {
			out = append(out, fmt.Sprintf("%#x", pc))
		}
	}
	return out
}

func hasFunc(frames []string, suffix string) bool {
	for _, f := range frames {
		if strings.HasSuffix(f, suffix) {
			return true
		}
	}
	return false
}
