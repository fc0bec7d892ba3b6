//go:build linux

package main

import "golang.org/x/sys/unix"

// monoNow reads CLOCK_MONOTONIC, the clock of the BPF events and of the
// load generator's request windows.
func monoNow() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return ts.Nano()
}
