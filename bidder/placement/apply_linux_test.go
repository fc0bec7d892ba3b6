//go:build linux

package placement

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

const (
	execChildEnv = "PLACEMENT_TEST_EXEC_CPU"
	dropChildEnv = "PLACEMENT_TEST_DROP"
)

// TestMain doubles as the "pin then exec" child of TestExecPinsItself.
func TestMain(m *testing.M) {
	if os.Getenv(dropChildEnv) != "" {
		// Drop to nobody keeping CAP_IPC_LOCK.
		id := Identity{Cred: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}, AmbientCaps: []uintptr{unix.CAP_IPC_LOCK}}
		script := `echo "uid=$(id -u)"; grep -E '^Cap(Eff|Amb)' /proc/self/status`
		err := Exec(Child{}, "/bin/sh", []string{"sh", "-c", script}, os.Environ(), id)
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if v := os.Getenv(execChildEnv); v != "" {
		cpu, _ := strconv.Atoi(v)
		c := Child{Node: 0, CPUs: []int{cpu}, MemBind: []int{0}, GOMAXPROCS: 1}
		c.Env = childEnv(c)
		env := MergeEnv(os.Environ(), c.Env)
		script := `grep -E '^(Cpus|Mems)_allowed_list' /proc/self/status; head -n 1 /proc/self/numa_maps; echo "GOMAXPROCS=$GOMAXPROCS node=$BIDDER_NUMA_NODE"`
		err := Exec(c, "/bin/sh", []string{"sh", "-c", script}, env, Identity{})
		fmt.Fprintln(os.Stderr, err) // Exec returns only on failure
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// liveNode0 skips unless this host can show a placement: a node 0 with
// memory and /proc/PID/numa_maps (CONFIG_NUMA). It returns the CPU to pin to.
func liveNode0(t *testing.T) int {
	t.Helper()
	topo, err := ReadTopology("")
	if err != nil {
		t.Skipf("no sysfs topology: %v", err)
	}
	if topo.NoNUMA || !topo.Nodes[0].HasMemory || topo.Nodes[0].ID != 0 {
		t.Skip("needs NUMA node 0 with memory (CONFIG_NUMA)")
	}
	if _, err := os.Stat("/proc/self/numa_maps"); err != nil {
		t.Skipf("no /proc/self/numa_maps: %v", err)
	}
	allowed, err := ThreadAffinity()
	if err != nil || len(allowed) == 0 {
		t.Skipf("sched_getaffinity: %v", err)
	}
	// The last allowed CPU, so a 2-CPU host pins to 1, not the default 0-1.
	return allowed[len(allowed)-1]
}

func procField(t *testing.T, pid int, file, key string) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, file))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && k == key {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("/proc/%d/%s has no %s", pid, file, key)
	return ""
}

// TestStartPinsChild launches a child pinned to one CPU and bound to node 0
// and reads its placement back from /proc. The priority part needs root
// (a negative nice needs CAP_SYS_NICE).
func TestStartPinsChild(t *testing.T) {
	cpu := liveNode0(t)
	c := Child{Node: 0, CPUs: []int{cpu}, MemBind: []int{0}, GOMAXPROCS: 1}
	if os.Geteuid() == 0 {
		c.Nice = -5
	} else {
		t.Log("not root: the nice part is skipped (raising priority needs CAP_SYS_NICE)")
	}
	before := procField(t, os.Getpid(), "status", "Cpus_allowed_list")
	cmd := exec.Command("sleep", "30")
	if err := Start(c, cmd); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	pid := cmd.Process.Pid

	if got := procField(t, pid, "status", "Cpus_allowed_list"); got != strconv.Itoa(cpu) {
		t.Errorf("child Cpus_allowed_list = %q, want %d", got, cpu)
	}
	t.Logf("child Mems_allowed_list = %s (the cpuset; the policy is in numa_maps)", procField(t, pid, "status", "Mems_allowed_list"))
	numa, err := os.ReadFile(fmt.Sprintf("/proc/%d/numa_maps", pid))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(numa, []byte(" bind:0 ")) {
		t.Errorf("child numa_maps shows no MPOL_BIND to node 0:\n%s", firstLines(numa, 3))
	}
	if c.Nice != 0 {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			t.Fatal(err)
		}
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if got := fields[19-3]; got != strconv.Itoa(c.Nice) {
			t.Errorf("child nice = %s, want %d", got, c.Nice)
		}
	}
	if after := procField(t, os.Getpid(), "status", "Cpus_allowed_list"); after != before {
		t.Errorf("the launcher's own affinity changed: %s -> %s", before, after)
	}
}

// TestExecPinsItself runs the "pin then exec" path: a child process applies
// the placement to its thread and execs a shell that reports it.
func TestExecPinsItself(t *testing.T) {
	cpu := liveNode0(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), execChildEnv+"="+strconv.Itoa(cpu))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	s := string(out)
	for _, want := range []string{
		"Cpus_allowed_list:\t" + strconv.Itoa(cpu) + "\n",
		" bind:0 ",
		"GOMAXPROCS=1 node=0",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("exec'd shell output lacks %q:\n%s", want, s)
		}
	}
}

func firstLines(b []byte, n int) string {
	lines := strings.SplitN(string(b), "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}

// TestExecDropsRootKeepingIPCLock: the in-place exec switches to nobody and
// the program it runs still holds CAP_IPC_LOCK (ambient), so the bidder's
// mlock fix works where RLIMIT_MEMLOCK cannot be raised.
func TestExecDropsRootKeepingIPCLock(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("dropping to another user needs root")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), dropChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	s := string(out)
	if !strings.Contains(s, "uid=65534") {
		t.Fatalf("exec'd program does not run as nobody:\n%s", s)
	}
	for _, key := range []string{"CapEff", "CapAmb"} {
		v := ""
		for _, line := range strings.Split(s, "\n") {
			if k, val, ok := strings.Cut(line, ":"); ok && k == key {
				v = strings.TrimSpace(val)
			}
		}
		caps, err := strconv.ParseUint(v, 16, 64)
		if err != nil {
			t.Fatalf("%s %q: %v\n%s", key, v, err, s)
		}
		if caps != 1<<unix.CAP_IPC_LOCK {
			t.Errorf("%s = %#x, want exactly CAP_IPC_LOCK (%#x)", key, caps, uint64(1)<<unix.CAP_IPC_LOCK)
		}
	}
}
