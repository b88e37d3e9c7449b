package files

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// readAhead hands out the reader's bytes in order, in chunks of its
// buffers' size, however the user keeps and gives back buffers.
func TestReadAheadChunksInOrder(t *testing.T) {
	src := make([]byte, 10*7+3)
	for i := range src {
		src[i] = byte(i)
	}
	bufs := [][]byte{make([]byte, 7), make([]byte, 7), make([]byte, 7)}
	ra := startReadAhead(iotest.OneByteReader(bytes.NewReader(src)), int64(len(src)), bufs)
	defer ra.stop()
	var got []byte
	var prev []byte
	for len(got) < len(src) {
		c := ra.next()
		if c.err != nil {
			t.Fatalf("after %d bytes: %v", len(got), c.err)
		}
		got = append(got, c.buf...)
		if prev != nil {
			ra.release(prev)
		}
		prev = c.buf
	}
	if !bytes.Equal(got, src) {
		t.Fatalf("read %x, want %x", got, src)
	}
	if c := ra.next(); !errors.Is(c.err, errReadAheadStopped) {
		t.Fatalf("after the end: %v, want errReadAheadStopped", c.err)
	}
}

// A reader that ends early is an error for the chunk it cut short, and
// stop ends the goroutine whether or not every chunk was taken.
func TestReadAheadShortAndStopped(t *testing.T) {
	bufs := [][]byte{make([]byte, 4), make([]byte, 4), make([]byte, 4)}
	ra := startReadAhead(bytes.NewReader([]byte("abcdef")), 12, bufs)
	if c := ra.next(); c.err != nil || string(c.buf) != "abcd" {
		t.Fatalf("first chunk %q, %v", c.buf, c.err)
	}
	if c := ra.next(); !errors.Is(c.err, io.ErrUnexpectedEOF) {
		t.Fatalf("second chunk: %v, want io.ErrUnexpectedEOF", c.err)
	}
	ra.stop()

	ra = startReadAhead(bytes.NewReader(make([]byte, 100)), 100, bufs)
	ra.next() // the others wait for buffers: stop must end them anyway
	ra.stop()
}
