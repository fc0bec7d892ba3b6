package bidder

import (
	"math/rand/v2"
	"slices"
	"sync"
)

// NumSegments is the size of the audience segment space (ids 1..NumSegments)
// shared by user profiles and creative targeting.
const NumSegments = 500

// DefaultUsers is the default number of user profiles in the store.
const DefaultUsers = 2_000_000

const storeStripes = 1024

// maxCaps and maxVisits bound the per-user history so the live heap is stable.
const (
	maxCaps   = 16
	maxVisits = 4
)

// Profile is one user's data. It is deliberately shaped like real profile
// stores (pointers to small structs, slices, a linked list) because that is
// what makes the live heap expensive to mark.
type Profile struct {
	Segments   []uint32    // sorted audience segment ids; immutable after build
	Caps       []*CapEntry // frequency-cap history, guarded by the store stripe
	Visits     *Visit      // most recent first, guarded by the store stripe
	DeviceType uint8
}

// CapEntry counts a user's impressions of one campaign in the current window.
type CapEntry struct {
	Campaign    uint32
	Count       uint32
	WindowStart int64 // unix seconds
}

// Visit is one recent request of a user.
type Visit struct {
	At   int64 // unix nanoseconds
	Site uint32
	Next *Visit
}

// Store is the in-memory user profile store: a map of millions of profiles.
// Segments are read without locks; frequency caps and visits are guarded by
// one of storeStripes mutexes chosen by the user's slot, which keeps the
// store itself out of the lock-contention picture (that is the ledger's).
type Store struct {
	users   map[uint64]*Profile
	n       uint64
	stripes [storeStripes]struct {
		sync.Mutex
		_ [56]byte // one cache line per stripe
	}
}

// NewStore builds a store of n profiles from seed, in the calling goroutine
// (the single loader that first-touches the whole store).
func NewStore(n int, campaigns int, seed uint64) *Store {
	if n < 1 {
		n = 1
	}
	s := &Store{users: make(map[uint64]*Profile, n), n: uint64(n)}
	rng := rand.New(rand.NewPCG(seed, 0x73746f7265))
	now := int64(1_700_000_000)
	for i := range uint64(n) {
		p := &Profile{DeviceType: uint8(1 + rng.IntN(7))}
		segs := make([]uint32, 2+rng.IntN(14))
		for j := range segs {
			// Skewed: low segment ids are popular.
			a, b := rng.IntN(NumSegments), rng.IntN(NumSegments)
			segs[j] = uint32(1 + min(a, b))
		}
		slices.Sort(segs)
		p.Segments = slices.Compact(segs)
		if campaigns > 0 {
			nc := rng.IntN(5)
			if nc > 0 {
				p.Caps = make([]*CapEntry, nc, nc+2)
				for j := range p.Caps {
					p.Caps[j] = &CapEntry{Campaign: uint32(rng.IntN(campaigns)), Count: uint32(rng.IntN(3)), WindowStart: now}
				}
			}
		}
		for range 1 + rng.IntN(3) {
			p.Visits = &Visit{At: now, Site: uint32(rng.IntN(100_000)), Next: p.Visits}
		}
		s.users[i] = p
	}
	return s
}

// Len returns the number of profiles.
func (s *Store) Len() int { return len(s.users) }

// Slot maps a user identifier to its profile slot: FNV-1a of the id modulo
// the store size, so every id (from any request generator) finds a profile.
func (s *Store) Slot(id string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= 1099511628211
	}
	return h % s.n
}

// Get returns the profile of a slot.
func (s *Store) Get(slot uint64) *Profile { return s.users[slot] }

func (s *Store) stripe(slot uint64) *sync.Mutex { return &s.stripes[slot%storeStripes].Mutex }

// CapsSnapshot appends the user's frequency-cap entries that are still in
// their window to buf and returns it.
func (s *Store) CapsSnapshot(slot uint64, buf []CapEntry) []CapEntry {
	p := s.users[slot]
	if p == nil {
		return buf
	}
	mu := s.stripe(slot)
	mu.Lock()
	for _, c := range p.Caps {
		buf = append(buf, *c)
	}
	mu.Unlock()
	return buf
}

// RecordImpression counts one impression of campaign for the user if the
// campaign's cap allows it (cap 0 = uncapped) and reports whether it did. The
// check and the increment are atomic, so concurrent requests for the same
// user never exceed the cap.
func (s *Store) RecordImpression(slot uint64, c *Campaign, nowUnix int64) bool {
	p := s.users[slot]
	if p == nil {
		return true
	}
	mu := s.stripe(slot)
	mu.Lock()
	defer mu.Unlock()
	var e *CapEntry
	for _, ce := range p.Caps {
		if ce.Campaign == c.ID {
			e = ce
			break
		}
	}
	if e != nil && c.FreqWindowSec > 0 && nowUnix-e.WindowStart >= int64(c.FreqWindowSec) {
		e.Count, e.WindowStart = 0, nowUnix
	}
	if e != nil && c.FreqCap > 0 && e.Count >= uint32(c.FreqCap) {
		return false
	}
	if e == nil {
		e = &CapEntry{Campaign: c.ID, WindowStart: nowUnix}
		if len(p.Caps) >= maxCaps {
			// Drop the oldest window.
			oldest := 0
			for i, ce := range p.Caps {
				if ce.WindowStart < p.Caps[oldest].WindowStart {
					oldest = i
				}
			}
			p.Caps[oldest] = e
		} else {
			p.Caps = append(p.Caps, e)
		}
	}
	e.Count++
	return true
}

// Impressions returns the user's counted impressions of a campaign.
func (s *Store) Impressions(slot uint64, campaign uint32) uint32 {
	p := s.users[slot]
	if p == nil {
		return 0
	}
	mu := s.stripe(slot)
	mu.Lock()
	defer mu.Unlock()
	for _, ce := range p.Caps {
		if ce.Campaign == campaign {
			return ce.Count
		}
	}
	return 0
}

// AddVisit prepends a visit to the user's recent-visit list, keeping at most
// maxVisits; the allocation is what a real profile update costs the heap.
func (s *Store) AddVisit(slot uint64, site uint32, nowNano int64) {
	p := s.users[slot]
	if p == nil {
		return
	}
	mu := s.stripe(slot)
	mu.Lock()
	p.Visits = &Visit{At: nowNano, Site: site, Next: p.Visits}
	v := p.Visits
	for i := 1; v != nil && i < maxVisits; i++ {
		v = v.Next
	}
	if v != nil {
		v.Next = nil
	}
	mu.Unlock()
}
