package load

import (
	"runtime"
	"testing"
)

func TestSetProcs(t *testing.T) {
	before := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(before)
	runtime.GOMAXPROCS(3)

	undo := setProcs(0)
	if got := runtime.GOMAXPROCS(0); got != 3 {
		t.Fatalf("Procs 0 changed GOMAXPROCS to %d", got)
	}
	undo()

	a := setProcs(1)
	if got := runtime.GOMAXPROCS(0); got != 1 {
		t.Fatalf("Procs 1: GOMAXPROCS %d", got)
	}
	b := setProcs(2) // an overlapping round asks for more: it gets it
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
