package load

import (
	"runtime"
	"runtime/debug"
	"testing"
)

// quietGC turns GOGC off under a memory limit for the rounds that overlap
// it, collects once the headroom is used, and restores the setting when
// the last round ends.
func TestQuietGC(t *testing.T) {
	pct0 := debug.SetGCPercent(100)
	defer debug.SetGCPercent(pct0)
	lim0 := debug.SetMemoryLimit(-1)

	const headroom = 64 << 20
	restore1 := quietGC(headroom)
	restore2 := quietGC(headroom) // an overlapping round
	if got := debug.SetGCPercent(-1); got != -1 {
		t.Errorf("GOGC during a round = %d, want off", got)
	}
	lim := debug.SetMemoryLimit(-1)
	if inUse := goMemoryInUse(); lim <= inUse || lim > inUse+headroom {
		t.Errorf("memory limit %d, want in (%d, %d]", lim, inUse, inUse+headroom)
	}
	// Allocating well past the headroom makes the collector run: the
	// limit bounds the heap, GOGC off does not mean no GC.
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	gcs := ms.NumGC
	var sink [][]byte
	for i := 0; i < 4*headroom/(1<<20); i++ {
		sink = append(sink, make([]byte, 1<<20))
		if len(sink) > 8 {
			sink = sink[1:]
		}
	}
	runtime.ReadMemStats(&ms)
	if ms.NumGC == gcs {
		t.Errorf("no GC cycle after allocating 4× the headroom")
	}
	restore1()
	if got := debug.SetGCPercent(-1); got != -1 {
		t.Errorf("GOGC restored while a round still runs: %d", got)
	}
	restore2()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GOGC after the rounds = %d, want 100 restored", got)
	}
	if got := debug.SetMemoryLimit(-1); got != lim0 {
		t.Errorf("memory limit after the rounds = %d, want %d restored", got, lim0)
	}
	quietGC(-1)() // negative: nothing changes
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GCHeadroom < 0 changed GOGC to %d", got)
	}
}
