package report

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// ErrNoChromium is returned by PrintPDF when no headless browser is found.
var ErrNoChromium = errors.New("chromium not found (apt-get install -y chromium)")

// DefaultPDFTimeout bounds one headless-Chromium print.
const DefaultPDFTimeout = 2 * time.Minute

// Options configure Write. The zero value writes everything, with the PDF
// when a Chromium is on PATH.
type Options struct {
	// NoPDF skips printing the write-up to PDF.
	NoPDF bool
	// Chromium is the browser to print with ("" = look up chromium,
	// chromium-browser, google-chrome on PATH).
	Chromium   string
	PDFTimeout time.Duration
}

// Manifest lists what Write produced, relative to the output directory,
// and what is missing and why.
type Manifest struct {
	Verdict     string            `json:"verdict,omitempty"`
	Files       []string          `json:"files"`
	Unavailable map[string]string `json:"unavailable,omitempty"`
}

var unsafeFile = regexp.MustCompile(`[^A-Za-z0-9._-]`)

// FixNoteFile is the path of fix's note, relative to the output directory.
func FixNoteFile(fix string) string {
	name := unsafeFile.ReplaceAllString(fix, "_")
	if name == "" || strings.Trim(name, ".") == "" {
		name = "_"
	}
	return FixNotesDir + "/" + name + ".md"
}

// Write produces the whole artifact set in dir (see the layout in
// layout.go) and returns its manifest, also written as ManifestFile. A
// missing optional part (profiles, soak, Chromium) is recorded in the
// manifest's Unavailable, not returned as an error.
func Write(ctx context.Context, dir string, in *Input, o Options) (*Manifest, error) {
	f, err := derive(in)
	if err != nil {
		return nil, err
	}
	m := &Manifest{Unavailable: map[string]string{}}
	if f.gate != nil {
		m.Verdict = string(f.gate.Verdict)
	}
	if in.Profiles.Unavailable != "" {
		m.Unavailable["profiles"] = in.Profiles.Unavailable
	}
	if in.Soak == nil {
		why := in.SoakUnavailable
		if why == "" {
			why = "no soak result given"
		}
		m.Unavailable["soak"] = why
	}
	if err := os.MkdirAll(filepath.Join(dir, FixNotesDir), 0o755); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	write := func(rel string, data []byte) error {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return fmt.Errorf("report: %w", err)
		}
		m.Files = append(m.Files, rel)
		return nil
	}
	// Flame graphs: copied so the directory is self-contained and the
	// comment's links resolve against it.
	seen := map[string]bool{}
	all := append([]string(nil), in.Profiles.Graphs...)
	for _, d := range in.Profiles.Diffs {
		all = append(all, d.SVGs...)
	}
	for _, p := range all {
		name := filepath.Base(p)
		if seen[name] {
			continue
		}
		seen[name] = true
		b, err := os.ReadFile(p)
		if err != nil {
			m.Unavailable[FlameDir+"/"+name] = err.Error()
			continue
		}
		if err := os.MkdirAll(filepath.Join(dir, FlameDir), 0o755); err != nil {
			return nil, fmt.Errorf("report: %w", err)
		}
		if err := write(FlameDir+"/"+name, b); err != nil {
			return nil, err
		}
	}
	var buf bytes.Buffer
	if err := execute(&buf, "report", f.buildView()); err != nil {
		return nil, err
	}
	if err := write(HTMLReport, buf.Bytes()); err != nil {
		return nil, err
	}
	for _, fx := range f.fixes {
		if err := write(FixNoteFile(fx.Name), []byte(f.fixNote(fx))); err != nil {
			return nil, err
		}
	}
	cum, err := Cumulative(in)
	if err != nil {
		return nil, err
	}
	if err := write(CumulativeFile, []byte(cum)); err != nil {
		return nil, err
	}
	// The write-up lists every artifact, including itself and its PDF.
	arts := append([]string(nil), m.Files...)
	arts = append(arts, WriteupHTML)
	if !o.NoPDF {
		arts = append(arts, WriteupPDF)
	}
	arts = append(arts, ManifestFile)
	sort.Strings(arts)
	buf.Reset()
	v := f.buildView()
	v.asWriteup(arts)
	if err := execute(&buf, "writeup", v); err != nil {
		return nil, err
	}
	if err := write(WriteupHTML, buf.Bytes()); err != nil {
		return nil, err
	}
	if o.NoPDF {
		m.Unavailable[WriteupPDF] = "not requested"
	} else {
		err := PrintPDF(ctx, o.Chromium, filepath.Join(dir, WriteupHTML), filepath.Join(dir, WriteupPDF), o.PDFTimeout)
		if err == nil {
			m.Files = append(m.Files, WriteupPDF)
			f.pdf = true
		} else {
			m.Unavailable[WriteupPDF] = err.Error() // ErrNoChromium or a failed print
		}
	}
	// The comment comes last: it links the PDF only when there is one.
	if err := write(CommentFile, []byte(f.comment(MaxCommentBytes))); err != nil {
		return nil, err
	}
	m.Files = append(m.Files, ManifestFile)
	sort.Strings(m.Files)
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("report: manifest: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ManifestFile), append(b, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	return m, nil
}

// FindChromium returns the path of a headless-capable Chromium on PATH.
func FindChromium() (string, error) {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", ErrNoChromium
}

// PrintPDF prints an HTML file to PDF with headless Chromium (browser ""
// = FindChromium). The browser gets a throw-away profile and no network
// services; the output must start with the PDF magic.
func PrintPDF(ctx context.Context, browser, htmlPath, pdfPath string, timeout time.Duration) error {
	if browser == "" {
		var err error
		if browser, err = FindChromium(); err != nil {
			return err
		}
	}
	if timeout <= 0 {
		timeout = DefaultPDFTimeout
	}
	abs, err := filepath.Abs(htmlPath)
	if err != nil {
		return fmt.Errorf("print pdf: %w", err)
	}
	outAbs, err := filepath.Abs(pdfPath)
	if err != nil {
		return fmt.Errorf("print pdf: %w", err)
	}
	profile, err := os.MkdirTemp("", "tailgate-chromium-")
	if err != nil {
		return fmt.Errorf("print pdf: %w", err)
	}
	defer os.RemoveAll(profile)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--user-data-dir="+profile,
		"--no-pdf-header-footer", "--print-to-pdf="+outAbs, "file://"+abs)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("print pdf: %s: %w: %s", browser, err, lastLines(stderr.String(), 3))
	}
	b, err := os.ReadFile(outAbs)
	if err != nil {
		return fmt.Errorf("print pdf: %w", err)
	}
	if !bytes.HasPrefix(b, []byte("%PDF-")) {
		return fmt.Errorf("print pdf: %s is not a PDF (%d bytes)", outAbs, len(b))
	}
	return nil
}

func lastLines(s string, n int) string {
	ls := strings.Split(strings.TrimSpace(s), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, " | ")
}
