//go:build !linux

package main

import (
	"errors"
	"time"
)

// consumerSched needs Linux (SCHED_IDLE); elsewhere the consumer keeps its
// policy.
type consumerSched struct{}

func newConsumerSched(time.Duration) *consumerSched { return &consumerSched{} }
func (c *consumerSched) lower() error               { return errors.New("SCHED_IDLE needs Linux") }
func (c *consumerSched) observe(uint64)             {}
func (c *consumerSched) restore()                   {}
func (c *consumerSched) raised() (int64, time.Duration, error) {
	return 0, 0, nil
}
