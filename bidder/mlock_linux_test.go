//go:build linux

package bidder

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestMlockFixBlocksPageout asserts the mlock fix's mechanism: once the hot
// range is locked, MADV_PAGEOUT on it fails with EINVAL (the kernel will not
// reclaim locked pages) and VmLck is positive. Needs root (CI is root): an
// unprivileged process can lock only RLIMIT_MEMLOCK bytes.
func TestMlockFixBlocksPageout(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: locking the 16 MiB test index exceeds the default RLIMIT_MEMLOCK")
	}
	before := LockedBytes()
	b := newTestBidder(t, Fixes{Mlock: true})
	hot := b.Index().HotRange()
	if !b.Index().Locked() {
		t.Fatal("index not locked")
	}
	if got := LockedBytes() - before; got < int64(len(hot))-PageSize {
		t.Fatalf("VmLck grew by %d bytes, want about %d", got, len(hot))
	}
	err := unix.Madvise(hot, unix.MADV_PAGEOUT)
	if !errors.Is(err, unix.EINVAL) {
		t.Fatalf("MADV_PAGEOUT on the locked range: %v, want EINVAL", err)
	}
}

// TestPageoutCausesMajorFaults asserts the baseline contributor: after
// MADV_PAGEOUT of the (unlocked, MADV_RANDOM) mapping, re-reading it takes
// major faults.
func TestPageoutCausesMajorFaults(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pf.idx")
	if err := BuildIndex(path, IndexOptions{Size: 2 << 20, Campaigns: 10}); err != nil {
		t.Fatal(err)
	}
	ix, err := OpenIndex(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	ix.Touch()
	if err := unix.Madvise(ix.HotRange(), unix.MADV_PAGEOUT); err != nil {
		if errors.Is(err, unix.EINVAL) {
			t.Skipf("MADV_PAGEOUT not supported by this kernel: %v", err)
		}
		t.Fatal(err)
	}
	var ru0, ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	ix.Touch()
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	pages := len(ix.HotRange()) / PageSize
	t.Logf("%d major faults re-reading %d paged-out pages", ru1.Majflt-ru0.Majflt, pages)
	if ru1.Majflt-ru0.Majflt == 0 {
		t.Fatal("no major faults after MADV_PAGEOUT")
	}
}

// TestMlockLimitError checks the message when RLIMIT_MEMLOCK is too small:
// it must name the limit and the size needed.
func TestMlockLimitError(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root bypasses RLIMIT_MEMLOCK (CAP_IPC_LOCK); the error path needs an unprivileged user")
	}
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &rl); err != nil {
		t.Skip(err)
	}
	if rl.Cur == unix.RLIM_INFINITY || rl.Cur >= testIndexSize {
		t.Skipf("RLIMIT_MEMLOCK %d is large enough to lock the test index", rl.Cur)
	}
	_, err := New(Config{IndexPath: sharedIndex(t), Users: 100, Fixes: Fixes{Mlock: true}})
	var le *MemlockLimitError
	if !errors.As(err, &le) || le.Soft != rl.Cur {
		t.Fatalf("err = %v, want MemlockLimitError naming soft limit %d", err, rl.Cur)
	}
}
