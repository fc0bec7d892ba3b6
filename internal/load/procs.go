package load

import (
	"runtime"
	"sync"
)

// procsState is GOMAXPROCS before the first running round changed it;
// rounds may overlap (tests), the last to end restores it.
var procsState struct {
	sync.Mutex
	rounds int
	prev   int
}

// setProcs sets GOMAXPROCS to n for a round (Config.Procs); n <= 0
// changes nothing. Overlapping rounds keep the largest asked for. The
// returned function restores the setting from before the first round.
//
// Fewer Ps than CPUs costs the load generator fewer thread wake-ups per
// request, but a P whose thread sits on a stalled vCPU then holds up the
// pacer: on the 2-vCPU VM one P took 18 % of a CPU at 600 req/s against
// 30–38 % with two, and let more sends go late by the generator's own lag
// (BENCHMARKS.md, "What the measuring apparatus costs the service"), so
// the default leaves GOMAXPROCS alone.
func setProcs(n int) (restore func()) {
	if n <= 0 {
		return func() {}
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
