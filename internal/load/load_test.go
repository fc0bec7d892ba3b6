package load

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/tailgate-ci/tailgate/internal/latency"
)

func skipNoClock(t *testing.T) {
	t.Helper()
	if !clockSupported {
		t.Skip("CLOCK_MONOTONIC request windows need Linux")
	}
}

func okServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Write([]byte("ok"))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func getTargeter(url string) vegeta.Targeter {
	return vegeta.NewStaticTargeter(vegeta.Target{Method: "GET", URL: url})
}

func TestClockMapMatchesClockGettime(t *testing.T) {
	skipNoClock(t)
	c := calibrate()
	if c.width > 50*time.Microsecond {
		t.Logf("calibration bracket %v (busy machine)", c.width)
	}
	for i := 0; i < 3; i++ {
		time.Sleep(20 * time.Millisecond)
		a := monoNow()
		m := c.mono(time.Now())
		b := monoNow()
		// Same clock: the mapped Go time lies between the two reads, up to
		// the calibration error.
		slack := int64(c.width) + 1000
		if m < a-slack || m > b+slack {
			t.Fatalf("mono(time.Now()) = %d, outside [%d, %d] ± %d ns: Go's monotonic clock is not CLOCK_MONOTONIC here", m, a, b, slack)
		}
	}
}

func TestRunWritesWindowsAndVegetaResults(t *testing.T) {
	skipNoClock(t)
	srv := okServer(t)
	dir := t.TempDir()
	cfg := Config{
		Rate:        200,
		Duration:    time.Second,
		Warmup:      200 * time.Millisecond,
		Timeout:     2 * time.Second,
		Targeter:    getTargeter(srv.URL + "/x"),
		Name:        "base-1",
		WindowsPath: filepath.Join(dir, "windows.bin"),
		VegetaPath:  filepath.Join(dir, "results.gob"),
	}
	before := monoNow()
	res, err := Run(context.Background(), cfg)
	after := monoNow()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("requests %d, validity %+v, p99 %v", res.Requests, res.Validity, latency.Quantile(res.Hist, 0.99))
	// The schedule defines exactly which hits are measured: ticks k with
	// (k+1)·5ms in (200ms, 1200ms]: k = 40..239.
	if res.Requests != 200 {
		t.Errorf("requests = %d, want 200 (the window's scheduled hits)", res.Requests)
	}
	if res.Codes[200] != res.Requests || res.Errors != 0 {
		t.Errorf("codes %v, errors %d", res.Codes, res.Errors)
	}
	if res.Hist.TotalCount() != res.Requests || res.Uncorrected.TotalCount() != res.Requests {
		t.Errorf("histogram counts %d/%d, want %d", res.Hist.TotalCount(), res.Uncorrected.TotalCount(), res.Requests)
	}
	if res.Interval != 5*time.Millisecond || res.EndMono-res.StartMono != int64(time.Second) {
		t.Errorf("interval %v, window %d ns", res.Interval, res.EndMono-res.StartMono)
	}
	// Each bare sleeper beside the round wakes every 1 ms: about 1000
	// times in the 1 s window (none skipped, none outside it).
	if n := int64(res.Validity.HostSleepers); runtime.GOOS == "linux" && (n < 1 || res.Validity.HostWakeups < 900*n || res.Validity.HostWakeups > 1000*n) {
		t.Errorf("%d host sleepers woke %d times in the 1 s window, want ~1000 each", n, res.Validity.HostWakeups)
	}
	// The last scheduled hit is due at EndMono; the run ends after it.
	if res.StartMono < before || res.EndMono > after {
		t.Errorf("window [%d, %d] not within the run [%d, %d]", res.StartMono, res.EndMono, before, after)
	}

	f, err := os.Open(cfg.WindowsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	wr, err := NewWindowReader(f)
	if err != nil {
		t.Fatal(err)
	}
	if wr.Header.Interval != res.Interval || wr.Header.StartMono != res.StartMono {
		t.Errorf("header %+v, want interval %v start %d", wr.Header, res.Interval, res.StartMono)
	}
	ws, err := ReadWindows(cfg.WindowsPath)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(ws)) != res.Requests || res.Windows != res.Requests {
		t.Fatalf("%d windows (Result.Windows %d), want %d", len(ws), res.Windows, res.Requests)
	}
	seen := map[uint64]bool{}
	for _, w := range ws {
		// Intended times sit exactly on the schedule.
		if off := w.Intended - res.StartMono; off <= 0 || off > int64(time.Second)+50_000 {
			t.Errorf("seq %d intended %d ns after the window start", w.Seq, off)
		}
		// began is refined during the run by at most the estimation error
		// (sub-microsecond normally): allow 50 µs.
		if want := res.StartMono - int64(cfg.Warmup) + int64(w.Seq+1)*int64(res.Interval); w.Intended > want+50_000 || w.Intended < want {
			t.Errorf("seq %d intended %d, want began+(seq+1)·interval = %d", w.Seq, w.Intended, want)
		}
		if w.Sent < w.Intended-int64(minSleep) || w.Received <= w.Sent || w.Status != 200 {
			t.Errorf("window %+v: want intended-minSleep <= sent < received, status 200", w)
		}
		if w.Received > after {
			t.Errorf("window %+v received after the run ended (%d)", w, after)
		}
		seen[w.Seq] = true
	}
	if len(seen) != len(ws) {
		t.Errorf("duplicate seqs: %d unique of %d", len(seen), len(ws))
	}

	// vegeta's own decoder reads the results, with the correction applied.
	vf, err := os.Open(cfg.VegetaPath)
	if err != nil {
		t.Fatal(err)
	}
	defer vf.Close()
	dec := vegeta.NewDecoder(vf)
	var m vegeta.Metrics
	for {
		var r vegeta.Result
		if err := dec.Decode(&r); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if r.Attack != "base-1" || r.Code != 200 {
			t.Fatalf("vegeta result %+v", r)
		}
		m.Add(&r)
	}
	m.Close()
	if int64(m.Requests) != res.Requests {
		t.Errorf("vegeta results hold %d requests, want %d", m.Requests, res.Requests)
	}
	if got := latency.Max(res.Hist); m.Latencies.Max > got+time.Millisecond || m.Latencies.Max < got-got/100-time.Millisecond {
		t.Errorf("vegeta max %v, histogram max %v", m.Latencies.Max, got)
	}
}

func TestRunTimeoutsAndErrorsAreRecorded(t *testing.T) {
	skipNoClock(t)
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch i := n.Add(1); {
		case i%10 == 0: // hang past the client timeout
			select {
			case <-r.Context().Done():
			case <-time.After(2 * time.Second):
			}
		case i%10 == 5:
			http.Error(w, "boom", http.StatusServiceUnavailable)
		default:
			w.Write([]byte("ok"))
		}
	}))
	t.Cleanup(srv.Close)
	res, err := Run(context.Background(), Config{
		Rate: 100, Duration: time.Second, Timeout: 100 * time.Millisecond,
		Targeter: getTargeter(srv.URL),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("codes %v errors %d timeouts %d validity %+v", res.Codes, res.Errors, res.Timeouts, res.Validity)
	if res.Timeouts < 5 || res.Codes[0] != res.Timeouts {
		t.Errorf("timeouts %d, status-0 count %d: want about 10 and equal", res.Timeouts, res.Codes[0])
	}
	if res.Codes[503] < 5 || res.Errors != res.Codes[503]+res.Timeouts {
		t.Errorf("errors %d, codes %v", res.Errors, res.Codes)
	}
	// Timed-out requests are in the histogram at (at least) the timeout.
	if res.Hist.TotalCount() != res.Requests {
		t.Errorf("histogram holds %d of %d requests", res.Hist.TotalCount(), res.Requests)
	}
	if mx := latency.Max(res.Hist); mx < 100*time.Millisecond {
		t.Errorf("max latency %v, want >= the 100ms timeout", mx)
	}
	if res.Validity.Valid || !hasReason(res.Validity, "error rate") || !strings.Contains(strings.Join(res.Validity.Reasons, ";"), "503×") {
		t.Errorf("validity %+v: want invalid for the error rate, naming the codes", res.Validity)
	}
}

// TestTimeoutsAreCensoredLatencies: a service that only times out (no
// other error) fails on latency, not on validity: its timeouts are in the
// histogram at >= the timeout and the round stays valid with a note,
// unless the rules count timeouts as errors.
func TestTimeoutsAreCensoredLatencies(t *testing.T) {
	skipNoClock(t)
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%4 == 0 { // a quarter hang past the client timeout
			select {
			case <-r.Context().Done():
			case <-time.After(2 * time.Second):
			}
			return
		}
		w.Write([]byte("ok"))
	}))
	t.Cleanup(srv.Close)
	for _, asErrors := range []bool{false, true} {
		n.Store(0)
		res, err := Run(context.Background(), Config{
			Rate: 100, Duration: time.Second, Timeout: 100 * time.Millisecond,
			Targeter: getTargeter(srv.URL), TimeoutsAsErrors: asErrors, MaxLag: time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		v := res.Validity
		t.Logf("as errors %v: timeouts %d of %d, validity %+v", asErrors, res.Timeouts, res.Requests, v)
		if res.Timeouts < 15 || res.Errors != res.Timeouts {
			t.Fatalf("timeouts %d, errors %d of %d requests: want about a quarter, all timeouts", res.Timeouts, res.Errors, res.Requests)
		}
		// The p90 is a timeout: recorded at (at least) the timeout.
		if p90 := latency.Quantile(res.Hist, 0.9); p90 < 100*time.Millisecond {
			t.Errorf("p90 %v, want >= the 100ms timeout", p90)
		}
		if asErrors {
			if v.Valid || !hasReason(v, "error rate") || v.ErrorRate < 0.15 {
				t.Errorf("timeouts as errors: validity %+v, want invalid for the error rate", v)
			}
			continue
		}
		if v.ErrorRate != 0 || hasReason(v, "error rate") {
			t.Errorf("timeouts as latencies: error rate %v, reasons %v: want 0 and no error-rate reason", v.ErrorRate, v.Reasons)
		}
		note := strings.Join(v.Notes, ";")
		if !strings.Contains(note, "timeouts:") || !strings.Contains(note, "lower bound") {
			t.Errorf("notes %q: want the timeouts named as lower bounds", note)
		}
	}
}

func hasReason(v Validity, sub string) bool {
	for _, r := range v.Reasons {
		if strings.Contains(r, sub) {
			return true
		}
	}
	return false
}

// TestHonestAttacker: when the attacker cannot sustain the schedule the
// round is reported invalid, not passed.
func TestHonestAttacker(t *testing.T) {
	skipNoClock(t)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A 4 ms service time: one worker can do at most 250/s.
		select {
		case <-r.Context().Done():
		case <-time.After(4 * time.Millisecond):
		}
	}))
	t.Cleanup(slow.Close)
	fast := okServer(t)
	tests := []struct {
		name    string
		cfg     Config
		reasons []string
	}{
		{
			name: "capped workers",
			cfg: Config{Rate: 500, Duration: 600 * time.Millisecond, MaxWorkers: 1,
				Targeter: getTargeter(slow.URL)},
			reasons: []string{"attacker lagged", "achieved rate"},
		},
		{
			// Far beyond what any 2-core (or 64-core) box does through Go's
			// HTTP client: 1 µs per request including the server.
			name: "rate beyond the machine",
			cfg: Config{Rate: 1_000_000, Duration: 200 * time.Millisecond, MaxWorkers: 64,
				Timeout: time.Second, Targeter: getTargeter(fast.URL)},
			reasons: []string{"attacker lagged", "achieved rate"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Run(context.Background(), tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			v := res.Validity
			t.Logf("validity %+v", v)
			if v.Valid {
				t.Fatalf("round reported valid: %+v", v)
			}
			for _, want := range tt.reasons {
				if !hasReason(v, want) {
					t.Errorf("reasons %q lack %q", v.Reasons, want)
				}
			}
			// The lag reason says how the host's own wake-ups fared.
			if runtime.GOOS == "linux" && !hasReason(v, "sleeper woke up to") && !hasReason(v, "load generator woke up to") && !hasReason(v, "CPUs, woke up to") {
				t.Errorf("lag reason lacks the host sleeper: %q", v.Reasons)
			}
			if v.AchievedRate >= 0.99*v.TargetRate {
				t.Errorf("achieved %v of target %v", v.AchievedRate, v.TargetRate)
			}
		})
	}
}

func TestRunConfigErrors(t *testing.T) {
	tg := getTargeter("http://127.0.0.1:1/")
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no rate", Config{Duration: time.Second, Targeter: tg}, "rate"},
		{"negative rate", Config{Rate: -1, Duration: time.Second, Targeter: tg}, "rate"},
		{"huge rate", Config{Rate: 1e12, Duration: time.Second, Targeter: tg}, "rate"},
		{"no duration", Config{Rate: 10, Targeter: tg}, "duration"},
		{"negative warmup", Config{Rate: 10, Duration: time.Second, Warmup: -1, Targeter: tg}, "warmup"},
		{"no targeter", Config{Rate: 10, Duration: time.Second}, "targeter"},
		{"duration shorter than the interval", Config{Rate: 0.5, Duration: time.Second, Targeter: tg}, "holds no request"},
		{"bad vegeta format", Config{Rate: 10, Duration: time.Second, Targeter: tg, VegetaFormat: "xml"}, "vegeta format"},
		{"bad ratio", Config{Rate: 10, Duration: time.Second, Targeter: tg, MinRateRatio: 2}, "ratio"},
		{"unwritable windows", Config{Rate: 10, Duration: time.Second, Targeter: tg, WindowsPath: "/nonexistent/dir/w.bin"}, "windows"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Run(context.Background(), tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

func TestRunUnreachableIsInvalid(t *testing.T) {
	skipNoClock(t)
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there now
	res, err := Run(context.Background(), Config{Rate: 50, Duration: 200 * time.Millisecond, Timeout: time.Second, Targeter: getTargeter(url)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Validity.Valid || res.Errors != res.Requests || res.Codes[0] != res.Requests {
		t.Errorf("unreachable service: %+v codes %v", res.Validity, res.Codes)
	}
}

func TestRunCancel(t *testing.T) {
	skipNoClock(t)
	srv := okServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	var calls atomic.Int64
	cfg := Config{Rate: 100, Duration: 30 * time.Second, Targeter: getTargeter(srv.URL),
		Progress: func(p Progress) {
			if calls.Add(1) == 1 {
				cancel()
			}
		}}
	res, err := Run(ctx, cfg)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if res == nil || res.Requests == 0 || res.Requests > 500 {
		t.Errorf("partial result %+v", res)
	}
}

// TestRunConcurrentRounds runs rounds side by side (CI runs it under
// -race): Run keeps no shared state, and each round's progress callback,
// pacer and result consumer touch only their own round.
func TestRunConcurrentRounds(t *testing.T) {
	skipNoClock(t)
	srv := okServer(t)
	dir := t.TempDir()
	errs := make(chan error, 3)
	results := make([]*Result, 3)
	for i := range results {
		go func() {
			res, err := Run(context.Background(), Config{
				Rate: 100, Duration: 1200 * time.Millisecond, Targeter: getTargeter(srv.URL),
				WindowsPath: filepath.Join(dir, "w"+string(rune('0'+i))),
				Progress:    func(p Progress) { _ = p.P99 },
			})
			results[i] = res
			errs <- err
		}()
	}
	for range results {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for i, res := range results {
		// A starved round (three at once under -race) may omit hits, but
		// every scheduled hit is accounted for, once.
		n := res.Requests
		if n+res.Validity.Omitted != 120 || res.Windows != n || res.Hist.TotalCount() != n {
			t.Errorf("round %d: %d requests + %d omitted, %d windows, %d recorded; want 120 scheduled, all recorded",
				i, n, res.Validity.Omitted, res.Windows, res.Hist.TotalCount())
		}
	}
}
