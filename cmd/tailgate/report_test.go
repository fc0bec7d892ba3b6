package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// reportFixture is the gate document of internal/report's golden tests.
const reportFixture = "../../internal/report/testdata/gate.json"

func TestReportCommand(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"schema_version": 99, "kind": "gate"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	tests := []struct {
		name     string
		args     []string
		code     int
		contains string
	}{
		{"no input", []string{"report", "--out", out}, ExitUsage, "--in is required"},
		{"no output", []string{"report", "--in", reportFixture}, ExitUsage, "--out is required"},
		{"two gate documents", []string{"report", "--in", reportFixture, "--in", reportFixture, "--out", out}, ExitUsage, "a second gate document"},
		{"unknown schema", []string{"report", "--in", bad, "--out", out}, ExitError, "bad.json"},
		{"missing soak file", []string{"report", "--in", reportFixture, "--soak", filepath.Join(dir, "nope.json"), "--out", out}, ExitError, "nope.json"},
		{"ok without profiles", []string{"report", "--in", reportFixture, "--profiles", filepath.Join(dir, "none"), "--no-pdf", "--out", out}, ExitPass,
			"unavailable: profiles: no profiles directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tt.args, &stdout, &stderr, func(string) string { return "" })
			if got := exitCode(err); got != tt.code {
				t.Fatalf("exit %d (%v), want %d; stderr:\n%s", got, err, tt.code, stderr.String())
			}
			msg := stdout.String()
			if err != nil {
				msg = err.Error()
			}
			if !strings.Contains(msg, tt.contains) {
				t.Errorf("output %q lacks %q", msg, tt.contains)
			}
		})
	}
	for _, f := range []string{"comment.md", "report.html", "cumulative.md", "writeup.html", "manifest.json"} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s not written: %v", f, err)
		}
	}
}
