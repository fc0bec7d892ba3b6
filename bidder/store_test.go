package bidder

import (
	"sync"
	"sync/atomic"
	"testing"
)

// TestFreqCapConcurrent records impressions of the same users and campaigns
// from many goroutines: the counted impressions must equal the granted ones
// and never exceed the cap.
func TestFreqCapConcurrent(t *testing.T) {
	s := NewStore(1000, 0, 3) // no generated cap history
	camps := []Campaign{
		{ID: 1, FreqCap: 3, FreqWindowSec: 3600},
		{ID: 2, FreqCap: 1, FreqWindowSec: 3600},
		{ID: 3}, // uncapped
	}
	const now = int64(1_800_000_000) // after every generated window
	slots := []uint64{0, 1, 2, 999}
	granted := make(map[[2]uint64]*atomic.Int64)
	for _, sl := range slots {
		for _, c := range camps {
			granted[[2]uint64{sl, uint64(c.ID)}] = new(atomic.Int64)
		}
	}
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 400 {
				sl := slots[(i+w)%len(slots)]
				c := &camps[(i*3+w)%len(camps)]
				if s.RecordImpression(sl, c, now) {
					granted[[2]uint64{sl, uint64(c.ID)}].Add(1)
				}
				s.AddVisit(sl, uint32(i), int64(i))
			}
		}()
	}
	wg.Wait()
	for _, sl := range slots {
		for _, c := range camps {
			g := granted[[2]uint64{sl, uint64(c.ID)}].Load()
			if got := int64(s.Impressions(sl, c.ID)); got != g {
				t.Errorf("slot %d campaign %d: store counts %d, %d granted", sl, c.ID, got, g)
			}
			if c.FreqCap > 0 && g > int64(c.FreqCap) {
				t.Errorf("slot %d campaign %d: %d impressions over cap %d", sl, c.ID, g, c.FreqCap)
			}
			if c.FreqCap > 0 && g != int64(c.FreqCap) {
				t.Errorf("slot %d campaign %d: %d impressions, want exactly the cap %d", sl, c.ID, g, c.FreqCap)
			}
		}
	}
	// The window resets the cap.
	if !s.RecordImpression(0, &camps[1], now+3600) {
		t.Error("cap did not reset after its window")
	}
	// Visits stay bounded.
	n := 0
	for v := s.Get(0).Visits; v != nil; v = v.Next {
		n++
	}
	if n > maxVisits {
		t.Errorf("%d visits kept, max %d", n, maxVisits)
	}
}

func TestStoreSlot(t *testing.T) {
	s := NewStore(100, 10, 1)
	if s.Len() != 100 {
		t.Fatalf("Len = %d", s.Len())
	}
	seen := map[uint64]bool{}
	for _, id := range []string{"a", "b", "user-1", "user-2", "", "ф"} {
		sl := s.Slot(id)
		if sl >= 100 || s.Get(sl) == nil {
			t.Fatalf("Slot(%q) = %d has no profile", id, sl)
		}
		seen[sl] = true
		if s.Slot(id) != sl {
			t.Fatal("Slot is not deterministic")
		}
	}
	if len(seen) < 3 {
		t.Fatal("Slot maps everything together")
	}
	for _, sl := range []uint64{0, 50, 99} {
		p := s.Get(sl)
		for i := 1; i < len(p.Segments); i++ {
			if p.Segments[i-1] >= p.Segments[i] {
				t.Fatalf("segments not sorted and unique: %v", p.Segments)
			}
		}
	}
}

func TestParseFixes(t *testing.T) {
	tests := []struct {
		in, want string
		err      bool
	}{
		{"", "none", false}, {"none", "none", false}, {"gc", "gc", false},
		{"locks, gc", "gc,locks", false}, {"all", "gc,locks,mlock,placement", false},
		{"MLOCK,placement", "mlock,placement", false}, {"gc,,", "gc", false},
		{"numa", "", true}, {"gc,fast", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			f, err := ParseFixes(tt.in)
			if (err != nil) != tt.err {
				t.Fatalf("ParseFixes(%q) err = %v", tt.in, err)
			}
			if err == nil && f.String() != tt.want {
				t.Fatalf("ParseFixes(%q) = %s, want %s", tt.in, f, tt.want)
			}
		})
	}
}
