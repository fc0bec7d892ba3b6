package reqgen

import (
	"bytes"
	"encoding/json"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/prebid/openrtb/v20/openrtb2"
)

func TestSameSeedSameSequence(t *testing.T) {
	a, b := New(42, Options{}), New(42, Options{})
	for i := 0; i < 500; i++ {
		ja, jb := a.NextJSON(), b.NextJSON()
		if !bytes.Equal(ja, jb) {
			t.Fatalf("request %d differs between two generators of seed 42:\n%s\n%s", i, ja, jb)
		}
	}
	c, d := New(42, Options{}), New(43, Options{})
	same := 0
	for i := 0; i < 100; i++ {
		if bytes.Equal(c.NextJSON(), d.NextJSON()) {
			same++
		}
	}
	if same != 0 {
		t.Fatalf("seeds 42 and 43 produced %d identical requests out of 100", same)
	}
}

func TestJSONMatchesStruct(t *testing.T) {
	for _, opts := range []Options{
		{},
		{Users: 10, VideoShare: 1, MultiImp: 1, NoUserShare: -1, TMax: 90, UserIDPrefix: "user-"},
		{Users: 1, VideoShare: -1, MultiImp: -1, NoUserShare: 1},
	} {
		g := New(7, opts)
		for i := uint64(0); i < 2000; i++ {
			want := g.At(i)
			raw := g.AppendJSONAt(nil, i)
			var got openrtb2.BidRequest
			if err := json.Unmarshal(raw, &got); err != nil {
				t.Fatalf("opts %+v request %d: invalid JSON: %v\n%s", opts, i, err, raw)
			}
			if !reflect.DeepEqual(&got, want) {
				wj, _ := json.Marshal(want)
				t.Fatalf("opts %+v request %d: fast JSON decodes to a different request\nfast:   %s\nstruct: %s", opts, i, raw, wj)
			}
		}
	}
}

func TestNextAndAtAgree(t *testing.T) {
	g := New(3, Options{})
	h := New(3, Options{})
	h.Seek(100)
	for i := uint64(0); i < 200; i++ {
		n := g.Next()
		if !reflect.DeepEqual(n, g.At(i)) {
			t.Fatalf("Next() and At(%d) differ", i)
		}
		if i >= 100 {
			if j := h.NextJSON(); !bytes.Equal(j, g.AppendJSONAt(nil, i)) {
				t.Fatalf("after Seek(100), NextJSON and AppendJSONAt(%d) differ", i)
			}
		}
	}
	if g.Index() != 200 {
		t.Fatalf("Index() = %d after 200 calls", g.Index())
	}
}

func TestConcurrentAppendJSONAt(t *testing.T) {
	g := New(11, Options{})
	want := make([][]byte, 300)
	for i := range want {
		want[i] = g.AppendJSONAt(nil, uint64(i))
	}
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range want {
				if got := g.AppendJSONAt(nil, uint64(i)); !bytes.Equal(got, want[i]) {
					errs <- "request " + strconv.Itoa(i) + " differs under concurrency"
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
}

// TestDistribution checks the mix the generator promises: user IDs inside
// the population and Zipf-skewed, both inventory kinds and both media types,
// floors and tmax in range, realistic sizes.
func TestDistribution(t *testing.T) {
	const n = 20000
	g := New(1, Options{Users: 100000})
	users := map[string]int{}
	var site, app, video, banner, noUser, multi int
	countries := map[string]bool{}
	for i := 0; i < n; i++ {
		r := g.Next()
		if len(r.Imp) == 0 || len(r.Imp) > 2 {
			t.Fatalf("request %d has %d imps", i, len(r.Imp))
		}
		if len(r.Imp) == 2 {
			multi++
		}
		if (r.Site == nil) == (r.App == nil) {
			t.Fatalf("request %d: exactly one of site and app must be set", i)
		}
		if r.Site != nil {
			site++
		} else {
			app++
			if r.Device.IFA == "" {
				t.Fatalf("app request %d has no device.ifa", i)
			}
		}
		if r.TMax < 80 || r.TMax > 200 {
			t.Fatalf("request %d: tmax %d", i, r.TMax)
		}
		for _, im := range r.Imp {
			if im.BidFloor <= 0 || im.BidFloor > 50 {
				t.Fatalf("request %d: bidfloor %v", i, im.BidFloor)
			}
			switch {
			case im.Video != nil:
				video++
				if *im.Video.W == 0 || im.Video.MaxDuration == 0 {
					t.Fatalf("request %d: video without size or duration", i)
				}
			case im.Banner != nil:
				banner++
				if len(im.Banner.Format) == 0 || im.Banner.Format[0].W != *im.Banner.W {
					t.Fatalf("request %d: banner format/size mismatch", i)
				}
			default:
				t.Fatalf("request %d: imp without banner or video", i)
			}
		}
		if r.Device == nil || r.Device.UA == "" || r.Device.IP == "" || r.Device.OS == "" || r.Device.Geo == nil {
			t.Fatalf("request %d: incomplete device %+v", i, r.Device)
		}
		countries[r.Device.Geo.Country] = true
		if r.User == nil {
			noUser++
			continue
		}
		id, err := strconv.Atoi(strings.TrimPrefix(r.User.ID, "u"))
		if err != nil || !strings.HasPrefix(r.User.ID, "u") || id < 0 || id >= 100000 {
			t.Fatalf("request %d: user id %q outside u0..u99999", i, r.User.ID)
		}
		users[r.User.ID]++
	}
	frac := func(k int) float64 { return float64(k) / n }
	checks := []struct {
		name     string
		got      float64
		lo, hi   float64
		describe string
	}{
		{"app share", frac(app), 0.35, 0.65, "app vs site"},
		{"video share", float64(video) / float64(video+banner), 0.15, 0.25, "DefaultVideoShare 0.2"},
		{"no-user share", frac(noUser), 0.015, 0.05, "DefaultNoUserShare 0.03"},
		{"multi-imp share", frac(multi), 0.07, 0.13, "DefaultMultiImp 0.1"},
	}
	for _, c := range checks {
		if c.got < c.lo || c.got > c.hi {
			t.Errorf("%s = %.3f, want in [%.2f, %.2f] (%s)", c.name, c.got, c.lo, c.hi, c.describe)
		}
	}
	if site == 0 || len(countries) < 8 {
		t.Errorf("site=%d countries=%d: the mix is too narrow", site, len(countries))
	}
	// Zipf skew: the 1% most requested users carry far more than 1% of the
	// requests, and the hottest user is not simply u0 (ranks are permuted).
	counts := make([]int, 0, len(users))
	hottest, hottestN := "", 0
	total := 0
	for id, c := range users {
		counts = append(counts, c)
		total += c
		if c > hottestN {
			hottest, hottestN = id, c
		}
	}
	sort.Sort(sort.Reverse(sort.IntSlice(counts)))
	top := 0
	for _, c := range counts[:1000] {
		top += c
	}
	if share := float64(top) / float64(total); share < 0.3 {
		t.Errorf("top 1000 of 100000 users carry %.2f of the requests, want a Zipf skew >= 0.3", share)
	}
	if hottest == "u0" {
		t.Errorf("hottest user is u0: ranks are not permuted over the ID space")
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string // substring of the error, "" for valid
	}{
		{"zero", Options{}, ""},
		{"negative users", Options{Users: -1}, "Users"},
		{"zipf too small", Options{ZipfS: 1}, "ZipfS"},
		{"share above one", Options{VideoShare: 1.5}, "VideoShare"},
		{"negative tmax", Options{TMax: -5}, "TMax"},
		{"quote in prefix", Options{UserIDPrefix: `u"`}, "UserIDPrefix"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.opts.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want an error naming %s", err, tt.want)
			}
		})
	}
}

// TestVocabularyNeedsNoEscaping guards appendStr, which writes strings raw.
func TestVocabularyNeedsNoEscaping(t *testing.T) {
	var all []string
	for _, g := range Geos {
		all = append(all, g.Country, g.Region, g.City, g.Metro, g.ZIP)
	}
	for _, d := range Devices {
		all = append(all, d.UA, d.OS, d.OSV, d.Make, d.Model, d.Language)
	}
	for _, p := range Publishers {
		all = append(all, p.ID, p.Name, p.Domain, p.Bundle, p.StoreURL)
		all = append(all, p.Cat...)
	}
	all = append(all, BlockedCategories...)
	all = append(all, videoMIMEs...)
	for _, s := range all {
		q, _ := json.Marshal(s)
		if string(q) != `"`+s+`"` && !strings.ContainsAny(s, "<>&") {
			t.Errorf("%q needs JSON escaping", s)
		}
		if strings.ContainsAny(s, "\"\\") {
			t.Errorf("%q contains a quote or backslash", s)
		}
	}
}

func BenchmarkNextJSON(b *testing.B) {
	g := New(1, Options{})
	b.ReportAllocs()
	var n int
	for b.Loop() {
		n += len(g.NextJSON())
	}
	b.ReportMetric(float64(n)/float64(b.N), "bytes/req")
}

func BenchmarkAppendJSONAtReuse(b *testing.B) {
	g := New(1, Options{})
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	var i uint64
	for b.Loop() {
		buf = g.AppendJSONAt(buf[:0], i)
		i++
	}
}

func BenchmarkNext(b *testing.B) {
	g := New(1, Options{})
	b.ReportAllocs()
	for b.Loop() {
		g.Next()
	}
}

func BenchmarkNextMarshal(b *testing.B) {
	g := New(1, Options{})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(g.Next()); err != nil {
			b.Fatal(err)
		}
	}
}

// TestMaxJSONSize checks the one-allocation size bound over many requests
// with the largest shapes (two imps, long user prefix).
func TestMaxJSONSize(t *testing.T) {
	g := New(5, Options{MultiImp: 1, VideoShare: 0.5, UserIDPrefix: "user-with-a-long-prefix-", Users: 1 << 30})
	longest := 0
	for i := uint64(0); i < 20000; i++ {
		longest = max(longest, len(g.AppendJSONAt(nil, i)))
	}
	if longest > maxJSONSize*3/4 {
		t.Fatalf("longest request is %d bytes; keep maxJSONSize (%d) at least 4/3 of it", longest, maxJSONSize)
	}
}

// BenchmarkAppendJSONAtNil is how internal/load's targeter calls it.
func BenchmarkAppendJSONAtNil(b *testing.B) {
	g := New(1, Options{})
	b.ReportAllocs()
	var i uint64
	for b.Loop() {
		g.AppendJSONAt(nil, i)
		i++
	}
}
