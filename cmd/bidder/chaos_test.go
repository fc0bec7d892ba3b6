package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

func TestChaosUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no neighbour", []string{"chaos"}, "missing neighbour"},
		{"unknown neighbour", []string{"chaos", "disk"}, `unknown neighbour "disk"`},
		{"pageout without pid", []string{"chaos", "pageout"}, "--pid"},
		{"pageout bad every", []string{"chaos", "pageout", "--pid", "1", "--every", "0s"}, "--every"},
		{"pageout init tree", []string{"chaos", "pageout", "--pid", "1"}, "every process"},
		{"pageout extra args", []string{"chaos", "pageout", "--pid", "1", "x"}, "unexpected arguments"},
		{"cpu zero threads", []string{"chaos", "cpu", "--threads", "0"}, "--threads"},
		{"cpu negative duration", []string{"chaos", "cpu", "--duration", "-1s"}, "--duration"},
		{"cpu bad flag", []string{"chaos", "cpu", "--nope"}, "nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tt.args, &stdout, &stderr, nil)
			if exitCode(err) != exitUsage {
				t.Fatalf("exit code %d (err %v), want %d", exitCode(err), err, exitUsage)
			}
			if !strings.Contains(err.Error()+stderr.String(), tt.want) {
				t.Fatalf("error %q / stderr %q does not mention %q", err, stderr.String(), tt.want)
			}
		})
	}
}

func TestChaosCPURunsForDuration(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"chaos", "cpu", "--threads", "2", "--duration", "30ms"}, &stdout, &stderr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "cpu neighbour: 2 threads") {
		t.Fatalf("stdout %q lacks the summary", stdout.String())
	}
}

func TestChaosPageOutMissingTarget(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"chaos", "pageout", "--pid", strconv.Itoa(1 << 30)}, &stdout, &stderr, nil)
	if err == nil || exitCode(err) != exitError || !strings.Contains(err.Error(), "no such process") {
		t.Fatalf("err = %v (exit %d), want a runtime error naming the missing process", err, exitCode(err))
	}
}

// TestChaosPageOutEndsWithTarget runs the subcommand against a child that
// exits: the command returns nil with a summary instead of hanging.
func TestChaosPageOutEndsWithTarget(t *testing.T) {
	child := exec.Command("sleep", "60")
	if err := child.Start(); err != nil {
		t.Skipf("cannot start a child: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout bytes.Buffer
	stderr := &lineWaiter{want: "round 1", seen: make(chan struct{})}
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, []string{"chaos", "pageout", "--pid", strconv.Itoa(child.Process.Pid), "--every", "5ms", "--path-substr", "no-such-mapping"}, &stdout, stderr, nil)
	}()
	select {
	case <-stderr.seen:
	case err := <-errc:
		t.Fatalf("pageout ended before its first round: %v", err)
	}
	child.Process.Signal(os.Kill)
	child.Wait()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "pageout pid") {
		t.Fatalf("stdout %q lacks the summary", stdout.String())
	}
}

// lineWaiter closes seen once the written text contains want. Only the
// command's goroutine writes to it.
type lineWaiter struct {
	buf  bytes.Buffer
	want string
	seen chan struct{}
	done bool
}

func (w *lineWaiter) Write(p []byte) (int, error) {
	w.buf.Write(p)
	if !w.done && strings.Contains(w.buf.String(), w.want) {
		w.done = true
		close(w.seen)
	}
	return len(p), nil
}
