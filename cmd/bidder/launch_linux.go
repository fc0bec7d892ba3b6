//go:build linux

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tailgate-ci/tailgate/bidder"
	"github.com/tailgate-ci/tailgate/bidder/placement"
	"golang.org/x/sys/unix"
)

func init() { register("launch", runLaunch) }

const launchUsage = `usage: bidder launch [flags] -- <bidder args, e.g. serve --addr 127.0.0.1:8080 --fixes placement>

The placement fix. Reads the NUMA topology from sysfs and:
  >= 2 nodes: starts one bidder per node, each pinned (sched_setaffinity) to
     its node's CPUs, its memory bound there (set_mempolicy MPOL_BIND),
     GOMAXPROCS = the node's CPUs, sharing the port with SO_REUSEPORT (the
     children get the placement fix); it forwards SIGTERM and stops them all
     when one exits.
  1 node: raises the bidder's priority (and with --serve-cpus pins it away
     from the neighbours' CPUs), reports "NUMA: 1 node" and execs the bidder
     in place, so the bidder keeps the launcher's PID.
Affinity, memory policy and priority are per-thread and survive exec; they
are set on a locked OS thread that then forks or execs. Run as root to raise
priority and RLIMIT_MEMLOCK; --user drops root before the bidder starts and
keeps CAP_IPC_LOCK for it (the mlock fix), unless --keep-ipc-lock=false.

flags:`

// launchTermGrace is how long stopped children get before SIGKILL.
const launchTermGrace = 15 * time.Second

// runLaunch implements `bidder launch` (bidder/placement).
func runLaunch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("launch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, launchUsage); fs.PrintDefaults() }
	root := os.Geteuid() == 0
	defNice, defMemlock := 0, "keep"
	if root {
		defNice, defMemlock = placement.DefaultNice, "max"
	}
	sysfs := fs.String("sysfs", placement.DefaultSysfsRoot, "sysfs root to read the topology from (a synthetic tree for tests)")
	nice := fs.Int("nice", defNice, "scheduling priority of the bidder(s), -20..19 (negative needs root)")
	serveCPUs := fs.String("serve-cpus", "", "single-node hosts: CPU list the bidder may use, e.g. 1 (default: all allowed)")
	userFlag := fs.String("user", "", "drop root to this user (name or uid[:gid]) before the bidder starts")
	keepIPCLock := fs.Bool("keep-ipc-lock", true, "with --user: the bidder keeps CAP_IPC_LOCK (ambient), so the mlock fix can lock past RLIMIT_MEMLOCK")
	memlock := fs.String("memlock", defMemlock, "RLIMIT_MEMLOCK for the bidder: a size (64MiB), unlimited, max (unlimited if allowed, else the hard limit) or keep; the mlock fix needs it when root is dropped")
	bin := fs.String("bin", "", "bidder binary to run (default: this executable)")
	dryRun := fs.Bool("dry-run", false, "print the plan and exit")
	if err := fs.Parse(args); err != nil {
		return &usageError{err: err}
	}
	bidderArgs := fs.Args()
	if len(bidderArgs) == 0 {
		return usageErrorf("launch: missing bidder arguments after -- (e.g. -- serve --fixes placement)")
	}

	var opts placement.Options
	opts.Nice = *nice
	if *serveCPUs != "" {
		cpus, err := placement.ParseList(*serveCPUs)
		if err != nil || len(cpus) == 0 {
			return usageErrorf("launch: --serve-cpus %q: want a CPU list such as 1 or 2-3", *serveCPUs)
		}
		opts.ServeCPUs = cpus
	}
	topo, err := placement.ReadTopology(*sysfs)
	if err != nil {
		return fmt.Errorf("launch: %w", err)
	}
	// The launcher's own affinity bounds what it can hand out, but only on
	// the real host: a synthetic tree describes other CPUs.
	if *sysfs == placement.DefaultSysfsRoot {
		if opts.Allowed, err = placement.ThreadAffinity(); err != nil {
			return fmt.Errorf("launch: %w", err)
		}
	}
	plan, err := placement.Compute(topo, opts)
	if err != nil {
		return usageErrorf("launch: %v", err)
	}
	cred, err := parseUser(*userFlag)
	if err != nil {
		return usageErrorf("launch: --user: %v", err)
	}
	id := placement.Identity{Cred: cred}
	if cred != nil && *keepIPCLock {
		id.AmbientCaps = []uintptr{unix.CAP_IPC_LOCK}
	}
	limit, err := parseMemlock(*memlock)
	if err != nil {
		return usageErrorf("launch: --memlock: %v", err)
	}
	path := *bin
	if path == "" {
		if path, err = os.Executable(); err != nil {
			return fmt.Errorf("launch: find own executable: %w", err)
		}
	} else if path, err = exec.LookPath(path); err != nil {
		return usageErrorf("launch: --bin: %v", err)
	}
	env := os.Environ()
	if plan.PerNode {
		// Children share the port: the bidder listens with SO_REUSEPORT
		// when its placement fix is on.
		if env, err = withPlacementFix(bidderArgs, env); err != nil {
			return usageErrorf("launch: %v", err)
		}
	}

	fmt.Fprintln(stdout, plan.Note)
	for i, c := range plan.Children {
		fmt.Fprintf(stdout, "bidder %d: %s\n", i, c)
	}
	if *dryRun {
		return nil
	}
	if limit != nil {
		if err := raiseMemlock(limit, *memlock == "max", stderr); err != nil {
			return fmt.Errorf("launch: %w", err)
		}
	}
	if !plan.PerNode {
		// Exec in place: the bidder keeps this PID, which is what the
		// deployer and `bidder chaos pageout --pid` target.
		c := plan.Children[0]
		return placement.Exec(c, path, append([]string{path}, bidderArgs...), placement.MergeEnv(env, c.Env), id)
	}
	return superviseChildren(ctx, plan, path, bidderArgs, env, id, stdout, stderr)
}

// superviseChildren starts one placed child per plan entry and waits; ctx
// ending (SIGTERM) or any child exiting stops them all.
func superviseChildren(ctx context.Context, plan *placement.Plan, path string, args, env []string, id placement.Identity, stdout, stderr io.Writer) error {
	type exit struct {
		i   int
		err error
	}
	exits := make(chan exit, len(plan.Children))
	var cmds []*exec.Cmd
	stopAll := func(sig os.Signal) {
		for _, cmd := range cmds {
			cmd.Process.Signal(sig)
		}
	}
	for i, c := range plan.Children {
		cmd := exec.Command(path, args...)
		cmd.Env = placement.MergeEnv(env, c.Env)
		cmd.Stdout, cmd.Stderr = stdout, stderr
		if id.Cred != nil {
			// Pdeathsig is not set: it fires when the forking thread
			// exits, and Go may retire that thread at any time.
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: id.Cred, AmbientCaps: id.AmbientCaps}
		}
		if err := placement.Start(c, cmd); err != nil {
			stopAll(syscall.SIGTERM)
			for range cmds {
				<-exits
			}
			return fmt.Errorf("launch: bidder %d (node %d): %w", i, c.Node, err)
		}
		fmt.Fprintf(stderr, "launch: bidder %d pid %d on node %d\n", i, cmd.Process.Pid, c.Node)
		cmds = append(cmds, cmd)
		go func(i int, cmd *exec.Cmd) { exits <- exit{i, cmd.Wait()} }(i, cmd)
	}

	var first error
	remaining := len(cmds)
	select {
	case <-ctx.Done():
		fmt.Fprintln(stderr, "launch: stopping the bidders")
	case e := <-exits:
		remaining--
		first = fmt.Errorf("launch: bidder %d (node %d) exited: %v", e.i, plan.Children[e.i].Node, orExit0(e.err))
		fmt.Fprintln(stderr, first, "- stopping the others")
	}
	stopAll(syscall.SIGTERM)
	var once sync.Once
	kill := time.AfterFunc(launchTermGrace, func() { once.Do(func() { stopAll(syscall.SIGKILL) }) })
	defer kill.Stop()
	for ; remaining > 0; remaining-- {
		e := <-exits
		if e.err != nil && first == nil && ctx.Err() == nil {
			first = fmt.Errorf("launch: bidder %d (node %d): %w", e.i, plan.Children[e.i].Node, e.err)
		}
	}
	return first
}

func orExit0(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// withPlacementFix makes sure per-node children listen with SO_REUSEPORT:
// an explicit --fixes must include placement (or all); without one,
// placement is added to BIDDER_FIXES.
func withPlacementFix(args, env []string) ([]string, error) {
	for i, a := range args {
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "fixes" {
			continue
		}
		if !hasVal {
			if i+1 >= len(args) {
				return nil, errors.New("--fixes without a value")
			}
			val = args[i+1]
		}
		f, err := bidder.ParseFixes(val)
		if err != nil {
			return nil, fmt.Errorf("--fixes: %w", err)
		}
		if !f.Placement {
			return nil, fmt.Errorf("one bidder per node shares the port with SO_REUSEPORT: --fixes %q must include placement", val)
		}
		return env, nil
	}
	cur := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "BIDDER_FIXES="); ok {
			cur = v
		}
	}
	if cur != "" {
		cur += ","
	}
	return placement.MergeEnv(env, []string{"BIDDER_FIXES=" + cur + bidder.FixPlacement}), nil
}

// parseUser resolves "name" or "uid[:gid]"; "" means keep the current user.
func parseUser(s string) (*syscall.Credential, error) {
	if s == "" {
		return nil, nil
	}
	if uidStr, gidStr, ok := strings.Cut(s, ":"); ok || isDigits(s) {
		uid, err := strconv.ParseUint(uidStr, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("%q: uid %q is not a number", s, uidStr)
		}
		gid := uid
		if ok {
			if gid, err = strconv.ParseUint(gidStr, 10, 32); err != nil {
				return nil, fmt.Errorf("%q: gid %q is not a number", s, gidStr)
			}
		}
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
	}
	u, err := user.Lookup(s)
	if err != nil {
		return nil, err
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("user %q has non-numeric uid/gid %s/%s", s, u.Uid, u.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// parseMemlock returns the RLIMIT_MEMLOCK to set, nil for "keep".
func parseMemlock(s string) (*unix.Rlimit, error) {
	switch s {
	case "keep", "":
		return nil, nil
	case "unlimited", "max":
		return &unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY}, nil
	}
	n, err := bidder.ParseSize(s)
	if err != nil || n < 0 {
		return nil, fmt.Errorf("%q: want a size such as 64MiB, unlimited or keep", s)
	}
	return &unix.Rlimit{Cur: uint64(n), Max: uint64(n)}, nil
}

// raiseMemlock sets RLIMIT_MEMLOCK. With bestEffort, a refusal (root without
// CAP_SYS_RESOURCE cannot pass the hard limit) falls back to the hard limit
// and says so.
func raiseMemlock(limit *unix.Rlimit, bestEffort bool, stderr io.Writer) error {
	err := unix.Setrlimit(unix.RLIMIT_MEMLOCK, limit)
	if err == nil || !bestEffort {
		if err != nil {
			return fmt.Errorf("set RLIMIT_MEMLOCK: %w (beyond the hard limit needs CAP_SYS_RESOURCE)", err)
		}
		return nil
	}
	var cur unix.Rlimit
	if gerr := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &cur); gerr != nil {
		return fmt.Errorf("get RLIMIT_MEMLOCK: %w", gerr)
	}
	cur.Cur = cur.Max
	if serr := unix.Setrlimit(unix.RLIMIT_MEMLOCK, &cur); serr != nil {
		return fmt.Errorf("set RLIMIT_MEMLOCK to its hard limit: %w", serr)
	}
	fmt.Fprintf(stderr, "launch: RLIMIT_MEMLOCK stays at its hard limit, %d bytes (%v); a bidder that drops root can mlock only that much\n", cur.Max, err)
	return nil
}
