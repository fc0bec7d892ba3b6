//go:build !linux

package main

import "io"

// isTerminal is only implemented on Linux; elsewhere progress is printed as
// plain periodic lines.
func isTerminal(w io.Writer) bool { return false }
