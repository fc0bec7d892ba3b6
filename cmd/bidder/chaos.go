package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"runtime"

	"github.com/tailgate-ci/tailgate/bidder/chaos"
)

func init() { register("chaos", runChaos) }

const chaosUsage = `usage:
  bidder chaos pageout --pid P [--every 1s] [--path-substr S] [--children=true]
      every D, write back and process_madvise(MADV_PAGEOUT) the index mapping
      of process P and its descendants (default: the largest shared file
      mapping; --path-substr picks file mappings whose path contains S).
      Needs root. Stops when P exits or on SIGTERM/SIGINT.
  bidder chaos cpu [--threads N] [--duration D]
      N OS threads of arithmetic (default: one per CPU) until SIGTERM/SIGINT
      or D.`

// runChaos implements `bidder chaos`: the neighbours the demo and the tests
// run beside the bidder (bidder/chaos). ctx ends on SIGTERM/SIGINT (main).
func runChaos(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, chaosUsage)
		return usageErrorf("chaos: missing neighbour (pageout or cpu)")
	}
	switch args[0] {
	case "pageout":
		return runChaosPageOut(ctx, args[1:], stdout, stderr)
	case "cpu":
		return runChaosCPU(ctx, args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprintln(stderr, chaosUsage)
		return nil
	}
	fmt.Fprintln(stderr, chaosUsage)
	return usageErrorf("chaos: unknown neighbour %q (want pageout or cpu)", args[0])
}

func runChaosPageOut(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("chaos pageout", flag.ContinueOnError)
	fs.SetOutput(stderr)
	pid := fs.Int("pid", 0, "target process ID (required)")
	every := fs.Duration("every", chaos.DefaultPageOutEvery, "interval between pageout rounds")
	substr := fs.String("path-substr", "", "page out file mappings whose path contains this (default: the largest shared file mapping)")
	children := fs.Bool("children", true, "also page out the descendants of --pid (the per-node bidders under bidder launch)")
	if err := fs.Parse(args); err != nil {
		return &usageError{err: err}
	}
	switch {
	case fs.NArg() > 0:
		return usageErrorf("chaos pageout: unexpected arguments %q", fs.Args())
	case *pid <= 0:
		return usageErrorf("chaos pageout: --pid: want a positive process ID, got %d", *pid)
	case *every <= 0:
		return usageErrorf("chaos pageout: --every: want a positive duration, got %v", *every)
	case *pid == 1 && *children:
		return usageErrorf("chaos pageout: --pid 1 with --children would page out every process; pass --children=false")
	}
	st, err := chaos.RunPageOut(ctx, chaos.PageOutConfig{PID: *pid, Every: *every, PathSubstr: *substr, Children: *children, Log: stderr})
	if err != nil {
		return fmt.Errorf("chaos %w", err)
	}
	fmt.Fprintf(stdout, "pageout pid %d: %s\n", *pid, st)
	return nil
}

func runChaosCPU(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("chaos cpu", flag.ContinueOnError)
	fs.SetOutput(stderr)
	threads := fs.Int("threads", runtime.NumCPU(), "OS threads burning CPU")
	duration := fs.Duration("duration", 0, "stop after this long (0: until SIGTERM/SIGINT)")
	if err := fs.Parse(args); err != nil {
		return &usageError{err: err}
	}
	if fs.NArg() > 0 {
		return usageErrorf("chaos cpu: unexpected arguments %q", fs.Args())
	}
	if *threads < 1 {
		return usageErrorf("chaos cpu: --threads: want >= 1, got %d", *threads)
	}
	if *duration < 0 {
		return usageErrorf("chaos cpu: --duration: must not be negative, got %v", *duration)
	}
	c, err := chaos.NewCPU(chaos.CPUConfig{Threads: *threads, Duration: *duration, Log: stderr})
	if err != nil {
		return usageErrorf("chaos %v", err)
	}
	st := c.Run(ctx)
	fmt.Fprintf(stdout, "cpu neighbour: %d threads, %d work units in %v\n", st.Threads, st.Ops, st.Elapsed.Round(1e6))
	return nil
}
