//go:build !linux

package experiment

import "errors"

func setThreadPriority(tid, nice int, realtime bool) error {
	return errors.New("thread priorities: not supported on this OS")
}

func autogroupNice() (int, bool) { return 0, false }

func setAutogroupNice(int) error { return errors.New("not supported") }

func childPIDs() (map[int]bool, error) {
	return nil, errors.New("child processes: not supported on this OS")
}

func signalPIDs([]int, bool) error { return errors.New("not supported") }
