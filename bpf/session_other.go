//go:build !linux || !amd64

package bpf

import (
	"context"
	"fmt"
	"runtime"
)

// Session is a running set of collectors; on this platform none can run.
type Session struct{}

// Start reports that kernel collectors need linux/amd64.
func Start(ctx context.Context, opts Options) (*Session, error) {
	return nil, fmt.Errorf("start collectors: %w on %s/%s", ErrNotSupported, runtime.GOOS, runtime.GOARCH)
}

// Events returns a closed channel.
func (s *Session) Events() <-chan Event {
	c := make(chan Event)
	close(c)
	return c
}

// AddPID is not supported on this platform.
func (s *Session) AddPID(pid int) error { return ErrNotSupported }

// Stop returns empty statistics.
func (s *Session) Stop() (Stats, error) { return Stats{}, nil }
