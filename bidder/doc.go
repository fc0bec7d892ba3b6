// Package bidder owns the bundled system under test: an OpenRTB 2.6 ad-auction
// service (POST /openrtb2/bid, GET /healthz, GET /metrics) whose baseline
// configuration really has the four classic Go tail-latency contributors, and
// the switches (Fixes) that remove each one.
//
// The contributors are mechanisms, never sleeps:
//
//   - GC: the user profile Store is a pointer-heavy live heap (a map of
//     millions of small structs, slices and linked lists) and the baseline
//     request path allocates heavily, so default GOGC gives frequent, long
//     mark phases with mark assists on the request goroutines.
//   - Locks: the baseline pacing Ledger is one sync.Mutex over all campaigns,
//     and a periodic reconciliation holds it while it walks every campaign.
//   - Page faults: candidates come from an Index memory-mapped from a file
//     (built by BuildIndex) and read at random pages with MADV_RANDOM; once a
//     neighbour evicts the pages (MADV_PAGEOUT via process_madvise) every
//     probe is a major fault.
//   - Placement: one loader goroutine first-touches the index and the store;
//     the fix lives in bidder/placement and the `bidder launch` launcher,
//     this package only honours the affinity and GOMAXPROCS it is given and
//     can share the port with SO_REUSEPORT.
//
// The fixes (gc, locks, mlock, placement) are independent and combinable; see
// README.md in this directory for what each does and the calibration table.
package bidder
