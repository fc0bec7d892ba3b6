//go:build linux

package chaos

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const testPages = 2048 // 8 MiB

// mapTestFile writes a file of testPages pages on disk (not tmpfs: shmem
// pages without swap cannot be paged out) and maps it like the bidder maps
// its index: shared, read-only, MADV_RANDOM.
func mapTestFile(t *testing.T) (string, []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "index-under-test.bin")
	writeTestFile(t, path, true)
	return path, mapFile(t, path)
}

// writeTestFile writes testPages pages; without sync they stay dirty in the
// page cache, like a freshly built index.
func writeTestFile(t *testing.T, path string, sync bool) {
	t.Helper()
	page := bytes.Repeat([]byte{0xa5}, os.Getpagesize())
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < testPages; i++ {
		page[0] = byte(i)
		if _, err := f.Write(page); err != nil {
			t.Fatal(err)
		}
	}
	if sync {
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func mapFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := mapShared(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(data) })
	return data
}

// mapShared maps path the way the bidder maps its index: shared, read-only,
// MADV_RANDOM (no read-ahead, so each evicted page is its own major fault).
func mapShared(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	data, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, err
	}
	if err := unix.Madvise(data, unix.MADV_RANDOM); err != nil {
		unix.Munmap(data)
		return nil, err
	}
	return data, nil
}

func touch(data []byte) (sum byte) {
	for off := 0; off < len(data); off += os.Getpagesize() {
		sum += data[off]
	}
	return sum
}

func residentPages(t *testing.T, data []byte) int {
	t.Helper()
	vec := make([]byte, (len(data)+os.Getpagesize()-1)/os.Getpagesize())
	_, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&data[0])), uintptr(len(data)), uintptr(unsafe.Pointer(&vec[0])))
	if errno != 0 {
		t.Fatalf("mincore: %v", errno)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}

// majorFaults reads majflt, field 12 of /proc/self/stat.
func majorFaults(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Fatal(err)
	}
	// comm (field 2) may contain spaces; fields after it start after ')'.
	rest := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	n, err := strconv.ParseInt(rest[12-3], 10, 64)
	if err != nil {
		t.Fatalf("/proc/self/stat majflt: %v", err)
	}
	return n
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("process_madvise(MADV_PAGEOUT) needs root (CAP_SYS_NICE); CI runs as root")
	}
}

// TestPageOutEvictsAndRetouchMajorFaults is the mechanism of the page-fault
// contributor end to end: resident pages, a pageout round through a pidfd,
// fewer resident pages, and a re-touch that costs major faults.
func TestPageOutEvictsAndRetouchMajorFaults(t *testing.T) {
	requireRoot(t)
	path, data := mapTestFile(t)
	touch(data)
	before := residentPages(t, data)
	if before < testPages*9/10 {
		t.Fatalf("only %d of %d pages resident after touching them all", before, testPages)
	}

	p, err := OpenPager(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	r, err := p.PageOnce(filepath.Base(path))
	if err != nil {
		t.Fatal(err)
	}
	if r.Mappings != 1 || r.Err != nil {
		t.Fatalf("round = %+v, want 1 mapping and no error", r)
	}
	if r.Advised != int64(len(data)) {
		t.Errorf("advised %d bytes, want the whole mapping (%d)", r.Advised, len(data))
	}
	after := residentPages(t, data)
	if after >= before/2 {
		t.Fatalf("resident pages %d -> %d: MADV_PAGEOUT evicted less than half", before, after)
	}
	if r.Evicted() < int64(before-after)*int64(os.Getpagesize())/2 {
		t.Errorf("round reports %d bytes evicted; mincore saw %d pages go", r.Evicted(), before-after)
	}

	maj0 := majorFaults(t)
	touch(data)
	maj1 := majorFaults(t)
	if got, want := maj1-maj0, int64(before-after)/2; got < want {
		t.Fatalf("re-touching %d evicted pages cost %d major faults, want >= %d", before-after, got, want)
	}
	t.Logf("resident %d -> %d pages; re-touch: %d major faults", before, after, maj1-maj0)
}

// TestPageOutLockedRange checks the signal the bidder's mlock fix relies on:
// MADV_PAGEOUT of a locked range is refused with EINVAL (ErrLocked) and
// evicts nothing.
func TestPageOutLockedRange(t *testing.T) {
	requireRoot(t)
	path, data := mapTestFile(t)
	if err := unix.Mlock(data); err != nil {
		t.Fatalf("mlock: %v", err)
	}
	defer unix.Munlock(data)
	p, err := OpenPager(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	r, err := p.PageOnce(filepath.Base(path))
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(r.Err, ErrLocked) {
		t.Fatalf("round error = %v, want ErrLocked", r.Err)
	}
	if got := residentPages(t, data); got != testPages {
		t.Fatalf("%d of %d locked pages resident after a refused pageout", got, testPages)
	}
}

// TestRunPageOutStopsWhenTargetExits needs no privileges: nothing matches
// the path filter, so every round is empty until the target exits.
func TestRunPageOutStopsWhenTargetExits(t *testing.T) {
	child := exec.Command("sleep", "60")
	if err := child.Start(); err != nil {
		t.Skipf("cannot start a child process: %v", err)
	}
	var log syncBuffer
	done := make(chan PageOutStats)
	errc := make(chan error, 1)
	go func() {
		st, err := RunPageOut(context.Background(), PageOutConfig{PID: child.Process.Pid, Every: 5 * time.Millisecond, PathSubstr: "no-such-mapping", Log: &log})
		errc <- err
		done <- st
	}()
	// Kill only once the pager holds its pidfd: reaping first would make
	// pidfd_open fail instead of testing the exit path.
	for !strings.Contains(log.String(), "round 1") {
		runtimeGosched()
	}
	child.Process.Kill()
	child.Wait()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	st := <-done
	if !st.TargetExited {
		t.Fatalf("RunPageOut returned %+v without noticing the exit; log:\n%s", st, log.String())
	}
}

func TestRunPageOutStopsOnContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var log syncBuffer
	errc := make(chan error, 1)
	go func() {
		_, err := RunPageOut(ctx, PageOutConfig{PID: os.Getpid(), Every: time.Millisecond, PathSubstr: "no-such-file-mapped", Log: &log})
		errc <- err
	}()
	// Cancel once the loop is demonstrably running.
	for !strings.Contains(log.String(), "round 2") {
		select {
		case err := <-errc:
			t.Fatalf("RunPageOut ended early: %v\n%s", err, log.String())
		default:
			runtimeGosched()
		}
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "stopped") {
		t.Fatalf("no stop line in log:\n%s", log.String())
	}
}

func TestOpenPagerErrors(t *testing.T) {
	if _, err := OpenPager(0); err == nil || !strings.Contains(err.Error(), "must be positive") {
		t.Fatalf("OpenPager(0) = %v", err)
	}
	// PIDs above pid_max never exist.
	if _, err := OpenPager(1 << 30); err == nil || !strings.Contains(err.Error(), "no such process") {
		t.Fatalf("OpenPager(1<<30) = %v", err)
	}
}

// TestPageOutDirtyFile: a freshly written (dirty) file is written back
// before the advice, so its pages really leave the page cache and the
// re-touch is major faults, not minor ones.
func TestPageOutDirtyFile(t *testing.T) {
	requireRoot(t)
	path := filepath.Join(t.TempDir(), "fresh-index.bin")
	writeTestFile(t, path, false)
	data := mapFile(t, path)
	touch(data)
	p, err := OpenPager(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	r, err := p.PageOnce(filepath.Base(path))
	if err != nil || r.SyncErr != nil {
		t.Fatalf("PageOnce: %v, sync: %v", err, r.SyncErr)
	}
	maj0 := majorFaults(t)
	touch(data)
	if got := majorFaults(t) - maj0; got < testPages/2 {
		t.Fatalf("re-touching a paged-out fresh file cost %d major faults, want >= %d (dirty pages stayed cached?)", got, testPages/2)
	}
}

// TestRunPageOutFollowsChildren: with Children, pageout reaches a
// descendant's mapping, as it must for per-node bidders under the launcher.
func TestRunPageOutFollowsChildren(t *testing.T) {
	requireRoot(t)
	path := filepath.Join(t.TempDir(), "child-index.bin")
	writeTestFile(t, path, true)
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), childEnv+"=map:"+path)
	stdin, err := child.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); child.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "mapped\n" {
		t.Fatalf("child: %q, %v", line, err)
	}
	if d := Descendants(os.Getpid()); !slices.Contains(d, child.Process.Pid) {
		t.Fatalf("Descendants(self) = %v, lacks child %d", d, child.Process.Pid)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var log syncBuffer
	errc := make(chan error, 1)
	go func() {
		_, err := RunPageOut(ctx, PageOutConfig{PID: os.Getpid(), Children: true, Every: time.Hour, PathSubstr: filepath.Base(path), Log: &log})
		errc <- err
	}()
	for !strings.Contains(log.String(), "round 1") {
		runtimeGosched()
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("following descendant pid %d", child.Process.Pid)
	if !strings.Contains(log.String(), want) || !strings.Contains(log.String(), "evicted 8.0 MiB") {
		t.Fatalf("log lacks %q and an 8 MiB eviction:\n%s", want, log.String())
	}
}

// mapperChild maps path, touches every page, says "mapped" and holds the
// mapping until its stdin closes.
func mapperChild(path string) int {
	data, err := mapShared(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	touch(data)
	fmt.Println("mapped")
	io.Copy(io.Discard, os.Stdin)
	return 0
}

// TestPageOutPartlyLockedRange: mlock of part of the mapping (as the
// bidder's mlock fix locks the hot index range) splits the VMA; pageout
// skips the locked part and still evicts the rest, whichever comes first.
func TestPageOutPartlyLockedRange(t *testing.T) {
	requireRoot(t)
	for _, lockFirst := range []bool{true, false} {
		t.Run(fmt.Sprintf("lockFirst=%v", lockFirst), func(t *testing.T) {
			path, data := mapTestFile(t)
			half := len(data) / 2
			hot, cold := data[:half], data[half:]
			if !lockFirst {
				hot, cold = cold, hot
			}
			if err := unix.Mlock(hot); err != nil {
				t.Fatalf("mlock: %v", err)
			}
			defer unix.Munlock(hot)
			touch(data)
			p, err := OpenPager(os.Getpid())
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			r, err := p.PageOnce(filepath.Base(path))
			if err != nil || r.Err != nil {
				t.Fatalf("PageOnce: %v, round error %v", err, r.Err)
			}
			if r.Mappings != 2 || r.Locked != int64(len(hot)) || r.Advised != int64(len(cold)) {
				t.Fatalf("round %+v: want 2 mappings, %d bytes locked and %d advised", r, len(hot), len(cold))
			}
			if got := residentPages(t, hot); got != testPages/2 {
				t.Errorf("locked half: %d of %d pages resident", got, testPages/2)
			}
			if got := residentPages(t, cold); got >= testPages/4 {
				t.Errorf("cold half: %d of %d pages still resident", got, testPages/2)
			}
		})
	}
}
