package bidder

import (
	"math/rand/v2"
	"sort"
	"testing"
)

// TestKeepTop checks the gc fix's top-K selection against a full sort.
func TestKeepTop(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 200 {
		n := rng.IntN(40)
		all := make([]candidate, n)
		prefix := []candidate{{value: 99, imp: 0}} // another impression's slice
		cands := append([]candidate(nil), prefix...)
		for i := range all {
			all[i] = candidate{cr: Creative{ID: uint32(i)}, value: float64(rng.IntN(10)), imp: 1}
			cands = keepTop(cands, len(prefix), all[i])
		}
		sort.Slice(all, func(a, b int) bool {
			return all[a].value > all[b].value || (all[a].value == all[b].value && all[a].cr.ID < all[b].cr.ID)
		})
		want := all[:min(n, maxAttempts)]
		got := cands[len(prefix):]
		if len(got) != len(want) || cands[0].value != 99 {
			t.Fatalf("trial %d: kept %d, want %d", trial, len(got), len(want))
		}
		for i := range want {
			if got[i].cr.ID != want[i].cr.ID {
				t.Fatalf("trial %d: position %d is creative %d, want %d", trial, i, got[i].cr.ID, want[i].cr.ID)
			}
		}
	}
}
