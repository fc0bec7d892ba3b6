package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

type serveLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *serveLog) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *serveLog) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestRunUsage(t *testing.T) {
	idx := filepath.Join(t.TempDir(), "x.idx")
	tests := []struct {
		name string
		args []string
		env  map[string]string
		code int
		want string
	}{
		{"no args", nil, nil, exitUsage, "missing subcommand"},
		{"unknown", []string{"frobnicate"}, nil, exitUsage, "unknown subcommand"},
		{"index without build", []string{"index"}, nil, exitUsage, "index build"},
		{"index no out", []string{"index", "build"}, nil, exitUsage, "--out is required"},
		{"index bad size", []string{"index", "build", "--out", idx, "--size", "lots"}, nil, exitUsage, "invalid size"},
		{"index too small", []string{"index", "build", "--out", idx, "--size", "8KiB"}, nil, exitError, "too small"},
		{"serve bad fix", []string{"serve", "--fixes", "turbo"}, nil, exitUsage, "unknown fix"},
		{"serve bad env fix", []string{"serve"}, map[string]string{"BIDDER_FIXES": "gc,warp"}, exitUsage, "BIDDER_FIXES"},
		{"serve bad flag", []string{"serve", "--nope"}, nil, exitUsage, "not defined"},
		{"serve missing index", []string{"serve", "--index", filepath.Join(t.TempDir(), "none.idx"), "--users", "10"}, nil, exitError, "bidder index build --out"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tt.args, &stdout, &stderr, env(tt.env))
			if got := exitCode(err); got != tt.code {
				t.Fatalf("exit %d (%v), want %d", got, err, tt.code)
			}
			if err == nil || !strings.Contains(err.Error()+stderr.String(), tt.want) {
				t.Fatalf("error %v / stderr %q does not mention %q", err, stderr.String(), tt.want)
			}
		})
	}
}

// TestServe builds an index, serves it on a free port, bids, and shuts down
// gracefully when the context ends (what SIGTERM does in main).
func TestServe(t *testing.T) {
	idx := filepath.Join(t.TempDir(), "serve.idx")
	var out bytes.Buffer
	if err := run(context.Background(), []string{"index", "build", "--out", idx, "--size", "4MiB", "--campaigns", "200"}, &out, io.Discard, env(nil)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "wrote "+idx) {
		t.Fatalf("index build said %q", out.String())
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stderr := &serveLog{}
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--index", idx, "--users", "2000"},
			io.Discard, stderr, env(map[string]string{"BIDDER_FIXES": "gc,locks"}))
	}()
	re := regexp.MustCompile(`serving on (http://[0-9.:]+)`)
	var base string
	for deadline := time.Now().Add(30 * time.Second); base == "" && time.Now().Before(deadline); {
		select {
		case err := <-errc:
			t.Fatalf("serve exited early: %v\n%s", err, stderr)
		case <-time.After(20 * time.Millisecond):
		}
		if m := re.FindStringSubmatch(stderr.String()); m != nil {
			base = m[1]
		}
	}
	if base == "" {
		t.Fatalf("serve did not start:\n%s", stderr)
	}
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "fixes=gc,locks") {
		t.Fatalf("healthz %d %q (BIDDER_FIXES not applied?)", resp.StatusCode, body)
	}
	resp, err = http.Post(base+"/openrtb2/bid", "application/json", strings.NewReader(
		`{"id":"r","imp":[{"id":"1","banner":{"w":300,"h":250}}],"device":{"geo":{"country":"USA"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 && resp.StatusCode != 204 {
		t.Fatalf("bid status %d", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not shut down")
	}
	if !strings.Contains(stderr.String(), "stopped") {
		t.Fatalf("no graceful stop in log:\n%s", stderr)
	}
}
