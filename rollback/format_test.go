package rollback

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

// The fast formatting must write what strconv writes.
func TestFormatMatchesStrconv(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	vals := []float64{0, 1, -1, 0.5, 1.5, 2.5, 0.0005, 0.00049, 9999.5, 999.95, 0.375, 0.376, 74.525, 0.015, 1e9, -0.04, 1e-5, 12.3456, 0.7501, 1.2e9, 2 << 30, 12000, 99995, 99994.9, 1.5e20, -3.25e7, math.Inf(1), math.NaN(), -1e-12}
	for range 20000 {
		e := rng.IntN(24) - 6
		vals = append(vals, (rng.Float64()*2-1)*math.Pow(10, float64(e)), math.Round(rng.Float64()*1e5)/1e3)
	}
	for _, v := range vals {
		for dec := 0; dec <= 3; dec++ {
			if got, want := string(appendFixed(nil, v, dec)), strconv.FormatFloat(v, 'f', dec, 64); got != want {
				t.Fatalf("appendFixed(%v, %d) = %s, want %s", v, dec, got, want)
			}
		}
		if got, want := string(appendG4(nil, v)), strconv.FormatFloat(v, 'g', 4, 64); got != want {
			t.Fatalf("appendG4(%v) = %s, want %s", v, got, want)
		}
	}
}
