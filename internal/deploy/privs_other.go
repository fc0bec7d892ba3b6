//go:build !linux

package deploy

import (
	"errors"
	"syscall"
)

// ErrNotSupported is returned on systems other than Linux.
var ErrNotSupported = errors.New("deploy: not supported on this OS")

func credential(name string) (*syscall.Credential, error) { return nil, ErrNotSupported }

// LookupUser is only supported on Linux.
func LookupUser(name string) (uid, gid uint32, err error) { return 0, 0, ErrNotSupported }

// PrepareDir is only supported on Linux.
func PrepareDir(dir, userName string) error { return ErrNotSupported }

func sysProcAttr(cred *syscall.Credential, ambient []uintptr) *syscall.SysProcAttr { return nil }

const capIPCLock = 14

func hasCap(c uintptr) bool { return false }

func raiseMemlock(limit uint64) error { return ErrNotSupported }
