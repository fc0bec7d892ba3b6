// Command goprog prints the program counters of its own call stack with the
// names the Go runtime gives them, then blocks until stdin closes, so a test
// can symbolize those pcs through this process's /proc/PID/maps.
package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
)

//go:noinline
func leafFrame() []uintptr {
	pcs := make([]uintptr, 32)
	n := runtime.Callers(1, pcs)
	return pcs[:n]
}

// inlinedFrame is small enough to be inlined into middleFrame, so the
// return address in middleFrame sits in inlined code.
func inlinedFrame() []uintptr { return leafFrame() }

//go:noinline
func middleFrame() []uintptr { return inlinedFrame() }

//go:noinline
func outerFrame() []uintptr { return middleFrame() }

func main() {
	// Each line: a pc, the innermost function the runtime reports at it
	// (an inlined one for the pc in middleFrame) and the physical function
	// containing it. runtime.Callers already lists each inlined level as
	// its own pc, which frame-pointer stacks from BPF do not.
	for _, pc := range outerFrame() {
		inner, _ := runtime.CallersFrames([]uintptr{pc}).Next()
		physical := runtime.FuncForPC(runtime.FuncForPC(pc - 1).Entry()).Name()
		fmt.Printf("%#x %s,%s\n", pc, inner.Function, physical)
	}
	fmt.Println("ready")
	bufio.NewReader(os.Stdin).ReadString('\n')
}
