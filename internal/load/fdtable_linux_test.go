//go:build linux

package load

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// fdTableSlots reads the size of this process's fd table: FDSize in
// /proc/self/status.
func fdTableSlots(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "FDSize:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no FDSize in /proc/self/status")
	return 0
}

// TestGrowFDTable: after growFDTable the kernel's table holds the target
// number of slots (so no socket(2) in a round has to grow it), no
// descriptor was left open, and a second call does nothing.
func TestGrowFDTable(t *testing.T) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	want := min(uint64(FDTableSize), lim.Cur)
	before, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	got := growFDTable()
	if got == 0 && fdTableSlots(t) < int(want) {
		t.Fatalf("growFDTable failed with the table at %d slots (want %d)", fdTableSlots(t), want)
	}
	if got != 0 && uint64(got) != want {
		t.Errorf("growFDTable reached %d slots, want %d", got, want)
	}
	if slots := fdTableSlots(t); uint64(slots) < want {
		t.Errorf("FDSize %d after growFDTable, want >= %d", slots, want)
	}
	after, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Errorf("%d descriptors open before, %d after: growFDTable leaked one", len(before), len(after))
	}
	if again := growFDTable(); again != 0 {
		t.Errorf("second call grew again (%d)", again)
	}
}
