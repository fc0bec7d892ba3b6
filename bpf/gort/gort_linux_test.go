//go:build linux && amd64

package gort

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/tailgate-ci/tailgate/internal/symbol"
)

// OldToolchain is the older Go release the probes are also tested against
// (the module proxy serves it through GOTOOLCHAIN).
const OldToolchain = "go1.22.12"

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("go runtime uprobes need root (or CAP_BPF+CAP_PERFMON); run as root, as CI does")
	}
}

// buildProg builds testdata/goprog with toolchain ("local" or a goX.Y.Z
// release); a toolchain that cannot be fetched skips the test.
func buildProg(t *testing.T, toolchain string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds Go programs; skipped in -short")
	}
	env := append(os.Environ(), "GOTOOLCHAIN="+toolchain, "GOWORK=off", "GOFLAGS=")
	if toolchain != "local" {
		cmd := exec.Command("go", "version")
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Skipf("toolchain %s unavailable: %v: %s", toolchain, err, strings.TrimSpace(string(out)))
		}
	}
	out := filepath.Join(t.TempDir(), "goprog")
	cmd := exec.Command("go", "build", "-o", out, ".")
	cmd.Dir = "testdata/goprog"
	cmd.Env = env
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("GOTOOLCHAIN=%s go build: %v\n%s", toolchain, err, b)
	}
	return out
}

// startProg runs the program and returns its process and base URL.
func startProg(t *testing.T, path string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(path)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("read listen address: %v", err)
	}
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	if !ok {
		t.Fatalf("unexpected first line %q", line)
	}
	return cmd, "http://" + addr
}

// collect drains the session's events in the background.
func collect(s *Session) func() []Event {
	var evs []Event
	done := make(chan struct{})
	go func() {
		defer close(done)
		for e := range s.Events() {
			evs = append(evs, e)
		}
	}()
	return func() []Event { <-done; return evs }
}

// TestLive attaches the probes to a real Go HTTP server built with the repo
// toolchain and with Go 1.22, drives contended requests and GCs, and checks
// the events against what the program itself reports: every request
// goroutine id the handler saw (X-Goid) has a Request window, contended
// Lock calls park with the sync.Mutex wait reason under the handler's
// stack, forced GCs give GC stop-the-world pauses and cycles, and the
// process survives.
func TestLive(t *testing.T) {
	needRoot(t)
	for _, tc := range []string{"local", OldToolchain} {
		t.Run(tc, func(t *testing.T) {
			bin := buildProg(t, tc)
			cmd, url := startProg(t, bin)
			pid := cmd.Process.Pid

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			s, err := Start(ctx, Options{PID: pid})
			if errors.Is(err, ErrNotSupported) {
				t.Skipf("not supported here: %v", err)
			}
			if err != nil {
				t.Fatal(err)
			}
			// The kernel's run-time statistics, for Stats.Programs.
			statsOn := false
			if c, err := ebpf.EnableStats(unix.BPF_STATS_RUN_TIME); err == nil {
				defer c.Close()
				statsOn = true
			}
			info := s.Info()
			t.Logf("%s, offsets from %s, reasons from %s, probes: %s", info.GoVersion, info.OffsetsSource, info.ReasonsSource, strings.Join(info.Probes, ", "))
			wait := collect(s)

			const workers, perWorker, gcs = 8, 40, 3
			var mu sync.Mutex
			seen := map[uint64]int{}
			var wg sync.WaitGroup
			errc := make(chan error, workers+1)
			for w := 0; w < workers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
					defer c.CloseIdleConnections()
					for i := 0; i < perWorker; i++ {
						resp, err := c.Get(url + "/work")
						if err != nil {
							errc <- err
							return
						}
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						g, err := strconv.ParseUint(resp.Header.Get("X-Goid"), 10, 64)
						if err != nil {
							errc <- fmt.Errorf("X-Goid %q: %v", resp.Header.Get("X-Goid"), err)
							return
						}
						mu.Lock()
						seen[g]++
						mu.Unlock()
					}
				}()
			}
			for i := 0; i < gcs; i++ {
				resp, err := http.Get(url + "/gc")
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			wg.Wait()
			close(errc)
			for err := range errc {
				t.Fatal(err)
			}

			// Symbolize while the process lives.
			res := symbol.NewResolver()
			if err := res.Prime(pid); err != nil {
				t.Logf("prime symbols: %v", err)
			}
			st, err := s.Stop()
			if err != nil {
				t.Fatal(err)
			}
			evs := wait()
			t.Logf("events %v lost %v mapfull %v", st.Events, st.Lost, st.MapFull)
			if statsOn && (st.Programs["execute_entry"].Runs == 0 || st.Programs["gopark_entry"].Runs == 0) {
				t.Errorf("no program statistics for the probes: %+v", st.Programs)
			}
			for name, c := range st.Programs {
				t.Logf("  prog %-22s %7d hits %6.0f ns a run", name, c.Runs, float64(c.Runtime)/float64(c.Runs))
			}
			if st.TotalLost() != 0 {
				t.Errorf("lost events: %+v", st)
			}
			if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
				t.Fatalf("target died under the probes: %v", err)
			}

			reqs := map[uint64]int{}
			runs := map[uint64]int{}
			var mutexParks, mutexUnderHandler, readyInside, readySeen, gcSTW, cycles int
			for _, e := range evs {
				if e.PID != uint32(pid) {
					t.Fatalf("event of pid %d, want %d: %+v", e.PID, pid, e)
				}
				if e.EndNs < e.StartNs {
					t.Fatalf("event ends before it starts: %+v", e)
				}
				switch e.Kind {
				case Request:
					reqs[e.Goid]++
				case Run:
					runs[e.Goid]++
				case STW:
					if e.IsGCSTW() {
						gcSTW++
					}
					if e.AccountedEndNs < e.StartNs || e.AccountedEndNs > e.EndNs {
						t.Errorf("STW accounted end outside the pause: %+v", e)
					}
				case GCCycle:
					cycles++
				case Block:
					if e.ReadyNs != 0 {
						readySeen++
						if e.ReadyNs >= e.StartNs && e.ReadyNs <= e.EndNs {
							readyInside++
						}
					}
					if e.WaitReason != "SyncMutexLock" {
						continue
					}
					mutexParks++
					// gopark's caller once: the unwind at resume must not
					// repeat the return address the park took.
					if len(e.Stack) > 2 && e.Stack[1] == e.Stack[2] {
						t.Errorf("parked stack repeats gopark's caller: %#x", e.Stack[:3])
					}
					frames := res.User(pid, e.Stack)
					if mutexParks == 1 {
						t.Logf("first sync.Mutex park stack: %v", frames)
					}
					for _, f := range frames {
						if f.Func == "main.holdLock" || f.Func == "main.work" {
							mutexUnderHandler++
							break
						}
					}
				}
			}
			total := 0
			for g, n := range seen {
				total += n
				if reqs[g] < n {
					t.Errorf("goroutine %d served %d requests (X-Goid), probes saw %d ServeHTTP windows for it", g, n, reqs[g])
				}
				if runs[g] == 0 {
					t.Errorf("goroutine %d never seen by runtime.execute", g)
				}
			}
			t.Logf("%d requests on %d goroutines; %d mutex parks (%d under the handler); ready seen %d (%d inside the park); %d GC STWs, %d cycles",
				total, len(seen), mutexParks, mutexUnderHandler, readySeen, readyInside, gcSTW, cycles)
			// Every mutex of the program is taken in the handler.
			if mutexParks == 0 || mutexUnderHandler*10 < mutexParks*9 {
				t.Errorf("want sync.Mutex parks under the handler: %d parks, %d under main.work/main.holdLock", mutexParks, mutexUnderHandler)
			}
			if readySeen == 0 || readyInside != readySeen {
				t.Errorf("runtime.ready times: %d seen, %d inside their park", readySeen, readyInside)
			}
			if gcSTW < 2*gcs || cycles < gcs {
				t.Errorf("%d forced GCs gave %d GC stop-the-world pauses and %d cycles; want >= %d and >= %d", gcs, gcSTW, cycles, 2*gcs, gcs)
			}
		})
	}
}

// TestStartErrors checks the argument errors, which need no privileges.
func TestStartErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := Start(ctx, Options{}); err == nil || !strings.Contains(err.Error(), "invalid pid") {
		t.Errorf("no pid: %v", err)
	}
	if _, err := Start(ctx, Options{PID: os.Getpid(), RingBytes: 12345}); err == nil || !strings.Contains(err.Error(), "power of two") {
		t.Errorf("bad ring size: %v", err)
	}
	if _, err := Start(ctx, Options{PID: os.Getpid(), Kinds: []Kind{99}}); err == nil || !strings.Contains(err.Error(), "unknown kind") {
		t.Errorf("bad kind: %v", err)
	}
}
