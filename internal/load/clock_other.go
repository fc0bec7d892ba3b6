//go:build !linux

package load

import (
	"errors"
	"time"
)

// clockSupported reports whether CLOCK_MONOTONIC stamps are available.
const clockSupported = false

func monoNow() int64 { return 0 }

// sleeper is Linux-only (timerfd); Run returns ErrNotSupported elsewhere.
type sleeper struct{}

func newSleeper(time.Duration) (*sleeper, error)    { return nil, errors.New("no timerfd") }
func (s *sleeper) tick(began int64, k uint64) error { return nil }
func (s *sleeper) close() error                     { return nil }
func (s *sleeper) wake()                            {}
