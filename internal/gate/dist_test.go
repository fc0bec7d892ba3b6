package gate

import (
	"math/rand/v2"
	"testing"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// newDist reads the counts array with its own index→value formula; it must
// agree bucket for bucket with the library's Distribution.
func TestNewDistMatchesLibrary(t *testing.T) {
	geos := []struct {
		lo, hi int64
		sig    int
	}{{1, 60_000_000, 3}, {1, 3_600_000_000, 2}, {1000, 60_000_000, 4}, {1, 1000, 1}}
	for _, g := range geos {
		h := hdrhistogram.New(g.lo, g.hi, g.sig)
		rng := rand.New(rand.NewPCG(1, 2))
		for i := 0; i < 5000; i++ {
			v := int64(rng.ExpFloat64() * float64(g.hi) / 50)
			if v > g.hi {
				v = g.hi
			}
			_ = h.RecordValue(v)
		}
		d := newDist(h)
		var want dist
		var c int64
		for _, b := range h.Distribution() {
			if b.Count > 0 {
				c += b.Count
				want.vals = append(want.vals, b.To)
				want.cum = append(want.cum, c)
			}
		}
		if d.counts == nil {
			t.Errorf("geometry %+v: fell back to Distribution", g)
		}
		if len(d.vals) != len(want.vals) {
			t.Fatalf("geometry %+v: %d buckets, want %d", g, len(d.vals), len(want.vals))
		}
		for i := range d.vals {
			if d.vals[i] != want.vals[i] || d.cum[i] != want.cum[i] {
				t.Fatalf("geometry %+v: bucket %d = (%d,%d), want (%d,%d)", g, i, d.vals[i], d.cum[i], want.vals[i], want.cum[i])
			}
		}
		for _, q := range []float64{0.001, 0.5, 0.9, 0.99, 0.999, 1} {
			if got, want := d.quantile(q), h.ValueAtQuantile(100*q); got != want {
				t.Errorf("geometry %+v: quantile(%v) = %d, library says %d", g, q, got, want)
			}
		}
	}
}
