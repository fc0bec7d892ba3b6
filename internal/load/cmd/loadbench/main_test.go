package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestParseWrk(t *testing.T) {
	tests := []struct {
		name string
		out  string
		want float64
		err  bool
	}{
		{"wrk 4.1", `Running 5s test @ http://127.0.0.1:8080/
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   512.31us  301.22us   8.01ms   90.12%
    Req/Sec    31.52k     2.10k   35.01k    70.00%
  313623 requests in 5.00s, 36.19MB read
Requests/sec:  62718.93
Transfer/sec:      7.24MB
`, 62718.93, false},
		{"no rate line", "unable to connect to 127.0.0.1:1 Connection refused\n", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseWrk([]byte(tt.out))
			if (err != nil) != tt.err || got != tt.want {
				t.Errorf("parseWrk = %v, %v; want %v, err %v", got, err, tt.want, tt.err)
			}
		})
	}
}

// TestWrkAgainstTrivialHandler runs the real wrk for a second, the way the
// benchmark does.
func TestWrkAgainstTrivialHandler(t *testing.T) {
	if _, err := exec.LookPath("wrk"); err != nil {
		t.Skip("wrk is not installed (apt-get install -y wrk); the comparison needs it")
	}
	srv := httptest.NewServer(http.HandlerFunc(trivial))
	defer srv.Close()
	rate, err := runWrk(context.Background(), srv.URL+"/", 1, 4, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if rate <= 0 {
		t.Errorf("wrk reported %v req/s", rate)
	}
	t.Logf("wrk: %.0f req/s against an in-process handler (shared machine)", rate)
}

func TestRunUsage(t *testing.T) {
	var out, errb strings.Builder
	err := run(context.Background(), []string{"-bogus"}, &out, &errb)
	if err == nil || !strings.Contains(errb.String(), "flag provided but not defined") {
		t.Errorf("err = %v, stderr %q", err, errb.String())
	}
	if err := run(context.Background(), []string{"extra"}, &out, &errb); err == nil {
		t.Error("extra argument accepted")
	}
}
