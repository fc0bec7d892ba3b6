//go:build !linux

package main

import (
	"fmt"
	"runtime"

	"github.com/tailgate-ci/tailgate/bidder"
)

// placementNote reports GOMAXPROCS; the affinity mask needs Linux.
func placementNote(f bidder.Fixes) string {
	s := fmt.Sprintf("affinity unknown (not Linux), GOMAXPROCS=%d", runtime.GOMAXPROCS(0))
	if f.Placement {
		s += ", placement: needs Linux"
	}
	return s
}
