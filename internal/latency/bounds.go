package latency

import (
	"errors"
	"fmt"
	"math"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// ErrTooFewSamples is returned by QuantileBounds when no order statistic of
// the sample gives a bound at the requested confidence: for example a 95 %
// upper bound for p99 needs n >= 299 (0.99^n <= 0.05).
var ErrTooFewSamples = errors.New("too few samples for a quantile bound at this confidence")

// Bounds are distribution-free confidence bounds for the q-quantile of the
// population the histogram's requests were drawn from.
//
// Lo and Hi are each ONE-SIDED bounds at confidence Conf:
// P(true quantile <= Hi) >= Conf and P(true quantile >= Lo) >= Conf, so
// [Lo, Hi] is a two-sided interval with confidence >= 2·Conf − 1 (pass
// Conf = 0.975 for a two-sided 95 % interval). LoRank and HiRank are the
// 1-based order statistics used (X(LoRank) <= X(HiRank)). Lo is the lowest
// and Hi the highest value equivalent to those order statistics at the
// histogram's precision, so the histogram's rounding never narrows the
// interval.
type Bounds struct {
	Q              float64
	N              int64
	LoRank, HiRank int64
	Lo, Hi         time.Duration
	Conf           float64
}

// QuantileBounds returns order-statistic (binomial) confidence bounds for
// quantile q in (0,1) of h at one-sided confidence conf in [0.5,1).
//
// With B ~ Binomial(n, q) the number of samples below the true quantile ξ,
// X(u) >= ξ exactly when B <= u−1, so the upper rank is the smallest u with
// P(B <= u−1) >= conf, and the lower rank is the largest l with
// P(B >= l) >= conf. Both come from the exact binomial distribution, not a
// normal approximation. If either rank falls outside 1..n the sample is too
// small and the error wraps ErrTooFewSamples.
func QuantileBounds(h *hdrhistogram.Histogram, q, conf float64) (Bounds, error) {
	n := h.TotalCount()
	b := Bounds{Q: q, N: n, Conf: conf}
	if !(q > 0 && q < 1) {
		return b, fmt.Errorf("quantile bounds: quantile %v is not in (0,1)", q)
	}
	if !(conf >= 0.5 && conf < 1) {
		return b, fmt.Errorf("quantile bounds: confidence %v is not in [0.5,1)", conf)
	}
	lo, hi, err := BinomialRanks(n, q, conf)
	if err != nil {
		return b, err
	}
	b.LoRank, b.HiRank = lo, hi
	b.Lo = time.Duration(valueAtRank(h, lo, false)) * time.Microsecond
	b.Hi = time.Duration(valueAtRank(h, hi, true)) * time.Microsecond
	return b, nil
}

// BinomialRanks returns the 1-based order-statistic ranks (lo, hi) that
// bound the q-quantile of a sample of n with one-sided confidence conf each
// (see QuantileBounds).
func BinomialRanks(n int64, q, conf float64) (lo, hi int64, err error) {
	if n <= 0 {
		return 0, 0, fmt.Errorf("quantile bounds for p%g with n=0: %w", q*100, ErrTooFewSamples)
	}
	alpha := 1 - conf
	mean := float64(n) * q
	sd := math.Sqrt(float64(n) * q * (1 - q))
	// Beyond 40 standard deviations the binomial mass is below e^-800:
	// start the tail sums there instead of at 0 or n.
	span := 40*sd + 50

	// Upper: smallest u with P(B >= u) <= alpha. tail accumulates P(B >= k)
	// walking k down from n.
	hi = -1
	start := n
	if s := int64(math.Ceil(mean + span)); s < start {
		start = s
	}
	tail := 0.0 // P(B > start), negligible by the choice of span
	for k := start; k >= 0; k-- {
		next := tail + binomPMF(n, k, q) // P(B >= k)
		if next > alpha {
			// P(B >= k+1) = tail <= alpha, P(B >= k) > alpha: u = k+1.
			hi = k + 1
			break
		}
		tail = next
	}
	if hi < 1 || hi > n {
		return 0, 0, fmt.Errorf("no %g%% upper bound for p%g with n=%d: %w", conf*100, q*100, n, ErrTooFewSamples)
	}

	// Lower: largest l with P(B <= l-1) <= alpha. cdf accumulates P(B <= k)
	// walking k up from 0.
	lo = -1
	from := int64(0)
	if s := int64(math.Floor(mean - span)); s > 0 {
		from = s
	}
	cdf := 0.0 // P(B < from), negligible by the choice of span
	for k := from; k <= n; k++ {
		next := cdf + binomPMF(n, k, q) // P(B <= k)
		if next > alpha {
			// P(B <= k-1) = cdf <= alpha but P(B <= k) > alpha: l-1 = k-1.
			lo = k
			break
		}
		cdf = next
	}
	if lo < 1 || lo > n {
		return 0, 0, fmt.Errorf("no %g%% lower bound for p%g with n=%d: %w", conf*100, q*100, n, ErrTooFewSamples)
	}
	return lo, hi, nil
}

// binomPMF is P(B = k) for B ~ Binomial(n, q), computed in log space so that
// it neither overflows nor underflows for large n.
func binomPMF(n, k int64, q float64) float64 {
	if k < 0 || k > n {
		return 0
	}
	ln1, _ := math.Lgamma(float64(n) + 1)
	lk, _ := math.Lgamma(float64(k) + 1)
	lnk, _ := math.Lgamma(float64(n-k) + 1)
	return math.Exp(ln1 - lk - lnk + float64(k)*math.Log(q) + float64(n-k)*math.Log1p(-q))
}

// valueAtRank returns the r-th smallest recorded value (1-based) of h: the
// highest equivalent value if upper, else the lowest.
func valueAtRank(h *hdrhistogram.Histogram, r int64, upper bool) int64 {
	n := h.TotalCount()
	// ValueAtPercentile picks rank int(p/100·n + 0.5); p = 100·r/n gives r.
	v := h.ValueAtPercentile(100 * float64(r) / float64(n))
	if upper {
		return v
	}
	// Lowest equivalent value: the smallest x <= v equivalent to v (the
	// library does not export it; equivalence is monotone below v).
	lo, hi := int64(0), v
	for lo < hi {
		mid := lo + (hi-lo)/2
		if h.ValuesAreEquivalent(mid, v) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}
