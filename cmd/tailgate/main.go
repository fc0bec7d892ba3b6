// Command tailgate gates pull requests on tail latency: it deploys a service,
// drives it at a constant rate, profiles its slow requests with eBPF and
// decides whether p99 stays under the SLO and p50 did not regress.
//
// main only wires: every subcommand is a function of
// (ctx, args, stdout, stderr, getenv) registered from its own file, so tests
// call commands without a subprocess.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// Exit codes (shared/STYLE.md): a failed gate is its own code, not a crash.
const (
	ExitPass         = 0
	ExitError        = 1
	ExitUsage        = 2
	ExitGateFailed   = 3
	ExitInconclusive = 4
)

// command is one tailgate subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error
}

var commands = map[string]command{}

// register adds a subcommand; each subcommand's file calls it from init.
func register(c command) {
	if _, dup := commands[c.name]; dup {
		panic("tailgate: duplicate command " + c.name)
	}
	commands[c.name] = c
}

// exitError carries an exit code through the error chain.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageErrorf reports bad command-line input (exit code 2).
func usageErrorf(format string, a ...any) error {
	return &exitError{code: ExitUsage, err: fmt.Errorf(format, a...)}
}

// withExit attaches an exit code to err.
func withExit(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}

// exitCode maps an error returned by run to the process exit code.
func exitCode(err error) int {
	if err == nil {
		return ExitPass
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return ExitError
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	stopProfile := startCPUProfile(os.Getenv(cpuProfileEnv), os.Stderr)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stopProfile()
	if err != nil && !errors.Is(err, errSilent) {
		fmt.Fprintln(os.Stderr, "tailgate:", err)
	}
	os.Exit(exitCode(err))
}

// errSilent marks an outcome already reported on stdout (e.g. a failed gate).
var errSilent = errors.New("already reported")

func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return usageErrorf("no command given")
		}
		return nil
	}
	c, ok := commands[args[0]]
	if !ok {
		usage(stderr)
		return usageErrorf("unknown command %q", args[0])
	}
	return c.run(ctx, args[1:], stdout, stderr, getenv)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: tailgate <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-12s %s\n", n, commands[n].summary)
	}
}
