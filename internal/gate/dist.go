package gate

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// dist is a histogram flattened to its non-empty buckets in value order, so
// that rank queries are a binary search and resampling never touches the
// histogram's full counts array again.
type dist struct {
	vals []int64 // highest equivalent value of each non-empty bucket, ascending (µs)
	cum  []int64 // samples at or below vals[i]
	// counts is the histogram's raw counts array and geo its geometry, kept
	// so that pooling is an element-wise sum (nil when unavailable).
	counts []int64
	geo    geometry
}

// geometry is the part of an HdrHistogram's bucket layout needed to turn a
// counts index into a value (the same formulas as hdrhistogram-go's
// valueFromFlatIndex and highestEquivalentValue).
type geometry struct {
	unitMag, halfMag int64
}

func geometryOf(lowest, sigFigs int64) geometry {
	unit := int64(math.Floor(math.Log2(float64(max(lowest, 1)))))
	half := int64(math.Ceil(math.Log2(2*math.Pow10(int(sigFigs))))) - 1
	return geometry{unitMag: max(unit, 0), halfMag: max(half, 0)}
}

// highestValue is the highest value that lands in counts index idx.
func (g geometry) highestValue(idx int) int64 {
	halfCount := int64(1) << g.halfMag
	bucket := int64(idx)>>g.halfMag - 1
	sub := int64(idx)&(halfCount-1) + halfCount
	if bucket < 0 {
		sub -= halfCount
		bucket = 0
	}
	shift := bucket + g.unitMag
	return sub<<shift + 1<<shift - 1
}

func flatten(counts []int64, g geometry) dist {
	nz := 0
	for _, n := range counts {
		if n != 0 {
			nz++
		}
	}
	d := dist{counts: counts, geo: g, vals: make([]int64, 0, nz), cum: make([]int64, 0, nz)}
	var c int64
	for i, n := range counts {
		if n == 0 {
			continue
		}
		c += n
		d.vals = append(d.vals, g.highestValue(i))
		d.cum = append(d.cum, c)
	}
	return d
}

func newDist(h *hdrhistogram.Histogram) dist {
	s := h.Export()
	d := flatten(s.Counts, geometryOf(s.LowestTrackableValue, s.SignificantFigures))
	if d.total() == h.TotalCount() && (len(d.vals) == 0 || d.vals[len(d.vals)-1] == h.ValueAtPercentile(100)) {
		return d
	}
	// Layout not understood: fall back to the library's own iteration.
	d = dist{}
	var c int64
	for _, b := range h.Distribution() {
		if b.Count == 0 {
			continue
		}
		c += b.Count
		d.vals = append(d.vals, b.To)
		d.cum = append(d.cum, c)
	}
	return d
}

// pooled merges dists that come from histograms of one geometry, so equal
// buckets have equal values.
func pooled(ds []dist) dist {
	fast := len(ds) > 0
	n := 0
	for _, d := range ds {
		fast = fast && d.counts != nil && d.geo == ds[0].geo
		n = max(n, len(d.counts))
	}
	if fast {
		sum := make([]int64, n)
		for _, d := range ds {
			for i, c := range d.counts {
				sum[i] += c
			}
		}
		return flatten(sum, ds[0].geo)
	}
	counts := map[int64]int64{}
	for _, d := range ds {
		var prev int64
		for i, v := range d.vals {
			counts[v] += d.cum[i] - prev
			prev = d.cum[i]
		}
	}
	var p dist
	p.vals = make([]int64, 0, len(counts))
	for v := range counts {
		p.vals = append(p.vals, v)
	}
	sort.Slice(p.vals, func(i, j int) bool { return p.vals[i] < p.vals[j] })
	p.cum = make([]int64, len(p.vals))
	var c int64
	for i, v := range p.vals {
		c += counts[v]
		p.cum[i] = c
	}
	return p
}

func (d dist) total() int64 {
	if len(d.cum) == 0 {
		return 0
	}
	return d.cum[len(d.cum)-1]
}

// atRank returns the k-th smallest sample (1-based), clamped to [1, total].
func (d dist) atRank(k int64) int64 {
	if len(d.vals) == 0 {
		return 0
	}
	i := sort.Search(len(d.cum), func(i int) bool { return d.cum[i] >= k })
	if i == len(d.cum) {
		i = len(d.cum) - 1
	}
	return d.vals[i]
}

// countLE returns the number of samples whose bucket value is <= v.
func (d dist) countLE(v int64) int64 {
	i := sort.Search(len(d.vals), func(i int) bool { return d.vals[i] > v })
	if i == 0 {
		return 0
	}
	return d.cum[i-1]
}

// quantile returns the q-quantile (q in [0,1]) as the sample of rank
// ceil(q·n), the inverse of the empirical CDF.
func (d dist) quantile(q float64) int64 { return d.atRank(quantileRank(q, d.total())) }

// quantileRank is the 1-based rank of the q-quantile among n samples.
func quantileRank(q float64, n int64) int64 {
	k := int64(math.Ceil(q*float64(n) - 1e-9))
	if k < 1 {
		k = 1
	}
	if k > n {
		k = n
	}
	return k
}

func usDur(us int64) time.Duration { return time.Duration(us) * time.Microsecond }

// Quantile returns the q-quantile (q in [0,1], not hdrhistogram's 0–100) of a
// histogram of microseconds, as the sample of rank ceil(q·n). It returns 0 for
// an empty or nil histogram.
func Quantile(h *hdrhistogram.Histogram, q float64) time.Duration {
	if h == nil || h.TotalCount() == 0 {
		return 0
	}
	return usDur(newDist(h).quantile(q))
}

// ErrNoRounds is returned by NewResampler when it is given nothing to pool.
var ErrNoRounds = errors.New("no rounds")

// Resampler answers "what is the q-quantile of the pooled histogram of this
// resample of rounds" in O(R·log G) per resample, which is what makes a
// bootstrap over rounds cheap. The pooled quantile of any mixture of rounds
// lies between the smallest and the largest per-round quantile, so only the
// bucket values in that range (the grid) are kept, with each round's count at
// or below each grid value.
type Resampler struct {
	q     float64
	n     []int64   // samples per round
	grid  []int64   // candidate values, ascending (µs)
	below [][]int64 // below[r][g]: samples of round r at or below grid[g]
}

// NewResampler prepares pooled q-quantiles (q in (0,1)) of resamples of the
// given rounds' histograms (µs). The histograms must share one geometry and be
// non-empty.
func NewResampler(hists []*hdrhistogram.Histogram, q float64) (*Resampler, error) {
	if len(hists) == 0 {
		return nil, ErrNoRounds
	}
	ds := make([]dist, len(hists))
	for i, h := range hists {
		if h == nil || h.TotalCount() == 0 {
			return nil, fmt.Errorf("resampler: round %d: empty histogram", i)
		}
		ds[i] = newDist(h)
	}
	return newResampler(ds, q), nil
}

func newResampler(ds []dist, q float64) *Resampler {
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for _, d := range ds {
		v := d.quantile(q)
		lo = min(lo, v)
		hi = max(hi, v)
	}
	seen := map[int64]bool{}
	var grid []int64
	for _, d := range ds {
		i := sort.Search(len(d.vals), func(i int) bool { return d.vals[i] >= lo })
		for ; i < len(d.vals) && d.vals[i] <= hi; i++ {
			if !seen[d.vals[i]] {
				seen[d.vals[i]] = true
				grid = append(grid, d.vals[i])
			}
		}
	}
	sort.Slice(grid, func(i, j int) bool { return grid[i] < grid[j] })
	r := &Resampler{q: q, grid: grid, n: make([]int64, len(ds)), below: make([][]int64, len(ds))}
	for i, d := range ds {
		r.n[i] = d.total()
		r.below[i] = make([]int64, len(grid))
		for g, v := range grid {
			r.below[i][g] = d.countLE(v)
		}
	}
	return r
}

// Len is the number of rounds.
func (r *Resampler) Len() int { return len(r.n) }

// Quantile returns the q-quantile of the pool in which round i appears
// weights[i] times. A nil weights slice means every round once. Weights that
// are all zero give 0.
func (r *Resampler) Quantile(weights []int) time.Duration { return usDur(r.quantileUS(weights)) }

func (r *Resampler) quantileUS(weights []int) int64 {
	var n int64
	for i, c := range r.n {
		n += int64(weight(weights, i)) * c
	}
	if n == 0 || len(r.grid) == 0 {
		return 0
	}
	k := quantileRank(r.q, n)
	g := sort.Search(len(r.grid), func(g int) bool {
		var c int64
		for i, b := range r.below {
			if w := weight(weights, i); w != 0 {
				c += int64(w) * b[g]
			}
		}
		return c >= k
	})
	if g == len(r.grid) {
		g = len(r.grid) - 1
	}
	return r.grid[g]
}

func weight(w []int, i int) int {
	if w == nil {
		return 1
	}
	return w[i]
}

// sameGeometry reports whether two histograms bucket values identically, so
// that their buckets can be pooled by value.
func sameGeometry(a, b *hdrhistogram.Histogram) bool {
	return a.LowestTrackableValue() == b.LowestTrackableValue() &&
		a.HighestTrackableValue() == b.HighestTrackableValue() &&
		a.SignificantFigures() == b.SignificantFigures()
}
