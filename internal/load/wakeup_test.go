package load

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tailgate-ci/tailgate/internal/latency"
)

func TestSummarizeWakeups(t *testing.T) {
	var lag []time.Duration
	for i := 1; i <= 1000; i++ {
		lag = append(lag, time.Duration(i)*2*time.Microsecond) // 2 µs … 2 ms
	}
	st := summarizeWakeups(lag, time.Millisecond)
	if st.N != 1000 || st.P50 != 1002*time.Microsecond || st.Max != 2*time.Millisecond || st.Late != 500 {
		t.Errorf("summary %+v", st)
	}
	if st := summarizeWakeups(nil, time.Millisecond); st.N != 0 || st.Max != 0 {
		t.Errorf("empty: %+v", st)
	}
	st.Period, st.Duration, st.Realtime = time.Millisecond, time.Second, true
	if n := st.Note(); !strings.Contains(n, "SCHED_RR sleeper woke up to 2.00 ms late") || !strings.Contains(n, "breaks the 1ms max-lag rule") {
		t.Errorf("note %q", n)
	}
	st.Limit = 3 * time.Millisecond
	if n := st.Note(); strings.Contains(n, "breaks") {
		t.Errorf("a floor under the limit reads as breaking it: %q", n)
	}
}

// TestProbeWakeups: one wake-up per period, none skipped or doubled; the
// lateness is the host's and is not asserted.
func TestProbeWakeups(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("linux only")
	}
	st, err := ProbeWakeups(context.Background(), 300*time.Millisecond, 10*time.Millisecond, time.Millisecond, false)
	if err != nil {
		t.Fatal(err)
	}
	if st.N != 30 || st.Max < st.P50 || st.Period != 10*time.Millisecond {
		t.Errorf("stats %+v", st)
	}
	if _, err := ProbeWakeups(context.Background(), time.Second, 2*time.Second, time.Millisecond, false); err == nil {
		t.Error("period > duration accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ProbeWakeups(ctx, time.Second, time.Millisecond, time.Millisecond, false); err == nil {
		t.Error("cancelled probe returned no error")
	}
}

// TestOwnLag: the part of a late send's lag inside the witness's stalls is
// excused, the rest is the load generator's; without a witness nothing is.
func TestOwnLag(t *testing.T) {
	ms := int64(time.Millisecond)
	// The witness: on time (30 µs: no stall) every ms, except a 20 ms stall due at
	// 100 ms and a 3 ms one due at 200 ms that overlaps the next tick's.
	var ws []wakeup
	for at := int64(0); at < 300*ms; at += ms {
		late := 30 * time.Microsecond
		switch at {
		case 100 * ms:
			late = 20 * time.Millisecond
		case 200 * ms:
			late = 3 * time.Millisecond
		case 201 * ms:
			late = 2500 * time.Microsecond
		}
		ws = append(ws, wakeup{at: at, late: late})
	}
	if got := mergeStalls(ws[199:203]); len(got) != 1 || got[0] != [2]int64{200 * ms, 203*ms + 500_000} {
		t.Errorf("merged stalls %v", got)
	}
	sends := []lateSend{
		{intended: 101 * ms, sent: 120*ms + 400_000},         // inside the 20 ms stall, 0.4 ms after it: excused
		{intended: 99*ms + 500_000, sent: 121*ms + 500_000},  // 0.5 ms before it and 1.5 ms after it: own 2 ms
		{intended: 200*ms + 100_000, sent: 203*ms + 900_000}, // inside the merged 3.5 ms stall, 0.4 ms after: excused
		{intended: 250 * ms, sent: 252*ms + 500_000},         // no stall, and 30 µs ticks are none: own 2.5 ms
	}
	run := func(witness bool) Validity {
		r := &runner{cfg: Config{MaxLag: time.Millisecond}, res: &Result{}, lateSends: sends, onTimeMax: 800_000}
		r.ownLag(probeResult{ws: ws, perSleeper: [][]wakeup{ws}, witness: witness})
		return r.res.Validity
	}
	v := run(true)
	if !v.HostWitness || v.HostExcused != 2 || v.OwnMaxLag != 2500*time.Microsecond {
		t.Errorf("witness: excused %d, own max %v (want 2, 2.5ms)", v.HostExcused, v.OwnMaxLag)
	}
	if got := covered(mergeStalls(ws), sends[1].intended, sends[1].sent); got != 20*ms {
		t.Errorf("covered %d, want 20 ms", got)
	}
	v = run(false)
	if v.HostWitness || v.HostExcused != 0 || v.OwnMaxLag != 22*time.Millisecond {
		t.Errorf("no witness: excused %d, own max %v (want 0, 22ms)", v.HostExcused, v.OwnMaxLag)
	}
	// Only sends within the rule: the largest of them.
	r := &runner{cfg: Config{MaxLag: time.Millisecond}, res: &Result{}, onTimeMax: 800_000}
	r.ownLag(probeResult{ws: ws, perSleeper: [][]wakeup{ws}, witness: true})
	if r.res.Validity.OwnMaxLag != 800*time.Microsecond {
		t.Errorf("no late sends: own max %v", r.res.Validity.OwnMaxLag)
	}

	// Two sleepers, one per CPU: only the times when both were stalled
	// excuse anything. The second CPU was stalled 105–125 ms (so the
	// first send, 101–120.4 ms, is covered only from 105 ms: own 4 ms) and
	// never around 200 ms (the third send is not excused at all).
	var other []wakeup
	for at := int64(0); at < 300*ms; at += ms {
		late := 30 * time.Microsecond
		if at == 105*ms {
			late = 20 * time.Millisecond
		}
		other = append(other, wakeup{at: at, late: late})
	}
	if got := commonStalls([][]wakeup{ws, other}); len(got) != 1 || got[0] != [2]int64{105 * ms, 120 * ms} {
		t.Errorf("common stalls %v, want [105ms, 120ms]", got)
	}
	r = &runner{cfg: Config{MaxLag: time.Millisecond}, res: &Result{}, lateSends: sends[:1], onTimeMax: 800_000}
	r.ownLag(probeResult{perSleeper: [][]wakeup{ws, other}, witness: true})
	if v := r.res.Validity; v.HostExcused != 0 || v.OwnMaxLag != time.Duration(4*ms+400_000) {
		t.Errorf("two sleepers: excused %d, own max %v (want 0, 4.4ms)", v.HostExcused, v.OwnMaxLag)
	}
}

// TestLagOnly: a round whose only fault is the generator's own lag says so
// (the runner may run it again); one with errors or unsent requests too
// does not.
func TestLagOnly(t *testing.T) {
	mk := func(ownLag time.Duration, errors, omitted int64) Validity {
		r := &runner{cfg: Config{MaxLag: time.Millisecond, Duration: time.Second, MinRateRatio: 0.99, MaxErrorRate: 0.001},
			res: &Result{Requests: 1000 - omitted, Errors: errors, Codes: map[uint16]int64{200: 1000 - errors - omitted, 503: errors}},
			iv:  time.Millisecond, sentIn: 1000 - omitted, expected: 1000, maxLag: int64(ownLag), lags: latency.New()}
		r.res.Validity.OwnMaxLag = ownLag
		r.validity()
		return r.res.Validity
	}
	// A rate short only because the window's last sends went out after
	// its end: still lag only, when the lag covers the shortfall.
	endLag := func(lag time.Duration, sentIn, late int64) Validity {
		r := &runner{cfg: Config{MaxLag: time.Millisecond, Duration: time.Second, MinRateRatio: 0.99, MaxErrorRate: 0.001},
			res: &Result{Requests: 1000, Codes: map[uint16]int64{200: 1000}},
			iv:  time.Millisecond, sentIn: sentIn, expected: 1000, maxLag: int64(lag), late: late, lags: latency.New()}
		r.res.Validity.OwnMaxLag, r.res.Validity.OwnLate = lag, late
		r.validity()
		return r.res.Validity
	}
	if v := endLag(150*time.Millisecond, 850, 200); v.Valid || v.LagOnly {
		t.Errorf("150ms lag on 20%% of the sends: valid %v lag only %v: want invalid, too many late for lag only", v.Valid, v.LagOnly)
	}
	if v := endLag(20*time.Millisecond, 985, 10); v.Valid || !v.LagOnly || !hasReason(v, "after its end") {
		t.Errorf("20ms lag, rate 98.5%%: valid %v lag only %v reasons %q: want lag only", v.Valid, v.LagOnly, v.Reasons)
	}
	if v := endLag(5*time.Millisecond, 985, 10); v.Valid || v.LagOnly {
		t.Errorf("5ms lag, rate 98.5%%: valid %v lag only %v reasons %q: want invalid, not lag only", v.Valid, v.LagOnly, v.Reasons)
	}
	// A bounded share of late sends: valid with a note at 0.1 %, not at 0.3 %.
	bounded := func(late int64) Validity {
		r := &runner{cfg: Config{MaxLag: time.Millisecond, Duration: time.Second, MinRateRatio: 0.99, MaxErrorRate: 0.001, MaxLateFraction: 0.001},
			res: &Result{Requests: 2000, Codes: map[uint16]int64{200: 2000}},
			iv:  time.Millisecond / 2, sentIn: 2000, expected: 2000, maxLag: int64(4 * time.Millisecond), late: late, lags: latency.New()}
		r.res.Validity.OwnMaxLag, r.res.Validity.OwnLate = 4*time.Millisecond, late
		r.validity()
		return r.res.Validity
	}
	if v := bounded(2); !v.Valid || v.LagOnly || len(v.Notes) != 1 || !strings.HasPrefix(v.Notes[0], NoteLateFraction) ||
		!strings.Contains(v.Notes[0], "2 of 2000 requests (0.100%") {
		t.Errorf("2 of 2000 late, 0.1%% allowed: valid %v, notes %q: want valid with a late-sends note", v.Valid, v.Notes)
	}
	if v := bounded(6); v.Valid || !v.LagOnly || !hasReason(v, "6 of them (0.300%) by its own lag, over the 0.1% the rule allows") {
		t.Errorf("6 of 2000 late, 0.1%% allowed: valid %v, reasons %q: want invalid, lag only", v.Valid, v.Reasons)
	}
	for _, tc := range []struct {
		name            string
		lag             time.Duration
		errors, omitted int64
		valid, lagOnly  bool
	}{
		{"on time", 500 * time.Microsecond, 0, 0, true, false},
		{"lag only", 3 * time.Millisecond, 0, 0, false, true},
		{"lag and errors", 3 * time.Millisecond, 50, 0, false, false},
		{"lag and unsent", 3 * time.Millisecond, 0, 40, false, false},
		{"errors only", 500 * time.Microsecond, 50, 0, false, false},
	} {
		v := mk(tc.lag, tc.errors, tc.omitted)
		if v.Valid != tc.valid || v.LagOnly != tc.lagOnly {
			t.Errorf("%s: valid %v lag only %v (reasons %q), want %v %v", tc.name, v.Valid, v.LagOnly, v.Reasons, tc.valid, tc.lagOnly)
		}
	}
}
