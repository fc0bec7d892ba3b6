package gate

import (
	"math"
	"testing"
)

func TestStudentT(t *testing.T) {
	// Reference values from standard t tables.
	tests := []struct {
		p, df, want float64
	}{
		{0.975, 5, 2.5706},
		{0.975, 1, 12.7062},
		{0.95, 3, 2.3534},
		{0.99, 10, 2.7638},
		{0.995, 30, 2.7500},
		{0.9, 1000, 1.2824},
		{0.025, 5, -2.5706},
	}
	for _, tt := range tests {
		if got := studentTQuantile(tt.p, tt.df); math.Abs(got-tt.want) > 5e-4 {
			t.Errorf("t quantile(%v, df=%v) = %.4f, want %.4f", tt.p, tt.df, got, tt.want)
		}
		if got := studentTCDF(tt.want, tt.df); math.Abs(got-tt.p) > 1e-4 {
			t.Errorf("t CDF(%v, df=%v) = %.5f, want %.5f", tt.want, tt.df, got, tt.p)
		}
	}
}

func TestBinomCDF(t *testing.T) {
	// Exact sums for small n.
	exact := func(k, n int64, p float64) float64 {
		var s float64
		for i := int64(0); i <= k; i++ {
			lc := lgamma(float64(n+1)) - lgamma(float64(i+1)) - lgamma(float64(n-i+1))
			s += math.Exp(lc + float64(i)*math.Log(p) + float64(n-i)*math.Log1p(-p))
		}
		return s
	}
	for _, n := range []int64{1, 10, 50, 300} {
		for _, p := range []float64{0.01, 0.5, 0.99} {
			for k := int64(0); k < n; k += max(1, n/7) {
				if got, want := binomCDF(k, n, p), exact(k, n, p); math.Abs(got-want) > 1e-9 {
					t.Errorf("binomCDF(%d, %d, %v) = %.12f, want %.12f", k, n, p, got, want)
				}
			}
		}
	}
	// Large n: compare with the normal approximation (continuity corrected).
	n, p := int64(1_000_000), 0.99
	k := int64(990_100)
	z := (float64(k) + 0.5 - float64(n)*p) / math.Sqrt(float64(n)*p*(1-p))
	want := 0.5 * math.Erfc(-z/math.Sqrt2)
	if got := binomCDF(k, n, p); math.Abs(got-want) > 2e-3 {
		t.Errorf("binomCDF(%d, %d, %v) = %.5f, normal approx %.5f", k, n, p, got, want)
	}
}

func TestOrderStatRanks(t *testing.T) {
	// No one-sided 95 % upper bound on p99 exists below n = 299:
	// 0.99^298 > 0.05 >= 0.99^299 (shared/FACTS.md).
	if _, hi := orderStatRanks(298, 0.99, 0.05); hi != 299 {
		t.Errorf("n=298: hi = %d, want 299 (none)", hi)
	}
	if _, hi := orderStatRanks(299, 0.99, 0.05); hi != 299 {
		t.Errorf("n=299: hi = %d, want 299 (the maximum)", hi)
	}
	// n = 10,000 at 95 % two-sided: about p98.8–p99.2.
	lo, hi := orderStatRanks(10_000, 0.99, 0.025)
	if lo < 9876 || lo > 9884 || hi < 9917 || hi > 9924 {
		t.Errorf("n=10000: ranks [%d, %d], want about [9880, 9920]", lo, hi)
	}
	// The coverage guarantee itself, at the edges of the ranks.
	for _, n := range []int64{500, 5000, 72000} {
		lo, hi := orderStatRanks(n, 0.99, 0.01)
		if c := binomCDF(lo-1, n, 0.99); c > 0.01 {
			t.Errorf("n=%d: P(B <= lo-1) = %v > alpha", n, c)
		}
		if c := binomCDF(lo, n, 0.99); c <= 0.01 {
			t.Errorf("n=%d: lo = %d is not the largest valid rank", n, lo)
		}
		if c := binomCDF(hi-1, n, 0.99); c < 0.99 {
			t.Errorf("n=%d: P(B <= hi-1) = %v < 1-alpha", n, c)
		}
		if c := binomCDF(hi-2, n, 0.99); c >= 0.99 {
			t.Errorf("n=%d: hi = %d is not the smallest valid rank", n, hi)
		}
	}
}
