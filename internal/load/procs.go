package load

import "runtime"

// procsState is GOMAXPROCS, set by the first running round that asks and
// restored by the last to end.
var procsState roundSetting

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
	return procsState.enter(func() func() {
		prev := runtime.GOMAXPROCS(n)
		return func() { runtime.GOMAXPROCS(prev) }
	}, func() {
		if n > runtime.GOMAXPROCS(0) {
			runtime.GOMAXPROCS(n)
		}
	})
}
