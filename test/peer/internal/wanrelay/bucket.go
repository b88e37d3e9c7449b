package wanrelay

import "time"

// bucket is a token bucket that, instead of making its caller wait, says
// when a chunk may leave: the chunks of one direction leave in order, each
// once the bucket holds its size in tokens. Tokens accrue at rate bytes per
// second up to burst bytes. Computing a departure time rather than sleeping
// lets the reader go on reading while earlier chunks are still on the
// "wire", as a real link's sender does.
type bucket struct {
	rate   float64   // bytes per second; 0: no limit
	burst  float64   // bytes
	tokens float64   // at last
	last   time.Time // the latest departure given (or the start)
}

func newBucket(rate float64, burst int, now time.Time) *bucket {
	return &bucket{rate: rate, burst: float64(burst), tokens: float64(burst), last: now}
}

// depart returns when a chunk of n bytes, ready at now, leaves: not before
// now, not before the previous chunk, and once the tokens for it accrued.
func (b *bucket) depart(n int, now time.Time) time.Time {
	if b.rate <= 0 {
		return now
	}
	clock := now
	if clock.Before(b.last) {
		clock = b.last
	}
	b.tokens = min(b.burst, b.tokens+clock.Sub(b.last).Seconds()*b.rate)
	need := float64(n)
	if b.tokens >= need {
		b.tokens -= need
	} else {
		clock = clock.Add(time.Duration((need - b.tokens) / b.rate * float64(time.Second)))
		b.tokens = 0
	}
	b.last = clock
	return clock
}
