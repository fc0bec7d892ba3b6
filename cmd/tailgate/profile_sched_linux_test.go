//go:build linux

package main

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// threadPolicies returns the scheduling policy of every thread of this
// process (field 41 of /proc/self/task/TID/stat).
func threadPolicies(t *testing.T) map[int]int {
	t.Helper()
	names, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]int{}
	for _, n := range names {
		b, err := os.ReadFile("/proc/self/task/" + n.Name() + "/stat")
		if err != nil {
			continue // exited
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		pol, err := strconv.Atoi(f[41-3])
		if err != nil {
			t.Fatalf("thread %s: policy %q: %v", n.Name(), f[41-3], err)
		}
		tid, _ := strconv.Atoi(n.Name())
		out[tid] = pol
	}
	return out
}

func TestConsumerSchedLowersAndRaisesWhenBehind(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: leaving SCHED_IDLE needs CAP_SYS_NICE (CI runs as root)")
	}
	before := threadPolicies(t)
	c := newConsumerSched(100 * time.Millisecond)
	if err := c.lower(); err != nil {
		t.Fatal(err)
	}
	defer c.restore()
	// A thread the runtime starts now inherits the policy.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		runtime.LockOSThread() // a new M for the next goroutine
		time.Sleep(10 * time.Millisecond)
	}()
	wg.Wait()
	for tid, pol := range threadPolicies(t) {
		if pol != 5 { // SCHED_IDLE
			t.Fatalf("thread %d policy %d after lower, want 5 (SCHED_IDLE)", tid, pol)
		}
	}
	// Events read at once do not raise it.
	for i := 0; i < 200; i++ {
		c.observe(uint64(monoNow()))
	}
	if at, _, err := c.raised(); at != 0 || err != nil {
		t.Fatalf("raised at %d (%v) with no lag", at, err)
	}
	// An event 2 s old does, within 64 events.
	old := uint64(monoNow() - int64(2*time.Second))
	for i := 0; i < 64; i++ {
		c.observe(old)
	}
	at, lag, err := c.raised()
	if at == 0 || lag < 2*time.Second || err != nil {
		t.Fatalf("raised at %d lag %v err %v, want raised with lag >= 2s", at, lag, err)
	}
	for tid, pol := range threadPolicies(t) {
		if want, ok := before[tid]; ok && pol != want {
			t.Fatalf("thread %d policy %d after raise, want %d as before", tid, pol, want)
		}
		if pol == 5 {
			t.Fatalf("thread %d still SCHED_IDLE after raise", tid)
		}
	}
}
