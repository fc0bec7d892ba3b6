package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/tailgate-ci/tailgate/bidder"
)

func init() { register("index", runIndex) }

// runIndex implements `bidder index build`.
func runIndex(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "build" {
		return usageErrorf("usage: bidder index build --out PATH [--size 1GiB] [--campaigns N] [--seed S]")
	}
	fs := flag.NewFlagSet("index build", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "index file to write (required)")
	size := fs.String("size", "1GiB", "index file size (e.g. 1GiB, 512MiB, 16MiB)")
	campaigns := fs.Int("campaigns", bidder.DefaultCampaigns, "number of campaigns")
	seed := fs.Uint64("seed", 1, "generator seed (same flags, same file)")
	if err := fs.Parse(args[1:]); err != nil {
		return &usageError{err: err}
	}
	if fs.NArg() > 0 {
		return usageErrorf("index build: unexpected arguments %q", fs.Args())
	}
	if *out == "" {
		return usageErrorf("index build: --out is required")
	}
	n, err := bidder.ParseSize(*size)
	if err != nil {
		return usageErrorf("index build: --size: %v", err)
	}
	if *campaigns < 1 {
		return usageErrorf("index build: --campaigns must be at least 1")
	}
	start := time.Now()
	if err := bidder.BuildIndex(*out, bidder.IndexOptions{Size: n, Campaigns: *campaigns, Seed: *seed}); err != nil {
		return err
	}
	st, err := os.Stat(*out)
	if err != nil {
		return fmt.Errorf("index build: %w", err)
	}
	fmt.Fprintf(stdout, "wrote %s (%d bytes, %d campaigns) in %v\n", *out, st.Size(), *campaigns, time.Since(start).Round(time.Millisecond))
	return nil
}
