package chaos

import (
	"context"
	"fmt"
	"io"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// CPUConfig configures the CPU-heavy neighbour.
type CPUConfig struct {
	// Threads is the number of OS threads burning CPU; default runtime.NumCPU().
	Threads int
	// Duration bounds the run; 0 runs until the context ends.
	Duration time.Duration
	// Log receives start and stop lines; nil discards.
	Log io.Writer
}

// CPUStats are the totals of a CPU run.
type CPUStats struct {
	Threads int
	Ops     uint64 // work units done (one unit = cpuChunk inner iterations)
	Elapsed time.Duration
}

// CPU is a running or runnable CPU neighbour.
type CPU struct {
	cfg     CPUConfig
	ops     atomic.Uint64
	stop    atomic.Bool
	started chan struct{}
	sink    atomic.Uint64
}

// cpuChunk is the inner-loop length between stop checks: about 100 µs of
// work, so a stop is noticed quickly without the check costing anything.
const cpuChunk = 1 << 15

// NewCPU validates cfg.
func NewCPU(cfg CPUConfig) (*CPU, error) {
	if cfg.Threads < 0 {
		return nil, fmt.Errorf("cpu neighbour: threads %d: must be positive", cfg.Threads)
	}
	if cfg.Threads == 0 {
		cfg.Threads = runtime.NumCPU()
	}
	if cfg.Threads > 4096 {
		return nil, fmt.Errorf("cpu neighbour: threads %d: at most 4096", cfg.Threads)
	}
	if cfg.Duration < 0 {
		return nil, fmt.Errorf("cpu neighbour: duration %v: must not be negative", cfg.Duration)
	}
	return &CPU{cfg: cfg, started: make(chan struct{})}, nil
}

// Started is closed once every thread is locked and working.
func (c *CPU) Started() <-chan struct{} { return c.started }

// Ops is the work done so far.
func (c *CPU) Ops() uint64 { return c.ops.Load() }

// Run burns CPU on cfg.Threads locked OS threads until ctx ends or
// cfg.Duration passes; then it returns the totals.
func (c *CPU) Run(ctx context.Context) CPUStats {
	if c.cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.Duration)
		defer cancel()
	}
	logf := func(format string, args ...any) {
		if c.cfg.Log != nil {
			fmt.Fprintf(c.cfg.Log, format+"\n", args...)
		}
	}
	start := time.Now()
	var wg, ready sync.WaitGroup
	ready.Add(c.cfg.Threads)
	for w := 0; w < c.cfg.Threads; w++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			// A locked thread is a real OS thread the kernel schedules
			// against the bidder's threads, not a goroutine the Go scheduler
			// could time-slice with others of this process.
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			ready.Done()
			c.sink.Add(c.work(seed))
		}(uint64(w)*0x9e3779b97f4a7c15 + 1)
	}
	ready.Wait()
	close(c.started)
	logf("cpu neighbour: %d threads running", c.cfg.Threads)
	<-ctx.Done()
	c.stop.Store(true)
	wg.Wait()
	st := CPUStats{Threads: c.cfg.Threads, Ops: c.ops.Load(), Elapsed: time.Since(start)}
	logf("cpu neighbour: stopped after %v, %d work units (%.0f/s per thread)",
		st.Elapsed.Round(time.Millisecond), st.Ops, float64(st.Ops)/st.Elapsed.Seconds()/float64(st.Threads))
	return st
}

// work mixes integer hashing and floating-point arithmetic over a small
// array, the kind of work that keeps a core's ALUs busy; the result feeds a
// sink so the compiler cannot drop it.
func (c *CPU) work(x uint64) uint64 {
	var buf [256]float64
	for i := range buf {
		buf[i] = float64(i) + 0.5
	}
	acc := 1.0
	for !c.stop.Load() {
		for k := 0; k < cpuChunk; k++ {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			j := x & 255
			buf[j] = buf[j]*1.0000001 + float64(x>>40)*1e-9
			acc += math.Sqrt(buf[j])
		}
		if acc > 1e300 {
			acc = 1
		}
		c.ops.Add(1)
	}
	return x ^ math.Float64bits(acc)
}
