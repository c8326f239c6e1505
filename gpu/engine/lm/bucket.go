package lm

// MinBucket is the smallest sequence bucket.
const MinBucket = 16

// Bucket returns the padded length used for a sequence of n tokens: the smallest value of the
// series 16, 24, 32, 48, 64, 96, 128, ... (powers of two and 1.5× powers of two) that is >= n.
// XLA compiles one program per shape, so prompt lengths and KV cache sizes are rounded up to
// these buckets: at most ~2 compiled shapes per doubling of length, at most 50% padding waste.
func Bucket(n int) int {
	if n <= MinBucket {
		return MinBucket
	}
	p := MinBucket
	for p < n {
		if p+p/2 >= n {
			return p + p/2
		}
		p *= 2
	}
	return p
}

// BatchBucket rounds a batch size up to a power of two, for the same reason as Bucket.
func BatchBucket(n int) int {
	b := 1
	for b < n {
		b *= 2
	}
	return b
}
