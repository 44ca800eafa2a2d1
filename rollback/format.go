package rollback

import (
	"math"
	"strconv"
)

var pow10 = [...]float64{1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7}

// appendFixed appends x with dec decimals, as strconv.AppendFloat(b, x, 'f',
// dec, 64) does, through integer arithmetic when that gives the same
// digits: reasons are written on every observation, and strconv's exact
// algorithms cost most of a judgement. Values near a rounding tie, large
// values and non-finite ones go to strconv.
func appendFixed(b []byte, x float64, dec int) []byte {
	s := x * pow10[dec]
	a := math.Abs(s)
	if !(a < 1e15) || math.Abs(a-math.Floor(a)-0.5) < 1e-6 {
		return strconv.AppendFloat(b, x, 'f', dec, 64)
	}
	n := uint64(math.Round(a))
	if math.Signbit(x) {
		b = append(b, '-') // strconv writes "-0.0" for small negatives too
	}
	// Write the digits backwards, the point after the last dec of them,
	// then reverse: division by the constant 10 only, no copying.
	start := len(b)
	for range dec {
		q := n / 10
		b = append(b, byte('0'+n-q*10))
		n = q
	}
	if dec > 0 {
		b = append(b, '.')
	}
	return reverseFrom(appendDigitsBackwards(b, n), start)
}

// appendInt appends n in decimal, as strconv.AppendInt(b, n, 10) does,
// without its temporary buffer and copy.
func appendInt(b []byte, n int64) []byte {
	u := uint64(n)
	if n < 0 {
		b = append(b, '-')
		u = -u
	}
	start := len(b)
	return reverseFrom(appendDigitsBackwards(b, u), start)
}

// appendDigitsBackwards appends the decimal digits of n, last digit first.
func appendDigitsBackwards(b []byte, n uint64) []byte {
	for {
		q := n / 10
		b = append(b, byte('0'+n-q*10))
		n = q
		if n == 0 {
			return b
		}
	}
}

// reverseFrom reverses b[start:] in place and returns b.
func reverseFrom(b []byte, start int) []byte {
	for i, j := start, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	return b
}

// appendG4 appends v with 4 significant digits, as
// strconv.AppendFloat(b, v, 'g', 4, 64) does.
func appendG4(b []byte, v float64) []byte {
	a := math.Abs(v)
	var dec int
	switch {
	case a >= 1e4 && a < 1e21:
		return appendE4(b, v)
	case a >= 1e4 || a < 1e-3 || a != a:
		return strconv.AppendFloat(b, v, 'g', 4, 64)
	case a >= 1000:
		dec = 0
	case a >= 100:
		dec = 1
	case a >= 10:
		dec = 2
	case a >= 1:
		dec = 3
	case a >= 0.1:
		dec = 4
	case a >= 0.01:
		dec = 5
	default:
		dec = 6
	}
	s := a * pow10[dec]
	if r := math.Round(s); r >= 1e4 || r < 1e3 || math.Abs(s-math.Floor(s)-0.5) < 1e-6 {
		return strconv.AppendFloat(b, v, 'g', 4, 64)
	}
	b = appendFixed(b, v, dec)
	if dec > 0 {
		for b[len(b)-1] == '0' {
			b = b[:len(b)-1]
		}
		if b[len(b)-1] == '.' {
			b = b[:len(b)-1]
		}
	}
	return b
}

// appendE4 appends v, 1e4 <= |v| < 1e21, as strconv's 'g' with 4
// significant digits does: "1.2e+09".
func appendE4(b []byte, v float64) []byte {
	a := math.Abs(v)
	e := 4
	p := 1e4
	for a >= p*10 {
		p *= 10
		e++
	}
	s := a / p * 1e3 // the 4 significant digits as d.ddd * 1000
	r := math.Round(s)
	if r >= 1e4 || r < 1e3 || math.Abs(s-math.Floor(s)-0.5) < 1e-6 || p > 1e15 {
		return strconv.AppendFloat(b, v, 'g', 4, 64)
	}
	if math.Signbit(v) {
		b = append(b, '-')
	}
	n := int64(r)
	b = append(b, byte('0'+n/1000))
	if rest := n % 1000; rest != 0 {
		b = append(b, '.', byte('0'+rest/100))
		if rest%100 != 0 {
			b = append(b, byte('0'+rest/10%10))
			if rest%10 != 0 {
				b = append(b, byte('0'+rest%10))
			}
		}
	}
	b = append(b, 'e', '+')
	if e < 10 {
		b = append(b, '0')
	}
	return appendInt(b, int64(e))
}
