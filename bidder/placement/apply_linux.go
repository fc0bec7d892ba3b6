//go:build linux

package placement

import (
	"errors"
	"fmt"
	"os/exec"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ApplyToThread gives the calling OS thread c's CPU affinity, memory policy
// and priority. All three are per-thread, inherited by threads and processes
// the thread creates, and kept across exec. The caller must hold the thread
// (runtime.LockOSThread) and must never hand it back to the Go scheduler
// with the new attributes: let the goroutine exit locked, or exec.
func ApplyToThread(c Child) error {
	if len(c.CPUs) > 0 {
		var set unix.CPUSet
		for _, cpu := range c.CPUs {
			if cpu >= len(set)*64 {
				return fmt.Errorf("placement: sched_setaffinity: CPU %d above the supported %d", cpu, len(set)*64-1)
			}
			set.Set(cpu)
		}
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			return fmt.Errorf("placement: sched_setaffinity(%s): %w", FormatList(c.CPUs), err)
		}
	}
	if c.MemBind != nil {
		if err := setMempolicyBind(c.MemBind); err != nil {
			return err
		}
	}
	if c.Nice != 0 {
		if err := unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), c.Nice); err != nil {
			if errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) {
				return fmt.Errorf("placement: setpriority(nice %d): %w: raising priority needs root (CAP_SYS_NICE); run the launcher as root (it can drop to --user) or pass --nice 0", c.Nice, err)
			}
			return fmt.Errorf("placement: setpriority(nice %d): %w", c.Nice, err)
		}
	}
	return nil
}

// setMempolicyBind calls set_mempolicy(MPOL_BIND, nodes) for the calling
// thread.
func setMempolicyBind(nodes []int) error {
	maxNode := 0
	for _, n := range nodes {
		maxNode = max(maxNode, n)
	}
	mask := make([]uint64, maxNode/64+1)
	for _, n := range nodes {
		mask[n/64] |= 1 << (n % 64)
	}
	// The kernel reads maxnode-1 bits (a historical off-by-one that
	// numactl also compensates for).
	bitsPlusOne := uintptr(len(mask)*64 + 1)
	_, _, errno := unix.Syscall(unix.SYS_SET_MEMPOLICY, unix.MPOL_BIND, uintptr(unsafe.Pointer(&mask[0])), bitsPlusOne)
	if errno != 0 {
		return fmt.Errorf("placement: set_mempolicy(MPOL_BIND, nodes %s): %w", FormatList(nodes), errno)
	}
	return nil
}

// Start starts cmd placed as c: a locked OS thread takes c's attributes and
// forks the child (Go forks on the calling thread, so the child inherits
// them). The thread then gets its own attributes back and returns to the
// scheduler; if they cannot be restored it stays locked, so the runtime
// retires it with its goroutine (the main thread is parked forever
// instead), and no goroutine ever runs with a foreign placement.
func Start(c Child, cmd *exec.Cmd) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		saved, saveErr := saveThread()
		if err := ApplyToThread(c); err != nil {
			errc <- err
			if saveErr == nil && saved.restore() == nil {
				runtime.UnlockOSThread()
			}
			return
		}
		errc <- cmd.Start()
		if saveErr == nil && saved.restore() == nil {
			runtime.UnlockOSThread()
		}
	}()
	return <-errc
}

// threadState is what ApplyToThread changes, saved to undo it.
type threadState struct {
	cpus unix.CPUSet
	nice int
}

func saveThread() (*threadState, error) {
	var s threadState
	if err := unix.SchedGetaffinity(0, &s.cpus); err != nil {
		return nil, err
	}
	// getpriority returns 20-nice through the raw syscall.
	prio, err := unix.Getpriority(unix.PRIO_PROCESS, unix.Gettid())
	if err != nil {
		return nil, err
	}
	s.nice = 20 - prio
	var mode int32
	if _, _, errno := unix.Syscall6(unix.SYS_GET_MEMPOLICY, uintptr(unsafe.Pointer(&mode)), 0, 0, 0, 0, 0); errno != 0 {
		return nil, errno
	}
	if mode != unix.MPOL_DEFAULT {
		return nil, fmt.Errorf("placement: thread memory policy %d is not the default", mode)
	}
	return &s, nil
}

func (s *threadState) restore() error {
	if err := unix.SchedSetaffinity(0, &s.cpus); err != nil {
		return err
	}
	if _, _, errno := unix.Syscall(unix.SYS_SET_MEMPOLICY, unix.MPOL_DEFAULT, 0, 0); errno != 0 {
		return errno
	}
	return unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), s.nice)
}

// Exec replaces this process by path with argv and env, placed as c and
// running as id (the priority is raised before privileges are dropped). It
// returns only on failure.
func Exec(c Child, path string, argv, env []string, id Identity) error {
	runtime.LockOSThread()
	if err := ApplyToThread(c); err != nil {
		return err
	}
	if id.Cred != nil {
		if err := dropPrivileges(id); err != nil {
			return err
		}
	}
	err := syscall.Exec(path, argv, env)
	return fmt.Errorf("placement: exec %s: %w", path, err)
}

// dropPrivileges switches every thread to id.Cred (Go applies setuid and
// setgid to all threads) and keeps id.AmbientCaps on the calling thread as
// ambient capabilities, which the exec'd program gets as effective ones. It
// also re-arms the parent-death signal, which the kernel clears on a
// credential change: a deployer that asked for the service to die with it
// still gets that after the launcher drops root.
func dropPrivileges(id Identity) error {
	var pdeath int32
	if err := unix.Prctl(unix.PR_GET_PDEATHSIG, uintptr(unsafe.Pointer(&pdeath)), 0, 0, 0); err != nil {
		return fmt.Errorf("placement: prctl(PR_GET_PDEATHSIG): %w", err)
	}
	if len(id.AmbientCaps) > 0 {
		// Keep the permitted set across setuid (per thread: this one).
		if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("placement: prctl(PR_SET_KEEPCAPS): %w", err)
		}
	}
	cred := id.Cred
	groups := make([]int, len(cred.Groups))
	for i, g := range cred.Groups {
		groups[i] = int(g)
	}
	if err := syscall.Setgroups(groups); err != nil {
		return fmt.Errorf("placement: setgroups: %w", err)
	}
	if err := syscall.Setgid(int(cred.Gid)); err != nil {
		return fmt.Errorf("placement: setgid(%d): %w", cred.Gid, err)
	}
	if err := syscall.Setuid(int(cred.Uid)); err != nil {
		return fmt.Errorf("placement: setuid(%d): %w", cred.Uid, err)
	}
	if len(id.AmbientCaps) > 0 {
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			return fmt.Errorf("placement: capget: %w", err)
		}
		for _, c := range id.AmbientCaps {
			if c >= 64 || data[c/32].Permitted&(1<<(c%32)) == 0 {
				return fmt.Errorf("placement: capability %d is not permitted, so it cannot be kept (run the launcher as root)", c)
			}
			data[c/32].Effective |= 1 << (c % 32)
			data[c/32].Inheritable |= 1 << (c % 32)
		}
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			return fmt.Errorf("placement: capset: %w", err)
		}
		for _, c := range id.AmbientCaps {
			if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, c, 0, 0); err != nil {
				return fmt.Errorf("placement: raise ambient capability %d: %w", c, err)
			}
		}
	}
	if pdeath != 0 {
		if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(pdeath), 0, 0, 0); err != nil {
			return fmt.Errorf("placement: prctl(PR_SET_PDEATHSIG): %w", err)
		}
	}
	return nil
}

// ThreadAffinity returns the CPUs the calling thread may run on.
func ThreadAffinity() ([]int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, fmt.Errorf("placement: sched_getaffinity: %w", err)
	}
	var cpus []int
	for i := 0; i < len(set)*64; i++ {
		if set.IsSet(i) {
			cpus = append(cpus, i)
		}
	}
	return cpus, nil
}
