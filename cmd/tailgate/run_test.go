package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/tailgate-ci/tailgate/internal/latency"
	"github.com/tailgate-ci/tailgate/internal/load"
)

// The run tests drive testdata/fakesvc, a tiny HTTP service whose
// misbehaviour is chosen by FAKE_MODE, with a few seconds of load at a low
// rate. No test asserts a latency or a validity that depends on the
// machine's load: a run on a busy machine may be invalid (attacker lag),
// and the tests then check that it says so consistently.

var (
	fakeOnce sync.Once
	fakePath string
	fakeErr  error
)

// fakeService builds testdata/fakesvc once per test binary into a
// directory an unprivileged user can reach (the service runs as nobody
// when the tests run as root).
func fakeService(t *testing.T) string {
	t.Helper()
	fakeOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tailgate-fakesvc-")
		if err != nil {
			fakeErr = err
			return
		}
		os.Chmod(dir, 0o755)
		fakePath = filepath.Join(dir, "fakesvc")
		out, err := exec.Command("go", "build", "-o", fakePath, "./testdata/fakesvc").CombinedOutput()
		if err != nil {
			fakeErr = fmt.Errorf("build fakesvc: %v\n%s", err, out)
		}
	})
	if fakeErr != nil {
		t.Fatal(fakeErr)
	}
	return fakePath
}

// fakeRules writes a rules file for the fake service; extra is appended to
// the service section and load replaces the load section.
func fakeRules(t *testing.T, mode, extraService, loadSection string) string {
	t.Helper()
	if loadSection == "" {
		loadSection = `load:
  targets: {kind: reqgen, url: "http://127.0.0.1:{{port}}/openrtb2/bid", users: 1000}
  rate: 50/s
  duration: 1s
  warmup: 200ms
  round_warmup: 100ms
  rounds: 2
  timeout: 1s
  max_error_rate: 0.01
`
	}
	y := fmt.Sprintf(`version: 1
service:
  bin: %s
  args: [--addr, "127.0.0.1:{{port}}"]
  env: {FAKE_MODE: %q}
  health: http://127.0.0.1:{{port}}/healthz
  health_timeout: 10s
  stop_timeout: 2s
%s%s`, fakeService(t), mode, extraService, loadSection)
	p := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(p, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func runCmd(t *testing.T, args ...string) (stdout, stderr string, code int, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	err = run(context.Background(), append([]string{"run"}, args...), &out, &errb, func(string) string { return "" })
	return out.String(), errb.String(), exitCode(err), err
}

func TestRunBadFlags(t *testing.T) {
	badRules := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(badRules, []byte("version: 1\nservice:\n  bin: x\n  health: http://x/\nload:\n  rate: fast/s\n  targets: {url: 'http://x/'}\n"), 0o644)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"--frobnicate"}, "flag provided but not defined: -frobnicate"},
		{"bad rate", []string{"--rate", "fast/s"}, `"fast/s" is not a rate`},
		{"zero rate", []string{"--rate", "0"}, "rate must be positive"},
		{"bad duration", []string{"--duration", "forever"}, `"forever" is not a duration`},
		{"duration without unit", []string{"--duration", "30"}, `"30" is not a duration`},
		{"zero duration", []string{"--duration", "0s"}, "must be positive"},
		{"negative warmup", []string{"--warmup", "-1s"}, "must be positive"},
		{"zero rounds", []string{"--rounds", "0"}, "--rounds 0: want at least 1"},
		{"bad round warmup", []string{"--round-warmup", "2 s"}, `"2 s" is not a duration`},
		{"bad attacker priority", []string{"--attacker-priority", "high"}, `--attacker-priority "high": want rt, nice or none`},
		{"bad env", []string{"--env", "NOEQUALS"}, `"NOEQUALS": want KEY=VALUE`},
		{"stray argument", []string{"perf-rules/bidder.yaml"}, "unexpected arguments"},
		{"missing rules file", []string{"--rules", "/nonexistent/rules.yaml"}, "no such file"},
		{"bad rules file", []string{"--rules", badRules}, badRules + `:6: load.rate: "fast/s" is not a rate`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, code, err := runCmd(t, append(tc.args, "--out", filepath.Join(t.TempDir(), "out"))...)
			if code != ExitUsage {
				t.Fatalf("exit code %d, want %d (err %v)", code, ExitUsage, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

func TestRunHelp(t *testing.T) {
	_, stderr, code, err := runCmd(t, "--help")
	if code != ExitPass || !strings.Contains(stderr, "usage: tailgate run") || !strings.Contains(stderr, "-rate") {
		t.Fatalf("code %d err %v stderr %q", code, err, stderr)
	}
}

func TestRunMalformedTargets(t *testing.T) {
	for _, tc := range []struct{ format, body, want string }{
		{"http", "GET http://127.0.0.1:1/ok\n\nthis is not a request line\n", ":3"},
		{"json", `{"method":"GET","url":"http://127.0.0.1:1/ok"}` + "\n" + `{"method":"GET","url":` + "\n", ":2"},
	} {
		t.Run(tc.format, func(t *testing.T) {
			dir := t.TempDir()
			targets := filepath.Join(dir, "targets."+tc.format)
			os.WriteFile(targets, []byte(tc.body), 0o644)
			rules := fakeRules(t, "healthy", "", fmt.Sprintf("load:\n  targets: {file: %s, format: %s}\n  rate: 10\n", targets, tc.format))
			_, _, code, err := runCmd(t, "--rules", rules, "--out", filepath.Join(dir, "out"))
			if code != ExitUsage || !strings.Contains(err.Error(), targets+tc.want) {
				t.Fatalf("exit code %d, err %v; want %d naming %s%s", code, err, ExitUsage, targets, tc.want)
			}
		})
	}
}

func TestRunServiceFailures(t *testing.T) {
	closed := closedPort(t)
	for _, tc := range []struct {
		name, mode, extra, load, health string
		want                            []string
	}{
		{name: "exits at start", mode: "exit-at-start",
			want: []string{"exited before it became healthy: exit status 3", "open index: no such file or directory"}},
		{name: "never healthy", mode: "never-healthy", extra: "  user: nobody\n",
			want: []string{"not healthy after", "503", `fakesvc: mode "never-healthy"`}},
		{name: "health URL unreachable", mode: "healthy", health: fmt.Sprintf("http://127.0.0.1:%d/healthz", closed),
			want: []string{"not healthy after 1s", "connection refused", `fakesvc: mode "healthy"`}},
		{name: "unreachable target", mode: "healthy",
			load: fmt.Sprintf("load:\n  targets: {url: 'http://127.0.0.1:%d/bid'}\n  rate: 10\n", closed),
			want: []string{fmt.Sprintf("load target http://127.0.0.1:%d/bid is unreachable", closed), "connection refused"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rules := fakeRules(t, tc.mode, tc.extra, tc.load)
			if tc.mode == "never-healthy" || tc.health != "" {
				b, _ := os.ReadFile(rules)
				b = bytes.Replace(b, []byte("health_timeout: 10s"), []byte("health_timeout: 1s"), 1)
				if tc.health != "" {
					b = bytes.Replace(b, []byte("http://127.0.0.1:{{port}}/healthz"), []byte(tc.health), 1)
				}
				os.WriteFile(rules, b, 0o644)
			}
			_, _, code, err := runCmd(t, "--rules", rules, "--out", filepath.Join(t.TempDir(), "out"))
			if code != ExitError {
				t.Fatalf("exit code %d, want %d (err %v)", code, ExitError, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nwant it to contain %q", err, w)
				}
			}
		})
	}
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

func TestRunCrashMidRun(t *testing.T) {
	rules := fakeRules(t, "crash-after", "", "")
	b, _ := os.ReadFile(rules)
	os.WriteFile(rules, bytes.Replace(b, []byte(`FAKE_MODE: "crash-after"`), []byte(`FAKE_MODE: "crash-after", FAKE_CRASH_AFTER: "30"`), 1), 0o644)
	out := filepath.Join(t.TempDir(), "out")
	stdout, _, code, err := runCmd(t, "--rules", rules, "--out", out)
	if code != ExitError {
		t.Fatalf("exit code %d, want %d (err %v)", code, ExitError, err)
	}
	for _, w := range []string{"run invalid (not a pass)", "exited during the run: exit status 2"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q\nwant it to contain %q", err, w)
		}
	}
	if !strings.Contains(stdout, "run INVALID") {
		t.Errorf("summary does not say invalid:\n%s", stdout)
	}
	sum := readSummary(t, out)
	if sum.Valid || len(sum.Rounds) != 1 {
		t.Fatalf("summary valid=%v rounds=%d; want invalid after the first round", sum.Valid, len(sum.Rounds))
	}
}

// TestRunEndToEnd builds the fake service from this repository's working
// tree (service.build), runs two short rounds and checks every output.
func TestRunEndToEnd(t *testing.T) {
	rules := fakeRules(t, "healthy", "", "")
	b, _ := os.ReadFile(rules)
	b = bytes.Replace(b, []byte("  bin: "+fakeService(t)), []byte("  build: ./cmd/tailgate/testdata/fakesvc"), 1)
	os.WriteFile(rules, b, 0o644)
	out := filepath.Join(t.TempDir(), "out")
	stdout, stderr, code, err := runCmd(t, "--rules", rules, "--repo", "../..", "--out", out, "--vegeta", "--rate", "40/s", "--env", "FAKE_GREETING=hello there")

	sum := readSummary(t, out)
	// A busy machine may make the attacker lag: then the run must say it
	// is invalid, and exit 1, for that reason alone.
	switch {
	case code == ExitPass && sum.Valid:
	case code == ExitError && !sum.Valid:
		for _, r := range sum.Invalid {
			if !strings.Contains(r, "attacker lagged") && !strings.Contains(r, "achieved rate") {
				t.Fatalf("invalid for an unexpected reason: %s", r)
			}
		}
		t.Logf("run invalid on this machine (allowed): %v", err)
	default:
		t.Fatalf("exit code %d with summary valid=%v (err %v)\nstderr:\n%s", code, sum.Valid, err, stderr)
	}
	if sum.SchemaVersion != RunSchemaVersion || sum.Load.Rate != 40 || len(sum.Rounds) != 2 || sum.Total == nil ||
		sum.Ref != "WORKTREE" || len(sum.Commit) != 40 {
		t.Fatalf("summary = %+v", sum)
	}
	for _, h := range []string{"p50", "p90", "p99", "p99.9", "max", "rate/s", "errors", "valid"} {
		if !strings.Contains(stdout, h) {
			t.Errorf("summary table lacks %q:\n%s", h, stdout)
		}
	}
	if !strings.Contains(stderr, "round 1/2") || !strings.Contains(stderr, "build: ./cmd/tailgate/testdata/fakesvc") {
		t.Errorf("no progress lines on stderr:\n%s", stderr)
	}
	var total int64
	for i, r := range sum.Rounds {
		// 40/s for 1s: the schedule has 40 measured requests.
		if r.Requests < 38 || r.Requests > 42 || r.Errors != 0 {
			t.Errorf("round %d: %d requests, %d errors", i+1, r.Requests, r.Errors)
		}
		hb, err := os.ReadFile(filepath.Join(out, r.Histogram))
		if err != nil {
			t.Fatal(err)
		}
		h, err := latency.Decode(strings.TrimSpace(string(hb)))
		if err != nil || h.TotalCount() != r.Requests || h.TotalCount() != r.Latency.Count {
			t.Fatalf("round %d histogram: %v, count %d, want %d", i+1, err, h.TotalCount(), r.Requests)
		}
		ws, err := load.ReadWindows(filepath.Join(out, r.Windows))
		if err != nil || int64(len(ws)) != r.Requests {
			t.Fatalf("round %d windows: %d, %v; want %d", i+1, len(ws), err, r.Requests)
		}
		f, err := os.Open(filepath.Join(out, r.Vegeta))
		if err != nil {
			t.Fatal(err)
		}
		dec := vegeta.NewDecoder(f)
		var n int64
		for {
			var res vegeta.Result
			if err := dec.Decode(&res); err == io.EOF {
				break
			} else if err != nil {
				t.Fatalf("round %d vegeta results: %v", i+1, err)
			}
			n++
		}
		f.Close()
		if n != r.Requests {
			t.Fatalf("round %d: %d vegeta results, want %d", i+1, n, r.Requests)
		}
		total += r.Requests
	}
	if sum.Total.Requests != total || sum.Total.Latency.Count != total {
		t.Fatalf("total = %+v, want %d requests", sum.Total, total)
	}
	hf, err := os.Open(filepath.Join(out, "run.hlog"))
	if err != nil {
		t.Fatal(err)
	}
	defer hf.Close()
	hs, err := latency.ReadHlog(hf)
	if err != nil || len(hs) != 2 {
		t.Fatalf("run.hlog: %d intervals, %v", len(hs), err)
	}
	for _, f := range []string{"service.log", "rules.yaml"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	svcLog, _ := os.ReadFile(filepath.Join(out, "service.log"))
	if !strings.Contains(string(svcLog), `greeting "hello there"`) || len(sum.Env) != 1 {
		t.Errorf("--env not passed to the service (summary env %q): %s", sum.Env, svcLog)
	}
	if os.Geteuid() == 0 && strings.Contains(string(svcLog), "uid 0") {
		t.Errorf("service ran as root: %s", svcLog)
	}
	// The results directory is never overwritten.
	if _, _, code, err := runCmd(t, "--rules", rules, "--out", out); code != ExitUsage || !strings.Contains(err.Error(), "already holds results") {
		t.Fatalf("reusing --out: code %d, err %v", code, err)
	}
}

func readSummary(t *testing.T, out string) *runSummary {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(out, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s runSummary
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

// TestRunInterrupted cancels the run (as Ctrl-C does) once the second
// round's histogram is on disk: the rounds already run keep their raw
// files, the summary says the run was interrupted, and it is not a pass.
func TestRunInterrupted(t *testing.T) {
	rules := fakeRules(t, "healthy", "", `load:
  targets: {kind: reqgen, url: "http://127.0.0.1:{{port}}/openrtb2/bid", users: 1000}
  rate: 50/s
  duration: 1s
  warmup: 0s
  round_warmup: 0s
  rounds: 50
`)
	out := filepath.Join(t.TempDir(), "out")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			if _, err := os.Stat(filepath.Join(out, "round-02.hist")); err == nil {
				cancel()
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	var stdout, stderr bytes.Buffer
	err := run(ctx, []string{"run", "--rules", rules, "--out", out}, &stdout, &stderr, func(string) string { return "" })
	if code := exitCode(err); code != ExitError || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("exit code %d, err %v; want %d, interrupted", code, err, ExitError)
	}
	sum := readSummary(t, out)
	if sum.Valid || len(sum.Rounds) < 3 || !sum.hasReason("interrupted") {
		t.Fatalf("summary valid=%v rounds=%d reasons=%q", sum.Valid, len(sum.Rounds), sum.Invalid)
	}
	for _, r := range sum.Rounds {
		if _, err := os.Stat(filepath.Join(out, r.Histogram)); err != nil {
			t.Errorf("round %d: %v", r.Index, err)
		}
	}
	if !strings.Contains(stdout.String(), "run INVALID") {
		t.Errorf("summary table does not say invalid:\n%s", stdout.String())
	}
}
