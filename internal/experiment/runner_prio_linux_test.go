//go:build linux

package experiment

import (
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// procState is the state letter of /proc/<pid>/stat (R, S, T, Z...).
func procState(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+1:])[0]
}

// waitState polls until pid is in one of states (signals are asynchronous).
func waitState(t *testing.T, pid int, states string) {
	t.Helper()
	for i := 0; i < 500; i++ {
		if strings.Contains(states, procState(t, pid)) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("pid %d in state %s, want one of %s", pid, procState(t, pid), states)
}

// TestNeighbourPause checks what the Fleet relies on to run only the
// measured arm's neighbours: the new children of a start are found, and
// SIGSTOP/SIGCONT to their process groups pause and resume them.
func TestNeighbourPause(t *testing.T) {
	before, err := childPIDs()
	if err != nil {
		t.Fatal(err)
	}
	var cmds []*exec.Cmd
	for i := 0; i < 2; i++ {
		c := exec.Command("sleep", "60")
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := c.Start(); err != nil {
			t.Skipf("cannot start sleep: %v", err)
		}
		cmds = append(cmds, c)
		t.Cleanup(func() { c.Process.Kill(); c.Wait() })
	}
	service := cmds[0].Process.Pid
	nbs, err := newChildren(before, service)
	if err != nil {
		t.Fatal(err)
	}
	if len(nbs) != 1 || nbs[0] != cmds[1].Process.Pid {
		t.Fatalf("new children %v, want only the neighbour %d (service %d excluded)", nbs, cmds[1].Process.Pid, service)
	}
	f := &Fleet{}
	a := &liveArm{spec: ArmSpec{Name: "x"}, nbs: nbs}
	if err := f.pause(a, true); err != nil {
		t.Fatal(err)
	}
	waitState(t, nbs[0], "Tt")
	if st := procState(t, service); st == "T" || st == "t" {
		t.Fatalf("service paused too (state %s)", st)
	}
	if err := f.pause(a, false); err != nil {
		t.Fatal(err)
	}
	waitState(t, nbs[0], "SR")
	// A neighbour that already exited is not an error.
	cmds[1].Process.Kill()
	cmds[1].Wait()
	if err := f.pause(a, true); err != nil {
		t.Fatalf("pausing an exited neighbour: %v", err)
	}
}

// taskNice is a thread's nice value (field 19 of /proc/self/task/TID/stat).
func taskNice(tid int) (int, error) {
	b, err := os.ReadFile("/proc/self/task/" + strconv.Itoa(tid) + "/stat")
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return strconv.Atoi(f[16]) // state is field 3; nice is field 19
}

// TestWatchThreadsRaisesNewThreads: threads the Go runtime starts while
// the watcher runs get its priority (here nice 1, which needs no root);
// threads that were there before keep theirs. The goroutines stay locked
// to their threads, so those threads end with them.
func TestWatchThreadsRaisesNewThreads(t *testing.T) {
	before, err := threadIDs()
	if err != nil {
		t.Fatal(err)
	}
	niceBefore := map[int]int{}
	for tid := range before {
		if nice, err := taskNice(tid); err == nil {
			niceBefore[tid] = nice
		}
	}
	known := map[int]bool{}
	for tid := range before {
		known[tid] = true
	}
	stop := watchThreadsAfter(known, 1, false)
	// More locked goroutines than threads before: some must get new ones.
	n := len(before) + 2
	tids := make(chan int, n)
	release := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread() // never unlocked: the thread exits with us
			tids <- unix.Gettid()
			<-release
		}()
	}
	seen := map[int]bool{}
	for i := 0; i < n; i++ {
		seen[<-tids] = true
	}
	var fresh []int
	for tid := range seen {
		if !before[tid] {
			fresh = append(fresh, tid)
		}
	}
	if len(fresh) == 0 {
		t.Fatalf("no new thread among %d locked goroutines (threads before: %d)", n, len(before))
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, tid := range fresh {
		for {
			nice, err := taskNice(tid)
			if err != nil {
				t.Fatalf("thread %d: %v", tid, err)
			}
			if nice == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("thread %d started after the watcher still at nice %d, want 1", tid, nice)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	for tid := range seen {
		if before[tid] {
			if nice, err := taskNice(tid); err == nil && nice != niceBefore[tid] {
				t.Errorf("thread %d, there before the watcher, went from nice %d to %d: want it untouched", tid, niceBefore[tid], nice)
			}
		}
	}
	raised := stop()
	close(release)
	wg.Wait()
	if raised < len(fresh) {
		t.Errorf("watcher says it raised %d threads, want at least the %d new ones", raised, len(fresh))
	}
	t.Logf("%d threads before, %d new ones raised (watcher counted %d)", len(before), len(fresh), raised)
}
