package rollback

import (
	"math"
	"sync"
	"sync/atomic"
)

// The mixture sequential probability ratio test (mSPRT) of Johari, Koomen,
// Pekelis and Walsh, "Always valid inference" (Operations Research, 2022),
// for counted rates: errors over requests.
//
// The parameter is the rise r of the new version's rate over the tolerated
// rate (the reference's times 1 + Tolerate); the null is r <= 1. For each r
// of a fixed grid, the likelihood ratio of r against r = 1 is a product of
// one factor per increment of data (the requests and errors since the last
// look), so that the product is a martingale under r = 1 and a
// supermartingale under any r < 1 whatever the traffic split of each
// increment. The mixture
//
//	Λ = Σ w_k · LR(r_k),   log r_k on a grid of (0, 5τ], w_k ∝ φ(log r_k / τ)
//
// — a half-normal prior of scale τ on log r, discretised, weights summing to
// 1 — is then a supermartingale with expectation at most 1, and Ville's
// inequality gives P(Λ ever reaches 1/α) <= α however often one looks: the
// always-valid p-value is the running minimum of 1/Λ.
//
// Each increment contributes in one of two ways:
//
//   - with a control over the same window (canary m1 requests, a1 errors;
//     control m0 requests, a0 errors): conditionally on the errors, each is
//     the canary's with probability π(r) = r·c·m1 / (r·c·m1 + m0), c = 1 +
//     Tolerate, against π(1) under the null — exact for Poisson errors,
//     whatever the base rate and with no normal approximation, so that a
//     control with no errors, or a canary with one, is judged soundly;
//   - without a control, against the baseline: the canary's errors are
//     binomial at r·p against p, where p is c times an upper confidence bound
//     (at level 1 - α/5) of the baseline's rate; α/5 of the test's α is spent
//     on that bound, 4α/5 on the sequence.
//
// In the limit of many errors, log LR(r) is quadratic in log r and Λ
// approaches the closed form of the one-sided normal mSPRT (see
// normalMSPRT), which the tests check.

// msprtGrid is the number of points of the mixing grid.
const msprtGrid = 96

// msprtSpan is how far the grid reaches, in units of τ.
const msprtSpan = 5.0

// mixture is the fixed grid of rises and their prior weights for one τ.
type mixture struct {
	tau  float64
	logR [msprtGrid]float64
	r    [msprtGrid]float64 // exp(logR)
	logW [msprtGrid]float64
}

// mixtures caches the grids by τ: a policy has one or two.
var mixtures sync.Map // float64 -> *mixture

// lastMixture is the grid mixtureFor returned last.
var lastMixture atomic.Pointer[mixture]

// mixtureFor returns the grid for tau, computed once.
func mixtureFor(tau float64) *mixture {
	// The last grid first: a float key in a sync.Map is boxed on every
	// look.
	if m := lastMixture.Load(); m != nil && m.tau == tau {
		return m
	}
	if m, ok := mixtures.Load(tau); ok {
		lastMixture.Store(m.(*mixture))
		return m.(*mixture)
	}
	m := newMixture(tau)
	v, _ := mixtures.LoadOrStore(tau, &m)
	lastMixture.Store(v.(*mixture))
	return v.(*mixture)
}

// newMixture returns the grid for the half-normal prior of scale tau on
// log r: midpoints of msprtGrid equal cells of (0, msprtSpan·tau], weights
// proportional to the density at each midpoint, normalised to sum to 1.
func newMixture(tau float64) mixture {
	m := mixture{tau: tau}
	h := msprtSpan * tau / msprtGrid
	var sum float64
	for k := range msprtGrid {
		u := (float64(k) + 0.5) * h
		m.logR[k] = u
		m.r[k] = math.Exp(u)
		m.logW[k] = -0.5 * (u / tau) * (u / tau)
		sum += math.Exp(m.logW[k])
	}
	ls := math.Log(sum)
	for k := range m.logW {
		m.logW[k] -= ls
	}
	return m
}

// tauFor returns the mixing scale for an effect to catch and a tolerated
// rise: the distance between them on the log scale, log((1+catch)/(1+tol)),
// so that the prior puts its scale at the effect the test is powered for.
func tauFor(catch, tol float64) float64 {
	return math.Log1p(catch) - math.Log1p(tol)
}

// addControl adds the log likelihood ratios of one increment compared with
// a control over the same period: a1 errors of m1 canary requests, a0 of m0
// control requests, c = 1 + tolerated rise. An increment without canary or
// control requests, or without errors, carries no information: added is
// false, and ll as it was.
func (m *mixture) addControl(ll []float64, a1, m1, a0, m0, c float64) (added bool) {
	if m1 <= 0 || m0 <= 0 || a1+a0 <= 0 {
		return false
	}
	// log π(r) - log π(1) = u - log(xr+m0) + log(x+m0), and
	// log(1-π(r)) - log(1-π(1)) = log(x+m0) - log(xr+m0): one log a point.
	x := c * m1
	l0 := math.Log(x + m0)
	for k, u := range m.logR {
		d := l0 - math.Log(x*m.r[k]+m0)
		ll[k] += a1*(u+d) + a0*d
	}
	return true
}

// addBaseline adds the log likelihood ratios of one increment compared with
// a reference rate p (already including the tolerated rise): a1 errors of
// m1 requests, binomial at r·p against p. A rise that would make the rate
// 1 or more is impossible once any request succeeded. Without requests, or
// with p outside (0, 1), added is false and ll as it was.
func (m *mixture) addBaseline(ll []float64, a1, m1, p float64) (added bool) {
	if m1 <= 0 || p <= 0 || p >= 1 {
		return false
	}
	ok := m1 - a1
	lq0 := math.Log1p(-p)
	for k, u := range m.logR {
		rp := p * m.r[k]
		if rp >= 1 {
			if ok > 0 {
				ll[k] = math.Inf(-1)
			} else {
				ll[k] += a1 * u
			}
			continue
		}
		ll[k] += a1*u + ok*(math.Log1p(-rp)-lq0)
	}
	return true
}

// logLambda returns log Λ, the log of the mixture of the likelihood ratios.
func (m *mixture) logLambda(ll []float64) float64 {
	mx := math.Inf(-1)
	for k, l := range ll {
		mx = max(mx, l+m.logW[k])
	}
	if math.IsInf(mx, -1) {
		return mx
	}
	var s float64
	for k, l := range ll {
		s += math.Exp(l + m.logW[k] - mx)
	}
	return mx + math.Log(s)
}

// normalMSPRT is the closed form of the one-sided mSPRT for a normal
// estimate: the estimate d of the effect over its null value, of variance v,
// mixed over a half-normal prior of scale tau on the effect:
//
//	Λ = 2 · sqrt(v/(v+τ²)) · exp(τ²d² / (2v(v+τ²))) · Φ(dτ / sqrt(v(v+τ²)))
//
// It is the limit the binomial mixture approaches with many errors (d the
// log rate ratio over the tolerated one, v its variance) and returns log Λ.
func normalMSPRT(d, v, tau float64) float64 {
	t2 := tau * tau
	return math.Log(2) + 0.5*math.Log(v/(v+t2)) + t2*d*d/(2*v*(v+t2)) + logPhi(d*tau/math.Sqrt(v*(v+t2)))
}

// logPhi is the log of the standard normal CDF, accurate in the far left
// tail.
func logPhi(z float64) float64 {
	if z > -20 {
		return math.Log(0.5 * math.Erfc(-z/math.Sqrt2))
	}
	// Mills ratio: Φ(z) ≈ φ(z)/|z| · (1 - 1/z² + 3/z⁴).
	return -0.5*z*z - math.Log(-z) - 0.5*math.Log(2*math.Pi) + math.Log1p(-1/(z*z)+3/(z*z*z*z))
}

// normQuantile is the standard normal quantile function Φ⁻¹(p), 0 < p < 1
// (Acklam's rational approximation refined by one Halley step: about 1e-15).
func normQuantile(p float64) float64 {
	if p <= 0 {
		return math.Inf(-1)
	}
	if p >= 1 {
		return math.Inf(1)
	}
	a := [6]float64{-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00}
	b := [5]float64{-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01, -1.328068155288572e+01}
	c := [6]float64{-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00}
	d := [4]float64{7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00}
	var x float64
	switch {
	case p < 0.02425:
		q := math.Sqrt(-2 * math.Log(p))
		x = (((((c[0]*q+c[1])*q+c[2])*q+c[3])*q+c[4])*q + c[5]) / ((((d[0]*q+d[1])*q+d[2])*q+d[3])*q + 1)
	case p > 1-0.02425:
		q := math.Sqrt(-2 * math.Log1p(-p))
		x = -(((((c[0]*q+c[1])*q+c[2])*q+c[3])*q+c[4])*q + c[5]) / ((((d[0]*q+d[1])*q+d[2])*q+d[3])*q + 1)
	default:
		q := p - 0.5
		r := q * q
		x = (((((a[0]*r+a[1])*r+a[2])*r+a[3])*r+a[4])*r + a[5]) * q / (((((b[0]*r+b[1])*r+b[2])*r+b[3])*r+b[4])*r + 1)
	}
	e := 0.5*math.Erfc(-x/math.Sqrt2) - p
	u := e * math.Sqrt(2*math.Pi) * math.Exp(x*x/2)
	return x - u/(1+x*u/2)
}

// upperBound is the exact (Clopper-Pearson) one-sided upper confidence
// bound at level 1 - a of a binomial rate with x events in n trials: the p
// at which P(X <= x) = a.
func upperBound(x, n int, a float64) float64 {
	if n <= 0 {
		return 1
	}
	if x >= n {
		return 1
	}
	lo, hi := float64(x)/float64(n), 1.0
	for range 100 {
		mid := (lo + hi) / 2
		// P(X <= x) = 1 - P(X >= x+1)
		if 1-binomialSF(x+1, n, mid) > a {
			lo = mid
		} else {
			hi = mid
		}
		if hi-lo < 1e-12*hi {
			break
		}
	}
	return (lo + hi) / 2
}
