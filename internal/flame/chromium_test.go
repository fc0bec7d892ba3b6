package flame

import (
	"bytes"
	"context"
	"encoding/xml"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// findChromium returns the headless browser, or skips the test.
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("chromium not installed (apt-get install -y chromium); the SVGs are not checked in a browser")
	return ""
}

// dumpDOM opens the SVG file in headless Chromium, with query appended to
// the URL, and returns the DOM after the load event, plus any console
// line that reports an uncaught error.
func dumpDOM(t *testing.T, browser, path, query string) (dom []byte, consoleErrors []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	url := "file://" + path
	if query != "" {
		url += "?" + query
	}
	cmd := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+t.TempDir(), "--enable-logging=stderr", "--v=0", "--dump-dom", url)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %s: %v\n%s", url, err, stderr.String())
	}
	for _, l := range strings.Split(stderr.String(), "\n") {
		if strings.Contains(l, "CONSOLE") && strings.Contains(l, "Uncaught") {
			consoleErrors = append(consoleErrors, l)
		}
	}
	return stdout.Bytes(), consoleErrors
}

type domRoot struct {
	Ready   string     `xml:"data-ready,attr"`
	JSError string     `xml:"data-jserror,attr"`
	Frames  string     `xml:"data-frames,attr"`
	Matched string     `xml:"data-matched,attr"`
	Zoomed  string     `xml:"data-zoomed,attr"`
	Scripts []string   `xml:"script"`
	Groups  []svgGroup `xml:"g"`
}

func TestChromiumOpensSVGs(t *testing.T) {
	browser := findChromium(t)
	dir := t.TempDir()
	write := func(name string, render func(*bytes.Buffer) error) string {
		var b bytes.Buffer
		if err := render(&b); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	base, head := mustRead(t, "base.folded"), mustRead(t, "head.folded")
	base.Requests, head.Requests = 4, 8
	d, err := Diff(base, head, NormPerRequest)
	if err != nil {
		t.Fatal(err)
	}
	evil := New("samples")
	evil.Add([]string{"main", `</title></g><script>alert(1)</script>`}, 3)
	evil.Add([]string{"main", `]]><script>document.documentElement.setAttribute("data-jserror","injected")</script>`}, 2)

	tests := []struct {
		name, file, query string
		frames            int
		check             func(t *testing.T, r domRoot)
	}{
		{name: "on-CPU with search and zoom", file: write("base.svg", func(b *bytes.Buffer) error { return RenderSVG(b, base, Options{}) }),
			query: "s=Lookup%7Cfutex&z=5", frames: 13, check: checkZoomOnBid},
		{name: "off-CPU icicle", file: write("head.svg", func(b *bytes.Buffer) error {
			return RenderSVG(b, head, Options{Palette: PaletteOffCPU, Icicle: true})
		}), query: "s=%5Eruntime%5C.(scan%7Cfutex)", frames: 14, check: func(t *testing.T, r domRoot) {
			// scanobject (60 of 160) and futex (30) match; the anchor keeps
			// sync.(*Mutex).Lock out.
			if r.Matched != "56.25" {
				t.Errorf("matched %q, want 56.25", r.Matched)
			}
		}},
		{name: "diff B over A", file: write("diff-b.svg", func(b *bytes.Buffer) error { return RenderDiffSVG(b, d, DiffOptions{}) }), frames: 14},
		{name: "diff A over B", file: write("diff-a.svg", func(b *bytes.Buffer) error {
			return RenderDiffSVG(b, d, DiffOptions{Direction: AOverB, Options: Options{Icicle: true}})
		}), query: "z=3", frames: 13},
		{name: "hostile names", file: write("evil.svg", func(b *bytes.Buffer) error { return RenderSVG(b, evil, Options{}) }),
			query: "s=script", frames: 4, check: func(t *testing.T, r domRoot) {
				if len(r.Scripts) != 1 {
					t.Errorf("%d script elements after load, want 1", len(r.Scripts))
				}
				if r.Matched != "100.00" {
					t.Errorf("matched %q, want 100.00 (both leaves contain \"script\")", r.Matched)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // browser start-up dominates; at most -parallel (GOMAXPROCS) at once
			dom, consoleErrs := dumpDOM(t, browser, tt.file, tt.query)
			if len(consoleErrs) > 0 {
				t.Errorf("console errors: %q", consoleErrs)
			}
			var r domRoot
			if err := xml.Unmarshal(dom, &r); err != nil {
				t.Fatalf("dumped DOM is not XML: %v\n%s", err, clip(dom))
			}
			if r.JSError != "" || r.Ready != "1" {
				t.Fatalf("script did not initialise: data-ready=%q data-jserror=%q", r.Ready, r.JSError)
			}
			if r.Frames != strconv.Itoa(tt.frames) {
				t.Errorf("script saw %s frames, want %d", r.Frames, tt.frames)
			}
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}

	// A negative control: a script that throws must be caught by the same
	// checks, or the checks above prove nothing.
	t.Run("broken script is detected", func(t *testing.T) {
		t.Parallel()
		good, err := os.ReadFile(tests[0].file)
		if err != nil {
			t.Fatal(err)
		}
		bad := bytes.Replace(good, []byte("function byId(id) {"), []byte("function byId(id) { null.x;"), 1)
		path := filepath.Join(dir, "broken.svg")
		if err := os.WriteFile(path, bad, 0o644); err != nil {
			t.Fatal(err)
		}
		dom, consoleErrs := dumpDOM(t, browser, path, "")
		var r domRoot
		if err := xml.Unmarshal(dom, &r); err != nil {
			t.Fatal(err)
		}
		if r.JSError == "" || r.Ready == "1" || len(consoleErrs) == 0 {
			t.Errorf("broken script not detected: data-jserror=%q data-ready=%q console=%q", r.JSError, r.Ready, consoleErrs)
		}
	})
}

// checkZoomOnBid checks the state after ?z=5 (bidder.(*Server).Bid) and a
// search for Lookup|futex in the base profile.
func checkZoomOnBid(t *testing.T, r domRoot) {
	if r.Zoomed != "5" {
		t.Errorf("data-zoomed %q, want 5", r.Zoomed)
	}
	if r.Matched != "47.50" {
		t.Errorf("matched %q, want 47.50 (Lookup 40 + futex 7.5 of 100)", r.Matched)
	}
	if len(r.Groups) != 1 {
		t.Fatalf("%d frame groups", len(r.Groups))
	}
	full := float64(DefaultWidth - 2*xpad)
	for _, f := range r.Groups[0].Frames {
		name := titleName.ReplaceAllString(f.Titles[0], "")
		rect := f.Rects[0]
		switch name {
		case "bidder.(*Server).Bid":
			if f.Class != "f" || rect.X != xpad || rect.Width != full {
				t.Errorf("zoomed frame: class %q x %v width %v, want full width", f.Class, rect.X, rect.Width)
			}
		case "bidder.(*Index).Lookup":
			if want := 40.0 / 65 * full; f.Class != "f" || math.Abs(rect.Width-want) > 0.02 {
				t.Errorf("Lookup: class %q width %v, want %v", f.Class, rect.Width, want)
			}
			if rect.Fill != highlight {
				t.Errorf("Lookup fill %q, want the search highlight", rect.Fill)
			}
		case "main.main", "all":
			if f.Class != "f parent" {
				t.Errorf("ancestor %s has class %q, want \"f parent\"", name, f.Class)
			}
		case "runtime.gcDrain", "sync.(*Mutex).Lock":
			if f.Class != "f hide" {
				t.Errorf("%s outside the zoom has class %q, want hidden", name, f.Class)
			}
		}
	}
}
