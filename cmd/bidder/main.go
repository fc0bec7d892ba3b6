// Command bidder is the bundled system under test: an OpenRTB ad-auction
// service with four real tail-latency contributors and a switch per fix.
//
//	bidder serve [--addr 127.0.0.1:8080] [--index PATH] [--users N] [--fixes gc,locks,mlock,placement]
//	bidder index build --out PATH [--size 1GiB] [--campaigns N]
//	bidder chaos ...   (neighbours: pageout, cpu; cmd/bidder/chaos.go)
//	bidder launch ...  (placement launcher; cmd/bidder/launch.go)
//
// main only wires: each subcommand is a function of (ctx, args, stdout,
// stderr) registered in the subcommands map from its own file.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// Exit codes: 0 ok, 1 error, 2 usage.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// subcommand is one `bidder` subcommand.
type subcommand func(ctx context.Context, args []string, stdout, stderr io.Writer) error

// subcommands is filled from init functions: serve and index here, chaos
// and launch by cmd/bidder/chaos.go and launch.go (register("chaos",
// runChaos)), so this file builds with or without them.
var subcommands = map[string]subcommand{}

// register adds a subcommand; a duplicate name is a programming error.
func register(name string, fn subcommand) {
	if _, dup := subcommands[name]; dup {
		panic("bidder: duplicate subcommand " + name)
	}
	subcommands[name] = fn
}

// usageError marks bad command-line input (exit code 2).
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usageErrorf(format string, a ...any) error {
	return &usageError{err: fmt.Errorf(format, a...)}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bidder:", err)
	}
	os.Exit(exitCode(err))
}

func exitCode(err error) int {
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue), errors.Is(err, flag.ErrHelp):
		return exitUsage
	}
	return exitError
}

// getenvFunc is how serve reads BIDDER_FIXES; tests replace it.
var getenvFunc = os.Getenv

// run dispatches to a subcommand.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if getenv != nil {
		getenvFunc = getenv
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintf(stderr, "usage: bidder <%s> [flags]\n", strings.Join(names(), "|"))
		if len(args) == 0 {
			return usageErrorf("missing subcommand")
		}
		return nil
	}
	fn, ok := subcommands[args[0]]
	if !ok {
		return usageErrorf("unknown subcommand %q (have %s)", args[0], strings.Join(names(), ", "))
	}
	return fn(ctx, args[1:], stdout, stderr)
}

func names() []string {
	var n []string
	for k := range subcommands {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}
