package load

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/tailgate-ci/tailgate/bidder/reqgen"
)

// Target file formats, the two vegeta's CLI accepts (-format).
const (
	FormatHTTP = vegeta.HTTPTargetFormat // "http"
	FormatJSON = vegeta.JSONTargetFormat // "json"
)

// ReqgenTargeter returns a targeter that POSTs the bidder's deterministic
// OpenRTB requests for seed to url. Request i of the attack carries
// reqgen request i (by the order hits ask for targets), so two runs with the
// same seed send the same bodies. It is safe for concurrent use.
func ReqgenTargeter(url string, seed int64, opts reqgen.Options) (vegeta.Targeter, error) {
	if err := checkURL(url); err != nil {
		return nil, fmt.Errorf("reqgen targets: %w", err)
	}
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("reqgen targets: %w", err)
	}
	gen := reqgen.New(seed, opts)
	hdr := http.Header{
		"Content-Type":      []string{"application/json"},
		"X-Openrtb-Version": []string{"2.6"},
	}
	var next atomic.Uint64
	return func(t *vegeta.Target) error {
		if t == nil {
			return vegeta.ErrNilTarget
		}
		i := next.Add(1) - 1
		t.Method = http.MethodPost
		t.URL = url
		t.Header = hdr // read-only: Target.Request copies header values
		t.Body = gen.AppendJSONAt(nil, i)
		return nil
	}, nil
}

// FileTargeter reads a vegeta targets file in format "http" (the default
// when format is empty) or "json", eagerly, and returns a targeter that
// round-robins over its targets as vegeta's CLI does. Errors name the file
// and line: "targets.txt:7: bad header ...".
//
// HTTP format: a request line "METHOD URL", then optional "Name: value"
// header lines and an optional "@path" body line; a blank line (or the next
// request line) ends a target; "#" starts a comment line. A relative body
// path is resolved against the targets file's directory (vegeta resolves it
// against the working directory; both agree when vegeta runs from there).
//
// JSON format: one object per line, {"method", "url", "header", "body"
// (base64)}, decoded with vegeta's own decoder.
func FileTargeter(path, format string) (vegeta.Targeter, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read targets: %w", err)
	}
	var tgts []vegeta.Target
	switch format {
	case "", FormatHTTP:
		tgts, err = parseHTTPTargets(path, data)
	case FormatJSON:
		tgts, err = parseJSONTargets(path, data)
	default:
		return nil, fmt.Errorf("read targets %s: unknown format %q (want %q or %q)", path, format, FormatHTTP, FormatJSON)
	}
	if err != nil {
		return nil, err
	}
	if len(tgts) == 0 {
		return nil, fmt.Errorf("%s: no targets", path)
	}
	return vegeta.NewStaticTargeter(tgts...), nil
}

// methodLine matches vegeta's request-line rule: an upper-case word and a
// space.
var methodLine = regexp.MustCompile(`^[A-Z]+\s`)

func parseHTTPTargets(path string, data []byte) ([]vegeta.Target, error) {
	var (
		tgts []vegeta.Target
		cur  *vegeta.Target
		done bool // cur's body was set: the target is complete
	)
	flush := func() {
		if cur != nil {
			tgts = append(tgts, *cur)
		}
		cur, done = nil, false
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for ln := 1; sc.Scan(); ln++ {
		line := strings.TrimSpace(sc.Text())
		errf := func(format string, a ...any) error {
			return fmt.Errorf("%s:%d: %s", path, ln, fmt.Sprintf(format, a...))
		}
		switch {
		case line == "":
			flush()
			continue
		case strings.HasPrefix(line, "#"):
			continue
		case cur == nil || done || methodLine.MatchString(line):
			flush()
			method, rawURL, ok := strings.Cut(line, " ")
			if !ok || !methodLine.MatchString(line) {
				return nil, errf("bad target %q: want \"METHOD URL\"", line)
			}
			rawURL = strings.TrimSpace(rawURL)
			if err := checkURL(rawURL); err != nil {
				return nil, errf("%v", err)
			}
			cur = &vegeta.Target{Method: method, URL: rawURL, Header: http.Header{}}
		case strings.HasPrefix(line, "@"):
			bp := line[1:]
			if bp == "" {
				return nil, errf("bad body: empty path after @")
			}
			if !filepath.IsAbs(bp) {
				bp = filepath.Join(filepath.Dir(path), bp)
			}
			body, err := os.ReadFile(bp)
			if err != nil {
				return nil, errf("bad body: %v", err)
			}
			cur.Body, done = body, true
		default:
			k, v, ok := strings.Cut(line, ":")
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			if !ok || k == "" || v == "" {
				return nil, errf("bad header %q: want \"Name: value\"", line)
			}
			// Keep the key as written: vegeta does not canonicalize, since
			// some services want case-sensitive headers.
			cur.Header[k] = append(cur.Header[k], v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read targets %s: %w", path, err)
	}
	flush()
	return tgts, nil
}

func parseJSONTargets(path string, data []byte) ([]vegeta.Target, error) {
	var tgts []vegeta.Target
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for ln := 1; sc.Scan(); ln++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var t vegeta.Target
		// vegeta's decoder reads up to a newline; give it one line.
		one := append(append(make([]byte, 0, len(line)+1), line...), '\n')
		if err := vegeta.NewJSONTargeter(bytes.NewReader(one), nil, nil)(&t); err != nil {
			return nil, fmt.Errorf("%s:%d: %v", path, ln, err)
		}
		if err := checkURL(t.URL); err != nil {
			return nil, fmt.Errorf("%s:%d: url: %v", path, ln, err)
		}
		if !methodLine.MatchString(t.Method + " ") {
			return nil, fmt.Errorf("%s:%d: method: %q is not an upper-case HTTP method", path, ln, t.Method)
		}
		if len(t.Header) == 0 {
			t.Header = http.Header{}
		}
		tgts = append(tgts, t)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read targets %s: %w", path, err)
	}
	return tgts, nil
}

// checkURL accepts absolute http(s) URLs with a host.
func checkURL(raw string) error {
	u, err := url.ParseRequestURI(raw)
	if err != nil {
		return fmt.Errorf("bad URL %q: %v", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("bad URL %q: scheme must be http or https", raw)
	}
	if u.Host == "" {
		return fmt.Errorf("bad URL %q: no host", raw)
	}
	return nil
}
