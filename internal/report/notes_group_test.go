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
