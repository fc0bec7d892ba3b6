// Package action is tailgate's GitHub Action front end and the only importer
// of go-githubactions: it turns inputs and the event payload into a
// pipeline request, refuses what must be refused (non-PR events, fork PRs on
// self-hosted runners), runs the pipeline, and publishes its outcome as the
// sticky PR comment, the blocking commit status, outputs, the step summary
// and annotations. The verdict survives every publishing failure: a comment
// that cannot be posted never changes the status or the exit code.
package action

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/sethvargo/go-githubactions"
	"github.com/tailgate-ci/tailgate/internal/ghapi"
)

// Exit codes (shared/STYLE.md).
const (
	ExitPass         = 0
	ExitError        = 1
	ExitUsage        = 2
	ExitGateFailed   = 3
	ExitInconclusive = 4
)

// Defaults for inputs left empty.
const (
	DefaultRules        = "perf-rules/bidder.yaml"
	DefaultFailOn       = FailOnInconclusive
	DefaultCommentMode  = CommentSticky
	DefaultArtifactsDir = "tailgate-out"
)

// FailOn values: which verdicts fail the step and the commit status.
const (
	FailOnFail         = "fail"         // only a failed gate blocks
	FailOnInconclusive = "inconclusive" // fail and inconclusive both block
)

// Comment modes.
const (
	CommentSticky = "sticky" // one comment per PR, edited in place
	CommentOff    = "off"
)

// Verdicts as they appear in the gate's result document.
const (
	VerdictPass         = "pass"
	VerdictFail         = "fail"
	VerdictInconclusive = "inconclusive"
	VerdictInvalid      = "invalid"
)

// Inputs are the action's inputs (see action.yml).
type Inputs struct {
	Rules        string
	BaseRef      string
	HeadRef      string
	SLO          time.Duration // 0: the rules' value
	Rate         float64       // 0: the rules' value
	Rounds       int           // 0: the rules' value
	Soak         time.Duration // 0: no soak
	Token        string
	CommentMode  string
	FailOn       string
	AllowForkPRs bool
	ArtifactsDir string
	// Profiles is a directory of profile evidence written by an earlier
	// step (`tailgate profile --analyze`: profiles.json, flame diff sets);
	// "": none, the comment says why.
	Profiles string
	// Experiment is the result document of an earlier `tailgate
	// experiment` (per-fix attribution); "": none.
	Experiment string
}

// PullRequest is what the action needs from the event payload.
type PullRequest struct {
	Number   int
	BaseSHA  string
	HeadSHA  string
	BaseRef  string
	HeadRef  string
	HeadRepo string
	BaseRepo string
	Fork     bool
}

// Request is handed to the pipeline.
type Request struct {
	Inputs    Inputs
	PR        PullRequest
	Workspace string
	Repo      string // owner/name
	RunURL    string // link to this workflow run, for the status
}

// Outcome is what the pipeline reports back.
type Outcome struct {
	Verdict    string // pass, fail, inconclusive, invalid
	Reasons    []string
	BaseP50    time.Duration
	BaseP99    time.Duration
	HeadP50    time.Duration
	HeadP99    time.Duration
	Comment    string // PR comment markdown (also the step summary)
	ReportPath string
}

// Pipeline builds, measures, profiles and gates; it is the tailgate engine.
type Pipeline func(ctx context.Context, req Request) (*Outcome, error)

// Env is the process environment the action reads, as a function so tests
// feed a strict fake.
type Env func(string) string

// Main runs the action and returns the process exit code. Diagnostics go to
// stdout as workflow commands.
func Main(ctx context.Context, getenv Env, stdout io.Writer, httpClient *http.Client, pipeline Pipeline) int {
	a := githubactions.New(githubactions.WithGetenv(githubactions.GetenvFunc(getenv)), githubactions.WithWriter(stdout))
	code, err := run(ctx, a, getenv, httpClient, pipeline)
	if err != nil {
		a.Errorf("tailgate: %s", err)
	}
	return code
}

// UsageError is a configuration problem (bad input, wrong event).
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

func usagef(format string, a ...any) error { return &UsageError{Err: fmt.Errorf(format, a...)} }

func run(ctx context.Context, a *githubactions.Action, getenv Env, httpClient *http.Client, pipeline Pipeline) (code int, err error) {
	defer func() {
		// go-githubactions panics when an environment file cannot be
		// written; report that as an error, not a crash.
		if r := recover(); r != nil {
			code, err = ExitError, fmt.Errorf("writing workflow files: %v", r)
		}
	}()
	in, err := ReadInputs(a.GetInput)
	if err != nil {
		return ExitUsage, err
	}
	if in.Token != "" {
		a.AddMask(in.Token)
	}
	gctx, err := a.Context()
	if err != nil {
		return ExitUsage, fmt.Errorf("reading the GitHub context: %w", err)
	}
	for _, k := range []string{"GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY"} {
		if getenv(k) == "" {
			return ExitUsage, usagef("%s is not set: not running inside GitHub Actions (or act)", k)
		}
	}
	pr, err := ReadPullRequest(gctx.EventName, gctx.Event)
	if err != nil {
		return ExitUsage, err
	}
	if pr.Fork && !in.AllowForkPRs {
		switch {
		case gctx.EventName == "pull_request_target":
			// pull_request_target runs with the base repository's
			// write token and secrets: building the fork's head there is
			// the classic "pwn request", on any runner.
			return ExitUsage, usagef("refusing pull request #%d from fork %s on pull_request_target: the fork's code would be built and run with the base repository's write token and secrets; trigger on pull_request, or set allow-fork-prs: true to opt in", pr.Number, pr.HeadRepo)
		case getenv("RUNNER_ENVIRONMENT") != "github-hosted":
			return ExitUsage, usagef("refusing pull request #%d from fork %s on a self-hosted runner: it would run untrusted code with root eBPF privileges; set allow-fork-prs: true to opt in", pr.Number, pr.HeadRepo)
		}
	}
	if in.BaseRef == "" {
		in.BaseRef = pr.BaseSHA
	}
	if in.HeadRef == "" {
		in.HeadRef = pr.HeadSHA
	}
	repo := gctx.Repository
	runURL := ""
	if gctx.ServerURL != "" && repo != "" && gctx.RunID != 0 {
		runURL = fmt.Sprintf("%s/%s/actions/runs/%d", strings.TrimSuffix(gctx.ServerURL, "/"), repo, gctx.RunID)
	}

	var gh *ghapi.Client
	if in.CommentMode != CommentOff || in.Token != "" {
		gh, err = ghapi.New(repo, ghapi.Options{BaseURL: gctx.APIURL, Token: in.Token, HTTPClient: httpClient})
		if err != nil {
			return ExitUsage, err
		}
	}
	if gh != nil {
		if err := gh.SetStatus(ctx, pr.HeadSHA, ghapi.StatePending, "measuring tail latency", runURL); err != nil {
			a.Warningf("could not set the pending commit status: %s", err)
		}
	}

	// The pipeline builds and runs the PR's code: it gets no token, and
	// the tokens leave the process environment its children inherit.
	pin := in
	pin.Token = ""
	scrubSecretEnv()
	out, perr := pipeline(ctx, Request{Inputs: pin, PR: pr, Workspace: gctx.Workspace, Repo: repo, RunURL: runURL})
	if perr != nil {
		out = &Outcome{Verdict: VerdictInvalid, Reasons: []string{perr.Error()}}
		if out.Comment == "" {
			out.Comment = "### tailgate: error\n\nThe latency gate could not produce a verdict: " + EscapeMarkdown(perr.Error()) + "\n"
		}
	}
	state, desc, code := Decide(out, in.FailOn)

	if gh != nil && in.CommentMode == CommentSticky && out.Comment != "" {
		c, err := gh.UpsertComment(ctx, pr.Number, out.Comment)
		if err != nil {
			a.Warningf("could not post the PR comment (the verdict stands): %s", err)
		} else {
			a.SetOutput("comment-url", c.URL)
		}
	}
	if gh != nil {
		if err := gh.SetStatus(ctx, pr.HeadSHA, state, desc, runURL); err != nil {
			a.Warningf("could not set the commit status %s: %s", ghapi.StatusContext, err)
		}
	}
	a.SetOutput("verdict", out.Verdict)
	a.SetOutput("base-p50-ms", ms(out.BaseP50))
	a.SetOutput("base-p99-ms", ms(out.BaseP99))
	a.SetOutput("head-p50-ms", ms(out.HeadP50))
	a.SetOutput("head-p99-ms", ms(out.HeadP99))
	a.SetOutput("report-path", out.ReportPath)
	if out.Comment != "" {
		a.AddStepSummary(out.Comment)
	}
	switch {
	case out.Verdict == VerdictFail:
		a.Errorf("tail-latency gate failed: %s", desc)
	case out.Verdict == VerdictInconclusive:
		a.Warningf("tail-latency gate inconclusive: %s", desc)
	case out.Verdict == VerdictInvalid:
		a.Errorf("tail-latency run invalid: %s", desc)
	}
	if perr != nil {
		return ExitError, fmt.Errorf("pipeline: %w", perr)
	}
	return code, nil
}

// SecretEnv are the environment variables that carry tokens into a step:
// the action's github-token input (mapped by action.yml), a GITHUB_TOKEN a
// workflow may export, and the runner's own tokens.
var SecretEnv = []string{"INPUT_GITHUB-TOKEN", "GITHUB_TOKEN", "GH_TOKEN", "ACTIONS_RUNTIME_TOKEN", "ACTIONS_ID_TOKEN_REQUEST_TOKEN"}

// scrubSecretEnv removes SecretEnv from the process environment, which the
// builds (go build of the PR's code) and the services inherit.
func scrubSecretEnv() {
	for _, k := range SecretEnv {
		os.Unsetenv(k)
	}
}

// Decide maps a verdict to the commit status and exit code. An invalid run
// or an unknown verdict is an error, never a pass.
func Decide(out *Outcome, failOn string) (ghapi.State, string, int) {
	reason := strings.Join(out.Reasons, "; ")
	summary := func(s string) string {
		if reason != "" {
			return s + ": " + reason
		}
		return s
	}
	switch out.Verdict {
	case VerdictPass:
		return ghapi.StateSuccess, summary(fmt.Sprintf("pass (p99 %s ms)", ms(out.HeadP99))), ExitPass
	case VerdictFail:
		return ghapi.StateFailure, summary("fail"), ExitGateFailed
	case VerdictInconclusive:
		if failOn == FailOnFail {
			return ghapi.StateSuccess, summary("inconclusive (not blocking: fail-on=fail)"), ExitPass
		}
		return ghapi.StateFailure, summary("inconclusive"), ExitInconclusive
	case VerdictInvalid:
		return ghapi.StateError, summary("invalid run"), ExitError
	default:
		return ghapi.StateError, fmt.Sprintf("unknown verdict %q", out.Verdict), ExitError
	}
}

func ms(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64)
}

// ReadInputs reads and validates the action inputs through getInput
// (githubactions.Action.GetInput, which reads INPUT_<NAME>).
func ReadInputs(getInput func(string) string) (Inputs, error) {
	in := Inputs{
		Rules:        getInput("rules"),
		BaseRef:      getInput("base-ref"),
		HeadRef:      getInput("head-ref"),
		Token:        getInput("github-token"),
		CommentMode:  getInput("comment-mode"),
		FailOn:       getInput("fail-on"),
		ArtifactsDir: getInput("artifacts-dir"),
		Profiles:     getInput("profiles"),
		Experiment:   getInput("experiment"),
	}
	if in.Rules == "" {
		in.Rules = DefaultRules
	}
	if in.FailOn == "" {
		in.FailOn = DefaultFailOn
	}
	if in.CommentMode == "" {
		in.CommentMode = DefaultCommentMode
	}
	if in.ArtifactsDir == "" {
		in.ArtifactsDir = DefaultArtifactsDir
	}
	var errs []error
	if in.FailOn != FailOnFail && in.FailOn != FailOnInconclusive {
		errs = append(errs, usagef("input fail-on: unknown value %q (want %q or %q)", in.FailOn, FailOnFail, FailOnInconclusive))
	}
	if in.CommentMode != CommentSticky && in.CommentMode != CommentOff {
		errs = append(errs, usagef("input comment-mode: unknown value %q (want %q or %q)", in.CommentMode, CommentSticky, CommentOff))
	}
	if in.CommentMode != CommentOff && in.Token == "" {
		errs = append(errs, usagef("input github-token: missing (needed to post the comment and the commit status; pass ${{ github.token }} or set comment-mode: off)"))
	}
	if st, err := os.Stat(in.Rules); err != nil {
		errs = append(errs, usagef("input rules: %s: %v", in.Rules, errors.Unwrap(err)))
	} else if st.IsDir() {
		errs = append(errs, usagef("input rules: %s is a directory, want a perf-rules YAML file", in.Rules))
	}
	if in.Profiles != "" {
		if st, err := os.Stat(in.Profiles); err != nil {
			errs = append(errs, usagef("input profiles: %s: %v", in.Profiles, errors.Unwrap(err)))
		} else if !st.IsDir() {
			errs = append(errs, usagef("input profiles: %s is not a directory (want the output directory of tailgate profile --analyze)", in.Profiles))
		}
	}
	if in.Experiment != "" {
		if st, err := os.Stat(in.Experiment); err != nil {
			errs = append(errs, usagef("input experiment: %s: %v", in.Experiment, errors.Unwrap(err)))
		} else if st.IsDir() {
			errs = append(errs, usagef("input experiment: %s is a directory, want the result.json of tailgate experiment", in.Experiment))
		}
	}
	if v := getInput("slo"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			errs = append(errs, usagef("input slo: %q is not a positive duration (e.g. 25ms)", v))
		}
		in.SLO = d
	}
	if v := getInput("soak-duration"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			errs = append(errs, usagef("input soak-duration: %q is not a duration (e.g. 1h, or 0 for none)", v))
		}
		in.Soak = d
	}
	if v := getInput("rate"); v != "" {
		r, err := strconv.ParseFloat(strings.TrimSuffix(v, "/s"), 64)
		if err != nil || r <= 0 {
			errs = append(errs, usagef("input rate: %q is not a positive request rate (e.g. 1500 or 1500/s)", v))
		}
		in.Rate = r
	}
	if v := getInput("rounds"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			errs = append(errs, usagef("input rounds: %q is not a positive integer", v))
		}
		in.Rounds = n
	}
	if v := getInput("allow-fork-prs"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, usagef("input allow-fork-prs: %q is not true or false", v))
		}
		in.AllowForkPRs = b
	}
	return in, errors.Join(errs...)
}

// ReadPullRequest extracts the PR from a pull_request(_target) event payload.
func ReadPullRequest(eventName string, event map[string]any) (PullRequest, error) {
	if eventName != "pull_request" && eventName != "pull_request_target" {
		return PullRequest{}, usagef("event %q is not a pull request: tailgate gates pull requests (trigger the workflow on pull_request)", eventName)
	}
	prm, ok := event["pull_request"].(map[string]any)
	if !ok {
		return PullRequest{}, usagef("event payload has no pull_request object (GITHUB_EVENT_PATH missing or not a PR event)")
	}
	var pr PullRequest
	num, ok := prm["number"].(float64)
	if !ok {
		if n, ok2 := event["number"].(float64); ok2 {
			num, ok = n, true
		}
	}
	if !ok || num <= 0 {
		return PullRequest{}, usagef("event payload: pull_request.number missing")
	}
	pr.Number = int(num)
	head, _ := prm["head"].(map[string]any)
	base, _ := prm["base"].(map[string]any)
	pr.HeadSHA, _ = head["sha"].(string)
	pr.BaseSHA, _ = base["sha"].(string)
	pr.HeadRef, _ = head["ref"].(string)
	pr.BaseRef, _ = base["ref"].(string)
	if pr.HeadSHA == "" || pr.BaseSHA == "" {
		return PullRequest{}, usagef("event payload: pull_request.head.sha or base.sha missing")
	}
	hr, _ := head["repo"].(map[string]any)
	br, _ := base["repo"].(map[string]any)
	pr.HeadRepo, _ = hr["full_name"].(string)
	pr.BaseRepo, _ = br["full_name"].(string)
	fork, _ := hr["fork"].(bool)
	// A deleted fork has head.repo = null: treat it as a fork.
	pr.Fork = fork || hr == nil || (pr.HeadRepo != "" && pr.BaseRepo != "" && pr.HeadRepo != pr.BaseRepo)
	return pr, nil
}

// EscapeMarkdown neutralises characters that would let a string from a
// binary, branch or repository inject markdown or HTML into a comment.
func EscapeMarkdown(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '\\', '`', '*', '_', '{', '}', '[', ']', '(', ')', '#', '+', '!', '|', '~', '>', '<', '&', '"', '\'':
			fmt.Fprintf(&b, "&#%d;", r)
		case '\n', '\r':
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
