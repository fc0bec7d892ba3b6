package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tailgate-ci/tailgate/internal/flame"
)

func TestProfileUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no pid", []string{"--out", "x"}, "--pid is required"},
		{"bad pid", []string{"--pid", "abc", "--out", "x"}, "not a process id"},
		{"no out", []string{"--pid", "1"}, "--out is required"},
		{"bad duration", []string{"--pid", "1", "--out", "x", "--duration", "0s"}, "must be positive"},
		{"bad collector", []string{"--pid", "1", "--out", "x", "--collectors", "offcpu,gc"}, `unknown collector "gc"`},
		{"bad hz", []string{"--pid", "1", "--out", "x", "--sample-hz", "0"}, "want 1..10000"},
		{"bad consumer priority", []string{"--pid", "1", "--out", "x", "--consumer-priority", "low"}, "want idle or normal"},
		{"go kinds without go", []string{"--pid", "1", "--out", "x", "--go-kinds", "request"}, "--go-kinds needs --go"},
		{"bad go kind", []string{"--pid", "1", "--out", "x", "--go", "--go-kinds", "request,oncpu"}, `unknown Go collector "oncpu"`},
		{"go kinds with analyze", []string{"--pid", "1", "--out", "x", "--analyze", "--go-kinds", "block"}, "its join needs them all"},
		{"extra args", []string{"--pid", "1", "--out", "x", "y"}, "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			err := run(context.Background(), append([]string{"profile"}, tt.args...), &bytes.Buffer{}, &stderr, os.Getenv)
			if exitCode(err) != ExitUsage || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v (exit %d), want usage error containing %q", err, exitCode(err), tt.want)
			}
		})
	}
}

func TestProfileWithoutRoot(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("checks the unprivileged message; running as root")
	}
	err := run(context.Background(), []string{"profile", "--pid", strconv.Itoa(os.Getpid()), "--out", t.TempDir(), "--duration", "1s"},
		&bytes.Buffer{}, &bytes.Buffer{}, os.Getenv)
	if exitCode(err) != ExitError || !strings.Contains(err.Error(), "run as root") {
		t.Fatalf("err %v (exit %d), want exit 1 asking for root", err, exitCode(err))
	}
}

// Profiles a busy shell loop: the files named in the usage exist, the
// JSONL lines decode, and the on-CPU folded stacks name the process.
func TestProfileWritesEventsAndFoldedStacks(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: loads BPF programs (CI runs as root)")
	}
	busy := exec.Command("/bin/sh", "-c", "while :; do :; done")
	if err := busy.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { busy.Process.Kill(); busy.Wait() }()
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"profile", "--pid", strconv.Itoa(busy.Process.Pid), "--out", dir,
		"--duration", "1s", "--collectors", "oncpu,offcpu,runq"}, &stdout, &stderr, os.Getenv)
	if err != nil {
		t.Fatalf("profile: %v\n%s", err, stderr.String())
	}
	t.Log(stdout.String())
	var sum profileSummary
	b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Schema != ProfileSchemaVersion || sum.Events["oncpu"] == 0 || sum.Units["oncpu"] != "samples" || sum.Consumer.Priority != "idle" || sum.Consumer.Error != "" {
		t.Fatalf("summary %+v", sum)
	}
	f, err := os.Open(filepath.Join(dir, "oncpu.events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var lines uint64
	for sc.Scan() {
		var e jsonEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %d: %v", lines+1, err)
		}
		if e.Kind != "oncpu" || e.PID != uint32(busy.Process.Pid) {
			t.Fatalf("line %d: %+v", lines+1, e)
		}
		lines++
	}
	if lines != sum.Events["oncpu"] {
		t.Fatalf("%d JSONL lines, summary says %d events", lines, sum.Events["oncpu"])
	}
	ff, err := os.Open(filepath.Join(dir, "oncpu.folded"))
	if err != nil {
		t.Fatal(err)
	}
	defer ff.Close()
	p, err := flame.ParseFolded(ff, "oncpu.folded")
	if err != nil {
		t.Fatal(err)
	}
	if p.Total() != float64(lines) {
		t.Fatalf("folded total %v, want %d samples", p.Total(), lines)
	}
	for stack := range p.Stacks {
		if !strings.HasPrefix(stack, "sh;") {
			t.Fatalf("stack %q does not start with the process name", stack)
		}
	}
}
