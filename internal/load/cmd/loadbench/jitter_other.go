//go:build !linux

package main

import (
	"context"
	"errors"
	"io"
)

func jitter(context.Context, []string, io.Writer, io.Writer) error {
	return errors.New("jitter: needs Linux (clock_nanosleep, SCHED_RR)")
}
