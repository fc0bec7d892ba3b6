//go:build linux

package deploy

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// credential returns the identity a child runs as: nil (our own) unless we
// are root, in which case name (or DefaultUser) — the service under test
// must not run with the collectors' privileges.
func credential(name string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	uid, gid, err := LookupUser(name)
	if err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}}, nil
}

// LookupUser returns the uid and gid of name ("" means DefaultUser).
func LookupUser(name string) (uid, gid uint32, err error) {
	if name == "" {
		name = DefaultUser
	}
	u, err := user.Lookup(name)
	if err != nil {
		return 0, 0, fmt.Errorf("look up service user: %w", err)
	}
	id, err1 := strconv.ParseUint(u.Uid, 10, 32)
	g, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("look up service user %s: bad uid/gid %s/%s", name, u.Uid, u.Gid)
	}
	return uint32(id), uint32(g), nil
}

// PrepareDir makes dir usable by the service user: traversable by everyone
// and, when we are root, owned by that user so the service can write it.
func PrepareDir(dir, userName string) error {
	if err := os.Chmod(dir, 0o755); err != nil {
		return fmt.Errorf("prepare %s: %w", dir, err)
	}
	if os.Geteuid() != 0 {
		return nil
	}
	uid, gid, err := LookupUser(userName)
	if err != nil {
		return err
	}
	if err := os.Chown(dir, int(uid), int(gid)); err != nil {
		return fmt.Errorf("prepare %s: %w", dir, err)
	}
	return nil
}

func sysProcAttr(cred *syscall.Credential, ambient []uintptr) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{
		Setpgid:     true,
		Credential:  cred,
		AmbientCaps: ambient,
		// The service must not outlive tailgate if tailgate is killed.
		Pdeathsig: syscall.SIGKILL,
	}
}

// capIPCLock lets a process lock memory beyond RLIMIT_MEMLOCK.
const capIPCLock = unix.CAP_IPC_LOCK

// hasCap reports whether cap is in our effective and bounding sets (so a
// child can get it as an ambient capability).
func hasCap(c uintptr) bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	if data[c/32].Effective&(1<<(c%32)) == 0 || data[c/32].Permitted&(1<<(c%32)) == 0 {
		return false
	}
	in, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, c, 0, 0, 0)
	return err == nil && in == 1
}

// raiseMemlock sets RLIMIT_MEMLOCK in this process before the fork, so the
// child inherits it with no window in which it could run with the 8 MiB
// default (a prlimit after the start would race the service's mlock). Only
// root can raise the hard limit; otherwise the soft limit is raised to the
// hard one.
func raiseMemlock(limit uint64) error {
	var cur unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &cur); err != nil {
		return fmt.Errorf("get RLIMIT_MEMLOCK: %w", err)
	}
	want := cur
	if os.Geteuid() == 0 {
		if limit == 0 {
			limit = unix.RLIM_INFINITY
		}
		want = unix.Rlimit{Cur: limit, Max: limit}
		if cur.Max > limit {
			// Never lower our own hard limit: the collectors need it.
			want.Max = cur.Max
		}
	} else {
		want.Cur = cur.Max
	}
	if want == cur {
		return nil
	}
	if err := unix.Setrlimit(unix.RLIMIT_MEMLOCK, &want); err != nil {
		err = fmt.Errorf("raise RLIMIT_MEMLOCK from %d to %d bytes: %w", cur.Cur, want.Cur, err)
		if want.Max > cur.Max && cur.Cur < cur.Max {
			// No CAP_SYS_RESOURCE: still take what the hard limit allows.
			unix.Setrlimit(unix.RLIMIT_MEMLOCK, &unix.Rlimit{Cur: cur.Max, Max: cur.Max})
		}
		return err
	}
	return nil
}
