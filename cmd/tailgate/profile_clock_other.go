//go:build !linux

package main

import "time"

// monoNow is 0 off Linux: the profile's interval is then unknown and
// request windows are not filtered by it.
func monoNow() int64 { return 0 }

// processCPU is 0 off Linux: the consumer's CPU is not reported.
func processCPU() time.Duration { return 0 }
