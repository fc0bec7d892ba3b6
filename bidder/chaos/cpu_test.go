package chaos

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for one writer goroutine and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func runtimeGosched() { time.Sleep(time.Millisecond) }

const childEnv = "CHAOS_TEST_CHILD"

// TestMain doubles as the child of TestCPUStopsOnSIGTERM: the same wiring
// as `bidder chaos cpu` (signal.NotifyContext around CPU.Run).
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "cpu" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		defer stop()
		c, err := NewCPU(CPUConfig{Threads: 2, Log: os.Stdout})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		st := c.Run(ctx)
		fmt.Printf("ops=%d\n", st.Ops)
		os.Exit(0)
	}
	if path, ok := strings.CutPrefix(os.Getenv(childEnv), "map:"); ok {
		os.Exit(mapperChild(path))
	}
	if path, ok := strings.CutPrefix(os.Getenv(childEnv), "retouch:"); ok {
		os.Exit(retouchChild(path))
	}
	os.Exit(m.Run())
}

func TestCPUStopsOnContext(t *testing.T) {
	c, err := NewCPU(CPUConfig{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan CPUStats)
	go func() { done <- c.Run(ctx) }()
	<-c.Started()
	for c.Ops() == 0 {
		runtimeGosched()
	}
	cancel()
	st := <-done
	if st.Ops == 0 || st.Threads != 2 {
		t.Fatalf("stats %+v: want work done on 2 threads", st)
	}
}

func TestCPUStopsAfterDuration(t *testing.T) {
	c, err := NewCPU(CPUConfig{Threads: 1, Duration: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	st := c.Run(context.Background()) // returns by itself
	if st.Elapsed < 20*time.Millisecond {
		t.Fatalf("stopped after %v, before its 20ms duration", st.Elapsed)
	}
}

func TestNewCPUErrors(t *testing.T) {
	for _, cfg := range []CPUConfig{{Threads: -1}, {Threads: 5000}, {Duration: -time.Second}} {
		if _, err := NewCPU(cfg); err == nil {
			t.Errorf("NewCPU(%+v) accepted an invalid config", cfg)
		}
	}
}

// TestCPUStopsOnSIGTERM runs the neighbour in a child process, waits for it
// to report its threads running, sends a real SIGTERM and expects a clean
// exit with the work count.
func TestCPUStopsOnSIGTERM(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=cpu")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if strings.Contains(sc.Text(), "threads running") {
			break
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v\nstdout:\n%s\nstderr:\n%s", err, strings.Join(lines, "\n"), stderr.String())
	}
	all := strings.Join(lines, "\n")
	if !strings.Contains(all, "cpu neighbour: stopped") || !strings.Contains(all, "ops=") {
		t.Fatalf("child output lacks the stop report:\n%s", all)
	}
}
