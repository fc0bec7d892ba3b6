package load

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prebid/openrtb/v20/openrtb2"
	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/tailgate-ci/tailgate/bidder/reqgen"
)

// take reads n targets from tr.
func take(t *testing.T, tr vegeta.Targeter, n int) []vegeta.Target {
	t.Helper()
	out := make([]vegeta.Target, n)
	for i := range out {
		if err := tr(&out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestFileTargeterMatchesVegeta(t *testing.T) {
	tests := []struct {
		file, format string
		n            int
		vegeta       func([]byte) vegeta.Targeter
	}{
		{"good.http", FormatHTTP, 4, func(b []byte) vegeta.Targeter { return vegeta.NewHTTPTargeter(bytes.NewReader(b), nil, nil) }},
		{"good.http", "", 4, func(b []byte) vegeta.Targeter { return vegeta.NewHTTPTargeter(bytes.NewReader(b), nil, nil) }},
		{"good.json", FormatJSON, 2, func(b []byte) vegeta.Targeter { return vegeta.NewJSONTargeter(bytes.NewReader(b), nil, nil) }},
	}
	for _, tt := range tests {
		t.Run(tt.file+"/"+tt.format, func(t *testing.T) {
			path := filepath.Join("testdata", "targets", tt.file)
			tr, err := FileTargeter(path, tt.format)
			if err != nil {
				t.Fatal(err)
			}
			ours := take(t, tr, tt.n+1)
			if !ours[tt.n].Equal(&ours[0]) {
				t.Errorf("targeter does not round-robin: target %d = %+v", tt.n, ours[tt.n])
			}
			// vegeta's own reader, run where it resolves "@body.json", must
			// yield the same targets.
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			t.Chdir(filepath.Join("testdata", "targets"))
			want, err := vegeta.ReadAllTargets(tt.vegeta(data))
			if err != nil {
				t.Fatal(err)
			}
			if len(want) != tt.n {
				t.Fatalf("vegeta read %d targets, want %d", len(want), tt.n)
			}
			for i := range want {
				if len(want[i].Header) == 0 {
					want[i].Header = http.Header{}
				}
				if !want[i].Equal(&ours[i]) {
					t.Errorf("target %d:\n ours   %+v\n vegeta %+v", i, ours[i], want[i])
				}
			}
		})
	}
}

func TestFileTargeterErrorsNameTheLine(t *testing.T) {
	tests := []struct {
		file, format string
		want         string
	}{
		{"bad_header.http", "http", "bad_header.http:4: bad header"},
		{"bad_method.http", "http", "bad_method.http:2: bad target"},
		{"bad_url.http", "http", "bad_url.http:3: bad URL"},
		{"missing_body.http", "http", "missing_body.http:2: bad body"},
		{"bad_syntax.json", "json", "bad_syntax.json:2:"},
		{"no_url.json", "json", "no_url.json:3: target: required url is missing"},
		{"bad_scheme.json", "json", "bad_scheme.json:1: url: bad URL"},
		{"empty.http", "http", "empty.http: no targets"},
		{"good.http", "yaml", `unknown format "yaml"`},
		{"absent.http", "http", "absent.http"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			_, err := FileTargeter(filepath.Join("testdata", "targets", tt.file), tt.format)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestReqgenTargeter(t *testing.T) {
	const url = "http://127.0.0.1:8080/openrtb2/bid"
	tr, err := ReqgenTargeter(url, 42, reqgen.Options{Users: 1000})
	if err != nil {
		t.Fatal(err)
	}
	got := take(t, tr, 3)
	gen := reqgen.New(42, reqgen.Options{Users: 1000})
	for i, tg := range got {
		if tg.Method != http.MethodPost || tg.URL != url || tg.Header.Get("Content-Type") != "application/json" {
			t.Errorf("target %d: %s %s %v", i, tg.Method, tg.URL, tg.Header)
		}
		if want := gen.NextJSON(); !bytes.Equal(tg.Body, want) {
			t.Errorf("target %d body differs from reqgen request %d", i, i)
		}
		var br openrtb2.BidRequest
		if err := json.Unmarshal(tg.Body, &br); err != nil || br.ID == "" || len(br.Imp) == 0 {
			t.Errorf("target %d body is not a bid request: %v", i, err)
		}
	}
	for _, bad := range []struct {
		url  string
		opts reqgen.Options
	}{
		{"127.0.0.1:8080/bid", reqgen.Options{}},
		{"ftp://host/", reqgen.Options{}},
		{url, reqgen.Options{Users: -1}},
	} {
		if _, err := ReqgenTargeter(bad.url, 1, bad.opts); err == nil {
			t.Errorf("ReqgenTargeter(%q, %+v) accepted", bad.url, bad.opts)
		}
	}
}

func TestReqgenTargeterConcurrent(t *testing.T) {
	tr, err := ReqgenTargeter("http://127.0.0.1:1/", 7, reqgen.Options{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan map[string]bool)
	for w := 0; w < 4; w++ {
		go func() {
			ids := map[string]bool{}
			for i := 0; i < 200; i++ {
				var tg vegeta.Target
				if err := tr(&tg); err != nil {
					t.Error(err)
					break
				}
				var br openrtb2.BidRequest
				_ = json.Unmarshal(tg.Body, &br)
				ids[br.ID] = true
			}
			done <- ids
		}()
	}
	all := map[string]bool{}
	for w := 0; w < 4; w++ {
		for id := range <-done {
			all[id] = true
		}
	}
	if len(all) != 800 {
		t.Errorf("%d distinct request ids from 800 concurrent draws, want 800 (each index once)", len(all))
	}
}
