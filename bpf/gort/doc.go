// Package gort owns tailgate's Go-runtime collectors: uprobes on a Go
// target binary (GC cycles, stop-the-world pauses, mark assists, goroutine
// park/ready/resume with wait reasons and parked stacks, goroutine
// scheduling onto threads, and net/http request goroutines), the BPF C
// source, its committed bpf2go output and the Go loader that streams typed
// events. Every probe is an entry uprobe or a uprobe on a RET instruction
// found by internal/goprobe; uretprobes are never used, they crash Go
// programs when goroutine stacks move.
package gort
