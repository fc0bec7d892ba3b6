package bidder

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
)

// gc fix tuning. The baseline's GOGC=100 starts a cycle whenever the heap has
// grown by the live heap; with a large pointer-heavy live heap that is a long
// mark phase every few seconds. The fix raises GOGC so cycles are rarer, and
// sets GOMEMLIMIT as a safety net with headroom above the GOGC target, so the
// limit never drives the collector into back-to-back cycles (which is what
// GOGC=off near a limit does).
const (
	fixGOGC          = 400
	limitHeadroom    = 1.5  // GOMEMLIMIT = 1.5 × the GOGC heap target, at least
	maxMemoryShare   = 0.75 // never more than this share of MemTotal
	minLimitHeadroom = 1.2  // if the share caps the limit, lower GOGC to keep this headroom
)

// tuneGC applies the gc fix unless the operator set GOGC or GOMEMLIMIT in the
// environment (the runtime already honours those), and describes what it did.
func tuneGC() string {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return fmt.Sprintf("GOGC=%q GOMEMLIMIT=%q from the environment, left as set",
			os.Getenv("GOGC"), os.Getenv("GOMEMLIMIT"))
	}
	runtime.GC() // measure the live heap after loading
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	live := float64(s[0].Value.Uint64())
	gogc := float64(fixGOGC)
	target := live * (1 + gogc/100)
	limit := target * limitHeadroom
	if mt := memTotal(); mt > 0 && limit > float64(mt)*maxMemoryShare {
		limit = float64(mt) * maxMemoryShare
		// Keep the GOGC target well under the limit.
		gogc = max(100, (limit/minLimitHeadroom/live-1)*100)
	}
	debug.SetGCPercent(int(gogc))
	debug.SetMemoryLimit(int64(limit))
	return fmt.Sprintf("live heap %d MiB: GOGC=%d (heap target %d MiB), GOMEMLIMIT=%d MiB, pooled request buffers",
		int64(live)>>20, int(gogc), int64(live*(1+gogc/100))>>20, int64(limit)>>20)
}

func memTotal() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err == nil {
				return n * 1024
			}
		}
	}
	return 0
}
