package rollback

import "math"

// DefaultPower is the power the sample sizes of [SampleSize] and
// [Detectable] are for when none is given: 80 %.
const DefaultPower = 0.8

// SampleSize returns the canary requests a one-sided fixed-horizon test at
// level alpha needs to detect, with the given power, a rise of the error
// rate from base to base·(1+rise), when the control sees ratio requests for
// each of the canary's (at exposure e, ratio is (1-e)/e; +Inf compares with
// a rate known exactly):
//
//	n = (z₁₋α·√(p₀q₀(1+1/k)) + z_power·√(p₁q₁ + p₀q₀/k))² / (p₁ - p₀)²
//
// the closed form of the two-proportion test with unequal groups. For +50 %
// on 0.3 % at 1 % exposure (k = 99), α 5 % and 80 % power it is ≈ 9,600. It
// is +Inf when the rise is not positive or the rates leave (0, 1).
func SampleSize(base, rise, alpha, power, ratio float64) float64 {
	p0, p1 := base, base*(1+rise)
	if !(rise > 0) || !(p0 > 0) || !(p1 < 1) || !(alpha > 0 && alpha < 1) || !(power > 0 && power < 1) || !(ratio > 0) {
		return math.Inf(1)
	}
	return sampleSize(p0, p1, normQuantile(1-alpha), normQuantile(power), ratio)
}

// sampleSize is SampleSize from rates and quantiles.
func sampleSize(p0, p1, za, zb, ratio float64) float64 {
	q0, q1 := 1-p0, 1-p1
	inv := 1 / ratio // 0 for +Inf
	s := za*math.Sqrt(p0*q0*(1+inv)) + zb*math.Sqrt(p1*q1+p0*q0*inv)
	d := p1 - p0
	return s * s / (d * d)
}

// Detectable returns the smallest rise (0.5 is +50 %) that n canary
// requests can detect with the given power at level alpha, the inverse of
// [SampleSize] in the rise; +Inf when even a rate of 100 % could not be.
func Detectable(n, base, alpha, power, ratio float64) float64 {
	if !(n > 0) || !(base > 0 && base < 1) {
		return math.Inf(1)
	}
	hi := 1/base - 1 // the rise to a rate of 1
	hi *= 1 - 1e-9
	if !(alpha > 0 && alpha < 1) || !(power > 0 && power < 1) || !(ratio > 0) {
		return math.Inf(1)
	}
	za, zb := normQuantile(1-alpha), normQuantile(power)
	size := func(rise float64) float64 { return sampleSize(base, base*(1+rise), za, zb, ratio) }
	if size(hi) > n {
		return math.Inf(1)
	}
	lo := 0.0
	for range 200 {
		mid := (lo + hi) / 2
		if size(mid) > n {
			lo = mid
		} else {
			hi = mid
		}
		if hi-lo < 1e-7*hi {
			break
		}
	}
	return hi
}
