//go:build linux && amd64

package gort

import (
	"context"
	"os"
	"syscall"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/tailgate-ci/tailgate/internal/goprobe"
)

// pingPong is the Go scheduler's hottest path: a goroutine ping-pong over
// unbuffered channels, each op two parks, two runtime.ready and two
// runtime.execute calls. It reports the process's CPU time per op
// (cpu-ns/op), which a busy shared host disturbs far less than ns/op.
func pingPong(b *testing.B) {
	ping, pong := make(chan int), make(chan int)
	go func() {
		for v := range ping {
			pong <- v
		}
		close(pong)
	}()
	var r0, r1 syscall.Rusage
	b.ResetTimer()
	syscall.Getrusage(syscall.RUSAGE_SELF, &r0)
	for i := 0; i < b.N; i++ {
		ping <- i
		<-pong
	}
	syscall.Getrusage(syscall.RUSAGE_SELF, &r1)
	b.StopTimer()
	close(ping)
	<-pong
	cpu := r1.Utime.Nano() + r1.Stime.Nano() - r0.Utime.Nano() - r0.Stime.Nano()
	b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
}

// BenchmarkProbeCost measures what the probes cost on the scheduler's
// hot path, attached to this very process: nothing, one program at a time
// (two hits per op), one at +0 where the kernel must single-step the
// probed instruction out of line (what a probe at a function's first
// instruction or at a RET costs), and the whole session. Root only.
//
//	go test -run XXX -bench ProbeCost -benchtime 50000x ./bpf/gort/
func BenchmarkProbeCost(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("uprobes need root")
	}
	b.Run("off", pingPong)
	one := func(prog, fn string, atEntry bool) func(*testing.B) {
		return func(b *testing.B) {
			path := "/proc/self/exe"
			bin, err := goprobe.Open(path)
			if err != nil {
				b.Fatal(err)
			}
			defer bin.Close()
			offs, err := bin.Offsets()
			if err != nil {
				b.Fatal(err)
			}
			spec, err := loadGort()
			if err != nil {
				b.Fatal(err)
			}
			for name, v := range map[string]any{"target_tgid": uint32(os.Getpid()), "goid_off": offs.GGoid, "sched_bp_off": offs.SchedBP(), "emit_run": uint8(0)} {
				if err := spec.Variables[name].Set(v); err != nil {
					b.Fatal(err)
				}
			}
			coll, err := ebpf.NewCollection(spec)
			if err != nil {
				b.Skipf("load: %v", err)
			}
			defer coll.Close()
			f, err := bin.FuncRange(fn)
			if err != nil {
				b.Fatal(err)
			}
			off := uint64(0)
			if !atEntry {
				if off, err = entryOffset(path, f.FileOffset); err != nil {
					b.Fatal(err)
				}
			}
			ex, err := link.OpenExecutable(path)
			if err != nil {
				b.Fatal(err)
			}
			l, err := ex.Uprobe("", coll.Programs[prog], &link.UprobeOptions{Address: f.FileOffset + off, PID: os.Getpid()})
			if err != nil {
				b.Skipf("attach: %v", err)
			}
			defer l.Close()
			pingPong(b)
		}
	}
	b.Run("ready", one("ready_entry", "runtime.ready", false))
	b.Run("ready-at-entry-single-step", one("ready_entry", "runtime.ready", true))
	b.Run("execute", one("execute_entry", "runtime.execute", false))
	b.Run("gopark", one("gopark_entry", "runtime.gopark", false))
	b.Run("session", func(b *testing.B) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		s, err := Start(ctx, Options{PID: os.Getpid()})
		if err != nil {
			b.Skipf("probes: %v", err)
		}
		var n int
		done := make(chan struct{})
		go func() {
			for range s.Events() {
				n++
			}
			close(done)
		}()
		pingPong(b)
		st, err := s.Stop()
		<-done
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(n)/float64(b.N), "events/op")
		if st.TotalLost() > 0 {
			b.ReportMetric(float64(st.TotalLost()), "lost")
		}
	})
}
