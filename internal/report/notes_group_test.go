package report

import (
	"reflect"
	"testing"
)

func TestGroupNotes(t *testing.T) {
	in := []string{
		"demo: base is the baseline variant",
		"arm locks: bidder: raise RLIMIT_MEMLOCK: operation not permitted",
		"arm gc+locks: bidder: raise RLIMIT_MEMLOCK: operation not permitted",
		"arm gc+locks: service priority nice -5",
		"demo: base is the baseline variant",
		"arm locks: bidder: raise RLIMIT_MEMLOCK: operation not permitted",
		"arm with spaces: not an arm note",
	}
	want := []string{
		"demo: base is the baseline variant",
		"arms locks, gc+locks: bidder: raise RLIMIT_MEMLOCK: operation not permitted",
		"arm gc+locks: service priority nice -5",
		"arm with spaces: not an arm note",
	}
	if got := groupNotes(in); !reflect.DeepEqual(got, want) {
		t.Errorf("groupNotes:\n got %q\nwant %q", got, want)
	}
}

func TestNoteAbout(t *testing.T) {
	for _, tc := range []struct {
		note, fix string
		want      bool
	}{
		{"arm locks: bidder: raise RLIMIT_MEMLOCK", "locks", true},
		{"arm gc+locks: bidder: raise RLIMIT_MEMLOCK", "locks", false},
		{"variant locks: inconclusive (p99 1369ms)", "locks", true},
		{"variant gc+locks+mlock: pass", "mlock", false},
		{"demo: base is the baseline variant, head the gc+locks+mlock+placement variant", "gc", false},
		{"the mlock fix needs CAP_IPC_LOCK; gave it", "mlock", true},
		{"profiled round of locks is invalid", "locks", true},
		{"mlockall failed", "mlock", false},
	} {
		if got := noteAbout(tc.note, tc.fix); got != tc.want {
			t.Errorf("noteAbout(%q, %q) = %v, want %v", tc.note, tc.fix, got, tc.want)
		}
	}
}
