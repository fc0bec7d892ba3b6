//go:build linux

package main

import (
	"fmt"
	"runtime"

	"github.com/tailgate-ci/tailgate/bidder"
	"golang.org/x/sys/unix"
)

// placementNote reports the CPUs and GOMAXPROCS the process was given: the
// placement fix is applied by the launcher (bidder launch, bidder/placement)
// before exec; the bidder only honours it (the Go runtime sizes GOMAXPROCS
// from the affinity mask) and shares the port with SO_REUSEPORT.
func placementNote(f bidder.Fixes) string {
	var set unix.CPUSet
	cpus := "unknown"
	if unix.SchedGetaffinity(0, &set) == nil {
		cpus = fmt.Sprintf("%d CPUs %s", set.Count(), cpuList(&set))
	}
	s := fmt.Sprintf("affinity %s, GOMAXPROCS=%d", cpus, runtime.GOMAXPROCS(0))
	if f.Placement {
		s += ", placement: pinned by the launcher (bidder launch), listening with SO_REUSEPORT"
	}
	return s
}

func cpuList(set *unix.CPUSet) string {
	out := ""
	for i := 0; i < 1024; i++ {
		if !set.IsSet(i) {
			continue
		}
		j := i
		for j+1 < 1024 && set.IsSet(j+1) {
			j++
		}
		if out != "" {
			out += ","
		}
		if j > i {
			out += fmt.Sprintf("%d-%d", i, j)
		} else {
			out += fmt.Sprint(i)
		}
		i = j
	}
	return "[" + out + "]"
}
