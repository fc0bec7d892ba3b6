//go:build linux

package load

import (
	"sync"

	"golang.org/x/sys/unix"
)

// FDTableSize is how many file descriptors the load generator's fd table
// is grown to before its first round (growFDTable).
const FDTableSize = 1 << 16

var fdTableOnce sync.Once

// growFDTable grows this process's file-descriptor table to FDTableSize
// slots (or RLIMIT_NOFILE, if lower) once, before any round: it dups a
// descriptor into the highest slot and closes it again. The kernel never
// shrinks the table, so no later socket(2) has to grow it. Growing it
// stalls the load generator: when a burst of slow responses makes vegeta
// open connections past the table's size (64, 128, 256, ...),
// expand_files waits for an RCU grace period (synchronize_rcu) while every
// other thread opening a descriptor waits for it, and Go issues socket(2)
// as a raw syscall that keeps its P — with both Ps of a 2-core host stuck
// there, the pacer cannot run. An off-CPU trace of `tailgate run` against
// the bidder caught two of its threads 6.4 and 7.4 ms in socket → alloc_fd
// → expand_files (→ synchronize_rcu) under a 2.1 ms late send
// (internal/experiment/RESULTS.md). It is not the main source of late
// sends on the reference VM (late timer wake-ups are), and 8 A/B runs
// showed no change in how many rounds were valid; it removes one
// mechanism at the cost of a 512 KiB table. It returns the table size
// reached (0 when it could not, or on a second call).
func growFDTable() int {
	size := 0
	fdTableOnce.Do(func() {
		var lim unix.Rlimit
		if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
			return
		}
		n := uint64(FDTableSize)
		if lim.Cur < n {
			n = lim.Cur
		}
		if n < 2 {
			return
		}
		fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return
		}
		defer unix.Close(fd)
		// F_DUPFD takes the lowest free slot at or above the one asked
		// for, so it never replaces a descriptor in use (dup2 would).
		got, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, int(n-1))
		if err != nil {
			return
		}
		unix.Close(got)
		size = got + 1
	})
	return size
}
