//go:build linux

package load

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// raiseProcessRR puts every thread of this process in SCHED_RR 1 with
// SCHED_RESET_ON_FORK, as tailgate raises its load generator, until the
// test ends.
func raiseProcessRR(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (SCHED_RR)")
	}
	set := func(policy, prio uint32) error {
		ents, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return err
		}
		for _, e := range ents {
			tid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			attr := unix.SchedAttr{Policy: policy, Priority: prio}
			if policy == unix.SCHED_RR {
				attr.Flags = unix.SCHED_FLAG_RESET_ON_FORK
			}
			attr.Size = uint32(unsafe.Sizeof(attr))
			if err := unix.SchedSetAttr(tid, &attr, 0); err != nil && err != unix.ESRCH {
				return err
			}
		}
		return nil
	}
	if err := set(unix.SCHED_RR, 1); err != nil {
		t.Skipf("SCHED_RR refused: %v", err)
	}
	t.Cleanup(func() { set(unix.SCHED_NORMAL, 0) })
}

// TestHonestAttackerWitnessed: with the load generator real-time and the
// witness above it, a rate the machine cannot sustain is still invalid: the
// witness wakes on time while the generator falls behind, so none of that
// lag is excused.
func TestHonestAttackerWitnessed(t *testing.T) {
	skipNoClock(t)
	raiseProcessRR(t)
	fast := okServer(t)
	res, err := Run(context.Background(), Config{Rate: 1_000_000, Duration: 200 * time.Millisecond, MaxWorkers: 64,
		Timeout: time.Second, Targeter: getTargeter(fast.URL)})
	if err != nil {
		t.Fatal(err)
	}
	v := res.Validity
	t.Logf("validity %+v", v)
	if !v.HostWitness || v.HostWakeups == 0 {
		t.Fatalf("the sleeper beside a real-time load generator was no witness, or never woke: %+v", v)
	}
	if v.Valid || !hasReason(v, "attacker lagged") || v.OwnMaxLag <= time.Millisecond {
		t.Errorf("an attacker far behind its schedule was excused: %+v", v)
	}
}

// TestWitnessedRound: a modest rate with a witness. Whether the host
// stalls is the host's business; what must hold is the bookkeeping: the
// generator's own lag never exceeds the send lag, excused sends are late
// ones, and a round valid despite late sends says so in a note.
func TestWitnessedRound(t *testing.T) {
	skipNoClock(t)
	raiseProcessRR(t)
	fast := okServer(t)
	res, err := Run(context.Background(), Config{Rate: 1000, Duration: 2 * time.Second, Warmup: 200 * time.Millisecond,
		Targeter: getTargeter(fast.URL)})
	if err != nil {
		t.Fatal(err)
	}
	v := res.Validity
	t.Logf("max lag %v, own %v, late %d, excused %d, host max late %v; valid %v %q notes %q",
		v.MaxLag, v.OwnMaxLag, v.LateRequests, v.HostExcused, v.HostMaxLate, v.Valid, v.Reasons, v.Notes)
	if !v.HostWitness {
		t.Fatalf("no witness beside a real-time load generator")
	}
	if v.OwnMaxLag > v.MaxLag || v.HostExcused > v.LateRequests || v.HostWakeups < 1500 {
		t.Errorf("inconsistent: %+v", v)
	}
	if v.Valid && v.LateRequests > 0 && len(v.Notes) == 0 {
		t.Errorf("valid with %d late sends and no note", v.LateRequests)
	}
	if !v.Valid && v.LateRequests > 0 && v.OwnMaxLag <= time.Millisecond && hasReason(v, "attacker lagged") {
		t.Errorf("lag-invalid with own lag %v", v.OwnMaxLag)
	}
}

// witnessCPUs watches each CPU of the affinity mask once, or one unpinned
// sleeper (-1) when there is one CPU or more than maxWitnessCPUs.
func TestWitnessCPUs(t *testing.T) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		t.Fatal(err)
	}
	cpus := witnessCPUs()
	n := set.Count()
	if n < 2 || n > maxWitnessCPUs {
		if len(cpus) != 1 || cpus[0] != -1 {
			t.Fatalf("%d CPUs: witness CPUs %v, want [-1]", n, cpus)
		}
		return
	}
	if len(cpus) != n {
		t.Fatalf("witness CPUs %v, want the %d of the affinity mask", cpus, n)
	}
	seen := map[int]bool{}
	for _, c := range cpus {
		if !set.IsSet(c) || seen[c] {
			t.Errorf("witness CPU %d not in the mask, or twice: %v", c, cpus)
		}
		seen[c] = true
	}
}
