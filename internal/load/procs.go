package load

import (
	"math"
	"runtime"
	"sync"
)

// RatePerProc is the request rate one Go P of the load generator is given
// when Config.Procs is 0 (AutoProcs).
const RatePerProc = 4000

// AutoProcs is the GOMAXPROCS a round at rate runs with by default: one P
// per RatePerProc requests a second, at least one, at most the CPUs this
// process may use.
//
// Why not every CPU: at a few thousand requests a second the generator's
// goroutines (pacer, vegeta workers, the transport's read and write loops,
// the record loop) hand every request to one another, and with a P per CPU
// each hand-off to a goroutine on an idle P wakes another thread (a futex
// wake and a context switch, expensive in a VM). tailgate run at the
// bidder's 600 req/s on the 2-vCPU VM, ABBA (2026-12-03 15:14–15:19 UTC,
// /proc utime+stime of the tailgate process over 20 s of a round): 30 % and
// 38 % of a CPU with 2 Ps, 18 % and 18 % with 1 — CPU the service under
// test shares on a small runner.
func AutoProcs(rate float64) int {
	n := int(math.Ceil(rate / RatePerProc))
	return max(1, min(n, runtime.NumCPU()))
}

// procsState is GOMAXPROCS before the first running round changed it;
// rounds may overlap (tests), the last to end restores it.
var procsState struct {
	sync.Mutex
	rounds int
	prev   int
}

// setProcs sets GOMAXPROCS for a round: n > 0 as given, 0 AutoProcs(rate),
// < 0 unchanged. Overlapping rounds keep the largest asked for. The
// returned function restores the setting from before the first round.
func setProcs(n int, rate float64) (restore func()) {
	if n < 0 {
		return func() {}
	}
	if n == 0 {
		n = AutoProcs(rate)
	}
	procsState.Lock()
	defer procsState.Unlock()
	if procsState.rounds == 0 {
		procsState.prev = runtime.GOMAXPROCS(n)
	} else if n > runtime.GOMAXPROCS(0) {
		runtime.GOMAXPROCS(n)
	}
	procsState.rounds++
	return func() {
		procsState.Lock()
		defer procsState.Unlock()
		if procsState.rounds--; procsState.rounds == 0 {
			runtime.GOMAXPROCS(procsState.prev)
		}
	}
}
