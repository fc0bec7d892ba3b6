//go:build linux

package experiment

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// setThreadPriority sets one thread's nice value and, with realtime, puts
// it in SCHED_RR at priority 1 with SCHED_RESET_ON_FORK (so nothing it
// forks or clones later inherits a real-time policy).
func setThreadPriority(tid, nice int, realtime bool) error {
	if realtime {
		attr := unix.SchedAttr{Policy: unix.SCHED_RR, Priority: 1, Flags: unix.SCHED_FLAG_RESET_ON_FORK}
		attr.Size = uint32(unsafe.Sizeof(attr))
		if err := unix.SchedSetAttr(tid, &attr, 0); err != nil {
			return fmt.Errorf("sched_setattr SCHED_RR: %w", err)
		}
		return nil
	}
	return unix.Setpriority(unix.PRIO_PROCESS, tid, nice)
}

// autogroupNice reads the nice value of this process's scheduler autogroup
// (ok false when autogroups are off or absent). With autogroups on, a
// thread's nice only ranks it inside its session's group; across groups the
// group's nice counts, so the attacker must raise its group too.
func autogroupNice() (nice int, ok bool) {
	if b, err := os.ReadFile("/proc/sys/kernel/sched_autogroup_enabled"); err != nil || strings.TrimSpace(string(b)) != "1" {
		return 0, false
	}
	b, err := os.ReadFile("/proc/self/autogroup")
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b)) // "/autogroup-238 nice 0"
	if len(f) != 3 || f[1] != "nice" {
		return 0, false
	}
	n, err := strconv.Atoi(f[2])
	return n, err == nil
}

func setAutogroupNice(nice int) error {
	return os.WriteFile("/proc/self/autogroup", []byte(strconv.Itoa(nice)), 0)
}

// childPIDs lists the live children of this process (any thread's), from
// /proc/<pid>/stat's ppid field.
func childPIDs() (map[int]bool, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	self := os.Getpid()
	out := map[int]bool{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // exited meanwhile
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 {
			continue
		}
		if ppid, err := strconv.Atoi(f[1]); err == nil && ppid == self && f[0] != "Z" {
			out[pid] = true
		}
	}
	return out, nil
}

// signalPIDs sends SIGSTOP (stop) or SIGCONT to each pid's process group
// (deploy starts every neighbour in its own group, so anything it forked
// pauses with it); a pid that has exited is skipped (the service's
// neighbour watch reports it).
func signalPIDs(pids []int, stop bool) error {
	sig := unix.SIGCONT
	if stop {
		sig = unix.SIGSTOP
	}
	var first error
	for _, p := range pids {
		err := unix.Kill(-p, sig)
		if err == unix.ESRCH {
			err = unix.Kill(p, sig) // not a group leader after all
		}
		if err != nil && err != unix.ESRCH && first == nil {
			first = fmt.Errorf("signal neighbour %d: %w", p, err)
		}
	}
	return first
}
