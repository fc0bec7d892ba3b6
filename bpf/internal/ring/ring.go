//go:build linux

// Package ring streams a BPF ring buffer's records to a session's event
// channel: the read loop the kernel collectors (package bpf) and the Go
// runtime collectors (bpf/gort) share.
package ring

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/cilium/ebpf/ringbuf"
)

// Hooks is what a session does with each record. Every hook is required.
type Hooks[E any] struct {
	// Decode turns a raw sample into an event; an error counts a decode
	// failure (DecodeFailed) and the record is skipped.
	Decode       func(raw []byte) (E, error)
	DecodeFailed func()
	// Delivered runs after an event was sent on out; Unread after abort
	// closed while it waited (the consumer has gone).
	Delivered func(E)
	Unread    func()
	// Stopping reports whether Stop has begun: a flush then ends the loop
	// (the flush wakes the reader once the last records are in).
	Stopping func() bool
	// Implied, if set, returns an event a record stands for besides its
	// own, delivered right after it (and counted by Delivered): one record
	// that carries two events saves the programs a ring-buffer write.
	Implied func(E) (E, bool)
}

// Pump reads rd until it is closed, or flushed while stopping, and sends
// every decoded event on out. The kernel wakes the reader only for a full
// batch (the programs' wakeup_bytes), so a deadline of poll picks up the
// rest. It returns nil at a clean end and the read error otherwise.
func Pump[E any](rd *ringbuf.Reader, poll time.Duration, out chan<- E, abort <-chan struct{}, h Hooks[E]) error {
	var rec ringbuf.Record
	rd.SetDeadline(time.Now().Add(poll))
	for {
		if err := rd.ReadInto(&rec); err != nil {
			switch {
			case errors.Is(err, os.ErrDeadlineExceeded):
				rd.SetDeadline(time.Now().Add(poll))
				continue
			case errors.Is(err, ringbuf.ErrFlushed):
				if h.Stopping() {
					return nil
				}
				continue
			case errors.Is(err, ringbuf.ErrClosed):
				return nil
			}
			return fmt.Errorf("read ring buffer: %w", err)
		}
		ev, err := h.Decode(rec.RawSample)
		if err != nil {
			h.DecodeFailed()
			continue
		}
		deliver(ev, out, abort, h)
		if h.Implied != nil {
			if ev2, ok := h.Implied(ev); ok {
				deliver(ev2, out, abort, h)
			}
		}
	}
}

func deliver[E any](ev E, out chan<- E, abort <-chan struct{}, h Hooks[E]) {
	select {
	case out <- ev:
		h.Delivered(ev)
	case <-abort:
		h.Unread()
	}
}
