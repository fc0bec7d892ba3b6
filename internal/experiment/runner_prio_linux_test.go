//go:build linux

package experiment

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
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
