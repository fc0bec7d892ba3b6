package report

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// chromium returns the headless browser, or skips the test.
func chromium(t *testing.T) string {
	t.Helper()
	p, err := FindChromium()
	if err != nil {
		t.Skip("chromium not installed (apt-get install -y chromium): the HTML and PDF are not checked in a browser")
	}
	return p
}

// dumpDOM loads a file in headless Chromium and returns the DOM as the
// browser parsed it.
func dumpDOM(t *testing.T, browser, path string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+t.TempDir(), "--dump-dom", "file://"+path)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %s: %v\n%s", path, err, stderr.String())
	}
	return stdout.String()
}

var (
	plotRE  = regexp.MustCompile(`(?s)<svg[^>]*class="plot"[^>]*data-plot="([^"]+)"[^>]*>(.*?)</svg>`)
	markRE  = regexp.MustCompile(`<(path|rect)[^>]*class="mark"`)
	flameRE = regexp.MustCompile(`<img class="flame"[^>]*src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]*)"`)
)

// plots returns the number of marks (<path>/<rect> with class "mark") in
// each plot of a DOM, by data-plot kind.
func plots(dom string) map[string]int {
	out := map[string]int{}
	for _, m := range plotRE.FindAllStringSubmatch(dom, -1) {
		out[m[1]] += len(markRE.FindAllString(m[2], -1))
	}
	return out
}

func TestHTMLInChromium(t *testing.T) {
	browser := chromium(t)
	in := fixtureInput(t)
	// Hostile names must stay text in the browser's DOM.
	in.Gate.Head.Name = `feat/<script>document.title="pwned"</script><img src=x onerror=alert(1)>`
	in.Profiles.Contributors[0].Contributors[0].TopStacks[0].Frames = []string{`</code><script>alert(1)</script>`}
	dir := t.TempDir()
	m, err := Write(context.Background(), dir, in, Options{NoPDF: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Unavailable) != 1 || m.Unavailable[WriteupPDF] == "" {
		t.Errorf("unavailable = %v, want only the (unrequested) PDF", m.Unavailable)
	}
	tests := []struct {
		file  string
		plots []string
	}{
		{HTMLReport, []string{PlotSpectrum, PlotRounds, PlotSoak, PlotContributors, PlotShift, PlotWaterfall}},
		{WriteupHTML, []string{PlotSpectrum, PlotRounds, PlotSoak, PlotContributors, PlotShift, PlotWaterfall}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			dom := dumpDOM(t, browser, filepath.Join(dir, tt.file))
			got := plots(dom)
			// Minimum marks: a line per arm, two bars per contributor, a
			// bar per waterfall step.
			min := map[string]int{PlotSpectrum: 7, PlotRounds: 3, PlotSoak: 2, PlotContributors: 8, PlotShift: 8, PlotWaterfall: 7}
			for _, p := range tt.plots {
				if got[p] < min[p] {
					t.Errorf("plot %s has %d marks, want at least %d", p, got[p], min[p])
				}
			}
			flames := flameRE.FindAllStringSubmatch(dom, -1)
			want := 2 // both differential graphs; the write-up keeps one
			if tt.file == WriteupHTML {
				want = 1
			}
			if len(flames) != want {
				t.Errorf("%d embedded flame graphs, want %d", len(flames), want)
			}
			for _, f := range flames {
				if len(f[1]) < 1000 {
					t.Errorf("embedded flame graph of %d base64 bytes", len(f[1]))
				}
			}
			if strings.Contains(dom, "<script") || strings.Contains(dom, "onerror=") && !strings.Contains(dom, "onerror=alert(1)&gt;") {
				t.Error("a hostile name became live markup in the browser")
			}
			if !strings.Contains(dom, "&lt;script&gt;") {
				t.Error("the hostile branch name is not shown as text")
			}
			if strings.Contains(dom, "http://") && regexp.MustCompile(`(src|href)="https?://`).MatchString(dom) {
				t.Error("the page loads something from the network")
			}
		})
	}
}

// TestWriteupPDF prints the write-up of the fixture; set REPORT_SAMPLE_DIR
// to keep the whole artifact set there for a look.
func TestWriteupPDF(t *testing.T) {
	chromium(t)
	t.Parallel()
	in := fixtureInput(t)
	dir := os.Getenv("REPORT_SAMPLE_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	m, err := Write(context.Background(), dir, in, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if why, ok := m.Unavailable[WriteupPDF]; ok {
		t.Fatalf("no PDF: %s", why)
	}
	if c, err := os.ReadFile(filepath.Join(dir, CommentFile)); err != nil || !bytes.Contains(c, []byte("([PDF](writeup.pdf))")) {
		t.Errorf("comment does not link the printed PDF (%v)", err)
	}
	pdf := filepath.Join(dir, WriteupPDF)
	b, err := os.ReadFile(pdf)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("%PDF-")) || len(b) < 50_000 {
		t.Fatalf("writeup.pdf: %d bytes, magic %q", len(b), b[:min(8, len(b))])
	}
	if _, err := exec.LookPath("pdfinfo"); err != nil {
		t.Logf("pdfinfo not installed (apt-get install -y poppler-utils): page count and text not checked")
		return
	}
	out, err := exec.Command("pdfinfo", pdf).Output()
	if err != nil {
		t.Fatal(err)
	}
	pages := 0
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(l, "Pages:"); ok {
			pages, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	if pages < 6 || pages > 14 {
		t.Errorf("write-up has %d pages, want about 8", pages)
	}
	text, err := exec.Command("pdftotext", "-layout", pdf, "-").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Executive summary", "Method", "The contributors, with evidence", "The fixes", "Results", "Risks", "Recommendations", "Appendix",
		"Latency by percentile", "Per-fix attribution", "Soak: p99 per", ms(in.Gate.Gate.P99.Head)} {
		if !bytes.Contains(text, []byte(want)) {
			t.Errorf("PDF text lacks %q", want)
		}
	}
}
