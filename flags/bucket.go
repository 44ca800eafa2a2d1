package flags

import (
	"math"

	"github.com/twmb/murmur3"
)

// Buckets is the number of buckets targeting keys are spread over. A share is
// served with a resolution of one bucket, 0.01 %: SetShare rounds it to the
// nearest whole number of buckets, which is also the integer weight written for
// flagd's fractional rule.
const Buckets = 10000

// Bucket returns the bucket, in [0, Buckets), of targetingKey for flagKey. A user
// gets a flag's on variant when its bucket is below the flag's share times
// Buckets, so raising the share only ever adds users.
//
// It is computed exactly as flagd's "fractional" operator (flagd core v0.16,
// used by the flagd Go provider v0.6.0) does when no bucketing expression is
// given: the 32-bit MurmurHash3 (seed 0) of the flag key immediately followed by
// the targeting key, with no separator, scaled to the total weight as
// (hash × Buckets) >> 32.
//
// Bucket does not allocate when the two keys together fit in 1 KiB.
func Bucket(flagKey, targetingKey string) uint32 {
	return uint32((uint64(hash32(flagKey, targetingKey)) * Buckets) >> 32)
}

// hash32 is murmur3.StringSum32(flagKey + targetingKey) without building the
// string on the heap. The keys are copied into a buffer on the stack: a small
// one for keys of ordinary length (Go zeroes it on every call, so its size shows
// in the cost), a larger one otherwise.
func hash32(flagKey, targetingKey string) uint32 {
	if len(flagKey)+len(targetingKey) > 128 {
		return hash32Long(flagKey, targetingKey)
	}
	var buf [128]byte
	n := copy(buf[:], flagKey)
	n += copy(buf[n:], targetingKey)
	return murmur3.Sum32(buf[:n])
}

//go:noinline
func hash32Long(flagKey, targetingKey string) uint32 {
	var buf [1024]byte
	if len(flagKey)+len(targetingKey) > len(buf) {
		return murmur3.StringSum32(flagKey + targetingKey)
	}
	n := copy(buf[:], flagKey)
	n += copy(buf[n:], targetingKey)
	return murmur3.Sum32(buf[:n])
}

// weight returns the number of buckets that get the on variant at share, which
// must be in [0, 1].
func weight(share float64) uint32 {
	return uint32(math.Round(share * Buckets))
}
