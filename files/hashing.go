package files

import "hash"

// asyncHash feeds a hash on another goroutine, one chunk at a time, so
// that hashing a chunk overlaps with sending or writing it (sha256 costs
// about as much CPU as the rest of a transfer's path). Each write waits
// for the one before, so the chunks are hashed in order; the caller must
// not change a chunk until the next write or wait returns.
type asyncHash struct {
	h    hash.Hash
	done chan struct{}
}

// write waits for the previous chunk, then starts hashing p.
func (a *asyncHash) write(p []byte) {
	a.wait()
	done := make(chan struct{})
	a.done = done
	go func() {
		defer close(done)
		a.h.Write(p)
	}()
}

// wait returns once every chunk written so far is hashed. Every owner
// calls it before returning, so no hashing goroutine outlives it.
func (a *asyncHash) wait() {
	if a.done != nil {
		<-a.done
		a.done = nil
	}
}

// sum waits, then returns the hash of everything written.
func (a *asyncHash) sum() []byte {
	a.wait()
	return a.h.Sum(nil)
}
