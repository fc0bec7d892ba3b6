package ghapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeGitHub is an in-memory issue-comments and statuses API that checks
// every request's method, path, auth and body.
type fakeGitHub struct {
	t        *testing.T
	mu       sync.Mutex
	comments []map[string]any
	statuses []map[string]any
	nextID   int64
	perPage  int
	// fail is consulted before each request; a non-zero status is returned as is.
	fail  func(r *http.Request, n int) (status int, header http.Header, body string)
	calls []string
	// bodies holds each call's decoded JSON body (nil for GET), failed
	// attempts included, parallel to calls.
	bodies []map[string]any
}

func newFake(t *testing.T) (*fakeGitHub, *httptest.Server) {
	f := &fakeGitHub{t: t, nextID: 100, perPage: 100}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeGitHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, r.Method+" "+r.URL.Path)
	if got := r.Header.Get("Authorization"); got != "Bearer s3cret" {
		f.t.Errorf("%s %s: Authorization = %q", r.Method, r.URL.Path, got)
	}
	var in map[string]any
	if r.Method == http.MethodPost || r.Method == http.MethodPatch {
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			f.t.Errorf("%s %s: body is not JSON: %v", r.Method, r.URL.Path, err)
		}
	}
	f.bodies = append(f.bodies, in)
	if f.fail != nil {
		if st, h, body := f.fail(r, len(f.calls)); st != 0 {
			for k, v := range h {
				w.Header()[k] = v
			}
			w.WriteHeader(st)
			io.WriteString(w, body)
			return
		}
	}
	const issues = "/repos/acme/bidder/issues/"
	switch {
	case r.Method == http.MethodGet && r.URL.Path == issues+"7/comments":
		page := 1
		fmt.Sscan(r.URL.Query().Get("page"), &page)
		if pp := r.URL.Query().Get("per_page"); pp != "100" {
			f.t.Errorf("per_page = %q, want 100", pp)
		}
		lo := (page - 1) * f.perPage
		hi := min(lo+f.perPage, len(f.comments))
		if hi < len(f.comments) {
			w.Header().Set("Link", fmt.Sprintf(`<http://%s%s?page=%d&per_page=100>; rel="next"`, r.Host, r.URL.Path, page+1))
		}
		json.NewEncoder(w).Encode(f.comments[min(lo, len(f.comments)):hi])
	case r.Method == http.MethodPost && r.URL.Path == issues+"7/comments":
		f.nextID++
		c := map[string]any{"id": f.nextID, "body": in["body"], "html_url": fmt.Sprintf("https://gh/acme/bidder/pull/7#issuecomment-%d", f.nextID)}
		f.comments = append(f.comments, c)
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(c)
	case r.Method == http.MethodPatch && strings.HasPrefix(r.URL.Path, issues+"comments/"):
		var id int64
		fmt.Sscan(strings.TrimPrefix(r.URL.Path, issues+"comments/"), &id)
		for _, c := range f.comments {
			if c["id"].(int64) == id {
				c["body"] = in["body"]
				json.NewEncoder(w).Encode(c)
				return
			}
		}
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"message":"Not Found"}`)
	case r.Method == http.MethodPost && r.URL.Path == "/repos/acme/bidder/statuses/abc123":
		f.statuses = append(f.statuses, in)
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(in)
	default:
		f.t.Errorf("unexpected request %s %s", r.Method, r.URL.Path)
		w.WriteHeader(http.StatusNotFound)
	}
}

// call is one expected request: method and path, and the exact JSON body
// (nil: no body).
type call struct {
	method, path string
	body         map[string]any
}

// checkCalls fails unless the fake saw exactly want, in order, with the
// same bodies.
func (f *fakeGitHub) checkCalls(t *testing.T, want ...call) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) != len(want) {
		t.Fatalf("%d calls:\n%s\nwant %d", len(f.calls), strings.Join(f.calls, "\n"), len(want))
	}
	for i, w := range want {
		if got := f.calls[i]; got != w.method+" "+w.path {
			t.Errorf("call %d = %s, want %s %s", i+1, got, w.method, w.path)
		}
		got, _ := json.Marshal(f.bodies[i])
		exp, _ := json.Marshal(w.body)
		if string(got) != string(exp) {
			t.Errorf("call %d (%s) body = %s, want %s", i+1, f.calls[i], got, exp)
		}
	}
}

func newClient(t *testing.T, srv *httptest.Server) *Client {
	t.Helper()
	c, err := New("acme/bidder", Options{BaseURL: srv.URL, Token: "s3cret", Backoff: time.Millisecond, MaxAttempts: 4})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestUpsertCommentCreatesOnceThenEdits(t *testing.T) {
	f, srv := newFake(t)
	// Someone else's comment must not be touched.
	f.comments = append(f.comments, map[string]any{"id": int64(1), "body": "LGTM"})
	c := newClient(t, srv)
	ctx := context.Background()

	first, err := c.UpsertComment(ctx, 7, "verdict: fail")
	if err != nil {
		t.Fatal(err)
	}
	if !first.Created || first.URL == "" {
		t.Fatalf("first upsert = %+v, want created with URL", first)
	}
	second, err := c.UpsertComment(ctx, 7, "verdict: pass")
	if err != nil {
		t.Fatal(err)
	}
	if second.Created || second.ID != first.ID {
		t.Fatalf("second upsert = %+v, want edit of %d", second, first.ID)
	}
	if len(f.comments) != 2 {
		t.Fatalf("%d comments, want 2 (other + sticky)", len(f.comments))
	}
	if b := f.comments[1]["body"].(string); !strings.HasPrefix(b, Marker) || !strings.Contains(b, "verdict: pass") {
		t.Fatalf("sticky body = %q", b)
	}
	if f.comments[0]["body"] != "LGTM" {
		t.Fatal("foreign comment was modified")
	}
	f.checkCalls(t,
		call{"GET", "/repos/acme/bidder/issues/7/comments", nil},
		call{"POST", "/repos/acme/bidder/issues/7/comments", map[string]any{"body": Marker + "\nverdict: fail"}},
		call{"GET", "/repos/acme/bidder/issues/7/comments", nil},
		call{"PATCH", "/repos/acme/bidder/issues/comments/101", map[string]any{"body": Marker + "\nverdict: pass"}},
	)
}

func TestUpsertCommentFindsMarkerOnLaterPage(t *testing.T) {
	f, srv := newFake(t)
	f.perPage = 2
	for i := int64(1); i <= 5; i++ {
		body := fmt.Sprintf("comment %d", i)
		if i == 5 {
			body = Marker + "\nold verdict"
		}
		f.comments = append(f.comments, map[string]any{"id": i, "body": body})
	}
	got, err := newClient(t, srv).UpsertComment(context.Background(), 7, "new verdict")
	if err != nil {
		t.Fatal(err)
	}
	if got.Created || got.ID != 5 {
		t.Fatalf("upsert = %+v, want edit of comment 5 on page 3", got)
	}
	if len(f.comments) != 5 {
		t.Fatalf("a duplicate was created: %d comments", len(f.comments))
	}
}

func TestRetriesServerErrorsWithoutDuplicating(t *testing.T) {
	f, srv := newFake(t)
	// The create succeeds on the server but its response is a 502: the
	// retry must re-list, find the comment and edit it.
	created := false
	f.fail = func(r *http.Request, n int) (int, http.Header, string) {
		if r.Method == http.MethodPost && !created {
			created = true
			f.nextID++
			f.comments = append(f.comments, map[string]any{"id": f.nextID, "body": Marker + "\nx"})
			return http.StatusBadGateway, nil, `{"message":"bad gateway"}`
		}
		return 0, nil, ""
	}
	got, err := newClient(t, srv).UpsertComment(context.Background(), 7, "verdict")
	if err != nil {
		t.Fatal(err)
	}
	if len(f.comments) != 1 || got.Created {
		t.Fatalf("comments=%d upsert=%+v; want one comment, edited on retry", len(f.comments), got)
	}
	body := map[string]any{"body": Marker + "\nverdict"}
	f.checkCalls(t,
		call{"GET", "/repos/acme/bidder/issues/7/comments", nil},
		call{"POST", "/repos/acme/bidder/issues/7/comments", body}, // 502
		call{"GET", "/repos/acme/bidder/issues/7/comments", nil},   // retry re-lists
		call{"PATCH", "/repos/acme/bidder/issues/comments/101", body},
	)
}

func TestSecondaryRateLimitIsRetried(t *testing.T) {
	f, srv := newFake(t)
	f.fail = func(r *http.Request, n int) (int, http.Header, string) {
		if n == 1 {
			return http.StatusForbidden, http.Header{"Retry-After": {"1"}},
				`{"message":"You have exceeded a secondary rate limit","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}`
		}
		return 0, nil, ""
	}
	start := time.Now()
	if err := newClient(t, srv).SetStatus(context.Background(), "abc123", StateFailure, "p99 31.2ms > 25ms", "https://ci/run/1"); err != nil {
		t.Fatal(err)
	}
	if len(f.statuses) != 1 {
		t.Fatalf("%d statuses, want 1", len(f.statuses))
	}
	if waited := time.Since(start); waited < 900*time.Millisecond {
		t.Fatalf("retried after %v, want to honour Retry-After: 1", waited)
	}
	st := f.statuses[0]
	if st["state"] != "failure" || st["context"] != StatusContext || st["target_url"] != "https://ci/run/1" {
		t.Fatalf("status body = %v", st)
	}
	// The refused attempt and its retry carry the same body.
	body := map[string]any{"state": "failure", "context": "tailgate/latency", "description": "p99 31.2ms > 25ms", "target_url": "https://ci/run/1"}
	f.checkCalls(t,
		call{"POST", "/repos/acme/bidder/statuses/abc123", body}, // 403 secondary rate limit
		call{"POST", "/repos/acme/bidder/statuses/abc123", body},
	)
}

func TestSecondaryRateLimitWithoutRetryAfterBacksOff(t *testing.T) {
	// A secondary rate limit can come without Retry-After (GitHub then
	// asks to wait and back off): the upsert is retried from the listing.
	f, srv := newFake(t)
	f.fail = func(r *http.Request, n int) (int, http.Header, string) {
		if r.Method == http.MethodGet && n == 1 {
			return http.StatusForbidden, nil,
				`{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again.","documentation_url":"https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}`
		}
		return 0, nil, ""
	}
	got, err := newClient(t, srv).UpsertComment(context.Background(), 7, Marker+"\nfirst")
	if err != nil {
		t.Fatal(err)
	}
	if !got.Created || got.ID != 101 {
		t.Fatalf("upsert = %+v, want comment 101 created", got)
	}
	f.checkCalls(t,
		call{"GET", "/repos/acme/bidder/issues/7/comments", nil}, // 403 secondary rate limit
		call{"GET", "/repos/acme/bidder/issues/7/comments", nil},
		call{"POST", "/repos/acme/bidder/issues/7/comments", map[string]any{"body": Marker + "\nfirst"}},
	)
}

func TestPermanentErrorsAreNotRetried(t *testing.T) {
	f, srv := newFake(t)
	f.fail = func(r *http.Request, n int) (int, http.Header, string) {
		return http.StatusForbidden, nil, `{"message":"Resource not accessible by integration"}`
	}
	err := newClient(t, srv).SetStatus(context.Background(), "abc123", StateSuccess, "ok", "")
	if err == nil || !strings.Contains(err.Error(), "Resource not accessible") {
		t.Fatalf("err = %v, want the 403 message", err)
	}
	if len(f.calls) != 1 {
		t.Fatalf("%d calls, want 1 (403 without rate-limit signal is permanent)", len(f.calls))
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Fatal("error leaks the token")
	}
}

func TestRetriesGiveUp(t *testing.T) {
	f, srv := newFake(t)
	f.fail = func(*http.Request, int) (int, http.Header, string) {
		return http.StatusServiceUnavailable, nil, `{"message":"unavailable"}`
	}
	err := newClient(t, srv).SetStatus(context.Background(), "abc123", StateError, "invalid run", "")
	if err == nil {
		t.Fatal("want error after exhausting attempts")
	}
	if len(f.calls) != 4 {
		t.Fatalf("%d calls, want MaxAttempts=4", len(f.calls))
	}
	body := map[string]any{"state": "error", "context": "tailgate/latency", "description": "invalid run"}
	f.checkCalls(t,
		call{"POST", "/repos/acme/bidder/statuses/abc123", body},
		call{"POST", "/repos/acme/bidder/statuses/abc123", body},
		call{"POST", "/repos/acme/bidder/statuses/abc123", body},
		call{"POST", "/repos/acme/bidder/statuses/abc123", body},
	)
}

func TestStatusDescriptionTruncated(t *testing.T) {
	f, srv := newFake(t)
	long := strings.Repeat("é", 300)
	if err := newClient(t, srv).SetStatus(context.Background(), "abc123", StateSuccess, long, ""); err != nil {
		t.Fatal(err)
	}
	if got := []rune(f.statuses[0]["description"].(string)); len(got) != maxDescription {
		t.Fatalf("description has %d runes, want %d", len(got), maxDescription)
	}
}

func TestBadInput(t *testing.T) {
	_, srv := newFake(t)
	for _, tc := range []struct {
		name string
		do   func() error
		want string
	}{
		{"missing token", func() error { _, err := New("acme/bidder", Options{BaseURL: srv.URL}); return err }, "missing GitHub token"},
		{"bad repository", func() error { _, err := New("acme", Options{Token: "x"}); return err }, `repository "acme"`},
		{"bad base URL", func() error { _, err := New("a/b", Options{Token: "x", BaseURL: "::"}); return err }, "GITHUB_API_URL"},
		{"bad state", func() error {
			return newClient(t, srv).SetStatus(context.Background(), "abc123", "meh", "", "")
		}, `state "meh"`},
		{"bad PR", func() error { _, err := newClient(t, srv).UpsertComment(context.Background(), 0, "x"); return err }, "not positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want containing %q", err, tc.want)
			}
		})
	}
	if _, err := New("a/b", Options{}); !errors.Is(err, ErrMissingToken) {
		t.Fatalf("err = %v, want ErrMissingToken", err)
	}
}

func TestEnterpriseBaseURL(t *testing.T) {
	// GHES serves the API under /api/v3; paths must be joined below it.
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.URL.Path
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, `{}`)
	}))
	defer srv.Close()
	c, err := New("acme/bidder", Options{BaseURL: srv.URL + "/api/v3", Token: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetStatus(context.Background(), "abc123", StateSuccess, "ok", ""); err != nil {
		t.Fatal(err)
	}
	if got != "/api/v3/repos/acme/bidder/statuses/abc123" {
		t.Fatalf("path = %q", got)
	}
}
