package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/tailgate-ci/tailgate/bidder"
)

func init() { register("serve", runServe) }

// runServe implements `bidder serve`: it builds the bidder, serves until ctx
// ends (SIGTERM/SIGINT in main) and then shuts down gracefully.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "listen address")
	index := fs.String("index", "bidder.idx", "index file built by `bidder index build`")
	users := fs.Int("users", bidder.DefaultUsers, "user profiles in the in-memory store")
	seed := fs.Uint64("seed", 1, "profile store seed")
	probes := fs.Int("probes", bidder.DefaultProbes, "random index pages read per impression size")
	reconcile := fs.Duration("reconcile", bidder.DefaultReconcileInterval, "pacing ledger reconciliation interval")
	tmaxDefault := fs.Duration("tmax-default", bidder.DefaultTmax, "deadline for requests without tmax")
	tmaxCap := fs.Duration("tmax-max", bidder.MaxTmax, "cap on a request's tmax")
	maxBody := fs.String("max-body", "256KiB", "request body limit")
	fixesFlag := fs.String("fixes", "", "comma-separated fixes: gc,locks,mlock,placement (or all/none); default $BIDDER_FIXES")
	shutdown := fs.Duration("shutdown-timeout", 10*time.Second, "graceful shutdown timeout")
	if err := fs.Parse(args); err != nil {
		return &usageError{err: err}
	}
	if fs.NArg() > 0 {
		return usageErrorf("serve: unexpected arguments %q", fs.Args())
	}
	spec := getenvFunc("BIDDER_FIXES")
	if isFlagSet(fs, "fixes") {
		spec = *fixesFlag
	}
	fixes, err := bidder.ParseFixes(spec)
	if err != nil {
		return usageErrorf("serve: --fixes/BIDDER_FIXES: %v", err)
	}
	mb, err := bidder.ParseSize(*maxBody)
	if err != nil || mb < 1 {
		return usageErrorf("serve: --max-body: invalid size %q", *maxBody)
	}
	if *users < 1 || *probes < 1 || *reconcile <= 0 || *tmaxDefault <= 0 || *tmaxCap <= 0 {
		return usageErrorf("serve: --users, --probes must be >= 1 and durations > 0")
	}
	logger := log.New(stderr, "bidder: ", log.LstdFlags|log.Lmicroseconds|log.LUTC)
	idx, err := filepath.Abs(*index)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	logger.Printf("pid %d, fixes=%s, %s", os.Getpid(), fixes, placementNote(fixes))

	b, err := bidder.New(bidder.Config{
		IndexPath: idx, Users: *users, Seed: *seed, Probes: *probes,
		ReconcileInterval: *reconcile, DefaultTmax: *tmaxDefault, MaxTmax: *tmaxCap,
		MaxBody: mb, Fixes: fixes, Logf: logger.Printf,
	})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	defer b.Close()
	if fixes.Mlock {
		logger.Printf("VmLck %d bytes", bidder.LockedBytes())
	}

	ln, err := bidder.Listen(ctx, *addr, fixes.Placement)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	srv := &http.Server{
		Handler:           b.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          logger,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	logger.Printf("serving on http://%s (POST /openrtb2/bid, GET /healthz, GET /metrics); startup %v",
		ln.Addr(), b.Startup().Round(time.Millisecond))

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Printf("shutting down (draining for up to %v)", *shutdown)
	sctx, cancel := context.WithTimeout(context.Background(), *shutdown)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("serve: shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	logger.Printf("stopped")
	return nil
}

func isFlagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
