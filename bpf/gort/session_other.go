//go:build !linux || !amd64

package gort

import (
	"context"
	"fmt"
	"runtime"
)

// Session is a running set of Go-runtime uprobes; on this platform none
// can run.
type Session struct{}

// Start reports that the Go-runtime collectors need linux/amd64.
func Start(ctx context.Context, opts Options) (*Session, error) {
	return nil, fmt.Errorf("start go collectors: %w on %s/%s", ErrNotSupported, runtime.GOOS, runtime.GOARCH)
}

// Info returns nothing on this platform.
func (s *Session) Info() Info { return Info{} }

// Events returns a closed channel.
func (s *Session) Events() <-chan Event {
	c := make(chan Event)
	close(c)
	return c
}

// Stop returns empty statistics.
func (s *Session) Stop() (Stats, error) { return Stats{}, nil }
