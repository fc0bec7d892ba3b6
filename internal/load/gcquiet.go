package load

import (
	"math"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// DefaultGCHeadroom is how much the load generator's Go memory may grow
// during a round before its garbage collector runs (Config.GCHeadroom).
const DefaultGCHeadroom = 512 << 20

// gcQuiet is the collector's setting, quieted by the first running round
// and restored by the last to end.
var gcQuiet roundSetting

// roundSetting is a process-wide setting the running rounds change: the
// first to start changes it, the last to end restores it (rounds may
// overlap: tests).
type roundSetting struct {
	mu      sync.Mutex
	rounds  int
	restore func()
}

// enter changes the setting with first when no other round runs (first
// returns what restores it), otherwise with join if that is set, and
// returns what the round calls when it ends.
func (s *roundSetting) enter(first func() (restore func()), join func()) (leave func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rounds == 0 {
		s.restore = first()
	} else if join != nil {
		join()
	}
	s.rounds++
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.rounds--; s.rounds == 0 {
			s.restore()
		}
	}
}

// quietGC makes the process's collector run only when its Go memory has
// grown by headroom: GOGC off under a memory limit of the memory in use
// now plus headroom (or the limit already set, if lower). The returned
// function restores the previous setting. headroom <= 0 changes nothing.
//
// Why: the load generator's own GC cycles — stop-the-world pauses, mark
// assists and a mark worker taking one of its Ps — were the largest part of
// its own send lag. loadbench at 1000 req/s against the trivial handler,
// four interleaved ABBA blocks (2026-12-03 10:19–10:31 UTC, witness on
// each CPU), own max lag per 10 s probe: median 3.75 ms with the default
// GOGC, 1.8 ms with GOGC off under a memory limit.
func quietGC(headroom int64) (restore func()) {
	if headroom <= 0 {
		return func() {}
	}
	return gcQuiet.enter(func() func() {
		was := debug.SetMemoryLimit(-1) // reads it
		pct := debug.SetGCPercent(-1)
		limit := goMemoryInUse()
		if limit > math.MaxInt64-headroom {
			limit = math.MaxInt64
		} else {
			limit += headroom
		}
		debug.SetMemoryLimit(min(was, limit))
		return func() {
			debug.SetGCPercent(pct)
			debug.SetMemoryLimit(was)
		}
	}, nil)
}

// goMemoryInUse is the memory the runtime's limit is compared with: all
// Go memory but the heap returned to the OS.
func goMemoryInUse() int64 {
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 || s[1].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return int64(s[0].Value.Uint64() - s[1].Value.Uint64())
}
