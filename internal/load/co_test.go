package load

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tailgate-ci/tailgate/internal/latency"
)

// stallServer answers at once, except during a stall of s every t: a
// request that arrives during a stall is held until the stall ends (like a
// stop-the-world pause). The schedule starts with the first request; the
// first stall begins offset later.
func stallServer(t *testing.T, s, period, offset time.Duration) *httptest.Server {
	var (
		once sync.Once
		t0   time.Time
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		once.Do(func() { t0 = now })
		if since := now.Sub(t0) - offset; since >= 0 {
			if phase := since % period; phase < s {
				select {
				case <-time.After(s - phase):
				case <-r.Context().Done():
				}
			}
		}
		w.Write([]byte("ok"))
	}))
	return srv
}

// TestCoordinatedOmission checks the corrected latency against the
// analytic distribution of a periodically stalling server, and that the
// uncorrected (service-time) figures of a closed-loop-like attacker miss it.
//
// Analytic values. The server stalls for S every T. Requests are due on a
// lattice with spacing 1/R; over a measured window of exactly one period T
// their phases φ (time since the stall began) are spread evenly over
// [0, T). A request due at phase φ < S is answered when the stall ends, so
// its corrected latency is L = S − φ (plus a sub-millisecond service time
// ε); all others take ≈ ε. Hence P(L > x) = (S − x)/T for 0 < x < S and,
// for 1 − q < S/T, the q-quantile is
//
//	L_q = S − (1 − q)·T.
//
// With S = 200 ms, T = 2 s: p99 = 200 − 20 = 180 ms, p99.9 = 200 − 2 = 198 ms.
// The stall is placed half a lattice step before a due time in the middle of
// the measured window (the schedule starts at the first request), so the
// window holds exactly one whole stall and the lattice's own rounding is
// at most 1/(2R) (5 ms at R = 100/s, 1 ms at 500/s).
//
// Open loop (unlimited workers): vegeta keeps sending during the stall, so
// the R·S requests in flight are all released together when it ends; their
// completion takes about R·S·ε, a relative error of R·ε on the stall. At
// R = 100/s that is 2–5 % for ε = 0.2–0.5 ms (a loaded 2-core box). Here
// service and corrected latency agree: an open-loop attacker omits nothing.
//
// Closed-loop-like attacker (MaxWorkers = 1, like wrk or ab with one
// connection): the one request in flight when the stall begins waits S − φ0;
// the R·S requests due during the stall are sent late, after it, each taking
// ≈ ε. Their service times hold one slow value per stall among R·T
// requests; at R = 500/s that is 1 in 1000, below 0.1 %, so the uncorrected
// p99 and p99.9 are both ≈ ε: coordinated omission hides the stall. The
// corrected figures must recover the stall: at least L_q − 10 %. They are
// not held to the upper bound because they also charge the attacker's own
// backlog: the j-th request due in the stall completes at S + j·ε, i.e.
// L = S − j·(1/R − ε), which stays within tolerance while ε ≪ 1/R = 2 ms
// (it does on an idle machine: measured 181.5 and 198.9 ms) but exceeds S
// when a starved machine makes ε approach 1/R (seen: 567 ms). That is the
// correction working — the one worker really was that late — and the
// analytic match itself is checked on the open-loop round, which has no
// backlog.
func TestCoordinatedOmission(t *testing.T) {
	skipNoClock(t)
	const (
		S      = 200 * time.Millisecond
		T      = 2 * time.Second
		warmup = 300 * time.Millisecond
	)
	analytic := func(q float64) time.Duration { return S - time.Duration((1-q)*float64(T)) }
	within := func(got, want time.Duration) bool {
		d := got - want
		if d < 0 {
			d = -d
		}
		return d <= want/10
	}
	tests := []struct {
		name       string
		rate       float64
		maxWorkers uint64
		closedLoop bool
	}{
		{"open loop", 100, 0, false},
		{"closed-loop-like attacker", 500, 1, true},
	}
	// A shared machine can starve this process for tens of milliseconds
	// (seen: +50 ms while two compilers ran); the corrected latency then
	// rightly includes the attacker's own delay and the round is invalid.
	// Such an attempt is retried, up to three times: a broken correction
	// fails every attempt, since nothing here is random.
	const attempts = 3
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var failures []string
			for a := 1; a <= attempts; a++ {
				problems := coAttempt(t, tt.rate, tt.maxWorkers, tt.closedLoop, S, T, warmup, analytic, within)
				if len(problems) == 0 {
					return
				}
				t.Logf("attempt %d: %s", a, strings.Join(problems, "; "))
				failures = append(failures, problems...)
			}
			t.Errorf("%d attempts failed: %s", attempts, strings.Join(failures, "; "))
		})
	}
}

// coAttempt runs one round against a stalling server and returns what did
// not match.
func coAttempt(t *testing.T, rate float64, maxWorkers uint64, closedLoop bool, S, T, warmup time.Duration,
	analytic func(float64) time.Duration, within func(got, want time.Duration) bool) []string {
	t.Helper()
	step := time.Duration(float64(time.Second) / rate)
	// The first request arrives one step after the attack began.
	srv := stallServer(t, S, T, warmup+T/2-step-step/2)
	defer srv.Close()
	res, err := Run(context.Background(), Config{
		Rate: rate, Duration: T, Warmup: warmup, Timeout: 5 * time.Second,
		MaxWorkers: maxWorkers, Targeter: getTargeter(srv.URL),
	})
	if err != nil {
		t.Fatal(err)
	}
	var problems []string
	if want := int64(rate * T.Seconds()); res.Requests != want {
		// Only if the machine is too starved for even the capped attacker
		// to catch up within the round's end grace.
		return append(problems, fmt.Sprintf("measured %d requests, want %d (%v)", res.Requests, want, res.Validity.Reasons))
	}
	for _, q := range []float64{0.99, 0.999} {
		want := analytic(q)
		got := latency.Quantile(res.Hist, q)
		unc := latency.Quantile(res.Uncorrected, q)
		t.Logf("p%g: analytic %v, corrected %v, uncorrected %v", q*100, want, got, unc)
		switch {
		case !closedLoop && !within(got, want):
			problems = append(problems, fmt.Sprintf("corrected p%g = %v, want %v ± 10%%", q*100, got, want))
		case closedLoop && got < want-want/10:
			// Only a floor here: see "backlog" in the test's comment.
			problems = append(problems, fmt.Sprintf("corrected p%g = %v lost the stall, want >= %v", q*100, got, want-want/10))
		}
		if closedLoop && unc > want/2 {
			problems = append(problems, fmt.Sprintf("uncorrected p%g = %v: want it to miss the stall (< %v)", q*100, unc, want/2))
		}
	}
	t.Logf("validity %+v", res.Validity)
	if closedLoop && (res.Validity.Valid || !hasReason(res.Validity, "attacker lagged")) {
		problems = append(problems, fmt.Sprintf("a closed-loop-like attacker that lagged by a stall was reported %+v", res.Validity))
	}
	return problems
}
