package gate

import (
	"math"
)

// regIncBeta returns the regularized incomplete beta function I_x(a, b),
// evaluated with the continued fraction of Numerical Recipes (betacf), using
// the symmetry I_x(a,b) = 1 - I_{1-x}(b,a) where the fraction converges fast.
func regIncBeta(x, a, b float64) float64 {
	switch {
	case x <= 0:
		return 0
	case x >= 1:
		return 1
	}
	lbt := lgamma(a+b) - lgamma(a) - lgamma(b) + a*math.Log(x) + b*math.Log1p(-x)
	bt := math.Exp(lbt)
	if x < (a+1)/(a+b+2) {
		return bt * betaCF(x, a, b) / a
	}
	return 1 - bt*betaCF(1-x, b, a)/b
}

func lgamma(x float64) float64 {
	v, _ := math.Lgamma(x)
	return v
}

// betaCF evaluates the continued fraction for the incomplete beta function
// (modified Lentz). It needs O(sqrt(max(a,b))) iterations, so the cap is
// generous: binomial CDFs over a million requests still converge.
func betaCF(x, a, b float64) float64 {
	const (
		eps   = 1e-15
		tiny  = 1e-300
		maxIt = 100000
	)
	qab, qap, qam := a+b, a+1, a-1
	c := 1.0
	d := 1 - qab*x/qap
	if math.Abs(d) < tiny {
		d = tiny
	}
	d = 1 / d
	h := d
	for m := 1; m <= maxIt; m++ {
		fm := float64(m)
		m2 := 2 * fm
		aa := fm * (b - fm) * x / ((qam + m2) * (a + m2))
		d = 1 + aa*d
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = 1 + aa/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		h *= d * c
		aa = -(a + fm) * (qab + fm) * x / ((a + m2) * (qap + m2))
		d = 1 + aa*d
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = 1 + aa/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		del := d * c
		h *= del
		if math.Abs(del-1) < eps {
			break
		}
	}
	return h
}

// binomCDF returns P(X <= k) for X ~ Binomial(n, p).
func binomCDF(k, n int64, p float64) float64 {
	switch {
	case k < 0:
		return 0
	case k >= n:
		return 1
	case p <= 0:
		return 1
	case p >= 1:
		return 0
	}
	return regIncBeta(1-p, float64(n-k), float64(k+1))
}

// orderStatRanks returns the 1-based ranks lo and hi of the order statistics
// that bound the q-quantile of a continuous distribution from n i.i.d.
// samples, each one-sided at confidence 1-alpha:
//
//	P(X_(lo) <= ξ_q) >= 1-alpha  and  P(X_(hi) >= ξ_q) >= 1-alpha.
//
// X_(r) <= ξ_q exactly when at least r samples fall at or below ξ_q, an event
// of probability P(B >= r) with B ~ Binomial(n, q). lo is 0 when no such rank
// exists and hi is n+1 when no upper rank exists (too few samples).
func orderStatRanks(n int64, q, alpha float64) (lo, hi int64) {
	if n <= 0 {
		return 0, n + 1
	}
	// lo: the largest r with P(B <= r-1) <= alpha; P(B <= r-1) grows with r.
	a, b := int64(0), n // invariant: ok(a) (r=0 trivially), search (a, b]
	if binomCDF(n-1, n, q) <= alpha {
		a = n
	} else {
		for b-a > 1 {
			m := a + (b-a)/2
			if binomCDF(m-1, n, q) <= alpha {
				a = m
			} else {
				b = m
			}
		}
	}
	lo = a
	// hi: the smallest r with P(B <= r-1) >= 1-alpha.
	if binomCDF(n-1, n, q) < 1-alpha {
		return lo, n + 1
	}
	a, b = 0, n // P(B <= a-1) < 1-alpha at a=0; ok at b=n
	for b-a > 1 {
		m := a + (b-a)/2
		if binomCDF(m-1, n, q) >= 1-alpha {
			b = m
		} else {
			a = m
		}
	}
	return lo, b
}

// TQuantile returns the p-quantile of Student's t distribution with df
// degrees of freedom (experiment uses it for its bootstrap-t intervals).
func TQuantile(p, df float64) float64 { return studentTQuantile(p, df) }

// studentTCDF returns P(T <= t) for Student's t with df degrees of freedom.
func studentTCDF(t, df float64) float64 {
	x := df / (df + t*t)
	tail := 0.5 * regIncBeta(x, df/2, 0.5)
	if t > 0 {
		return 1 - tail
	}
	return tail
}

// studentTQuantile returns the p-quantile of Student's t with df degrees of
// freedom, by bisection on the CDF (monotone, so this cannot fail).
func studentTQuantile(p, df float64) float64 {
	if p == 0.5 {
		return 0
	}
	if p < 0.5 {
		return -studentTQuantile(1-p, df)
	}
	lo, hi := 0.0, 1.0
	for studentTCDF(hi, df) < p {
		hi *= 2
		if hi > 1e12 {
			return math.Inf(1)
		}
	}
	for i := 0; i < 200 && hi-lo > 1e-12*hi; i++ {
		m := (lo + hi) / 2
		if studentTCDF(m, df) < p {
			lo = m
		} else {
			hi = m
		}
	}
	return (lo + hi) / 2
}

// meanSD returns the sample mean and the sample standard deviation (n-1).
func meanSD(xs []float64) (mean, sd float64) {
	if len(xs) == 0 {
		return math.NaN(), math.NaN()
	}
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	if len(xs) < 2 {
		return mean, math.NaN()
	}
	var ss float64
	for _, x := range xs {
		ss += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(ss / float64(len(xs)-1))
}

// sortedQuantile returns the p-quantile of sorted xs by the inverse of the
// empirical CDF (type 1), which is what a percentile bootstrap needs.
func sortedQuantile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(p*float64(len(xs)))) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(xs) {
		i = len(xs) - 1
	}
	return xs[i]
}
