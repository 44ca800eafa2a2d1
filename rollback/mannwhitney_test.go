package rollback

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// approx compares floats to 10 significant digits, the precision of the
// published reference values.
var approx = cmpopts.EquateApprox(1e-10, 0)

// uStats is the part of a UTestResult checked against references.
type uStats struct {
	U, P  float64
	Exact bool
}

func stats(r UTestResult) uStats { return uStats{r.U, r.P, r.Exact} }

func sorted(s []float64) []float64 {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// References:
//   - scipy.stats.mannwhitneyu documentation, "males vs females" example:
//     U1 = 17, exact p = 0.1111111111111111, method="asymptotic" p =
//     0.11134688653314041.
//   - SciPy's test suite, test_gh_9184 (values from R's wilcox.test, the
//     Hollander & Wolfe depression data of R's ?wilcox.test): U = 35,
//     exact two-sided p = 0.2544122544123, asymptotic with continuity
//     correction 0.244623605127.
//   - ClickHouse's test 01560_mann_whitney (checked against SciPy): 20 vs 20
//     values with ties, U = 223, two-sided p = 0.5426959774289482.
//   - R: wilcox.test(c(1,2,3), c(4,5,6), exact=FALSE): W = 0,
//     p = 0.08086 (by hand: z = (4.5 - 0.5)/sqrt(9*7/12)).
func TestMannWhitneyUReferences(t *testing.T) {
	males := []float64{19, 22, 16, 29, 24}
	females := []float64{20, 11, 17, 12}
	hwX := []float64{0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46}
	hwY := []float64{1.15, 0.88, 0.90, 0.74, 1.21}
	// ClickHouse 01560: group 0 and group 1.
	ch0 := []float64{310, 195, 530, 155, 530, 245, 385, 450, 465, 545, 170, 180, 125, 180, 230, 75, 430, 480, 495, 295}
	ch1 := []float64{116, 171, 176, 421, 111, 326, 481, 111, 346, 441, 261, 411, 206, 521, 456, 446, 296, 51, 426, 261}

	tests := []struct {
		name string
		x, y []float64
		how  method
		want uStats
	}{
		{"scipy docs exact", males, females, exact, uStats{17, 0.1111111111111111, true}},
		{"scipy docs auto is exact", males, females, auto, uStats{17, 0.1111111111111111, true}},
		{"scipy docs asymptotic", males, females, asymptotic, uStats{17, 0.11134688653314041, false}},
		{"scipy docs swapped", females, males, exact, uStats{3, 0.1111111111111111, true}},
		{"R gh-9184 exact", hwX, hwY, auto, uStats{35, 0.2544122544123, true}},
		{"R gh-9184 asymptotic", hwX, hwY, asymptotic, uStats{35, 0.244623605127, false}},
		{"clickhouse ties", ch0, ch1, auto, uStats{223, 0.5426959774289482, false}},
		{"R separated normal", []float64{1, 2, 3}, []float64{4, 5, 6}, asymptotic, uStats{0, 2 * 0.5 * math.Erfc(4/math.Sqrt(63.0/12)/math.Sqrt2), false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := stats(uTest(sorted(tt.x), sorted(tt.y), 0.95, tt.how))
			if diff := cmp.Diff(tt.want, got, approx); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
	// R's printed value for the separated case.
	if p := uTest([]float64{1, 2, 3}, []float64{4, 5, 6}, 0.95, asymptotic).P; math.Abs(p-0.08086) > 5e-6 {
		t.Errorf("separated p = %v, want 0.08086", p)
	}
}

// TestUCountsTable checks the exact null distribution against the table of
// Mann & Whitney (1947), p. 52, as SciPy's test suite does: P(U <= u) for
// n = 4, m = 4, to 3 decimals.
func TestUCountsTable(t *testing.T) {
	want := []float64{0.014, 0.029, 0.057, 0.1, 0.171, 0.243, 0.343, 0.443, 0.557}
	c := uCounts(4, 4)
	var total, cum int64
	for _, v := range c {
		total += v
	}
	if total != 70 {
		t.Fatalf("total %d, want C(8,4) = 70", total)
	}
	var got []float64
	for u := range want {
		cum += c[u]
		got = append(got, float64(cum)/float64(total))
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateApprox(0, 1e-3)); diff != "" {
		t.Errorf("P(U <= u) (-want +got)\n%s", diff)
	}
	// C(40, 20) arrangements at the exact limit, symmetric about the mean.
	c = uCounts(ExactLimit, ExactLimit)
	total = 0
	for u, v := range c {
		total += v
		if v != c[len(c)-1-u] {
			t.Fatalf("counts not symmetric at %d", u)
		}
	}
	if total != 137846528820 {
		t.Errorf("total %d, want C(40,20) = 137846528820", total)
	}
}

// TestShiftInterval checks the Hodges-Lehmann estimate and the interval's
// order statistics against all pairwise differences, with and without ties.
func TestShiftInterval(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 200 {
		m, n := 1+rng.IntN(30), 1+rng.IntN(30)
		x, y := make([]float64, m), make([]float64, n)
		for i := range x {
			x[i] = math.Round(rng.NormFloat64()*4) + 1 // ties
		}
		for i := range y {
			y[i] = rng.NormFloat64() * 4
		}
		if trial%2 == 0 {
			for i := range y {
				y[i] = math.Round(y[i])
			}
		}
		xs, ys := sorted(x), sorted(y)
		var d []float64
		for _, a := range xs {
			for _, b := range ys {
				d = append(d, a-b)
			}
		}
		slices.Sort(d)
		mn := len(d)
		for k := 1; k <= mn; k += 1 + mn/17 {
			if got := kthDiff(xs, ys, k); got != d[k-1] {
				t.Fatalf("trial %d: kthDiff(%d) = %v, want %v", trial, k, got, d[k-1])
			}
		}
		k := 1 + rng.IntN((mn+1)/2)
		est, lo, hi := shiftInterval(xs, ys, k)
		wantEst := d[mn/2]
		if mn%2 == 0 {
			wantEst = d[mn/2-1] + (d[mn/2]-d[mn/2-1])/2
		}
		if diff := cmp.Diff([3]float64{wantEst, d[k-1], d[mn-k]}, [3]float64{est, lo, hi}); diff != "" {
			t.Fatalf("trial %d (m=%d n=%d k=%d): (-want +got)\n%s", trial, m, n, k, diff)
		}
	}
}

// TestShiftIntervalExactK checks the exact interval's order statistic as R's
// wilcox.test chooses it: qwilcox(0.025, 10, 5) = 9 (P(U <= 8) = 0.0200,
// P(U <= 9) = 0.0280, from the exact counts).
func TestShiftIntervalExactK(t *testing.T) {
	c := uCounts(10, 5)
	var total, cum int64
	for _, v := range c {
		total += v
	}
	q := -1
	for k, v := range c {
		cum += v
		if float64(cum)/float64(total) >= 0.025 {
			q = k
			break
		}
	}
	hwX := sorted([]float64{0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46})
	hwY := sorted([]float64{1.15, 0.88, 0.90, 0.74, 1.21})
	r := uTest(hwX, hwY, 0.95, auto)
	_, lo, hi := shiftInterval(hwX, hwY, q)
	if r.ShiftLow != lo || r.ShiftHigh != hi || !(lo <= r.Shift && r.Shift <= hi) {
		t.Errorf("interval [%v, %v] around %v, want [%v, %v] from k = %d", r.ShiftLow, r.ShiftHigh, r.Shift, lo, hi, q)
	}
	t.Logf("q = %d, shift %v [%v, %v]", q, r.Shift, r.ShiftLow, r.ShiftHigh)
}

func TestMannWhitneyUErrors(t *testing.T) {
	for _, tt := range []struct {
		x, y []float64
		conf float64
		want string
	}{
		{nil, []float64{1}, 0.95, "rollback: MannWhitneyU needs two non-empty samples, got 0 and 1 values: invalid"},
		{[]float64{1}, []float64{1}, 1, "rollback: MannWhitneyU confidence 1 must be in (0, 1): invalid"},
		{[]float64{1}, []float64{1}, math.NaN(), "rollback: MannWhitneyU confidence NaN must be in (0, 1): invalid"},
		{[]float64{1, math.NaN()}, []float64{1}, 0.9, "rollback: MannWhitneyU sample value 1 is NaN, not finite: invalid"},
	} {
		_, err := MannWhitneyU(tt.x, tt.y, tt.conf)
		if err == nil || err.Error() != tt.want {
			t.Errorf("MannWhitneyU(%v, %v, %v) = %v, want %q", tt.x, tt.y, tt.conf, err, tt.want)
		}
	}
	// All values equal: p = 1, no shift.
	r, err := MannWhitneyU([]float64{2, 2, 2}, []float64{2, 2}, 0.95)
	if diff := cmp.Diff(UTestResult{N1: 3, N2: 2, U: 3, P: 1, Ties: true}, r); err != nil || diff != "" {
		t.Errorf("all tied: err %v (-want +got)\n%s", err, diff)
	}
}
