//go:build linux

package chaos

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestPageOutLag measures what one page-out round does to a real-time
// pacer on the other CPU, the way the load generator's sender is one: a
// SCHED_RR thread that sleeps to each 1 ms tick (clock_nanosleep,
// absolute) and records how late it woke, beside a one-thread CPU hog (the
// bidder rules' other neighbour), while a child process re-touches a 1 GiB
// file mapping at random (the bidder's index) and the pager evicts it every
// second, in 10 s phases alternating with control phases that do
// everything but the process_madvise call. It is a measurement, not a check,
// and runs only with TAILGATE_PAGEOUT_LAG=1 (and root):
//
//	TAILGATE_PAGEOUT_LAG=1 go test ./bidder/chaos -run PageOutLag -v -timeout 20m
func TestPageOutLag(t *testing.T) {
	if os.Getenv("TAILGATE_PAGEOUT_LAG") != "1" {
		t.Skip("long measurement: set TAILGATE_PAGEOUT_LAG=1 to run")
	}
	requireRoot(t)
	dir, err := os.MkdirTemp("/var/tmp", "pageout-lag-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "index.bin")
	const size = 1 << 30
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i * 31)
	}
	for off := 0; off < size; off += len(buf) {
		if _, err := f.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	f.Close()

	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), childEnv+"=retouch:"+path)
	child.Stderr = os.Stderr
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { child.Process.Kill(); child.Wait() }()
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "mapped\n" {
		t.Fatalf("child: %q, %v", line, err)
	}

	var stop atomic.Bool
	defer stop.Store(true)
	go func() { // the CPU hog, default priority
		runtime.LockOSThread()
		x := uint64(1)
		for !stop.Load() {
			for i := 0; i < 1e5; i++ {
				x = x*6364136223846793005 + 1442695040888963407
			}
		}
		_ = x
	}()

	// The pacer: one SCHED_RR thread; lag[phase] collects its lateness.
	type sample struct {
		phase int32
		late  time.Duration
	}
	var phase atomic.Int32
	samples := make(chan sample, 1<<16)
	pacerDone := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		attr := unix.SchedAttr{Policy: unix.SCHED_RR, Priority: 1}
		attr.Size = uint32(unsafe.Sizeof(attr))
		if err := unix.SchedSetAttr(0, &attr, 0); err != nil {
			pacerDone <- fmt.Errorf("sched_setattr: %w", err)
			return
		}
		var ts unix.Timespec
		unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
		next := ts.Nano()
		for !stop.Load() {
			next += int64(time.Millisecond)
			want := unix.NsecToTimespec(next)
			for unix.ClockNanosleep(unix.CLOCK_MONOTONIC, unix.TIMER_ABSTIME, &want, nil) == unix.EINTR {
			}
			unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
			select {
			case samples <- sample{phase.Load(), time.Duration(ts.Nano() - next)}:
			default:
			}
		}
		pacerDone <- nil
	}()

	p, err := OpenPager(child.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	settings := []bool{false, true} // page out?
	const phaseDur, rounds = 10 * time.Second, 3
	type result struct {
		lag      []time.Duration
		advise   []time.Duration
		evicted  int64
		seconds  float64
		roundsOK int
	}
	res := make([]result, len(settings))
	collect := func() {
		for {
			select {
			case s := <-samples:
				if s.phase >= 0 {
					res[s.phase].lag = append(res[s.phase].lag, s.late)
				}
			default:
				return
			}
		}
	}
	phase.Store(-1)
	for r := 0; r < rounds; r++ {
		for i, pageout := range settings {
			collect()
			phase.Store(int32(i))
			start := time.Now()
			for time.Since(start) < phaseDur {
				tick := time.Now()
				maps, err := p.Mappings()
				if err != nil {
					t.Fatal(err)
				}
				sel := Select(maps, filepath.Base(path))
				var before int64
				for _, m := range sel {
					before += m.RssBytes
				}
				t0 := time.Now()
				if !pageout {
					before = 0
				} else if _, _, err := p.Advise(sel); err != nil {
					t.Fatal(err)
				}
				res[i].advise = append(res[i].advise, time.Since(t0))
				res[i].evicted += before
				res[i].roundsOK++
				time.Sleep(time.Second - time.Since(tick))
				collect()
			}
			phase.Store(-1)
			res[i].seconds += phaseDur.Seconds()
		}
	}
	stop.Store(true)
	if err := <-pacerDone; err != nil {
		t.Fatal(err)
	}
	collect()
	t.Logf("pacer lateness (SCHED_RR, 1 ms ticks) beside a CPU hog and a 1 GiB mapping re-touched at random, paged out every 1 s; %d × %v per setting:", rounds, phaseDur)
	for i, pageout := range settings {
		r := res[i]
		slices.Sort(r.lag)
		slices.Sort(r.advise)
		q := func(v []time.Duration, f float64) time.Duration {
			if len(v) == 0 {
				return 0
			}
			return v[min(len(v)-1, int(f*float64(len(v))))]
		}
		late := 0
		for _, l := range r.lag {
			if l > time.Millisecond {
				late++
			}
		}
		name := "no page-out"
		if pageout {
			name = "page-out"
		}
		t.Logf("  %-14s ticks %6d: lateness p50 %7v p99.9 %8v max %8v, > 1 ms %4d; advise per round p50 %8v max %8v, evicted %.0f MiB/round",
			name, len(r.lag), q(r.lag, 0.5), q(r.lag, 0.999), q(r.lag, 1), late, q(r.advise, 0.5), q(r.advise, 1),
			float64(r.evicted)/float64(max(r.roundsOK, 1))/(1<<20))
	}
}

// retouchChild maps path, touches every page, says "mapped" and then reads
// random pages until killed, as the bidder reads its index.
func retouchChild(path string) int {
	data, err := mapShared(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	touch(data)
	fmt.Println("mapped")
	pages := len(data) / os.Getpagesize()
	rng := rand.New(rand.NewPCG(1, 2))
	var sum byte
	for {
		for i := 0; i < 64; i++ {
			sum += data[rng.IntN(pages)*os.Getpagesize()]
		}
		time.Sleep(time.Millisecond)
		if sum == 1 && pages < 0 {
			return 2
		}
	}
}
