//go:build !linux

package main

import (
	"context"
	"errors"
	"io"
)

func init() { register("launch", runLaunch) }

// runLaunch needs Linux: sched_setaffinity, set_mempolicy, ambient
// capabilities.
func runLaunch(context.Context, []string, io.Writer, io.Writer) error {
	return errors.New("launch: needs Linux (sched_setaffinity, set_mempolicy, ambient capabilities)")
}
