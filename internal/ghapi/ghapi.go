// Package ghapi is tailgate's only importer of go-github: it keeps one sticky
// PR comment per pull request (found by a hidden marker and edited in place),
// sets the blocking commit status, and retries GitHub's transient failures
// (5xx and rate limits) with backoff.
package ghapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"
)

// Defaults for Options' zero values.
const (
	DefaultBaseURL     = "https://api.github.com/"
	DefaultMaxAttempts = 5
	DefaultBackoff     = time.Second
	DefaultMaxBackoff  = 30 * time.Second
	// DefaultMaxRateWait caps how long a primary rate limit may stall us.
	DefaultMaxRateWait = 2 * time.Minute
	// StatusContext is the commit-status context branch protection can require.
	StatusContext = "tailgate/latency"
	// Marker identifies tailgate's sticky comment; it is invisible when rendered.
	Marker = "<!-- tailgate:latency-gate -->"
	// maxDescription is GitHub's limit on a commit status description.
	maxDescription = 140
)

// ErrMissingToken is returned by New when no token is configured.
var ErrMissingToken = errors.New("ghapi: missing GitHub token (set the github-token input or GITHUB_TOKEN)")

// Options configures a Client; the zero value of each field means its default.
type Options struct {
	// BaseURL is the REST API root, normally $GITHUB_API_URL
	// (https://api.github.com or https://HOST/api/v3 on GitHub Enterprise Server).
	BaseURL    string
	Token      string
	HTTPClient *http.Client
	// MaxAttempts bounds tries per operation (including the first).
	MaxAttempts int
	// Backoff is the first retry delay; it doubles up to MaxBackoff.
	Backoff     time.Duration
	MaxBackoff  time.Duration
	MaxRateWait time.Duration
}

// Client talks to the GitHub REST API on behalf of one repository.
type Client struct {
	gh    *github.Client
	owner string
	repo  string
	opts  Options
}

// New returns a client for repository "owner/name".
func New(repository string, opts Options) (*Client, error) {
	if strings.TrimSpace(opts.Token) == "" {
		return nil, ErrMissingToken
	}
	owner, name, ok := strings.Cut(repository, "/")
	if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
		return nil, fmt.Errorf("ghapi: repository %q: want owner/name", repository)
	}
	if opts.BaseURL == "" {
		opts.BaseURL = DefaultBaseURL
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.Backoff <= 0 {
		opts.Backoff = DefaultBackoff
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = DefaultMaxBackoff
	}
	if opts.MaxRateWait <= 0 {
		opts.MaxRateWait = DefaultMaxRateWait
	}
	base, err := url.Parse(opts.BaseURL)
	if err != nil || base.Scheme == "" || base.Host == "" {
		return nil, fmt.Errorf("ghapi: GITHUB_API_URL %q is not an absolute URL", opts.BaseURL)
	}
	if !strings.HasSuffix(base.Path, "/") {
		base.Path += "/"
	}
	gh := github.NewClient(opts.HTTPClient).WithAuthToken(opts.Token)
	// Set BaseURL directly: WithEnterpriseURLs would append /api/v3 to
	// hosts (such as a local test server) that already are the API root.
	gh.BaseURL = base
	return &Client{gh: gh, owner: owner, repo: name, opts: opts}, nil
}

// Comment is the result of an upsert.
type Comment struct {
	ID      int64
	URL     string
	Created bool // false when an existing sticky comment was edited
}

// UpsertComment makes body the one sticky tailgate comment on PR number pr:
// it edits the comment carrying Marker if there is one, else creates it.
// The marker is added when body lacks it. Each retry re-lists the comments,
// so a create whose response was lost is edited, never duplicated.
func (c *Client) UpsertComment(ctx context.Context, pr int, body string) (Comment, error) {
	if pr <= 0 {
		return Comment{}, fmt.Errorf("ghapi: pull request number %d is not positive", pr)
	}
	if !strings.Contains(body, Marker) {
		body = Marker + "\n" + body
	}
	var out Comment
	err := c.retry(ctx, "upsert comment", func() error {
		existing, err := c.findSticky(ctx, pr)
		if err != nil {
			return err
		}
		if existing != nil {
			ed, _, err := c.gh.Issues.EditComment(ctx, c.owner, c.repo, existing.GetID(), &github.IssueComment{Body: github.String(body)})
			if err != nil {
				return err
			}
			out = Comment{ID: ed.GetID(), URL: ed.GetHTMLURL(), Created: false}
			return nil
		}
		cr, _, err := c.gh.Issues.CreateComment(ctx, c.owner, c.repo, pr, &github.IssueComment{Body: github.String(body)})
		if err != nil {
			return err
		}
		out = Comment{ID: cr.GetID(), URL: cr.GetHTMLURL(), Created: true}
		return nil
	})
	return out, err
}

// findSticky returns the oldest comment carrying Marker, or nil.
func (c *Client) findSticky(ctx context.Context, pr int) (*github.IssueComment, error) {
	opt := &github.IssueListCommentsOptions{ListOptions: github.ListOptions{PerPage: 100}}
	for {
		cs, resp, err := c.gh.Issues.ListComments(ctx, c.owner, c.repo, pr, opt)
		if err != nil {
			return nil, err
		}
		for _, cm := range cs {
			if strings.Contains(cm.GetBody(), Marker) {
				return cm, nil
			}
		}
		if resp == nil || resp.NextPage == 0 {
			return nil, nil
		}
		opt.Page = resp.NextPage
	}
}

// State is a commit status state.
type State string

// Commit status states.
const (
	StatePending State = "pending"
	StateSuccess State = "success"
	StateFailure State = "failure"
	StateError   State = "error"
)

// SetStatus sets the StatusContext commit status on sha.
func (c *Client) SetStatus(ctx context.Context, sha string, state State, description, targetURL string) error {
	switch state {
	case StatePending, StateSuccess, StateFailure, StateError:
	default:
		return fmt.Errorf("ghapi: commit status state %q: want pending, success, failure or error", state)
	}
	if sha == "" {
		return errors.New("ghapi: commit status: empty SHA")
	}
	if r := []rune(description); len(r) > maxDescription {
		description = string(r[:maxDescription-1]) + "…"
	}
	st := &github.RepoStatus{
		State:       github.String(string(state)),
		Context:     github.String(StatusContext),
		Description: github.String(description),
	}
	if targetURL != "" {
		st.TargetURL = github.String(targetURL)
	}
	return c.retry(ctx, "set commit status", func() error {
		_, _, err := c.gh.Repositories.CreateStatus(ctx, c.owner, c.repo, sha, st)
		return err
	})
}

// retry runs op until it succeeds, fails permanently, or attempts run out.
func (c *Client) retry(ctx context.Context, what string, op func() error) error {
	delay := c.opts.Backoff
	var err error
	for attempt := 1; ; attempt++ {
		err = op()
		if err == nil {
			return nil
		}
		wait, retryable := c.retryAfter(err, delay)
		if !retryable || attempt >= c.opts.MaxAttempts {
			break
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: %w (while retrying after: %v)", what, ctx.Err(), err)
		case <-t.C:
		}
		delay *= 2
		if delay > c.opts.MaxBackoff {
			delay = c.opts.MaxBackoff
		}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// retryAfter classifies err: whether it is transient and how long to wait.
func (c *Client) retryAfter(err error, backoff time.Duration) (time.Duration, bool) {
	var abuse *github.AbuseRateLimitError
	if errors.As(err, &abuse) {
		if abuse.RetryAfter != nil && *abuse.RetryAfter > 0 {
			if *abuse.RetryAfter > c.opts.MaxRateWait {
				return 0, false
			}
			return *abuse.RetryAfter, true
		}
		return backoff, true
	}
	var rate *github.RateLimitError
	if errors.As(err, &rate) {
		w := time.Until(rate.Rate.Reset.Time)
		if w > c.opts.MaxRateWait {
			return 0, false
		}
		if w < backoff {
			w = backoff
		}
		return w, true
	}
	var er *github.ErrorResponse
	if errors.As(err, &er) {
		if er.Response != nil && er.Response.StatusCode >= 500 {
			return backoff, true
		}
		return 0, false
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return backoff, true
	}
	return 0, false
}
