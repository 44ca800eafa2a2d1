package rollback

import (
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/deploykit/deploy/monitor"
)

// ExactLimit is the largest sample size, on each side, for which
// [MannWhitneyU] computes the exact p-value (when there are no ties).
const ExactLimit = 20

// UTestResult is the outcome of a two-sided Mann-Whitney U test of sample x
// against sample y.
type UTestResult struct {
	// N1 and N2 are the sizes of x and y.
	N1, N2 int
	// U is the statistic of x: the number of pairs (xi, yj) with xi > yj,
	// plus half the number of ties. The statistic of y is N1*N2 - U.
	U float64
	// Z is the normal score of U with the tie and continuity corrections,
	// signed like U - N1*N2/2; 0 when the p-value is exact.
	Z float64
	// P is the two-sided p-value.
	P float64
	// Exact reports whether P comes from the exact null distribution of U
	// rather than the normal approximation.
	Exact bool
	// Ties reports whether any value appears more than once in x and y
	// together.
	Ties bool
	// Shift is the Hodges-Lehmann estimate of the location shift of x over
	// y: the median of all differences xi - yj.
	Shift float64
	// ShiftLow and ShiftHigh bound the confidence interval for the shift at
	// the confidence level asked for: order statistics of the differences
	// xi - yj chosen from the exact or the approximate null distribution of
	// U, as R's wilcox.test does for the exact case.
	ShiftLow, ShiftHigh float64
}

// MannWhitneyU runs a two-sided Mann-Whitney U test (the Wilcoxon rank-sum
// test) of x against y and estimates the location shift of x over y with
// its confidence interval at level confidence, in (0, 1).
//
// When both samples have at most [ExactLimit] values and there are no ties,
// the p-value is exact; otherwise it is the normal approximation, with the
// variance corrected for ties and a continuity correction of 0.5, as
// SciPy's mannwhitneyu and R's wilcox.test compute it.
//
// x and y are not modified. It returns an error wrapping [ErrInvalid] for an
// empty sample, a value that is not finite, or a confidence outside (0, 1).
// It costs O((n1+n2) log(n1+n2)): a sort, then a few linear passes per
// order statistic of the differences for the shift and its interval.
func MannWhitneyU(x, y []float64, confidence float64) (UTestResult, error) {
	switch {
	case len(x) == 0 || len(y) == 0:
		return UTestResult{}, fmt.Errorf("rollback: MannWhitneyU needs two non-empty samples, got %d and %d values: %w", len(x), len(y), ErrInvalid)
	case !(confidence > 0 && confidence < 1):
		return UTestResult{}, fmt.Errorf("rollback: MannWhitneyU confidence %v must be in (0, 1): %w", confidence, ErrInvalid)
	}
	for _, s := range [2][]float64{x, y} {
		for i, v := range s {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return UTestResult{}, fmt.Errorf("rollback: MannWhitneyU sample value %d is %v, not finite: %w", i, v, ErrInvalid)
			}
		}
	}
	m, n := len(x), len(y)
	buf := make([]float64, m+n)
	xs, ys := buf[:m:m], buf[m:]
	copy(xs, x)
	copy(ys, y)
	slices.Sort(xs)
	slices.Sort(ys)
	return uTest(xs, ys, confidence, auto), nil
}

type method int

const (
	auto method = iota
	exact
	asymptotic
)

// uTest runs the test on sorted, finite, non-empty samples.
func uTest(xs, ys []float64, confidence float64, how method) UTestResult {
	m, n := len(xs), len(ys)
	r := UTestResult{N1: m, N2: n}

	// Rank x and y together by merging; tied values get the mean rank.
	var rankSum, tieSum float64
	i, j, done := 0, 0, 0
	for i < m || j < n {
		var v float64
		switch {
		case j == n || (i < m && xs[i] <= ys[j]):
			v = xs[i]
		default:
			v = ys[j]
		}
		ci, cj := 0, 0
		for i+ci < m && xs[i+ci] == v {
			ci++
		}
		for j+cj < n && ys[j+cj] == v {
			cj++
		}
		t := ci + cj
		rankSum += float64(ci) * (float64(done) + float64(t+1)/2)
		if t > 1 {
			r.Ties = true
			tieSum += float64(t)*float64(t)*float64(t) - float64(t)
		}
		done += t
		i += ci
		j += cj
	}
	mf, nf := float64(m), float64(n)
	r.U = rankSum - mf*(mf+1)/2
	mu := mf * nf / 2
	alpha := 1 - confidence

	if how == exact || (how == auto && !r.Ties && m <= ExactLimit && n <= ExactLimit) {
		r.Exact = true
		counts := uCounts(m, n)
		u := int(r.U)
		var below, total int64 // below: P(U <= u) numerator
		for k, c := range counts {
			total += c
			if k <= u {
				below += c
			}
		}
		above := total - below + counts[u] // P(U >= u) numerator
		r.P = min(1, 2*float64(min(below, above))/float64(total))
		// R's qwilcox(alpha/2): the smallest q with P(U <= q) >= alpha/2.
		q, cum := 0, int64(0)
		for k, c := range counts {
			cum += c
			if float64(cum)/float64(total) >= alpha/2 {
				q = k
				break
			}
		}
		r.Shift, r.ShiftLow, r.ShiftHigh = shiftInterval(xs, ys, max(q, 1))
		return r
	}

	nn := mf + nf
	sigma := math.Sqrt(mf * nf / 12 * ((nn + 1) - tieSum/(nn*(nn-1))))
	if sigma == 0 || math.IsNaN(sigma) {
		// Every value is the same: no evidence of a difference.
		r.P = 1
		r.Shift, r.ShiftLow, r.ShiftHigh = 0, 0, 0
		return r
	}
	d := math.Abs(r.U-mu) - 0.5
	if d < 0 {
		d = 0
	}
	r.Z = math.Copysign(d/sigma, r.U-mu)
	r.P = min(1, math.Erfc(math.Abs(r.Z)/math.Sqrt2))
	k := int(math.Floor(mu - normalQuantile(alpha/2)*sigma + 0.5))
	r.Shift, r.ShiftLow, r.ShiftHigh = shiftInterval(xs, ys, max(k, 1))
	return r
}

// uCounts returns, for k in [0, m*n], the number of the C(m+n, m)
// arrangements of two samples of sizes m and n whose U statistic is k: the
// coefficients of the Gaussian binomial [m+n choose m]_q, built as the
// product over i in 1..m of (1 - q^(n+i)) / (1 - q^i).
func uCounts(m, n int) []int64 {
	c := make([]int64, m*n+m+1)
	c[0] = 1
	for i := 1; i <= m; i++ {
		for k := len(c) - 1; k >= n+i; k-- { // multiply by 1 - q^(n+i)
			c[k] -= c[k-n-i]
		}
		for k := i; k < len(c); k++ { // divide by 1 - q^i
			c[k] += c[k-i]
		}
	}
	return c[:m*n+1]
}

// shiftInterval returns the Hodges-Lehmann estimate (the median of the m*n
// differences xs[i] - ys[j]) and the interval between the k-th smallest and
// the k-th largest of them.
func shiftInterval(xs, ys []float64, k int) (est, lo, hi float64) {
	if hasNegZero(xs) || hasNegZero(ys) {
		return shiftIntervalSearch(xs, ys, k)
	}
	mn := len(xs) * len(ys)
	s := newDiffSelector(xs, ys)
	if mn%2 == 1 {
		est, _ = s.pair((mn+1)/2, (mn+1)/2)
	} else {
		a, b := s.pair(mn/2, mn/2+1)
		est = a + (b-a)/2
	}
	k = min(k, (mn+1)/2)
	lo, _ = s.pair(k, k)
	hi, _ = s.pair(mn+1-k, mn+1-k)
	return est, lo, hi
}

// shiftIntervalSearch is shiftInterval by kthDiff's searches, for samples
// holding -0, where which zero a difference of zero is depends on how the
// samples were sorted, and this is the order the results have always had.
func shiftIntervalSearch(xs, ys []float64, k int) (est, lo, hi float64) {
	mn := len(xs) * len(ys)
	if mn%2 == 1 {
		est = kthDiff(xs, ys, (mn+1)/2)
	} else {
		a := kthDiff(xs, ys, mn/2)
		b := a
		if c, _, gt := countDiff(xs, ys, a); c < mn/2+1 {
			b = gt
		}
		est = a + (b-a)/2
	}
	k = min(k, (mn+1)/2)
	return est, kthDiff(xs, ys, k), kthDiff(xs, ys, mn+1-k)
}

// countDiff returns how many differences xs[i] - ys[j] are <= d, the largest
// of those (-Inf if none) and the smallest difference > d (+Inf if none),
// in one pass over the sorted samples.
func countDiff(xs, ys []float64, d float64) (count int, le, gt float64) {
	n := len(ys)
	le, gt = math.Inf(-1), math.Inf(1)
	j := 0 // first j with xs[i] - ys[j] <= d; it only grows with i
	for _, x := range xs {
		for j < n && x-ys[j] > d {
			j++
		}
		count += n - j
		if j < n {
			le = max(le, x-ys[j])
		}
		if j > 0 {
			gt = min(gt, x-ys[j-1])
		}
	}
	return count, le, gt
}

// kthDiff returns the k-th smallest (1-based) of the differences
// xs[i] - ys[j] without forming them: a search over values that keeps
// [lo, hi] bracketing the answer, both ends actual differences, and moves
// each to the nearest difference on the right side of a pivot. Pivots
// interpolate the counts, with a bisection every third step.
func kthDiff(xs, ys []float64, k int) float64 {
	m, n := len(xs), len(ys)
	lo, hi := xs[0]-ys[n-1], xs[m-1]-ys[0]
	cBelow, cHi := 0, m*n // differences < lo; differences <= hi
	for step := 0; lo < hi; step++ {
		d := lo + (hi-lo)/2
		if step%3 != 2 && cHi > cBelow {
			d = lo + (hi-lo)*(float64(k-cBelow)-0.5)/float64(cHi-cBelow)
		}
		if !(d >= lo && d < hi) {
			d = lo
		}
		c, le, gt := countDiff(xs, ys, d)
		if c >= k {
			hi, cHi = le, c
			if c == k {
				return le
			}
		} else {
			lo, cBelow = gt, c
		}
	}
	return lo
}

// normalQuantile returns z with P(Z > z) = p for a standard normal Z, for p
// in (0, 0.5], by bisection on erfc (to the last bit; called once per test).
func normalQuantile(p float64) float64 {
	lo, hi := 0.0, 40.0
	for range 200 {
		mid := lo + (hi-lo)/2
		if mid == lo || mid == hi {
			break
		}
		if math.Erfc(mid/math.Sqrt2)/2 > p {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo + (hi-lo)/2
}

// Direction says which way of a metric's change the [MannWhitney] judge
// fails on, as Kayenta's "direction".
type Direction int

const (
	// Either fails on a significant change either way.
	Either Direction = iota
	// Increase fails only when the canary is higher (latency, errors).
	Increase
	// Decrease fails only when the canary is lower (throughput, orders).
	Decrease
)

// String returns "either", "increase" or "decrease".
func (d Direction) String() string {
	switch d {
	case Either:
		return "either"
	case Increase:
		return "increase"
	case Decrease:
		return "decrease"
	}
	return "Direction(" + strconv.Itoa(int(d)) + ")"
}

// NaNStrategy says what the [MannWhitney] judge does with values that are
// not finite (NaN or infinite), as Kayenta's "nanStrategy".
type NaNStrategy int

const (
	// RemoveNaN drops them (Kayenta's default, "remove").
	RemoveNaN NaNStrategy = iota
	// ReplaceNaN counts them as 0 ("replace"), for metrics such as error
	// counts where a missing point means none happened.
	ReplaceNaN
)

// Defaults of the [MannWhitney] judge.
const (
	// DefaultConfidence is the confidence level when MannWhitney.Confidence
	// is 0 (Kayenta's default).
	DefaultConfidence = 0.95
	// DefaultUTestSamples is the fewest values each side needs when
	// MannWhitney.MinSamples is 0.
	DefaultUTestSamples = 10
)

// MannWhitney judges the canary against the control with a two-sided
// Mann-Whitney U test on raw samples: monitor.Metric.Raw (the new version)
// against monitor.Metric.ControlRaw (the stable version over the same
// window), in the manner of Kayenta's Mann-Whitney classifier.
//
// It fails when all of these hold:
//   - the test's p-value is below 1 - Confidence;
//   - the canary is higher (U above its mean) and Direction is Increase or
//     Either, or lower and Direction is Decrease or Either;
//   - the effect, the canary's mean over the control's minus one (Kayenta's
//     "meanRatio"), is beyond AllowedEffect in that direction. When the
//     control's mean is not positive the effect cannot be measured as a
//     ratio and any significant change in a watched direction fails.
//
// It is inconclusive with fewer than MinSamples values on either side after
// non-finite values are handled per NaN. Identical samples pass. The result
// reports the means (Observed, Baseline), the mean the canary had to stay
// within (Threshold), the Hodges-Lehmann shift with its confidence interval,
// U and p.
type MannWhitney struct {
	// Metric is the metric name; it is required.
	Metric string
	// Direction is the change that fails; the zero value is Either.
	Direction Direction
	// Confidence is the confidence level in (0, 1); 0 means
	// DefaultConfidence.
	Confidence float64
	// AllowedEffect is the largest tolerated relative change of the mean,
	// >= 0: 0.1 tolerates a canary mean up to 10 % above (or below) the
	// control's even when the difference is significant.
	AllowedEffect float64
	// MinSamples is the fewest values each side needs; 0 means
	// DefaultUTestSamples.
	MinSamples int
	// Critical makes a failure roll back at once, whatever the failure
	// limit (Kayenta's "critical").
	Critical bool
	// NaN says what to do with values that are not finite.
	NaN NaNStrategy
}

// Name returns "mann-whitney:" and the metric name.
func (t MannWhitney) Name() string { return "mann-whitney:" + t.Metric }

func (t MannWhitney) confidence() float64 {
	if t.Confidence == 0 {
		return DefaultConfidence
	}
	return t.Confidence
}

func (t MannWhitney) minSamples() int {
	if t.MinSamples == 0 {
		return DefaultUTestSamples
	}
	return t.MinSamples
}

// Condition describes the trigger, e.g. "latency_seconds of the canary
// differs from the control (Mann-Whitney U, 95% confidence) by >10% in
// mean".
func (t MannWhitney) Condition() string {
	verb := map[Direction]string{Either: "differs from", Increase: "is higher than", Decrease: "is lower than"}[t.Direction]
	return fmt.Sprintf("%s of the canary %s the control (Mann-Whitney U, %s confidence) by >%s in mean",
		human(t.Metric), verb, pct(t.confidence()), pct(t.AllowedEffect))
}

// Validate reports an empty metric name, a confidence outside (0, 1), a
// negative or non-finite AllowedEffect, a negative MinSamples or an unknown
// Direction or NaN strategy.
func (t MannWhitney) Validate() error {
	switch {
	case t.Metric == "":
		return fmt.Errorf("MannWhitney.Metric is empty: %w", ErrInvalid)
	case t.Confidence != 0 && !(t.Confidence > 0 && t.Confidence < 1):
		return fmt.Errorf("MannWhitney.Confidence %v must be in (0, 1): %w", t.Confidence, ErrInvalid)
	case !validFraction(t.AllowedEffect):
		return fmt.Errorf("MannWhitney.AllowedEffect %v must be a finite number >= 0: %w", t.AllowedEffect, ErrInvalid)
	case t.MinSamples < 0:
		return fmt.Errorf("MannWhitney.MinSamples %d is negative: %w", t.MinSamples, ErrInvalid)
	case t.Direction < Either || t.Direction > Decrease:
		return fmt.Errorf("MannWhitney.Direction %d is unknown: %w", int(t.Direction), ErrInvalid)
	case t.NaN < RemoveNaN || t.NaN > ReplaceNaN:
		return fmt.Errorf("MannWhitney.NaN %d is unknown: %w", int(t.NaN), ErrInvalid)
	}
	return nil
}

// clean returns a sorted copy of s with non-finite values removed or
// replaced by 0.
func (t MannWhitney) clean(s []float64) []float64 {
	out := make([]float64, 0, len(s))
	for _, v := range s {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			if t.NaN != ReplaceNaN {
				continue
			}
			v = 0
		}
		out = append(out, v)
	}
	slices.Sort(out)
	return out
}

// Evaluate judges obs; baseline is not used, since the test needs the
// control's raw samples from the same window.
func (t MannWhitney) Evaluate(obs, _ monitor.Observation) Result {
	m := obs.Metric(t.Metric)
	xs, ys := t.clean(m.Raw), t.clean(m.ControlRaw)
	r := Result{Trigger: t.Name(), Metric: t.Metric, Observed: mean(xs), Baseline: mean(ys), Threshold: math.NaN(),
		Samples: min(len(xs), len(ys)), Critical: t.Critical}
	name := human(t.Metric)
	counts := fmt.Sprintf("(%d vs %d samples)", len(xs), len(ys))
	if need := t.minSamples(); len(xs) < need || len(ys) < need {
		r.Outcome = Inconclusive
		r.Reason = fmt.Sprintf("%s: too few samples for Mann-Whitney U, %d needed on each side %s", name, need, counts)
		return r
	}
	switch t.Direction {
	case Increase:
		r.Threshold = r.Baseline * (1 + t.AllowedEffect)
	case Decrease:
		r.Threshold = r.Baseline * (1 - t.AllowedEffect)
	}
	if slices.Equal(xs, ys) {
		r.Reason = fmt.Sprintf("%s: canary and control samples are identical %s", name, counts)
		return r
	}
	conf := t.confidence()
	u := uTest(xs, ys, conf, auto)
	alpha := 1 - conf
	higher, lower := u.U > float64(len(xs)*len(ys))/2, u.U < float64(len(xs)*len(ys))/2
	effect := math.NaN()
	if r.Baseline > 0 {
		effect = r.Observed/r.Baseline - 1
	}
	if higher && t.Direction == Either {
		r.Threshold = r.Baseline * (1 + t.AllowedEffect)
	} else if lower && t.Direction == Either {
		r.Threshold = r.Baseline * (1 - t.AllowedEffect)
	}
	significant := u.P < alpha
	watched := (higher && t.Direction != Decrease) || (lower && t.Direction != Increase)
	beyond := math.IsNaN(effect) || (higher && effect > t.AllowedEffect) || (lower && -effect > t.AllowedEffect)

	effectStr := "n/a"
	if !math.IsNaN(effect) {
		effectStr = fmt.Sprintf("%+.1f %%", effect*100)
	}
	desc := fmt.Sprintf("%s: canary mean %.4g vs control mean %.4g (%s), shift %+.4g [%s CI %+.4g, %+.4g], U=%g, p=%.3g",
		name, r.Observed, r.Baseline, effectStr, u.Shift, pct(conf), u.ShiftLow, u.ShiftHigh, u.U, u.P)
	switch {
	case !significant:
		r.Reason = fmt.Sprintf("%s >= %.3g: no significant difference %s", desc, alpha, counts)
	case !watched:
		r.Reason = fmt.Sprintf("%s < %.3g: significant change in a direction not judged (%s) %s", desc, alpha, t.Direction, counts)
	case !beyond:
		r.Reason = fmt.Sprintf("%s < %.3g: significant, but within the %s allowed effect %s", desc, alpha, pct(t.AllowedEffect), counts)
	default:
		r.Outcome = Fail
		sign := "+"
		if lower {
			sign = "-"
		}
		r.Reason = fmt.Sprintf("%s < %.3g: significantly %s, beyond %s%s %s", desc, alpha, map[bool]string{true: "higher", false: "lower"}[higher], sign, pct(t.AllowedEffect), counts)
	}
	return r
}

func mean(s []float64) float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	var sum float64
	for _, v := range s {
		sum += v
	}
	return sum / float64(len(s))
}
