package load

import (
	"runtime"
	"testing"
)

func TestAutoProcs(t *testing.T) {
	cpus := runtime.NumCPU()
	for _, c := range []struct {
		rate float64
		want int
	}{
		{1, 1},
		{600, 1},
		{RatePerProc, 1},
		{RatePerProc + 1, min(2, cpus)},
		{1e9, cpus},
	} {
		if got := AutoProcs(c.rate); got != c.want {
			t.Errorf("AutoProcs(%g) = %d, want %d", c.rate, got, c.want)
		}
	}
}

func TestSetProcs(t *testing.T) {
	before := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(before)
	runtime.GOMAXPROCS(3)

	undo := setProcs(-1, 600)
	if got := runtime.GOMAXPROCS(0); got != 3 {
		t.Fatalf("Procs < 0 changed GOMAXPROCS to %d", got)
	}
	undo()

	a := setProcs(0, 600) // auto: 1
	if got := runtime.GOMAXPROCS(0); got != 1 {
		t.Fatalf("auto at 600/s: GOMAXPROCS %d, want 1", got)
	}
	b := setProcs(2, 600) // an overlapping round asks for more: it gets it
	if got := runtime.GOMAXPROCS(0); got != 2 {
		t.Fatalf("overlapping round: GOMAXPROCS %d, want 2", got)
	}
	a()
	if got := runtime.GOMAXPROCS(0); got != 2 {
		t.Fatalf("first round ended while the second runs: GOMAXPROCS %d, want 2", got)
	}
	b()
	if got := runtime.GOMAXPROCS(0); got != 3 {
		t.Fatalf("after both rounds: GOMAXPROCS %d, want the 3 from before", got)
	}
}
