//go:build !linux

package main

// monoNow is 0 off Linux: the profile's interval is then unknown and
// request windows are not filtered by it.
func monoNow() int64 { return 0 }
