package main

import (
	"fmt"
	"io"
	"os"
	"runtime/pprof"
)

// cpuProfileEnv names a file for a CPU profile of the whole tailgate
// process (the load generator, the profiler's consumer, the analysis), for
// finding what the measuring apparatus costs the host it shares with the
// service: `TAILGATE_CPUPROFILE=/tmp/tg.pprof tailgate run ...`, then
// `go tool pprof -top tailgate /tmp/tg.pprof.PID`. Each tailgate process
// started with it (the command, and any tailgate it runs in turn) writes
// its own file, suffixed with its pid. The service and the witness child
// are not profiled.
const cpuProfileEnv = "TAILGATE_CPUPROFILE"

// startCPUProfile starts profiling into path ("" does nothing) and returns
// what stops it; a profile that cannot start is reported and skipped.
func startCPUProfile(path string, stderr io.Writer) (stop func()) {
	if path == "" {
		return func() {}
	}
	path = fmt.Sprintf("%s.%d", path, os.Getpid())
	f, err := os.Create(path)
	if err == nil {
		if err = pprof.StartCPUProfile(f); err != nil {
			f.Close()
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "tailgate: %s: %v (no CPU profile)\n", cpuProfileEnv, err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			fmt.Fprintf(stderr, "tailgate: %s: %v\n", cpuProfileEnv, err)
		}
	}
}
