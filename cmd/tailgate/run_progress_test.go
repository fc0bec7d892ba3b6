package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/tailgate-ci/tailgate/internal/load"
)

// TestRunProgress checks both progress styles: a live line rewritten in
// place each second on a terminal, a plain line every runProgressEvery in
// a log.
func TestRunProgress(t *testing.T) {
	snap := func(sec int) load.Progress {
		return load.Progress{Elapsed: time.Duration(sec) * time.Second, Total: 12 * time.Second,
			Warmup: sec < 2, Requests: int64(sec * 100), Rate: 100, P99: 3 * time.Millisecond}
	}
	var live bytes.Buffer
	f := (&roundRunner{stderr: &live, live: true}).progress(2, 5)
	for s := 1; s <= 12; s++ {
		f(snap(s))
	}
	if got := strings.Count(live.String(), "\r\x1b[K"); got != 12 {
		t.Errorf("live: %d line rewrites for 12 ticks, want 12: %q", got, live.String())
	}
	if strings.Contains(live.String(), "\n") {
		t.Errorf("live progress wrote a newline: %q", live.String())
	}
	if !strings.Contains(live.String(), "round 2/5 lead-in 1s/12s") || !strings.Contains(live.String(), "round 2/5 measuring 12s/12s: 1200 requests") {
		t.Errorf("live progress = %q", live.String())
	}

	var plain bytes.Buffer
	f = (&roundRunner{stderr: &plain}).progress(0, 5)
	for s := 1; s <= 12; s++ {
		f(snap(s))
	}
	lines := strings.Split(strings.TrimSpace(plain.String()), "\n")
	if len(lines) != 2 || strings.Contains(plain.String(), "\x1b") || !strings.HasPrefix(lines[0], "warm-up 5s/12s") {
		t.Errorf("plain progress = %q; want 2 lines, at 5s and 10s", lines)
	}
}
