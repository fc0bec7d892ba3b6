package bidder

import (
	"fmt"
	"strings"
)

// Fix names accepted by ParseFixes, --fixes and BIDDER_FIXES.
const (
	FixGC        = "gc"
	FixLocks     = "locks"
	FixMlock     = "mlock"
	FixPlacement = "placement"
)

// AllFixes lists every fix in its canonical order.
var AllFixes = []string{FixGC, FixLocks, FixMlock, FixPlacement}

// Fixes says which tail-latency fixes are switched on. The zero value is the
// baseline (no fix).
type Fixes struct {
	GC        bool // GOGC/GOMEMLIMIT with headroom, pooled buffers, fewer allocations
	Locks     bool // sharded pacing ledger, reconciliation without a global lock
	Mlock     bool // mlock of the hot index range at start-up
	Placement bool // placement done by the launcher; the bidder uses SO_REUSEPORT
}

// ParseFixes parses a comma-separated list such as "gc,locks". Empty items are
// ignored, "none" and "" mean the baseline, "all" switches every fix on.
func ParseFixes(s string) (Fixes, error) {
	var f Fixes
	for _, item := range strings.Split(s, ",") {
		switch name := strings.ToLower(strings.TrimSpace(item)); name {
		case "", "none":
		case "all":
			f = Fixes{GC: true, Locks: true, Mlock: true, Placement: true}
		case FixGC:
			f.GC = true
		case FixLocks:
			f.Locks = true
		case FixMlock:
			f.Mlock = true
		case FixPlacement:
			f.Placement = true
		default:
			return Fixes{}, fmt.Errorf("unknown fix %q (want a comma-separated subset of %s, or all/none)",
				name, strings.Join(AllFixes, ","))
		}
	}
	return f, nil
}

// Names returns the enabled fixes in canonical order.
func (f Fixes) Names() []string {
	var out []string
	for _, n := range AllFixes {
		if f.Enabled(n) {
			out = append(out, n)
		}
	}
	return out
}

// Enabled reports whether the named fix is on.
func (f Fixes) Enabled(name string) bool {
	switch name {
	case FixGC:
		return f.GC
	case FixLocks:
		return f.Locks
	case FixMlock:
		return f.Mlock
	case FixPlacement:
		return f.Placement
	}
	return false
}

// String returns the canonical comma-separated form, "none" for the baseline.
func (f Fixes) String() string {
	n := f.Names()
	if len(n) == 0 {
		return "none"
	}
	return strings.Join(n, ",")
}
