package bidder

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prebid/openrtb/v20/adcom1"
	"github.com/prebid/openrtb/v20/openrtb2"
)

// Defaults of Config; the zero Config means these.
const (
	DefaultProbes  = 4                      // random index pages read per impression size
	DefaultTmax    = 100 * time.Millisecond // deadline when the request has no tmax
	MaxTmax        = time.Second            // cap on the request's tmax
	DefaultMaxBody = 256 << 10              // request body limit in bytes
	DefaultShade   = 0.7                    // share of (value - floor) bid above the floor
	DefaultSeat    = "tailgate"
	maxAttempts    = 8 // candidates tried per impression before giving up
)

// Config configures a Bidder. The zero value (plus IndexPath) is the
// calibrated default deployment.
type Config struct {
	IndexPath         string
	Users             int           // profiles in the store; 0 = DefaultUsers
	Seed              uint64        // store generator seed
	Probes            int           // index pages read per impression size; 0 = DefaultProbes
	ReconcileInterval time.Duration // 0 = DefaultReconcileInterval
	DefaultTmax       time.Duration // 0 = DefaultTmax
	MaxTmax           time.Duration // 0 = MaxTmax
	MaxBody           int64         // 0 = DefaultMaxBody
	Shade             float64       // 0 = DefaultShade
	Fixes             Fixes
	// Logf receives start-up and lifecycle lines; nil discards them.
	Logf func(format string, a ...any)
}

func (c Config) withDefaults() Config {
	if c.Users == 0 {
		c.Users = DefaultUsers
	}
	if c.Probes == 0 {
		c.Probes = DefaultProbes
	}
	if c.ReconcileInterval == 0 {
		c.ReconcileInterval = DefaultReconcileInterval
	}
	if c.DefaultTmax == 0 {
		c.DefaultTmax = DefaultTmax
	}
	if c.MaxTmax == 0 {
		c.MaxTmax = MaxTmax
	}
	if c.MaxBody == 0 {
		c.MaxBody = DefaultMaxBody
	}
	if c.Shade == 0 {
		c.Shade = DefaultShade
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	return c
}

// Bidder is the auction service: index, profile store, pacing ledger and the
// HTTP handlers.
type Bidder struct {
	cfg     Config
	index   *Index
	camps   []Campaign
	store   *Store
	ledger  Ledger
	metrics *Metrics
	scratch sync.Pool // *scratch, used with the gc fix
	startup time.Duration
	gcNote  string

	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
}

// New opens the index, applies the fixes, builds the profile store and the
// ledger, and starts the ledger's reconciliation loop. Close stops it.
func New(cfg Config) (*Bidder, error) {
	cfg = cfg.withDefaults()
	if cfg.Users < 0 || cfg.Probes < 0 || cfg.ReconcileInterval < 0 || cfg.MaxBody < 0 || cfg.Shade < 0 || cfg.Shade > 1 {
		return nil, errors.New("new bidder: users, probes, reconcile interval and max body must not be negative, shade in [0,1]")
	}
	start := time.Now()
	ix, err := OpenIndex(cfg.IndexPath)
	if err != nil {
		return nil, err
	}
	b := &Bidder{cfg: cfg, index: ix, camps: ix.Campaigns(), metrics: newMetrics(),
		stop: make(chan struct{}), done: make(chan struct{})}
	if cfg.Fixes.Mlock {
		t := time.Now()
		if err := ix.Lock(); err != nil {
			ix.Close()
			return nil, err
		}
		cfg.Logf("mlock: locked %d bytes of %s in %v (VmLck %d bytes)", len(ix.HotRange()), ix.Path(),
			time.Since(t).Round(time.Millisecond), LockedBytes())
	}
	// One loader goroutine first-touches the whole store and index, as a
	// naive service does: on a NUMA host all of it lands on that
	// goroutine's node (the placement fix runs one process per node).
	loaded := make(chan struct{})
	go func() {
		defer close(loaded)
		// The bulk load only allocates live data: collecting during it
		// would re-mark a growing heap for nothing.
		old := debug.SetGCPercent(-1)
		defer debug.SetGCPercent(old)
		b.store = NewStore(cfg.Users, len(b.camps), cfg.Seed)
		if !ix.Locked() {
			ix.Touch()
		}
	}()
	<-loaded
	if cfg.Fixes.Locks {
		b.ledger = NewShardedLedger(b.camps, cfg.ReconcileInterval)
	} else {
		b.ledger = NewGlobalLedger(b.camps, cfg.ReconcileInterval)
	}
	if cfg.Fixes.GC {
		b.gcNote = tuneGC()
		cfg.Logf("gc fix: %s", b.gcNote)
	}
	b.scratch.New = func() any { return new(scratch) }
	b.startup = time.Since(start)
	cfg.Logf("bidder ready in %v: %d users, %d campaigns, index %s (%d bytes), fixes=%s, GOMAXPROCS=%d",
		b.startup.Round(time.Millisecond), b.store.Len(), len(b.camps), ix.Path(), len(ix.Bytes()),
		cfg.Fixes, runtime.GOMAXPROCS(0))
	go b.reconcileLoop()
	return b, nil
}

func (b *Bidder) reconcileLoop() {
	defer close(b.done)
	t := time.NewTicker(b.cfg.ReconcileInterval)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			b.ledger.Reconcile()
		}
	}
}

// Close stops reconciliation and unmaps the index. Requests must be drained.
func (b *Bidder) Close() error {
	b.stopOnce.Do(func() { close(b.stop) })
	<-b.done
	return b.index.Close()
}

// Startup returns how long New took.
func (b *Bidder) Startup() time.Duration { return b.startup }

// Index returns the bidder's index mapping.
func (b *Bidder) Index() *Index { return b.index }

// Store returns the profile store.
func (b *Bidder) Store() *Store { return b.store }

// Ledger returns the pacing ledger.
func (b *Bidder) Ledger() Ledger { return b.ledger }

// Fixes returns the enabled fixes.
func (b *Bidder) Fixes() Fixes { return b.cfg.Fixes }

// NoBid reasons returned by Auction.
const (
	NoBidNone     = ""
	NoBidNoMatch  = "no-match" // no creative passed targeting and floors
	NoBidPaced    = "paced"    // candidates, but caps or pacing refused them all
	NoBidDeadline = "deadline" // tmax ran out
	NoBidInternal = "no-index" // nothing to read
)

// candidate is one creative that passed targeting for an impression.
type candidate struct {
	cr    Creative
	value float64 // bid value, CPM USD
	imp   int
	crid  string // baseline only: formatted eagerly
}

// scratch holds the per-request buffers the gc fix pools.
type scratch struct {
	body  []byte
	out   []byte
	adm   []byte
	caps  []CapEntry
	cands []candidate
	req   openrtb2.BidRequest
	sizes []int
}

// Auction runs the auction for a decoded request and returns a response, or
// nil and the no-bid reason.
func (b *Bidder) Auction(ctx context.Context, req *openrtb2.BidRequest) (*openrtb2.BidResponse, string) {
	var sc *scratch
	if b.cfg.Fixes.GC {
		sc = b.scratch.Get().(*scratch)
		defer b.putScratch(sc)
	}
	return b.auction(ctx, req, sc)
}

func (b *Bidder) putScratch(sc *scratch) {
	if cap(sc.body) > 1<<20 || cap(sc.cands) > 1<<16 {
		return // do not keep outliers alive
	}
	b.scratch.Put(sc)
}

func (b *Bidder) auction(ctx context.Context, req *openrtb2.BidRequest, sc *scratch) (*openrtb2.BidResponse, string) {
	if b.index.RegionPages() == 0 {
		return nil, NoBidInternal
	}
	deadline, hasDeadline := ctx.Deadline()
	now := time.Now()
	nowUnix := now.Unix()
	userID, site := requestKeys(req)
	slot := b.store.Slot(userID)
	prof := b.store.Get(slot)
	country, devType := requestGeoDevice(req)
	ci := countryIndex(country)

	// Baseline: per-request maps of the user's segments and caps (easy to
	// write, expensive on the heap). gc fix: pooled slices, binary search.
	var segSet map[uint32]struct{}
	var capMap map[uint32]CapEntry
	var caps []CapEntry
	var cands []candidate
	var pcands []*candidate
	if sc != nil {
		caps = b.store.CapsSnapshot(slot, sc.caps[:0])
		sc.caps = caps
		cands = sc.cands[:0]
	} else {
		segSet = make(map[uint32]struct{}, len(prof.Segments))
		for _, s := range prof.Segments {
			segSet[s] = struct{}{}
		}
		capMap = make(map[uint32]CapEntry)
		for _, c := range b.store.CapsSnapshot(slot, nil) {
			capMap[c.Campaign] = c
		}
	}
	capped := func(campaign uint32) bool {
		c := &b.camps[campaign]
		if c.FreqCap == 0 {
			return false
		}
		var e CapEntry
		var ok bool
		if sc != nil {
			for i := range caps {
				if caps[i].Campaign == campaign {
					e, ok = caps[i], true
					break
				}
			}
		} else {
			e, ok = capMap[campaign]
		}
		return ok && e.Count >= uint32(c.FreqCap) && nowUnix-e.WindowStart < int64(c.FreqWindowSec)
	}
	segMatches := func(cr *Creative) int {
		n, targeted := 0, false
		for _, s := range cr.Segments {
			if s == 0 {
				continue
			}
			targeted = true
			if sc != nil {
				if _, found := slices.BinarySearch(prof.Segments, s); found {
					n++
				}
			} else if _, found := segSet[s]; found {
				n++
			}
		}
		if targeted && n == 0 {
			return -1
		}
		return n
	}

	var sizes []int
	if sc != nil {
		sizes = sc.sizes[:0]
	}
	var cr Creative
	for i := range req.Imp {
		imp := &req.Imp[i]
		impStart := len(cands)
		sizes = impSizes(imp, sizes[:0])
		for _, si := range sizes {
			region := si*len(Countries) + ci
			for range b.cfg.Probes {
				page := b.index.Page(region, rand.Uint64())
				for off := 0; off < PageSize; off += RecordSize {
					rec := page[off : off+RecordSize]
					// Cheap filters on the raw record first.
					if (rec[40]&1 == 1) != Sizes[si].Video {
						continue
					}
					if c := rec[12:15]; string(c) != country && string(c) != anyCountry {
						continue
					}
					if mask := rec[15]; mask != 0 && (devType == 0 || devType > 7 || mask&(1<<devType) == 0) {
						continue
					}
					decodeCreative(rec, &cr)
					if int(cr.Campaign) >= len(b.camps) {
						continue
					}
					m := segMatches(&cr)
					if m < 0 {
						continue
					}
					value := float64(cr.CPMm) / 1e6 * (1 + 0.2*float64(m))
					if value < imp.BidFloor || value == 0 {
						continue
					}
					if capped(cr.Campaign) {
						continue
					}
					if sc != nil {
						cands = keepTop(cands, impStart, candidate{cr: cr, value: value, imp: i})
					} else {
						pcands = append(pcands, &candidate{cr: cr, value: value, imp: i,
							crid: fmt.Sprintf("cr-%d-%d", cr.Campaign, cr.ID)})
					}
				}
			}
		}
		if hasDeadline && time.Now().After(deadline) {
			return nil, NoBidDeadline
		}
	}
	if sc != nil {
		sc.sizes = sizes
		sc.cands = cands
	}
	if len(cands) == 0 && len(pcands) == 0 {
		b.store.AddVisit(slot, site, now.UnixNano())
		return nil, NoBidNoMatch
	}

	// Highest value first within each impression. The gc fix path kept
	// only the top maxAttempts per impression, already in order.
	if sc == nil {
		sort.Slice(pcands, func(a, c int) bool {
			x, y := pcands[a], pcands[c]
			if x.imp != y.imp {
				return x.imp < y.imp
			}
			if x.value != y.value {
				return x.value > y.value
			}
			return x.cr.ID < y.cr.ID
		})
	}
	n := len(cands)
	if sc == nil {
		n = len(pcands)
	}
	get := func(k int) *candidate {
		if sc != nil {
			return &cands[k]
		}
		return pcands[k]
	}

	resp := &openrtb2.BidResponse{ID: req.ID, Cur: "USD"}
	var bids []openrtb2.Bid
	for k := 0; k < n; {
		impIdx := get(k).imp
		imp := &req.Imp[impIdx]
		attempts := 0
		won := false
		for ; k < n && get(k).imp == impIdx; k++ {
			if won || attempts >= maxAttempts {
				continue
			}
			// A request already past its deadline does not queue on the
			// ledger: its bid would be too late to matter.
			if hasDeadline && time.Now().After(deadline) {
				return nil, NoBidDeadline
			}
			attempts++
			c := get(k)
			camp := &b.camps[c.cr.Campaign]
			price := shade(c.value, imp.BidFloor, b.cfg.Shade)
			if !b.store.RecordImpression(slot, camp, nowUnix) {
				continue
			}
			if !b.ledger.TrySpend(camp.ID, int64(price*1000)) { // CPM USD -> micro-USD per impression
				continue
			}
			won = true
			bids = append(bids, b.makeBid(req, imp, c, camp, price, slot, sc))
		}
		if hasDeadline && time.Now().After(deadline) {
			return nil, NoBidDeadline
		}
	}
	b.store.AddVisit(slot, site, now.UnixNano())
	if len(bids) == 0 {
		return nil, NoBidPaced
	}
	resp.SeatBid = []openrtb2.SeatBid{{Bid: bids, Seat: DefaultSeat}}
	resp.BidID = req.ID + "-" + strconv.FormatUint(slot, 36)
	return resp, NoBidNone
}

// keepTop inserts c into cands[start:], which holds at most maxAttempts
// candidates ordered by value (then creative id), dropping the lowest.
func keepTop(cands []candidate, start int, c candidate) []candidate {
	better := func(x, y *candidate) bool {
		return x.value > y.value || (x.value == y.value && x.cr.ID < y.cr.ID)
	}
	n := len(cands) - start
	if n == maxAttempts {
		if !better(&c, &cands[len(cands)-1]) {
			return cands
		}
		cands = cands[:len(cands)-1]
	}
	cands = append(cands, c)
	for j := len(cands) - 1; j > start && better(&cands[j], &cands[j-1]); j-- {
		cands[j], cands[j-1] = cands[j-1], cands[j]
	}
	return cands
}

// shade bids first-price: a share of the surplus above the floor, at least
// a cent over the floor, never above the value, rounded down to the cent but
// never under the floor.
func shade(value, floor, share float64) float64 {
	p := value * share
	if floor > 0 {
		p = min(max(floor+(value-floor)*share, floor+0.01), value)
	}
	r := math.Floor(p*100+1e-9) / 100
	return max(r, floor)
}

const admTemplate = `<div class="ad" data-crid="%s" data-cid="%d"><a href="https://click.tailgate.example/c?imp=%s&cr=%s&price=${AUCTION_PRICE}"><img src="https://cdn.tailgate.example/cr/%d.%dx%d.png" width="%d" height="%d"/></a><img src="https://track.tailgate.example/i?req=%s&u=%d" width="1" height="1"/></div>`

func (b *Bidder) makeBid(req *openrtb2.BidRequest, imp *openrtb2.Imp, c *candidate, camp *Campaign, price float64, slot uint64, sc *scratch) openrtb2.Bid {
	bid := openrtb2.Bid{
		ID:      req.ID + "-" + imp.ID,
		ImpID:   imp.ID,
		Price:   price,
		CID:     strconv.FormatUint(uint64(camp.ID), 10),
		W:       int64(c.cr.W),
		H:       int64(c.cr.H),
		ADomain: []string{"adv" + strconv.FormatUint(uint64(camp.Advertiser), 10) + ".example"},
		MType:   openrtb2.MarkupBanner,
	}
	if c.cr.Flags&1 == 1 {
		bid.MType = openrtb2.MarkupVideo
	}
	if sc == nil {
		bid.CrID = c.crid
		if bid.MType == openrtb2.MarkupVideo {
			bid.AdM = fmt.Sprintf(`<VAST version="4.0"><Ad id="%s"><InLine><AdSystem>tailgate</AdSystem><Impression>https://track.tailgate.example/i?req=%s&u=%d</Impression><Creatives><Creative><Linear><MediaFiles><MediaFile width="%d" height="%d" type="video/mp4">https://cdn.tailgate.example/cr/%d.mp4</MediaFile></MediaFiles></Linear></Creative></Creatives></InLine></Ad></VAST>`,
				c.crid, req.ID, slot, c.cr.W, c.cr.H, c.cr.ID)
		} else {
			bid.AdM = fmt.Sprintf(admTemplate, c.crid, camp.ID, imp.ID, c.crid, c.cr.ID, c.cr.W, c.cr.H, c.cr.W, c.cr.H, req.ID, slot)
		}
		return bid
	}
	// gc fix: build strings with appends into a pooled buffer, one
	// allocation per string.
	a := append(sc.adm[:0], "cr-"...)
	a = strconv.AppendUint(a, uint64(c.cr.Campaign), 10)
	a = append(a, '-')
	a = strconv.AppendUint(a, uint64(c.cr.ID), 10)
	bid.CrID = string(a)
	a = a[:0]
	if bid.MType == openrtb2.MarkupVideo {
		a = append(a, `<VAST version="4.0"><Ad id="`...)
		a = append(a, bid.CrID...)
		a = append(a, `"><InLine><AdSystem>tailgate</AdSystem><Impression>https://track.tailgate.example/i?req=`...)
		a = append(a, req.ID...)
		a = append(a, "&u="...)
		a = strconv.AppendUint(a, slot, 10)
		a = append(a, `</Impression><Creatives><Creative><Linear><MediaFiles><MediaFile width="`...)
		a = strconv.AppendUint(a, uint64(c.cr.W), 10)
		a = append(a, `" height="`...)
		a = strconv.AppendUint(a, uint64(c.cr.H), 10)
		a = append(a, `" type="video/mp4">https://cdn.tailgate.example/cr/`...)
		a = strconv.AppendUint(a, uint64(c.cr.ID), 10)
		a = append(a, `.mp4</MediaFile></MediaFiles></Linear></Creative></Creatives></InLine></Ad></VAST>`...)
	} else {
		a = append(a, `<div class="ad" data-crid="`...)
		a = append(a, bid.CrID...)
		a = append(a, `" data-cid="`...)
		a = strconv.AppendUint(a, uint64(camp.ID), 10)
		a = append(a, `"><a href="https://click.tailgate.example/c?imp=`...)
		a = append(a, imp.ID...)
		a = append(a, "&cr="...)
		a = append(a, bid.CrID...)
		a = append(a, `&price=${AUCTION_PRICE}"><img src="https://cdn.tailgate.example/cr/`...)
		a = strconv.AppendUint(a, uint64(c.cr.ID), 10)
		a = append(a, '.')
		a = strconv.AppendUint(a, uint64(c.cr.W), 10)
		a = append(a, 'x')
		a = strconv.AppendUint(a, uint64(c.cr.H), 10)
		a = append(a, `.png" width="`...)
		a = strconv.AppendUint(a, uint64(c.cr.W), 10)
		a = append(a, `" height="`...)
		a = strconv.AppendUint(a, uint64(c.cr.H), 10)
		a = append(a, `"/></a><img src="https://track.tailgate.example/i?req=`...)
		a = append(a, req.ID...)
		a = append(a, "&u="...)
		a = strconv.AppendUint(a, slot, 10)
		a = append(a, `" width="1" height="1"/></div>`...)
	}
	bid.AdM = string(a)
	sc.adm = a
	return bid
}

// requestKeys returns the user identifier (user.id, user.buyeruid,
// device.ifa, else the request id) and a site/app key.
func requestKeys(req *openrtb2.BidRequest) (user string, site uint32) {
	switch {
	case req.User != nil && req.User.ID != "":
		user = req.User.ID
	case req.User != nil && req.User.BuyerUID != "":
		user = req.User.BuyerUID
	case req.Device != nil && req.Device.IFA != "":
		user = req.Device.IFA
	default:
		user = req.ID
	}
	var key string
	switch {
	case req.Site != nil:
		key = req.Site.Domain + req.Site.ID
	case req.App != nil:
		key = req.App.Bundle + req.App.ID
	}
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h = (h ^ uint32(key[i])) * 16777619
	}
	return user, h
}

func requestGeoDevice(req *openrtb2.BidRequest) (country string, devType uint8) {
	if d := req.Device; d != nil {
		if d.Geo != nil {
			country = d.Geo.Country
		}
		if d.DeviceType > 0 && d.DeviceType <= adcom1.DeviceType(7) {
			devType = uint8(d.DeviceType)
		}
	}
	if country == "" && req.User != nil && req.User.Geo != nil {
		country = req.User.Geo.Country
	}
	return country, devType
}

// countryIndex returns the region column of a country; unknown countries
// hash onto one, where only untargeted ("***") creatives match them.
func countryIndex(country string) int {
	for i, c := range Countries {
		if c == country {
			return i
		}
	}
	h := 0
	for i := 0; i < len(country); i++ {
		h = h*31 + int(country[i])
	}
	return (h%len(Countries) + len(Countries)) % len(Countries)
}

// impSizes appends the standard size indexes an impression can fill: up to
// three banner formats (or w×h), or one video size; native and audio use the
// 300×250 region.
func impSizes(imp *openrtb2.Imp, out []int) []int {
	add := func(w, h int64, video bool) {
		si := nearestSize(w, h, video)
		if !slices.Contains(out, si) && len(out) < 3 {
			out = append(out, si)
		}
	}
	switch {
	case imp.Video != nil:
		var w, h int64 = 640, 360
		if imp.Video.W != nil && imp.Video.H != nil {
			w, h = *imp.Video.W, *imp.Video.H
		}
		add(w, h, true)
	case imp.Banner != nil:
		for _, f := range imp.Banner.Format {
			add(f.W, f.H, false)
		}
		if imp.Banner.W != nil && imp.Banner.H != nil {
			add(*imp.Banner.W, *imp.Banner.H, false)
		}
		if len(out) == 0 {
			add(300, 250, false)
		}
	default:
		add(300, 250, false)
	}
	return out
}

func nearestSize(w, h int64, video bool) int {
	best, bestD := -1, int64(-1)
	for i, s := range Sizes {
		if s.Video != video {
			continue
		}
		dw, dh := s.W-w, s.H-h
		d := dw*dw + dh*dh
		if best < 0 || d < bestD {
			best, bestD = i, d
		}
	}
	return best
}
