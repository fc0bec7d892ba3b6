package action

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder is a GitHub API stand-in that records calls and checks bodies.
type recorder struct {
	t            *testing.T
	mu           sync.Mutex
	calls        []string
	statuses     []map[string]any
	comments     int
	failComments bool
	forbidAll    bool // every call: 403 Resource not accessible by integration
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, q *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, q.Method+" "+q.URL.Path)
	switch {
	case r.forbidAll:
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `{"message":"Resource not accessible by integration"}`)
	case strings.HasSuffix(q.URL.Path, "/comments") && r.failComments:
		w.WriteHeader(http.StatusUnprocessableEntity)
		io.WriteString(w, `{"message":"Validation Failed"}`)
	case q.Method == "GET" && q.URL.Path == "/repos/acme/bidder/issues/42/comments":
		io.WriteString(w, "[]")
	case q.Method == "POST" && q.URL.Path == "/repos/acme/bidder/issues/42/comments":
		var in map[string]string
		json.NewDecoder(q.Body).Decode(&in)
		if !strings.Contains(in["body"], "tailgate:latency-gate") {
			r.t.Errorf("comment body lacks the sticky marker: %q", in["body"])
		}
		r.comments++
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, `{"id":9,"html_url":"https://gh.example/acme/bidder/pull/42#issuecomment-9"}`)
	case q.Method == "POST" && q.URL.Path == "/repos/acme/bidder/statuses/headsha":
		var in map[string]any
		json.NewDecoder(q.Body).Decode(&in)
		r.statuses = append(r.statuses, in)
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, "{}")
	default:
		r.t.Errorf("unexpected %s %s", q.Method, q.URL.Path)
		w.WriteHeader(http.StatusNotFound)
	}
}

type harness struct {
	env     map[string]string
	rec     *recorder
	dir     string
	stdout  bytes.Buffer
	request *Request
}

func newHarness(t *testing.T, event map[string]any) *harness {
	t.Helper()
	h := &harness{rec: &recorder{t: t}, dir: t.TempDir()}
	srv := httptest.NewServer(h.rec)
	t.Cleanup(srv.Close)
	rules := filepath.Join(h.dir, "rules.yaml")
	os.WriteFile(rules, []byte("version: 1\n"), 0o644)
	ev := filepath.Join(h.dir, "event.json")
	b, _ := json.Marshal(event)
	os.WriteFile(ev, b, 0o644)
	h.env = map[string]string{
		"GITHUB_ACTIONS":       "true",
		"GITHUB_API_URL":       srv.URL,
		"GITHUB_SERVER_URL":    "https://gh.example",
		"GITHUB_REPOSITORY":    "acme/bidder",
		"GITHUB_RUN_ID":        "77",
		"GITHUB_EVENT_NAME":    "pull_request",
		"GITHUB_EVENT_PATH":    ev,
		"GITHUB_WORKSPACE":     h.dir,
		"GITHUB_OUTPUT":        filepath.Join(h.dir, "output"),
		"GITHUB_STEP_SUMMARY":  filepath.Join(h.dir, "summary"),
		"RUNNER_ENVIRONMENT":   "self-hosted",
		"INPUT_RULES":          rules,
		"INPUT_GITHUB-TOKEN":   "ghs_supersecret",
		"INPUT_FAIL-ON":        "",
		"INPUT_ALLOW-FORK-PRS": "false",
	}
	return h
}

// getenv is strict: reading a variable the test did not anticipate fails.
func (h *harness) getenv(t *testing.T) Env {
	known := map[string]bool{}
	for _, k := range []string{"GITHUB_ACTION", "GITHUB_ACTION_PATH", "GITHUB_ACTION_REPOSITORY", "GITHUB_ACTOR", "GITHUB_ACTOR_ID", "GITHUB_BASE_REF", "GITHUB_ENV", "GITHUB_GRAPHQL_URL", "GITHUB_HEAD_REF", "GITHUB_JOB", "GITHUB_PATH", "GITHUB_REF", "GITHUB_REF_NAME", "GITHUB_REF_PROTECTED", "GITHUB_REF_TYPE", "GITHUB_REPOSITORY_OWNER", "GITHUB_RETENTION_DAYS", "GITHUB_RUN_ATTEMPT", "GITHUB_RUN_NUMBER", "GITHUB_SHA", "GITHUB_WORKFLOW", "INPUT_BASE-REF", "INPUT_HEAD-REF", "INPUT_COMMENT-MODE", "INPUT_ARTIFACTS-DIR", "INPUT_SLO", "INPUT_SOAK-DURATION", "INPUT_RATE", "INPUT_ROUNDS", "INPUT_PROFILES", "INPUT_EXPERIMENT"} {
		known[k] = true
	}
	return func(k string) string {
		v, ok := h.env[k]
		if !ok && !known[k] {
			t.Errorf("unexpected getenv(%q)", k)
		}
		return v
	}
}

func (h *harness) run(t *testing.T, out *Outcome, perr error) int {
	return Main(context.Background(), h.getenv(t), &h.stdout, nil, func(ctx context.Context, req Request) (*Outcome, error) {
		h.request = &req
		return out, perr
	})
}

func (h *harness) outputs(t *testing.T) string {
	b, _ := os.ReadFile(h.env["GITHUB_OUTPUT"])
	return string(b)
}

func prEvent(fork bool) map[string]any {
	headRepo := "acme/bidder"
	if fork {
		headRepo = "mallory/bidder"
	}
	return map[string]any{
		"number": 42,
		"pull_request": map[string]any{
			"number": 42,
			"head":   map[string]any{"sha": "headsha", "ref": "feature", "repo": map[string]any{"full_name": headRepo, "fork": fork}},
			"base":   map[string]any{"sha": "basesha", "ref": "main", "repo": map[string]any{"full_name": "acme/bidder"}},
		},
	}
}

func TestVerdicts(t *testing.T) {
	for _, tc := range []struct {
		name      string
		verdict   string
		failOn    string
		code      int
		state     string
		annotates string
	}{
		{"pass", VerdictPass, "", ExitPass, "success", ""},
		{"fail", VerdictFail, "", ExitGateFailed, "failure", "::error::"},
		{"inconclusive blocks by default", VerdictInconclusive, "", ExitInconclusive, "failure", "::warning::"},
		{"inconclusive with fail-on=fail", VerdictInconclusive, "fail", ExitPass, "success", "::warning::"},
		{"invalid is never a pass", VerdictInvalid, "fail", ExitError, "error", "::error::"},
		{"unknown verdict is an error", "maybe", "", ExitError, "error", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, prEvent(false))
			h.env["INPUT_FAIL-ON"] = tc.failOn
			out := &Outcome{Verdict: tc.verdict, Reasons: []string{"p99 31ms"}, HeadP99: 31 * time.Millisecond, BaseP50: 4 * time.Millisecond, Comment: "## tailgate " + tc.verdict, ReportPath: "tailgate-out/report.html"}
			if code := h.run(t, out, nil); code != tc.code {
				t.Fatalf("exit = %d, want %d; stdout:\n%s", code, tc.code, h.stdout.String())
			}
			if n := len(h.rec.statuses); n != 2 {
				t.Fatalf("%d statuses, want pending + final", n)
			}
			if got := h.rec.statuses[1]["state"]; got != tc.state {
				t.Fatalf("final status = %v, want %s", got, tc.state)
			}
			if h.rec.statuses[1]["context"] != "tailgate/latency" || h.rec.statuses[1]["target_url"] != "https://gh.example/acme/bidder/actions/runs/77" {
				t.Fatalf("status = %v", h.rec.statuses[1])
			}
			outs := h.outputs(t)
			for _, want := range []string{"verdict<<", tc.verdict, "head-p99-ms<<", "31.00", "base-p50-ms<<", "4.00", "comment-url<<", "issuecomment-9", "report-path<<"} {
				if !strings.Contains(outs, want) {
					t.Errorf("outputs lack %q:\n%s", want, outs)
				}
			}
			if tc.annotates != "" && !strings.Contains(h.stdout.String(), tc.annotates) {
				t.Errorf("stdout lacks %s annotation:\n%s", tc.annotates, h.stdout.String())
			}
			sum, _ := os.ReadFile(h.env["GITHUB_STEP_SUMMARY"])
			if !strings.Contains(string(sum), "## tailgate "+tc.verdict) {
				t.Errorf("step summary = %q", sum)
			}
			if strings.Contains(h.stdout.String(), "ghs_supersecret") && !strings.Contains(h.stdout.String(), "::add-mask::ghs_supersecret") {
				t.Error("token printed")
			}
			if h.request.Inputs.BaseRef != "basesha" || h.request.Inputs.HeadRef != "headsha" || h.request.PR.Number != 42 {
				t.Errorf("request = %+v", h.request)
			}
		})
	}
}

func TestCommentFailureKeepsVerdict(t *testing.T) {
	h := newHarness(t, prEvent(false))
	h.rec.failComments = true
	code := h.run(t, &Outcome{Verdict: VerdictFail, Comment: "x"}, nil)
	if code != ExitGateFailed {
		t.Fatalf("exit = %d, want %d", code, ExitGateFailed)
	}
	if len(h.rec.statuses) != 2 || h.rec.statuses[1]["state"] != "failure" {
		t.Fatalf("statuses = %v", h.rec.statuses)
	}
	if !strings.Contains(h.stdout.String(), "could not post the PR comment") {
		t.Fatalf("no warning:\n%s", h.stdout.String())
	}
}

func TestTokenWithoutPermissionsKeepsVerdict(t *testing.T) {
	// A token lacking pull-requests/statuses write: neither the comment
	// nor the status can be written, yet the exit code and the outputs
	// still carry the verdict, and the log says what failed.
	h := newHarness(t, prEvent(false))
	h.rec.forbidAll = true
	code := h.run(t, &Outcome{Verdict: VerdictInconclusive, HeadP99: 12 * time.Millisecond, Comment: "c"}, nil)
	if code != ExitInconclusive {
		t.Fatalf("exit = %d, want %d:\n%s", code, ExitInconclusive, h.stdout.String())
	}
	outs := h.outputs(t)
	if !strings.Contains(outs, "inconclusive") || !strings.Contains(outs, "12.00") {
		t.Fatalf("outputs:\n%s", outs)
	}
	for _, want := range []string{"could not set the pending commit status", "could not post the PR comment (the verdict stands)", "could not set the commit status tailgate/latency", "Resource not accessible by integration"} {
		if !strings.Contains(h.stdout.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, h.stdout.String())
		}
	}
	if strings.Contains(strings.ReplaceAll(h.stdout.String(), "::add-mask::ghs_supersecret", ""), "ghs_supersecret") {
		t.Error("token printed")
	}
}

func TestPipelineErrorIsAnErrorStatus(t *testing.T) {
	h := newHarness(t, prEvent(false))
	code := h.run(t, nil, errors.New("service exited at start: exit status 2"))
	if code != ExitError {
		t.Fatalf("exit = %d", code)
	}
	if h.rec.statuses[1]["state"] != "error" {
		t.Fatalf("status = %v", h.rec.statuses[1])
	}
	if h.rec.comments != 1 {
		t.Fatalf("error comment not posted")
	}
}

func TestRefusals(t *testing.T) {
	for _, tc := range []struct {
		name  string
		event map[string]any
		env   map[string]string
		want  string
	}{
		{"missing token", prEvent(false), map[string]string{"INPUT_GITHUB-TOKEN": ""}, "input github-token: missing"},
		{"unknown fail-on", prEvent(false), map[string]string{"INPUT_FAIL-ON": "sometimes"}, `input fail-on: unknown value "sometimes"`},
		{"rules missing", prEvent(false), map[string]string{"INPUT_RULES": "/nonexistent/rules.yaml"}, "input rules: /nonexistent/rules.yaml"},
		{"not a PR", prEvent(false), map[string]string{"GITHUB_EVENT_NAME": "push"}, `event "push" is not a pull request`},
		{"fork on self-hosted", prEvent(true), nil, "refusing pull request #42 from fork mallory/bidder"},
		{"bad rate", prEvent(false), map[string]string{"INPUT_RATE": "fast/s"}, `input rate: "fast/s"`},
		{"profiles missing", prEvent(false), map[string]string{"INPUT_PROFILES": "/nonexistent/profiles"}, "input profiles: /nonexistent/profiles: no such file or directory"},
		{"experiment missing", prEvent(false), map[string]string{"INPUT_EXPERIMENT": "/nonexistent/result.json"}, "input experiment: /nonexistent/result.json: no such file or directory"},
		{"rules is a directory", prEvent(false), map[string]string{"INPUT_RULES": "/"}, "input rules: / is a directory"},
		{"no pull_request object", map[string]any{"number": 42}, nil, "event payload has no pull_request object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.event)
			for k, v := range tc.env {
				h.env[k] = v
			}
			ran := false
			code := Main(context.Background(), h.getenv(t), &h.stdout, nil, func(context.Context, Request) (*Outcome, error) {
				ran = true
				return &Outcome{Verdict: VerdictPass}, nil
			})
			if code != ExitUsage || ran {
				t.Fatalf("exit = %d, pipeline ran = %v; want usage error before running", code, ran)
			}
			if !strings.Contains(h.stdout.String(), tc.want) {
				t.Fatalf("stdout lacks %q:\n%s", tc.want, h.stdout.String())
			}
			if len(h.rec.statuses) != 0 {
				t.Fatal("status set on a refused run")
			}
		})
	}
}

func TestPullRequestTargetForkRefusedOnGitHubHosted(t *testing.T) {
	h := newHarness(t, prEvent(true))
	h.env["GITHUB_EVENT_NAME"] = "pull_request_target"
	h.env["RUNNER_ENVIRONMENT"] = "github-hosted"
	ran := false
	code := Main(context.Background(), h.getenv(t), &h.stdout, nil, func(context.Context, Request) (*Outcome, error) {
		ran = true
		return &Outcome{Verdict: VerdictPass}, nil
	})
	if code != ExitUsage || ran {
		t.Fatalf("exit = %d, pipeline ran = %v; want refused", code, ran)
	}
	if !strings.Contains(h.stdout.String(), "refusing pull request #42 from fork mallory/bidder on pull_request_target") {
		t.Fatalf("stdout:\n%s", h.stdout.String())
	}
	if len(h.rec.calls) != 0 {
		t.Fatalf("API calls on a refused run: %v", h.rec.calls)
	}
}

func TestForkOnGitHubHostedRuns(t *testing.T) {
	// A pull_request from a fork on a GitHub-hosted (ephemeral) runner
	// gets a read-only token from GitHub: nothing to refuse.
	h := newHarness(t, prEvent(true))
	h.env["RUNNER_ENVIRONMENT"] = "github-hosted"
	if code := h.run(t, &Outcome{Verdict: VerdictPass, Comment: "ok"}, nil); code != ExitPass {
		t.Fatalf("exit = %d:\n%s", code, h.stdout.String())
	}
}

func TestPipelineGetsNoToken(t *testing.T) {
	// The pipeline builds and runs the PR's code: neither the request nor
	// the environment its children inherit may carry the token.
	h := newHarness(t, prEvent(false))
	t.Setenv("INPUT_GITHUB-TOKEN", "ghs_supersecret")
	t.Setenv("GITHUB_TOKEN", "ghs_supersecret")
	var leaked []string
	code := Main(context.Background(), h.getenv(t), &h.stdout, nil, func(_ context.Context, req Request) (*Outcome, error) {
		if req.Inputs.Token != "" {
			leaked = append(leaked, "Request.Inputs.Token")
		}
		for _, kv := range os.Environ() {
			if strings.Contains(kv, "ghs_supersecret") {
				leaked = append(leaked, strings.SplitN(kv, "=", 2)[0])
			}
		}
		return &Outcome{Verdict: VerdictPass, Comment: "ok"}, nil
	})
	if code != ExitPass {
		t.Fatalf("exit = %d:\n%s", code, h.stdout.String())
	}
	if len(leaked) > 0 {
		t.Fatalf("the pipeline could see the token in %v", leaked)
	}
	// The token was still used for the API (status + comment).
	if len(h.rec.statuses) != 2 || h.rec.comments != 1 {
		t.Fatalf("statuses %d, comments %d", len(h.rec.statuses), h.rec.comments)
	}
}

func TestForkAllowed(t *testing.T) {
	h := newHarness(t, prEvent(true))
	h.env["INPUT_ALLOW-FORK-PRS"] = "true"
	if code := h.run(t, &Outcome{Verdict: VerdictPass, Comment: "ok"}, nil); code != ExitPass {
		t.Fatalf("exit = %d:\n%s", code, h.stdout.String())
	}
}

func TestEscapeMarkdown(t *testing.T) {
	in := "main.(*Ledger).Charge <script>alert(1)</script> [x](http://evil) `code` **b**\n# h"
	got := EscapeMarkdown(in)
	for _, bad := range []string{"<script", "</", "](", "`code`", "**b**", "\n", "# h"} {
		if strings.Contains(got, bad) {
			t.Errorf("escaped %q still contains %q", got, bad)
		}
	}
	if !strings.Contains(got, "main.") || !strings.Contains(got, "Ledger") {
		t.Errorf("escaping lost text: %q", got)
	}
}

func TestEvidenceInputsReachThePipeline(t *testing.T) {
	h := newHarness(t, prEvent(false))
	prof := filepath.Join(h.dir, "profiles")
	os.Mkdir(prof, 0o755)
	exp := filepath.Join(h.dir, "experiment.json")
	os.WriteFile(exp, []byte("{}"), 0o644)
	h.env["INPUT_PROFILES"] = prof
	h.env["INPUT_EXPERIMENT"] = exp
	if code := h.run(t, &Outcome{Verdict: VerdictPass, Comment: "ok"}, nil); code != ExitPass {
		t.Fatalf("exit = %d:\n%s", code, h.stdout.String())
	}
	if h.request.Inputs.Profiles != prof || h.request.Inputs.Experiment != exp {
		t.Fatalf("request inputs = %+v", h.request.Inputs)
	}
}
