package bidder

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prebid/openrtb/v20/openrtb2"
)

func TestHandler(t *testing.T) {
	huge := `{"id":"h","imp":[{"id":"1","banner":{"w":300,"h":250}}],"ext":"` + strings.Repeat("x", DefaultMaxBody) + `"}`
	tests := []struct {
		name     string
		method   string
		body     string
		chunked  bool // hide Content-Length so the limit is enforced while reading
		wantCode int
		wantBody string
	}{
		{"valid", "POST", string(testRequest(1)), false, 200, `"seatbid"`},
		{"valid video", "POST", string(testRequest(3)), false, 200, `"mtype":2`},
		{"tmax 0 uses default", "POST", `{"id":"t0","tmax":0,"imp":[{"id":"1","banner":{"w":300,"h":250}}],"device":{"geo":{"country":"USA"}}}`, false, 200, `"impid":"1"`},
		{"no tmax, no device", "POST", `{"id":"t1","imp":[{"id":"1","banner":{"format":[{"w":728,"h":90}]}}]}`, false, 200, `"price"`},
		{"malformed", "POST", `{"id":"x","imp":[`, false, 400, "malformed JSON"},
		{"not json", "POST", `hello`, false, 400, "malformed JSON at byte 1"},
		{"trailing garbage", "POST", `{"id":"x","imp":[{"id":"1","banner":{}}]} x`, false, 400, "malformed JSON"},
		{"empty body", "POST", ``, false, 400, "empty body"},
		{"null", "POST", `null`, false, 400, "field id: required"},
		{"array", "POST", `[1,2]`, false, 400, "want openrtb2.BidRequest"},
		{"missing id", "POST", `{"imp":[{"id":"1","banner":{}}]}`, false, 400, "field id: required"},
		{"zero imps", "POST", `{"id":"x","imp":[]}`, false, 400, "field imp: at least one"},
		{"no imp field", "POST", `{"id":"x"}`, false, 400, "field imp: at least one"},
		{"imp without id", "POST", `{"id":"x","imp":[{"banner":{}}]}`, false, 400, "field imp[0].id: required"},
		{"imp without media", "POST", `{"id":"x","imp":[{"id":"1"}]}`, false, 400, "field imp[0]: needs one of"},
		{"wrong type id", "POST", `{"id":5,"imp":[{"id":"1","banner":{}}]}`, false, 400, "field id: got JSON number, want string"},
		{"wrong type w", "POST", `{"id":"x","imp":[{"id":"1","banner":{"w":"300"}}]}`, false, 400, "field imp.banner.w"},
		{"wrong type imp", "POST", `{"id":"x","imp":{"id":"1"}}`, false, 400, "field imp: got JSON object"},
		{"negative tmax", "POST", `{"id":"x","tmax":-1,"imp":[{"id":"1","banner":{}}]}`, false, 400, "field tmax"},
		{"negative floor", "POST", `{"id":"x","imp":[{"id":"1","banner":{},"bidfloor":-2}]}`, false, 400, "bidfloor"},
		{"other currency", "POST", `{"id":"x","imp":[{"id":"1","banner":{},"bidfloorcur":"EUR"}]}`, false, 400, "bidfloorcur"},
		{"huge body", "POST", huge, false, 413, "limit"},
		{"huge body chunked", "POST", huge, true, 413, "limit"},
		{"GET", "GET", ``, false, 405, "not allowed"},
	}
	for _, fixes := range []Fixes{{}, {GC: true, Locks: true, Placement: true}} {
		b := newTestBidder(t, fixes)
		srv := httptest.NewServer(b.Handler())
		t.Cleanup(srv.Close)
		for _, tt := range tests {
			t.Run(fixes.String()+"/"+tt.name, func(t *testing.T) {
				var body io.Reader = strings.NewReader(tt.body)
				if tt.chunked {
					body = io.MultiReader(body) // unknown length: chunked
				}
				req, err := http.NewRequest(tt.method, srv.URL+"/openrtb2/bid", body)
				if err != nil {
					t.Fatal(err)
				}
				resp, err := srv.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				got, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != tt.wantCode || !strings.Contains(string(got), tt.wantBody) {
					t.Fatalf("%d %q; want %d containing %q", resp.StatusCode, got, tt.wantCode, tt.wantBody)
				}
				if resp.StatusCode == 200 {
					checkBidResponse(t, got, tt.body)
				}
			})
		}
	}
}

// checkBidResponse checks a 200 response against its request: ids match,
// prices are at or above the floor, and the markup is present.
func checkBidResponse(t *testing.T, body []byte, reqBody string) {
	t.Helper()
	var req openrtb2.BidRequest
	if err := json.Unmarshal([]byte(reqBody), &req); err != nil {
		t.Fatal(err)
	}
	var resp openrtb2.BidResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatalf("response is not a BidResponse: %v", err)
	}
	if resp.ID != req.ID || resp.Cur != "USD" || len(resp.SeatBid) != 1 || len(resp.SeatBid[0].Bid) == 0 {
		t.Fatalf("response %+v does not answer request %s", resp, req.ID)
	}
	floors := map[string]float64{}
	for _, imp := range req.Imp {
		floors[imp.ID] = imp.BidFloor
	}
	for _, bid := range resp.SeatBid[0].Bid {
		floor, ok := floors[bid.ImpID]
		if !ok {
			t.Fatalf("bid for unknown imp %q", bid.ImpID)
		}
		if bid.Price < floor || bid.Price <= 0 {
			t.Fatalf("bid price %g under floor %g", bid.Price, floor)
		}
		if bid.AdM == "" || bid.CrID == "" || bid.W == 0 || bid.H == 0 {
			t.Fatalf("incomplete bid %+v", bid)
		}
	}
}

func TestHealthAndMetrics(t *testing.T) {
	b := newTestBidder(t, Fixes{})
	srv := httptest.NewServer(b.Handler())
	defer srv.Close()
	for i := range 20 {
		resp, err := http.Post(srv.URL+"/openrtb2/bid", "application/json", bytes.NewReader(testRequest(i)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	resp, err := http.Get(srv.URL + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	resp.Body.Close()
	resp, err = http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		"bidder_request_duration_seconds_bucket{le=\"0.025\"}",
		"bidder_request_duration_seconds_count 20",
		"go_sched_pauses_total_gc_seconds_bucket{le=\"+Inf\"}",
		"go_sync_mutex_wait_total_seconds ",
		"go_gc_cycles_total ",
		"process_major_faults_total ",
		"process_locked_bytes ",
		"bidder_ledger_reconciles_total ",
		"bidder_fix_enabled{fix=\"mlock\"} 0",
	} {
		if !strings.Contains(string(text), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// Every sample line is "name{labels} value".
	for _, line := range strings.Split(strings.TrimSpace(string(text)), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		if f := strings.Fields(line); len(f) != 2 {
			t.Errorf("bad exposition line %q", line)
		}
	}
}

func TestRecoverer(t *testing.T) {
	b := newTestBidder(t, Fixes{})
	h := b.recoverer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 500 || b.metrics.panics.Load() != 1 {
		t.Fatalf("code %d, panics %d", rec.Code, b.metrics.panics.Load())
	}
}

// TestAuctionConcurrent drives the full auction from many goroutines for
// each fix set (run under -race in CI).
func TestAuctionConcurrent(t *testing.T) {
	for _, fixes := range []Fixes{{}, {GC: true, Locks: true}} {
		t.Run(fixes.String(), func(t *testing.T) {
			b := newTestBidder(t, fixes)
			h := b.Handler()
			done := make(chan map[int]int)
			for w := range 4 {
				go func() {
					codes := map[int]int{}
					for i := range 100 {
						rec := httptest.NewRecorder()
						h.ServeHTTP(rec, httptest.NewRequest("POST", "/openrtb2/bid", bytes.NewReader(testRequest(w*1000+i))))
						codes[rec.Code]++
					}
					done <- codes
				}()
			}
			total := map[int]int{}
			for range 4 {
				for c, n := range <-done {
					total[c] += n
				}
			}
			if total[200] == 0 || total[200]+total[204] != 400 {
				t.Fatalf("status codes %v; want only 200/204, mostly 200", total)
			}
			if b.metrics.bids.Load() != int64(total[200]) {
				t.Fatalf("bids metric %d, %d responses", b.metrics.bids.Load(), total[200])
			}
		})
	}
}

func TestDeadline(t *testing.T) {
	b := newTestBidder(t, Fixes{})
	b.cfg.MaxTmax = 1 // 1 ns cap: every request runs out of time
	rec := httptest.NewRecorder()
	b.Handler().ServeHTTP(rec, httptest.NewRequest("POST", "/openrtb2/bid", bytes.NewReader(testRequest(1))))
	if rec.Code != 204 || rec.Header().Get("X-Nobid-Reason") != NoBidDeadline {
		t.Fatalf("code %d reason %q, want 204 deadline", rec.Code, rec.Header().Get("X-Nobid-Reason"))
	}
}

func TestShade(t *testing.T) {
	tests := []struct{ value, floor, share, want float64 }{
		{10, 0, 0.7, 7},
		{10, 2, 0.5, 6},
		{2.005, 2, 0.5, 2}, // floor+0.01 would exceed the value
		{3, 2, 0, 2.01},
	}
	for _, tt := range tests {
		if got := shade(tt.value, tt.floor, tt.share); got != tt.want {
			t.Errorf("shade(%g, %g, %g) = %g, want %g", tt.value, tt.floor, tt.share, got, tt.want)
		}
	}
}
