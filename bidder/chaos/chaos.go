// Package chaos owns the bidder's hostile environment: the neighbours that
// the demo and the tests run beside the bidder to reproduce two of its tail
// contributors. They are not part of the bidder.
//
//   - PageOut (`bidder chaos pageout`) plays memory pressure: every interval
//     it calls process_madvise(MADV_PAGEOUT) on the target's index mapping,
//     so the bidder's next reads of those pages are major faults.
//   - CPU (`bidder chaos cpu`) plays a CPU-heavy co-tenant: N OS threads of
//     real arithmetic competing for the bidder's CPUs.
package chaos

import (
	"errors"
	"fmt"
	"io"
	"time"
)

// Sentinel outcomes callers branch on.
var (
	// ErrNotSupported: the platform lacks pidfd_open or process_madvise.
	ErrNotSupported = errors.New("not supported on this platform")
	// ErrTargetExited: the target process is gone.
	ErrTargetExited = errors.New("target exited")
	// ErrLocked: the kernel refused MADV_PAGEOUT with EINVAL for every
	// selected mapping, which for existing file mappings means they are
	// mlocked (the bidder's mlock fix holds).
	ErrLocked = errors.New("mapping is locked (mlock)")
)

// Defaults.
const (
	DefaultPageOutEvery = time.Second
)

// PageOutConfig configures RunPageOut.
type PageOutConfig struct {
	PID   int
	Every time.Duration // default DefaultPageOutEvery
	// PathSubstr selects the file mappings whose path contains it; empty
	// selects the largest MAP_SHARED file mapping (the bidder's index).
	PathSubstr string
	// Children extends the target to the descendants of PID, followed as
	// they come and go: with `bidder launch` on a multi-node host the
	// bidders are the launcher's children.
	Children bool
	// Log receives one line per round; nil discards.
	Log io.Writer
}

func (c *PageOutConfig) validate() error {
	if c.PID <= 0 {
		return fmt.Errorf("pageout: pid %d: must be positive", c.PID)
	}
	if c.Every == 0 {
		c.Every = DefaultPageOutEvery
	}
	if c.Every < time.Millisecond {
		return fmt.Errorf("pageout: every %v: must be at least 1ms", c.Every)
	}
	return nil
}

func (c *PageOutConfig) logf() func(string, ...any) {
	if c.Log == nil {
		return func(string, ...any) {}
	}
	return func(format string, args ...any) { fmt.Fprintf(c.Log, format+"\n", args...) }
}

// PageOutStats are the totals of a RunPageOut.
type PageOutStats struct {
	Rounds       int
	Advised      int64 // bytes covered by successful advice
	Evicted      int64 // resident bytes removed, summed over rounds
	Empty        int   // rounds that found no matching mapping
	Locked       int   // rounds refused because the whole range is mlocked
	PartlyLocked int   // rounds that skipped some mlocked mappings
	TargetExited bool
	syncWarned   bool
}

func (s PageOutStats) String() string {
	return fmt.Sprintf("%d rounds, advised %s, evicted %s, %d without a mapping, %d refused (locked), %d partly locked",
		s.Rounds, human(s.Advised), human(s.Evicted), s.Empty, s.Locked, s.PartlyLocked)
}

func human(b int64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.0f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d B", b)
}
