//go:build linux && amd64

package tail

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/tailgate-ci/tailgate/bidder/reqgen"
	"github.com/tailgate-ci/tailgate/bpf/gort"
	"github.com/tailgate-ci/tailgate/internal/latency"
	"github.com/tailgate-ci/tailgate/internal/load"
)

// TestLiveLong runs the baseline bidder under load with every Go-runtime
// uprobe attached for 60 s (it must not crash, and no event may be lost),
// then measures the probes' overhead: ABBA-ordered rounds with the probes
// off and on, attached to and detached from the running process, with the
// p50 and p99 of each arm logged. It takes about two and a half minutes,
// so it runs only with TAILGATE_LONG=1. The figures are only as good as
// the host is quiet: on a shared machine say so when quoting them.
func TestLiveLong(t *testing.T) {
	needRoot(t)
	if os.Getenv("TAILGATE_LONG") == "" {
		t.Skip("set TAILGATE_LONG=1 for the 60 s no-crash run and the overhead rounds (~150 s)")
	}
	cmd, url := startBidder(t, "none")
	pid := cmd.Process.Pid
	targeter, err := load.ReqgenTargeter(url+"/openrtb2/bid", 1, reqgen.Options{Users: liveUsers})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// attach starts the probes and drains their events; detach stops them.
	attach := func() (detach func() (gort.Stats, uint64)) {
		gs, err := gort.Start(ctx, gort.Options{PID: pid})
		if err != nil {
			t.Fatal(err)
		}
		var n uint64
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range gs.Events() {
				n++
			}
		}()
		return func() (gort.Stats, uint64) {
			st, err := gs.Stop()
			if err != nil {
				t.Errorf("stop probes: %v", err)
			}
			wg.Wait()
			return st, n
		}
	}
	alive := func() bool { return cmd.Process.Signal(syscall.Signal(0)) == nil }

	detach := attach()
	res, err := load.Run(ctx, load.Config{Rate: liveRate, Duration: 60 * time.Second, Warmup: time.Second,
		Timeout: 5 * time.Second, Targeter: targeter, Name: "tail-long"})
	if err != nil {
		t.Fatal(err)
	}
	st, n := detach()
	t.Logf("60 s under load with probes: %d requests, %d errors, %d events %v, lost %d, p50 %v p99 %v",
		res.Requests, res.Errors, n, st.Events, st.TotalLost(), latency.Quantile(res.Hist, 0.5), latency.Quantile(res.Hist, 0.99))
	if !alive() {
		t.Fatal("the bidder died under the probes")
	}
	if res.Errors != 0 {
		t.Errorf("%d request errors under the probes", res.Errors)
	}
	if st.TotalLost() != 0 {
		t.Errorf("lost events: %+v", st)
	}

	arms := map[bool]*hdrhistogram.Histogram{false: latency.New(), true: latency.New()}
	cpu := map[bool]time.Duration{}
	reqs := map[bool]int64{}
	for i, on := range []bool{false, true, true, false, false, true, true, false} {
		var detach func() (gort.Stats, uint64)
		if on {
			detach = attach()
		}
		c0 := procCPU(t, pid)
		res, err := load.Run(ctx, load.Config{Rate: liveRate, Duration: 8 * time.Second, Warmup: time.Second,
			Timeout: 5 * time.Second, Targeter: targeter, Name: "tail-overhead"})
		if err != nil {
			t.Fatal(err)
		}
		cpu[on] += procCPU(t, pid) - c0
		reqs[on] += res.Requests * 9 / 8 // the warm-up second is served too
		if detach != nil {
			detach()
		}
		if err := latency.Merge(arms[on], res.Hist); err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d probes=%v: p50 %v p99 %v (valid=%v)", i, on, latency.Quantile(res.Hist, 0.5), latency.Quantile(res.Hist, 0.99), res.Validity.Valid)
	}
	if !alive() {
		t.Fatal("the bidder died while probes were attached and detached under load")
	}
	off, on := arms[false], arms[true]
	p50off, p50on := latency.Quantile(off, 0.5), latency.Quantile(on, 0.5)
	p99off, p99on := latency.Quantile(off, 0.99), latency.Quantile(on, 0.99)
	t.Logf("overhead at %d/s (ABBA, 4×8 s per arm, GOGC=%s): p50 off %v on %v (%+.1f%%); p99 off %v on %v (%+.1f%%)",
		liveRate, liveGOGC, p50off, p50on, 100*(float64(p50on)/float64(p50off)-1), p99off, p99on, 100*(float64(p99on)/float64(p99off)-1))
	offCPU, onCPU := cpu[false]/time.Duration(reqs[false]), cpu[true]/time.Duration(reqs[true])
	t.Logf("bidder CPU per request: off %v on %v (%+.1f%%)", offCPU, onCPU, 100*(float64(onCPU)/float64(offCPU)-1))
}

// procCPU returns the user+system CPU time of process pid
// (/proc/PID/stat, clock ticks of 10 ms).
func procCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("parse /proc/%d/stat: %v %v", pid, err1, err2)
	}
	return time.Duration(ut+st) * 10 * time.Millisecond
}
