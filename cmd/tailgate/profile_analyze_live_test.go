//go:build linux && amd64

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tailgate-ci/tailgate/bidder/reqgen"
	"github.com/tailgate-ci/tailgate/internal/load"
	"github.com/tailgate-ci/tailgate/internal/tail"
)

// TestProfileAnalyzeLiveBidder records the baseline bidder under load
// with `tailgate profile --analyze` (kernel and Go collectors), then
// re-analyzes the directory after the bidder has exited. The slowest
// 1 % must name the lock contributor, with the pacing ledger in its top
// stack, both times (the second from the mappings snapshot).
//
// Run it under the live-run lock: flock /tmp/tailgate-live.lock go test
// -run TestProfileAnalyzeLiveBidder ./cmd/tailgate
func TestProfileAnalyzeLiveBidder(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: loads BPF programs and uprobes (CI runs as root)")
	}
	if testing.Short() {
		t.Skip("live bidder run skipped in -short")
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "bidder")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/tailgate-ci/tailgate/cmd/bidder").CombinedOutput(); err != nil {
		t.Fatalf("build bidder: %v\n%s", err, out)
	}
	index := filepath.Join(tmp, "bidder.idx")
	if out, err := exec.Command(bin, "index", "build", "--out", index, "--size", "64MiB").CombinedOutput(); err != nil {
		t.Fatalf("build index: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	const users = 500_000
	cmd := exec.Command(bin, "serve", "--addr", addr, "--index", index, "--users", fmt.Sprint(users), "--fixes", "none")
	// As internal/tail's live test: GOGC=25 runs the baseline's GC
	// mechanism every few seconds instead of every ~30 s.
	cmd.Env = append(os.Environ(), "GOGC=25")
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	stop := func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}
	defer stop()
	url := "http://" + addr
	for deadline := time.Now().Add(90 * time.Second); ; {
		resp, err := http.Get(url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		select {
		case <-exited:
			t.Fatalf("bidder exited during start-up:\n%s", log.String())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("bidder not healthy after 90s: %v", err)
		}
	}

	// Load for longer than the profile, so every profiled moment is loaded.
	tg, err := load.ReqgenTargeter(url+"/openrtb2/bid", 1, reqgen.Options{Users: users})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	loaded := make(chan error, 1)
	go func() {
		_, err := load.Run(ctx, load.Config{Rate: 150, Duration: 20 * time.Second, Timeout: 5 * time.Second, Targeter: tg, Name: "profile-live"})
		loaded <- err
	}()
	dir := filepath.Join(tmp, "prof")
	var stdout, stderr bytes.Buffer
	err = run(ctx, []string{"profile", "--pid", fmt.Sprint(cmd.Process.Pid), "--duration", "15s", "--out", dir, "--analyze"}, &stdout, &stderr, os.Getenv)
	t.Logf("profile --analyze:\n%s%s", stdout.String(), stderr.String())
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	<-loaded
	checkLock := func(dir string) {
		t.Helper()
		d := readAnalysis(t, dir)
		if d.Head.SlowRequests == 0 {
			t.Fatalf("%s: no slow requests", dir)
		}
		rank := -1
		for i, name := range d.Head.Top {
			if name == "lock" {
				rank = i
			}
		}
		if rank < 0 {
			t.Fatalf("%s: lock not among the top contributors %v", dir, d.Head.Top)
		}
		for _, c := range d.Head.Contributors {
			if c.Name != "lock" {
				continue
			}
			if len(c.TopStacks) == 0 || !strings.Contains(strings.Join(c.TopStacks[0].Frames, ";"), "GlobalLedger") {
				t.Errorf("%s: lock's top stack does not pass through the pacing ledger: %+v", dir, c.TopStacks)
			}
		}
	}
	checkLock(dir)
	for _, f := range []string{tail.GoEventsFile, filepath.Join("proc", fmt.Sprint(cmd.Process.Pid), "maps"), ContributorsTextFile,
		filepath.Join(tail.FlameDir, "offcpu-slow-vs-fast-slow-over-fast.svg")} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	var sum profileSummary
	b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err == nil {
		err = json.Unmarshal(b, &sum)
	}
	if err != nil || sum.Go == nil || sum.Go.Events["request"] == 0 || sum.MonoEndNs <= sum.MonoStartNs {
		t.Fatalf("summary.json: %v %+v", err, sum)
	}

	// The bidder gone, the recording still names its functions.
	stop()
	again := filepath.Join(tmp, "again")
	if err := run(context.Background(), []string{"profile", "--analyze", "--in", dir, "--out", again}, &stdout, &stderr, os.Getenv); err != nil {
		t.Fatal(err)
	}
	checkLock(again)
}
