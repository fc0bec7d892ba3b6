//go:build linux

package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Pager evicts pages of another process's mappings with
// process_madvise(MADV_PAGEOUT) through a pidfd, so a recycled PID can never
// redirect it to an unrelated process.
type Pager struct {
	pid   int
	pidfd int
}

// OpenPager opens a pidfd for pid.
func OpenPager(pid int) (*Pager, error) {
	if pid <= 0 {
		return nil, fmt.Errorf("pageout: pid %d: must be positive", pid)
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return nil, fmt.Errorf("pageout: pidfd_open(%d): no such process", pid)
		}
		return nil, fmt.Errorf("pageout: pidfd_open(%d): %w", pid, err)
	}
	return &Pager{pid: pid, pidfd: fd}, nil
}

// Close releases the pidfd.
func (p *Pager) Close() error { return unix.Close(p.pidfd) }

// Exited reports whether the target has exited (its pidfd is readable).
func (p *Pager) Exited() bool {
	fds := []unix.PollFd{{Fd: int32(p.pidfd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, 0)
	return err == nil && n > 0
}

// Mappings reads the target's /proc/PID/smaps.
func (p *Pager) Mappings() ([]Mapping, error) {
	name := "/proc/" + strconv.Itoa(p.pid) + "/smaps"
	f, err := os.Open(name)
	if errors.Is(err, os.ErrPermission) {
		return nil, fmt.Errorf("pageout: %w: reading another process's mappings needs root (or ptrace access to it)", err)
	}
	if err != nil {
		return nil, fmt.Errorf("pageout: %w", err)
	}
	defer f.Close()
	return ParseMaps(name, f)
}

// maxIov is UIO_MAXIOV, the most iovecs one process_madvise call takes.
const maxIov = 1024

// iovec is the kernel's struct iovec. The addresses belong to the target,
// not to this process, so they are plain integers: the kernel only reads
// them, and a Go pointer type would be a lie to the garbage collector.
type iovec struct{ base, len uintptr }

// Advise calls process_madvise(MADV_PAGEOUT) on the mappings and returns
// the bytes the kernel advised and the bytes it refused because they are
// mlocked. The kernel advises resident and non-resident pages alike, so
// advised is the range covered, not the bytes evicted; compare Rss before
// and after for that. Each mapping is one VMA, so a locked one (the
// bidder's mlock fix locks the hot range of its index) is skipped and the
// rest still paged out; if nothing could be advised because everything is
// locked, the error is ErrLocked.
func (p *Pager) Advise(ms []Mapping) (advised, locked int64, err error) {
	iov := make([]iovec, 0, min(len(ms), maxIov))
	flush := func() error {
		for len(iov) > 0 {
			n, _, errno := unix.Syscall6(unix.SYS_PROCESS_MADVISE, uintptr(p.pidfd),
				uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)), unix.MADV_PAGEOUT, 0, 0)
			if errno == unix.EINVAL {
				// The kernel reports no partial count with an error: the
				// first iovec is the locked one (or the call made no
				// progress at all, which EINVAL on iov[0] also means).
				locked += int64(iov[0].len)
				iov = iov[1:]
				continue
			}
			if errno != 0 {
				return adviseError(p.pid, errno)
			}
			advised += int64(n)
			// A short count means the kernel stopped early: resume after it.
			rest := n
			for len(iov) > 0 && rest >= iov[0].len {
				rest -= iov[0].len
				iov = iov[1:]
			}
			if len(iov) > 0 {
				if n == 0 {
					return fmt.Errorf("pageout: process_madvise(pid %d): no progress", p.pid)
				}
				iov[0].base += rest
				iov[0].len -= rest
			}
		}
		return nil
	}
	for _, m := range ms {
		if m.Len() == 0 {
			continue
		}
		iov = append(iov, iovec{base: uintptr(m.Start), len: uintptr(m.Len())})
		if len(iov) == maxIov {
			if err := flush(); err != nil {
				return advised, locked, err
			}
		}
	}
	if err := flush(); err != nil {
		return advised, locked, err
	}
	if advised == 0 && locked > 0 {
		return 0, locked, fmt.Errorf("pageout: process_madvise(pid %d): %w: %w", p.pid, unix.EINVAL, ErrLocked)
	}
	return advised, locked, nil
}

func adviseError(pid int, errno unix.Errno) error {
	switch errno {
	case unix.EPERM:
		return fmt.Errorf("pageout: process_madvise(pid %d): %w: needs root (CAP_SYS_NICE and ptrace access to the target)", pid, errno)
	case unix.ESRCH:
		return fmt.Errorf("pageout: process_madvise(pid %d): %w: %w", pid, errno, ErrTargetExited)
	case unix.ENOSYS:
		return fmt.Errorf("pageout: process_madvise: %w: %w (kernel older than 5.10?)", errno, ErrNotSupported)
	}
	return fmt.Errorf("pageout: process_madvise(pid %d): %w", pid, errno)
}

// Round is the outcome of one pageout round.
type Round struct {
	Mappings       int
	Advised        int64 // bytes covered by the advice
	Locked         int64 // bytes refused because they are mlocked
	ResidentBefore int64 // bytes resident in the selected mappings before
	ResidentAfter  int64 // and after
	Err            error // ErrLocked when the range is mlocked
	SyncErr        error // the mapped files could not be written back first
}

// Evicted is the resident bytes the round removed.
func (r Round) Evicted() int64 { return max(0, r.ResidentBefore-r.ResidentAfter) }

// syncFiles writes back dirty pages of the mapped files. MADV_PAGEOUT
// cannot write dirty file pages from madvise context: it unmaps them but they
// stay in the page cache, so the next touch is a minor fault. A freshly
// built index is dirty for the first ~30 s (until writeback), so without this
// the injector would look like it works while causing no major fault.
func (p *Pager) syncFiles(ms []Mapping) error {
	done := map[string]bool{}
	var first error
	for _, m := range ms {
		if done[m.Path] {
			continue
		}
		done[m.Path] = true
		// map_files names the mapped file itself, even if the path was
		// replaced or lives in another mount namespace; it needs root.
		f, err := os.Open(fmt.Sprintf("/proc/%d/map_files/%x-%x", p.pid, m.Start, m.End))
		if err != nil {
			f, err = os.Open(m.Path)
		}
		if err == nil {
			err = unix.Fdatasync(int(f.Fd()))
			f.Close()
		}
		if err != nil && first == nil {
			first = fmt.Errorf("pageout: sync %s: %w (dirty pages of it stay cached)", m.Path, err)
		}
	}
	return first
}

// PageOnce runs one round: read the target's smaps, select the mappings,
// write back their dirty pages, advise them out, read smaps again.
func (p *Pager) PageOnce(pathSubstr string) (Round, error) {
	maps, err := p.Mappings()
	if err != nil {
		return Round{}, err
	}
	sel := Select(maps, pathSubstr)
	r := Round{Mappings: len(sel)}
	if len(sel) == 0 {
		return r, nil
	}
	for _, m := range sel {
		r.ResidentBefore += max(m.RssBytes, 0)
	}
	r.SyncErr = p.syncFiles(sel)
	r.Advised, r.Locked, r.Err = p.Advise(sel)
	if r.Err != nil && !errors.Is(r.Err, ErrLocked) {
		return r, r.Err
	}
	after, err := p.Mappings()
	if err != nil {
		return r, err
	}
	for _, m := range Select(after, pathSubstr) {
		r.ResidentAfter += max(m.RssBytes, 0)
	}
	return r, nil
}

// RunPageOut pages out the index mapping of cfg.PID, and with cfg.Children
// of its descendants, every cfg.Every until ctx ends or cfg.PID exits (both
// return nil with the totals).
func RunPageOut(ctx context.Context, cfg PageOutConfig) (PageOutStats, error) {
	var st PageOutStats
	if err := cfg.validate(); err != nil {
		return st, err
	}
	root, err := OpenPager(cfg.PID)
	if err != nil {
		return st, err
	}
	pagers := map[int]*Pager{cfg.PID: root}
	defer func() {
		for _, p := range pagers {
			p.Close()
		}
	}()
	logf := cfg.logf()
	what := "the largest shared file mapping"
	if cfg.PathSubstr != "" {
		what = fmt.Sprintf("file mappings containing %q", cfg.PathSubstr)
	}
	if cfg.Children {
		what += ", in it and its descendants"
	}
	logf("pageout: pid %d, every %v, target %s", cfg.PID, cfg.Every, what)

	// The pidfd becomes readable when the target exits; watch it so an idle
	// wait of a long --every still ends promptly.
	exited := make(chan struct{})
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go func() {
		fds := []unix.PollFd{{Fd: int32(root.pidfd), Events: unix.POLLIN}}
		for watchCtx.Err() == nil {
			n, err := unix.Poll(fds, 200)
			if err == nil && n > 0 {
				close(exited)
				return
			}
		}
	}()
	targetExited := func() (PageOutStats, error) {
		st.TargetExited = true
		logf("pageout: target %d exited; %s", cfg.PID, st)
		return st, nil
	}

	t := time.NewTicker(cfg.Every)
	defer t.Stop()
	for {
		if root.Exited() {
			return targetExited()
		}
		if cfg.Children {
			refreshDescendants(pagers, cfg.PID, logf)
		}
		st.Rounds++
		var sum Round
		var syncErr error
		for _, pid := range sortedPIDs(pagers) {
			p := pagers[pid]
			r, err := p.PageOnce(cfg.PathSubstr)
			if err != nil && (errors.Is(err, ErrTargetExited) || p.Exited()) {
				if pid == cfg.PID {
					return targetExited()
				}
				p.Close()
				delete(pagers, pid)
				continue
			}
			if err != nil {
				return st, err
			}
			if r.Err != nil {
				sum.Err = r.Err
			}
			if r.SyncErr != nil {
				syncErr = r.SyncErr
			}
			sum.Mappings += r.Mappings
			sum.ResidentBefore += r.ResidentBefore
			sum.ResidentAfter += r.ResidentAfter
			sum.Locked += r.Locked
			if r.Err == nil {
				sum.Advised += r.Advised
			}
		}
		if syncErr != nil && !st.syncWarned {
			st.syncWarned = true
			logf("%v", syncErr)
		}
		procs := ""
		if len(pagers) > 1 {
			procs = fmt.Sprintf(" in %d processes", len(pagers))
		}
		switch {
		case sum.Mappings == 0:
			st.Empty++
			logf("pageout: round %d: no matching mapping in pid %d yet", st.Rounds, cfg.PID)
		case sum.Err != nil:
			st.Locked++
			logf("pageout: round %d: %d mapping(s)%s, %s resident: %v", st.Rounds, sum.Mappings, procs, human(sum.ResidentBefore), sum.Err)
		default:
			st.Advised += sum.Advised
			st.Evicted += sum.Evicted()
			lockedNote := ""
			if sum.Locked > 0 {
				st.PartlyLocked++
				lockedNote = ", skipped " + human(sum.Locked) + " locked"
			}
			logf("pageout: round %d: %d mapping(s)%s, advised %s%s, resident %s -> %s, evicted %s",
				st.Rounds, sum.Mappings, procs, human(sum.Advised), lockedNote, human(sum.ResidentBefore), human(sum.ResidentAfter), human(sum.Evicted()))
		}
		select {
		case <-ctx.Done():
			logf("pageout: stopped; %s", st)
			return st, nil
		case <-exited:
			return targetExited()
		case <-t.C:
		}
	}
}

// refreshDescendants opens pagers for new descendants of root (per-node
// bidders under `bidder launch`) and drops those that exited.
func refreshDescendants(pagers map[int]*Pager, root int, logf func(string, ...any)) {
	live := map[int]bool{root: true}
	for _, pid := range Descendants(root) {
		live[pid] = true
		if _, ok := pagers[pid]; ok {
			continue
		}
		if p, err := OpenPager(pid); err == nil {
			pagers[pid] = p
			logf("pageout: following descendant pid %d", pid)
		}
	}
	for pid, p := range pagers {
		if !live[pid] {
			p.Close()
			delete(pagers, pid)
		}
	}
}

// Descendants lists the live descendants of pid from
// /proc/PID/task/TID/children (empty if the kernel lacks that file).
func Descendants(pid int) []int {
	var out []int
	queue := []int{pid}
	seen := map[int]bool{pid: true}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", p))
		for _, f := range tasks {
			b, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			for _, w := range strings.Fields(string(b)) {
				c, err := strconv.Atoi(w)
				if err != nil || seen[c] {
					continue
				}
				seen[c] = true
				out = append(out, c)
				queue = append(queue, c)
			}
		}
	}
	sort.Ints(out)
	return out
}

func sortedPIDs(m map[int]*Pager) []int {
	out := make([]int, 0, len(m))
	for pid := range m {
		out = append(out, pid)
	}
	sort.Ints(out)
	return out
}
