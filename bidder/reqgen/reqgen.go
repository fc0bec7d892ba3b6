// Package reqgen owns the bidder's load: a deterministic, seedable generator
// of realistic OpenRTB 2.6 bid requests (site and app inventory, banner and
// video impressions, devices, geo, floors, tmax) whose user IDs follow a Zipf
// popularity over the bidder's user population.
//
// Request i of a seed is a pure function of (seed, i, Options): Next walks
// i = 0, 1, 2, ...; At and AppendJSONAt address any i directly. The JSON fast
// path (NextJSON, AppendJSONAt) writes the bytes directly instead of going
// through encoding/json, and decodes to exactly the struct Next returns.
package reqgen

import (
	"encoding/hex"
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"sync"

	"github.com/prebid/openrtb/v20/adcom1"
	"github.com/prebid/openrtb/v20/openrtb2"
)

// Defaults used when the corresponding Options field is zero.
const (
	DefaultUsers        = 2_000_000 // = bidder.DefaultUsers (serve --users)
	DefaultZipfS        = 1.1
	DefaultVideoShare   = 0.2
	DefaultMultiImp     = 0.1
	DefaultNoUserShare  = 0.03
	DefaultUserIDPrefix = "u"
)

// Options configure a Generator. The zero value means the defaults; a share
// that should be exactly zero is given as a negative number.
type Options struct {
	// Users is the user population; user IDs are UserIDPrefix followed by a
	// decimal in [0, Users), the IDs the bidder's profile store holds.
	Users int
	// ZipfS is the Zipf exponent (> 1) of user popularity: the most popular
	// user is rank 0. Ranks map to IDs through a fixed bijection that depends
	// only on Users, so the hot users are spread over the ID space.
	ZipfS float64
	// UserIDPrefix prefixes user IDs (default "u").
	UserIDPrefix string
	// VideoShare is the fraction of impressions that are video.
	VideoShare float64
	// MultiImp is the fraction of requests with two impressions.
	MultiImp float64
	// NoUserShare is the fraction of requests without a user ID.
	NoUserShare float64
	// TMax, if > 0, is every request's tmax in ms; otherwise tmax is drawn
	// from TMaxValues.
	TMax int64
}

// Validate reports the first invalid field.
func (o Options) Validate() error {
	if o.Users < 0 {
		return fmt.Errorf("reqgen options: Users: %d is negative", o.Users)
	}
	if o.ZipfS != 0 && !(o.ZipfS > 1) {
		return fmt.Errorf("reqgen options: ZipfS: %v must be > 1", o.ZipfS)
	}
	for _, s := range []struct {
		name string
		v    float64
	}{{"VideoShare", o.VideoShare}, {"MultiImp", o.MultiImp}, {"NoUserShare", o.NoUserShare}} {
		if s.v > 1 || math.IsNaN(s.v) {
			return fmt.Errorf("reqgen options: %s: %v must be <= 1", s.name, s.v)
		}
	}
	if o.TMax < 0 {
		return fmt.Errorf("reqgen options: TMax: %d is negative", o.TMax)
	}
	for _, c := range o.UserIDPrefix {
		if c < 0x20 || c == '"' || c == '\\' || c > 0x7e {
			return fmt.Errorf("reqgen options: UserIDPrefix: %q must be printable ASCII without quotes or backslashes", o.UserIDPrefix)
		}
	}
	return nil
}

func share(v, def float64) float64 {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return v
}

// config is Options with defaults applied and tables precomputed.
type config struct {
	users                     uint64
	zipfS                     float64
	prefix                    string
	video, multi, noUser      uint64 // thresholds on a uniform uint64 draw
	tmax                      int64
	permMul, permAdd          uint64 // rank -> user index bijection
	geoCum, sizeCum, vsizeCum []uint64
	siteDevCum, appDevCum     []uint64
	sitePubCum, appPubCum     []uint64
	sitePubIdx, appPubIdx     []int
	siteDevIdx, appDevIdx     []int
	appShare                  uint64
}

func threshold(p float64) uint64 {
	f := p * (1 << 63) * 2
	if f >= (1<<63)*2 {
		return math.MaxUint64
	}
	return uint64(f)
}

// cumulative turns weights into cumulative thresholds over the uint64 range.
func cumulative(weights []uint32) []uint64 {
	var total uint64
	for _, w := range weights {
		total += uint64(w)
	}
	out := make([]uint64, len(weights))
	var acc uint64
	for i, w := range weights {
		acc += uint64(w)
		if acc >= total {
			out[i] = math.MaxUint64
			continue
		}
		out[i], _ = bits.Div64(acc, 0, total) // acc/total scaled to 2^64
	}
	return out
}

func pick(cum []uint64, u uint64) int {
	for i, c := range cum {
		if u < c {
			return i
		}
	}
	return len(cum) - 1
}

func newConfig(o Options) *config {
	c := &config{
		users:  uint64(o.Users),
		zipfS:  o.ZipfS,
		prefix: o.UserIDPrefix,
		video:  threshold(share(o.VideoShare, DefaultVideoShare)),
		multi:  threshold(share(o.MultiImp, DefaultMultiImp)),
		noUser: threshold(share(o.NoUserShare, DefaultNoUserShare)),
		tmax:   o.TMax,
	}
	if c.users == 0 {
		c.users = DefaultUsers
	}
	if c.zipfS == 0 {
		c.zipfS = DefaultZipfS
	}
	if c.prefix == "" {
		c.prefix = DefaultUserIDPrefix
	}
	// A multiplier near n/phi, coprime to n, scatters consecutive ranks.
	c.permMul = uint64(float64(c.users)*0.6180339887) | 1
	for gcd(c.permMul, c.users) != 1 {
		c.permMul += 2
	}
	c.permAdd = c.users / 3

	weights := func(n int, w func(int) uint32, keep func(int) bool) (cum []uint64, idx []int) {
		var ws []uint32
		for i := 0; i < n; i++ {
			if keep == nil || keep(i) {
				ws = append(ws, w(i))
				idx = append(idx, i)
			}
		}
		return cumulative(ws), idx
	}
	c.geoCum, _ = weights(len(Geos), func(i int) uint32 { return Geos[i].Weight }, nil)
	c.sizeCum, _ = weights(len(BannerSizes), func(i int) uint32 { return BannerSizes[i].Weight }, nil)
	c.vsizeCum, _ = weights(len(VideoSizes), func(i int) uint32 { return VideoSizes[i].Weight }, nil)
	c.siteDevCum, c.siteDevIdx = weights(len(Devices), func(i int) uint32 { return Devices[i].Weight }, func(i int) bool { return Devices[i].Site })
	c.appDevCum, c.appDevIdx = weights(len(Devices), func(i int) uint32 { return Devices[i].Weight }, func(i int) bool { return Devices[i].App })
	c.sitePubCum, c.sitePubIdx = weights(len(Publishers), func(i int) uint32 { return Publishers[i].Weight }, func(i int) bool { return !Publishers[i].App })
	c.appPubCum, c.appPubIdx = weights(len(Publishers), func(i int) uint32 { return Publishers[i].Weight }, func(i int) bool { return Publishers[i].App })
	var siteW, appW uint64
	for _, p := range Publishers {
		if p.App {
			appW += uint64(p.Weight)
		} else {
			siteW += uint64(p.Weight)
		}
	}
	c.appShare = threshold(float64(appW) / float64(appW+siteW))
	return c
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// imp is the drawn content of one impression.
type imp struct {
	video   bool
	size    int // index into BannerSizes or VideoSizes
	size2   int // second banner format, -1 if none
	maxDur  int64
	floor   int64 // CPM in 1/100 USD
	pos     adcom1.PlacementPosition
	instl   bool
	rewards bool
}

// draw is everything random about one request; both renderers (struct and
// JSON) read only this, which is what keeps them identical.
type draw struct {
	id     [8]byte
	pub    int // index into Publishers
	page   uint32
	dev    int // index into Devices
	geo    int // index into Geos
	ip     [2]byte
	ifa    [16]byte
	user   int64 // -1: none
	yob    int64
	tmax   int64
	nImp   int
	imps   [2]imp
	bcat   uint8 // bit set over BlockedCategories
	lmt    bool
	secure bool
}

// state is a reseedable random source; one per goroutine.
type state struct {
	pcg  *rand.PCG
	r    *rand.Rand
	zipf *rand.Zipf
}

func newState(c *config) *state {
	s := &state{pcg: rand.NewPCG(0, 0)}
	s.r = rand.New(s.pcg)
	s.zipf = rand.NewZipf(s.r, c.zipfS, 1, c.users-1)
	return s
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func (c *config) fill(s *state, seed int64, i uint64, d *draw) {
	s.pcg.Seed(splitmix(uint64(seed)), splitmix(i^0x5bd1e995c0ffee))
	r := s.r
	putU64(d.id[:], r.Uint64())

	if r.Uint64() < c.appShare {
		d.pub = c.appPubIdx[pick(c.appPubCum, r.Uint64())]
		d.dev = c.appDevIdx[pick(c.appDevCum, r.Uint64())]
		putU64(d.ifa[:8], r.Uint64())
		putU64(d.ifa[8:], r.Uint64())
		d.ifa[6] = d.ifa[6]&0x0f | 0x40 // UUID v4
		d.ifa[8] = d.ifa[8]&0x3f | 0x80
	} else {
		d.pub = c.sitePubIdx[pick(c.sitePubCum, r.Uint64())]
		d.dev = c.siteDevIdx[pick(c.siteDevCum, r.Uint64())]
		d.page = uint32(r.IntN(5000))
	}
	d.geo = pick(c.geoCum, r.Uint64())
	d.ip = [2]byte{byte(r.Uint32()), byte(r.Uint32()%254 + 1)}

	if r.Uint64() < c.noUser {
		d.user = -1
	} else {
		rank := s.zipf.Uint64()
		hi, lo := bits.Mul64(rank, c.permMul)
		lo, carry := bits.Add64(lo, c.permAdd, 0)
		d.user = int64(bits.Rem64(hi+carry, lo, c.users))
	}
	d.yob = 1950 + int64(r.IntN(56))
	if c.tmax > 0 {
		d.tmax = c.tmax
	} else {
		d.tmax = TMaxValues[r.IntN(len(TMaxValues))]
	}
	d.nImp = 1
	if r.Uint64() < c.multi {
		d.nImp = 2
	}
	for k := 0; k < d.nImp; k++ {
		m := &d.imps[k]
		*m = imp{size2: -1}
		m.video = r.Uint64() < c.video
		if m.video {
			m.size = pick(c.vsizeCum, r.Uint64())
			m.maxDur = VideoMaxDurations[r.IntN(len(VideoMaxDurations))]
			// Video floors: lognormal around $4 CPM.
			m.floor = floorCents(r, 4.0, 0.5)
			m.rewards = Publishers[d.pub].App && r.IntN(4) == 0
		} else {
			m.size = pick(c.sizeCum, r.Uint64())
			if r.IntN(3) == 0 {
				m.size2 = pick(c.sizeCum, r.Uint64())
				if m.size2 == m.size {
					m.size2 = -1
				}
			}
			// Display floors: lognormal around $0.50 CPM.
			m.floor = floorCents(r, 0.5, 0.7)
			m.instl = Publishers[d.pub].App && r.IntN(10) == 0
		}
		m.pos = adcom1.PlacementPosition([]int8{1, 1, 1, 3, 4, 7}[r.IntN(6)])
	}
	d.bcat = uint8(r.IntN(1 << len(BlockedCategories)))
	if r.IntN(3) != 0 {
		d.bcat = 0
	}
	d.lmt = r.IntN(20) == 0
	d.secure = r.IntN(10) != 0
}

func floorCents(r *rand.Rand, median, sigma float64) int64 {
	f := median * math.Exp(sigma*r.NormFloat64())
	c := int64(math.Round(f * 100))
	return max(1, min(c, 5000))
}

func putU64(b []byte, v uint64) {
	for i := range 8 {
		b[i] = byte(v >> (56 - 8*i))
	}
}

// Generator produces the request sequence of one seed. Next, NextJSON and
// Seek share a cursor and are not safe for concurrent use; At and
// AppendJSONAt are.
type Generator struct {
	seed int64
	cfg  *config
	st   *state
	next uint64
	d    draw
	pool sync.Pool
}

// New returns a generator for seed. It panics if opts is invalid; callers
// that take options from users check Options.Validate first.
func New(seed int64, opts Options) *Generator {
	if err := opts.Validate(); err != nil {
		panic(err)
	}
	cfg := newConfig(opts)
	g := &Generator{seed: seed, cfg: cfg, st: newState(cfg)}
	g.pool.New = func() any { return &drawState{st: newState(cfg)} }
	return g
}

type drawState struct {
	st *state
	d  draw
}

// Seek sets the index of the request Next returns next.
func (g *Generator) Seek(i uint64) { g.next = i }

// Index is the index of the request Next returns next.
func (g *Generator) Index() uint64 { return g.next }

// Users is the user population the generator draws from.
func (g *Generator) Users() int { return int(g.cfg.users) }

// Next returns the next request.
func (g *Generator) Next() *openrtb2.BidRequest {
	i := g.next
	g.next++
	g.cfg.fill(g.st, g.seed, i, &g.d)
	return g.cfg.request(&g.d)
}

// NextJSON returns the next request as JSON in a newly allocated slice the
// caller owns (a load generator may keep it as a request body).
func (g *Generator) NextJSON() []byte {
	i := g.next
	g.next++
	g.cfg.fill(g.st, g.seed, i, &g.d)
	return g.cfg.appendJSON(make([]byte, 0, maxJSONSize), &g.d)
}

// At returns request i without moving the cursor.
func (g *Generator) At(i uint64) *openrtb2.BidRequest {
	ds := g.pool.Get().(*drawState)
	defer g.pool.Put(ds)
	g.cfg.fill(ds.st, g.seed, i, &ds.d)
	return g.cfg.request(&ds.d)
}

// AppendJSONAt appends request i as JSON to dst without moving the cursor.
// With a nil or short dst it allocates once, with room for any request.
func (g *Generator) AppendJSONAt(dst []byte, i uint64) []byte {
	ds := g.pool.Get().(*drawState)
	defer g.pool.Put(ds)
	g.cfg.fill(ds.st, g.seed, i, &ds.d)
	if cap(dst)-len(dst) < maxJSONSize {
		dst = append(make([]byte, 0, len(dst)+maxJSONSize), dst...)
	}
	return g.cfg.appendJSON(dst, &ds.d)
}

// maxJSONSize bounds a request's JSON: two imps with the longest vocabulary
// entries stay well under it (TestMaxJSONSize).
const maxJSONSize = 2048

// UserID formats user index n the way requests carry it.
func (g *Generator) UserID(n int64) string {
	return g.cfg.prefix + fmt.Sprint(n)
}

func (c *config) request(d *draw) *openrtb2.BidRequest {
	pub := &Publishers[d.pub]
	dev := &Devices[d.dev]
	geo := &Geos[d.geo]
	req := &openrtb2.BidRequest{
		ID:   hex.EncodeToString(d.id[:]),
		AT:   1,
		TMax: d.tmax,
		Cur:  []string{"USD"},
	}
	for k := 0; k < d.nImp; k++ {
		m := &d.imps[k]
		im := openrtb2.Imp{
			ID:          impIDs[k],
			TagID:       tagID(pub, k),
			BidFloor:    float64(m.floor) / 100,
			BidFloorCur: "USD",
		}
		if d.secure {
			im.Secure = openrtb2.Int8Ptr(1)
		}
		if m.instl {
			im.Instl = 1
		}
		if m.rewards {
			im.Rwdd = 1
		}
		pos := m.pos
		if m.video {
			sz := VideoSizes[m.size]
			startDelay := adcom1.StartDelay(0)
			im.Video = &openrtb2.Video{
				MIMEs:       append([]string(nil), videoMIMEs...),
				MinDuration: 5,
				MaxDuration: m.maxDur,
				Protocols:   append([]adcom1.MediaCreativeSubtype(nil), videoProtocols...),
				W:           openrtb2.Int64Ptr(sz.W),
				H:           openrtb2.Int64Ptr(sz.H),
				StartDelay:  &startDelay,
				Plcmt:       adcom1.VideoPlcmtInstream,
				Linearity:   1,
				Pos:         &pos,
			}
		} else {
			sz := BannerSizes[m.size]
			b := &openrtb2.Banner{
				Format: []openrtb2.Format{{W: sz.W, H: sz.H}},
				W:      openrtb2.Int64Ptr(sz.W),
				H:      openrtb2.Int64Ptr(sz.H),
				Pos:    &pos,
			}
			if m.size2 >= 0 {
				s2 := BannerSizes[m.size2]
				b.Format = append(b.Format, openrtb2.Format{W: s2.W, H: s2.H})
			}
			im.Banner = b
		}
		req.Imp = append(req.Imp, im)
	}
	p := &openrtb2.Publisher{ID: pub.ID, Name: pub.Name, Domain: pub.Domain}
	if pub.App {
		req.App = &openrtb2.App{
			ID: "app-" + pub.ID, Name: pub.Name, Bundle: pub.Bundle, Domain: pub.Domain,
			StoreURL: pub.StoreURL, Cat: append([]string(nil), pub.Cat...), Publisher: p,
		}
	} else {
		req.Site = &openrtb2.Site{
			ID: "site-" + pub.ID, Name: pub.Name, Domain: pub.Domain,
			Cat: append([]string(nil), pub.Cat...), Page: string(appendPage(nil, pub, d.page)), Publisher: p,
		}
		if isHandheld(dev) {
			req.Site.Mobile = openrtb2.Int8Ptr(1)
		}
	}
	lat, lon := geo.Lat, geo.Lon
	req.Device = &openrtb2.Device{
		UA: dev.UA, IP: string(appendIP(nil, geo, d.ip)), DeviceType: dev.Type,
		Make: dev.Make, Model: dev.Model, OS: dev.OS, OSV: dev.OSV,
		W: dev.W, H: dev.H, PxRatio: dev.PxRatio, Language: dev.Language,
		Geo: &openrtb2.Geo{
			Lat: &lat, Lon: &lon, Type: adcom1.LocationIP,
			Country: geo.Country, Region: geo.Region, Metro: geo.Metro, City: geo.City,
			ZIP: geo.ZIP, UTCOffset: geo.UTCOffset,
		},
	}
	if dev.Connection != 0 {
		ct := dev.Connection
		req.Device.ConnectionType = &ct
	}
	if d.lmt {
		req.Device.Lmt = openrtb2.Int8Ptr(1)
	}
	if pub.App {
		req.Device.IFA = string(appendUUID(nil, d.ifa))
	}
	if d.user >= 0 {
		req.User = &openrtb2.User{ID: c.prefix + itoa(d.user), Yob: d.yob}
	}
	for k, cat := range BlockedCategories {
		if d.bcat&(1<<k) != 0 {
			req.BCat = append(req.BCat, cat)
		}
	}
	return req
}

var impIDs = [2]string{"1", "2"}

func tagID(pub *Publisher, k int) string {
	return pub.ID + "-slot-" + impIDs[k]
}

func itoa(n int64) string { return string(appendInt(nil, n)) }

func isHandheld(d *Device) bool {
	return d.Type == adcom1.DevicePhone || d.Type == adcom1.DeviceTablet || d.Type == adcom1.DeviceMobile
}
