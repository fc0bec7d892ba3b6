//go:build !linux

package experiment

import "errors"

func setThreadPriority(tid, nice int, realtime bool) error {
	return errors.New("thread priorities: not supported on this OS")
}

func autogroupNice() (int, bool) { return 0, false }

func setAutogroupNice(int) error { return errors.New("not supported") }
