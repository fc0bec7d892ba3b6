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
