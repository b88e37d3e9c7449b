package files

import (
	"errors"
	"io"
)

// readAhead reads a file's chunks on its own goroutine, into buffers its
// user gives back once done with them, so that reading the next chunk
// overlaps with hashing and sending this one. With three buffers, one is
// being read while one is sent and the one before is still being hashed.
type readAhead struct {
	free chan []byte
	out  chan readChunk
	quit chan struct{}
	done chan struct{}
}

// readChunk is one chunk read, or why reading stopped.
type readChunk struct {
	buf []byte
	err error
}

// errReadAheadStopped is what next returns after the reader has stopped
// (which only happens once it has delivered an error or every chunk).
var errReadAheadStopped = errors.New("files: no more chunks to read")

// startReadAhead reads size bytes from r, from where it is, in chunks of
// its buffers' length (all the same). stop ends the reader; every owner
// calls it before returning.
func startReadAhead(r io.Reader, size int64, bufs [][]byte) *readAhead {
	ra := &readAhead{free: make(chan []byte, len(bufs)), out: make(chan readChunk),
		quit: make(chan struct{}), done: make(chan struct{})}
	for _, b := range bufs {
		ra.free <- b
	}
	go ra.run(r, size)
	return ra
}

func (ra *readAhead) run(r io.Reader, left int64) {
	defer close(ra.done)
	for left > 0 {
		var b []byte
		select {
		case b = <-ra.free:
		case <-ra.quit:
			return
		}
		n := int(min(int64(len(b)), left))
		_, err := io.ReadFull(r, b[:n])
		select {
		case ra.out <- readChunk{buf: b[:n], err: err}:
		case <-ra.quit:
			return
		}
		if err != nil {
			return
		}
		left -= int64(n)
	}
}

// next returns the next chunk; its buffer is the caller's until release.
func (ra *readAhead) next() readChunk {
	select {
	case c := <-ra.out:
		return c
	case <-ra.done:
		return readChunk{err: errReadAheadStopped}
	}
}

// release gives a chunk's buffer back for a later chunk.
func (ra *readAhead) release(b []byte) { ra.free <- b[:cap(b)] }

// stop ends the reader and waits for it.
func (ra *readAhead) stop() {
	close(ra.quit)
	<-ra.done
}
