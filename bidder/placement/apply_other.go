//go:build !linux

package placement

import (
	"errors"
	"os/exec"
)

// ErrNotSupported: applying a placement needs Linux.
var errNotSupported = errors.New("placement: not supported on this platform (needs Linux)")

// ApplyToThread needs Linux.
func ApplyToThread(c Child) error { return errNotSupported }

// Start needs Linux.
func Start(c Child, cmd *exec.Cmd) error { return errNotSupported }

// Exec needs Linux.
func Exec(c Child, path string, argv, env []string, id Identity) error {
	return errNotSupported
}

// ThreadAffinity needs Linux.
func ThreadAffinity() ([]int, error) { return nil, errNotSupported }
