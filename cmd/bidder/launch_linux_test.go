//go:build linux

package main

import (
	"bytes"
	"context"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/tailgate-ci/tailgate/bidder/placement"
)

const placementTestdata = "../../bidder/placement/testdata/"

func TestLaunchDryRun(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"two nodes", []string{"--sysfs", placementTestdata + "sys-2node", "--nice", "-10", "--dry-run", "--", "serve", "--fixes", "placement"}, []string{
			"NUMA: 2 nodes, one bidder per node",
			"bidder 0: node 0: CPUs 0-3,8-11, GOMAXPROCS=8, memory bound to node 0, nice -10",
			"bidder 1: node 1: CPUs 4-7,12-15, GOMAXPROCS=8, memory bound to node 1, nice -10",
		}},
		{"one node", []string{"--sysfs", placementTestdata + "sys-1node", "--nice", "-10", "--dry-run", "--", "serve"}, []string{
			"NUMA: 1 node",
			"bidder 0: CPUs 0-1, GOMAXPROCS=2, memory policy unchanged, nice -10",
		}},
		{"one node, serve CPUs", []string{"--sysfs", placementTestdata + "sys-1node", "--nice", "0", "--serve-cpus", "1", "--dry-run", "--", "serve"}, []string{
			"NUMA: 1 node",
			"bidder 0: CPUs 1, GOMAXPROCS=1, memory policy unchanged",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if err := run(context.Background(), append([]string{"launch"}, tt.args...), &stdout, &stderr, nil); err != nil {
				t.Fatalf("%v\n%s", err, stderr.String())
			}
			got := strings.Split(strings.TrimSpace(stdout.String()), "\n")
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestLaunchUsageErrors(t *testing.T) {
	two := placementTestdata + "sys-2node"
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no bidder args", []string{"--dry-run"}, "missing bidder arguments"},
		{"bad serve cpus", []string{"--serve-cpus", "1-x", "--", "serve"}, "--serve-cpus"},
		{"serve cpus on two nodes", []string{"--sysfs", two, "--serve-cpus", "1", "--", "serve", "--fixes", "placement"}, "single-node"},
		{"nice out of range", []string{"--nice", "30", "--", "serve"}, "nice 30"},
		{"per node without placement", []string{"--sysfs", two, "--", "serve", "--fixes=gc"}, "must include placement"},
		{"bad fixes", []string{"--sysfs", two, "--", "serve", "--fixes", "turbo"}, "unknown fix"},
		{"bad user", []string{"--user", "no-such-user-tailgate", "--", "serve"}, "--user"},
		{"bad uid", []string{"--user", "12:x", "--", "serve"}, "gid"},
		{"bad memlock", []string{"--memlock", "lots", "--", "serve"}, "--memlock"},
		{"bad bin", []string{"--bin", "/no/such/bidder", "--", "serve"}, "--bin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), append([]string{"launch"}, tt.args...), &stdout, &stderr, nil)
			if exitCode(err) != exitUsage || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v (exit %d), want a usage error mentioning %q", err, exitCode(err), tt.want)
			}
		})
	}
}

func TestLaunchMissingSysfs(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"launch", "--sysfs", t.TempDir(), "--", "serve"}, &stdout, &stderr, nil)
	if exitCode(err) != exitError || !strings.Contains(err.Error(), "devices/system/cpu/online") {
		t.Fatalf("err = %v (exit %d), want an error naming the missing sysfs file", err, exitCode(err))
	}
}

func TestWithPlacementFix(t *testing.T) {
	env, err := withPlacementFix([]string{"serve"}, []string{"PATH=/bin", "BIDDER_FIXES=gc"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"PATH=/bin", "BIDDER_FIXES=gc,placement"}; !reflect.DeepEqual(env, want) {
		t.Fatalf("env = %q, want %q", env, want)
	}
	for _, args := range [][]string{{"serve", "--fixes", "all"}, {"serve", "-fixes=locks,placement"}} {
		if _, err := withPlacementFix(args, nil); err != nil {
			t.Errorf("withPlacementFix(%q) = %v", args, err)
		}
	}
}

// syncBuffer collects the children's output, written by os/exec copiers.
type syncBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	notify chan struct{}
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Write(p)
	select {
	case s.notify <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestLaunchPerNodeLive runs the per-node supervisor for real against a
// synthetic 2-node tree whose nodes are this host's CPUs 0 and 1 (node 1
// without memory, so only node 0 gets a memory policy). Each child is a
// shell that reports its own placement; SIGTERM (ctx) stops both.
func TestLaunchPerNodeLive(t *testing.T) {
	cpus, err := placement.ThreadAffinity()
	if err != nil || len(cpus) < 2 || cpus[0] != 0 || cpus[1] != 1 {
		t.Skipf("needs CPUs 0 and 1 (have %v, %v)", cpus, err)
	}
	if _, err := os.Stat("/proc/self/numa_maps"); err != nil {
		t.Skipf("no /proc/self/numa_maps (CONFIG_NUMA): %v", err)
	}
	nice := "0"
	if os.Geteuid() == 0 {
		nice = "-5"
	}
	script := `echo "node=$BIDDER_NUMA_NODE cpus=$(grep Cpus_allowed_list /proc/$$/status | cut -f2) gomaxprocs=$GOMAXPROCS fixes=$BIDDER_FIXES nice=$(cut -d' ' -f19 /proc/$$/stat) policy=$(head -n1 /proc/$$/numa_maps | cut -d' ' -f2)"; exec sleep 60`
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &syncBuffer{notify: make(chan struct{}, 1)}
	var stderr syncBuffer
	stderr.notify = make(chan struct{}, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, []string{"launch", "--sysfs", placementTestdata + "sys-2node-live", "--nice", nice,
			"--memlock", "keep", "--bin", "/bin/sh", "--", "-c", script}, out, &stderr, nil)
	}()
	want := []string{
		"node=0 cpus=0 gomaxprocs=1 fixes=placement nice=" + nice + " policy=bind:0",
		"node=1 cpus=1 gomaxprocs=1 fixes=placement nice=" + nice + " policy=default",
	}
	for !(strings.Contains(out.String(), want[0]) && strings.Contains(out.String(), want[1])) {
		select {
		case <-out.notify:
		case err := <-errc:
			t.Fatalf("launch ended early: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), stderr.String())
		}
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("launch after SIGTERM: %v\nstderr:\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "stopping the bidders") {
		t.Fatalf("stderr lacks the stop line:\n%s", stderr.String())
	}
}
