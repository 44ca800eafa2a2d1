package rollback

import (
	"math"
	"testing"
)

// TestBinomialSF checks P(X >= k), X ~ Binomial(n, p), against values
// computed exactly with mpmath at 40 digits (sum of the probability mass).
func TestBinomialSF(t *testing.T) {
	for _, tc := range []struct {
		k, n int
		p    float64
		want float64
	}{
		{1, 20, 0.02, 0.332392028244906},
		{3, 40, 0.02, 0.0456702304407167},
		{6, 20, 0.02, 1.94842206754378e-6},
		{2, 1000, 0.001, 0.264241086969813},
		{15, 1000, 0.01, 0.0824123195160888},
		{0, 10, 0.5, 1},
		{10, 10, 0.5, 0.0009765625},
		{1, 1, 0.02, 0.02},
		{5200, 100000, 0.05, 0.00199548006965247},
		{11, 10, 0.5, 0},
		{3, 10, 0, 0},
		{3, 10, 1, 1},
	} {
		got := binomialSF(tc.k, tc.n, tc.p)
		if math.Abs(got-tc.want) > 1e-9*math.Max(1, tc.want) && math.Abs(got-tc.want)/tc.want > 1e-9 {
			t.Errorf("binomialSF(%d, %d, %v) = %.15g, want %.15g", tc.k, tc.n, tc.p, got, tc.want)
		}
	}
}

// BenchmarkSignificance: the exact binomial test that RelativeIncrease with
// Confidence runs when a rate is above its threshold, for a small canary
// (1 of 20) and a large one (5,200 of 100,000).
func BenchmarkSignificance(b *testing.B) {
	for _, tc := range []struct {
		name string
		k, n int
		p    float64
	}{{"n=20", 1, 20, 0.02}, {"n=100000", 5200, 100000, 0.05}} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				binomialSF(tc.k, tc.n, tc.p)
			}
		})
	}
}
