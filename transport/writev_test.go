package transport

import (
	"bytes"
	"io"
	"os"
	"syscall"
	"testing"

	"go.uber.org/goleak"
)

// writes records each Write it gets.
type writes struct{ got [][]byte }

func (w *writes) Write(p []byte) (int, error) {
	w.got = append(w.got, append([]byte(nil), p...))
	return len(p), nil
}
func (w *writes) Close() error { return nil }

// An SSH session's Writev sends a small frame's header and payload in one
// channel write (one packet), passes buffers larger than a packet as they
// are, and loses or reorders nothing.
func TestSSHConnWritevCoalesces(t *testing.T) {
	w := &writes{}
	c := &sshConn{w: w}
	header, small := []byte("HDR1"), []byte("small payload")
	big := bytes.Repeat([]byte{7}, coalesceMax+1)
	bufs := [][]byte{header, small, []byte("HDR2"), big, []byte("HDR3"), small}
	n, err := c.Writev(bufs)
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Join(bufs, nil)
	if n != int64(len(want)) || !bytes.Equal(bytes.Join(w.got, nil), want) {
		t.Fatalf("wrote %d bytes, %d wanted, or not in order", n, len(want))
	}
	if len(w.got) != 3 || !bytes.Equal(w.got[0], []byte("HDR1small payloadHDR2")) || len(w.got[1]) != len(big) || !bytes.Equal(w.got[2], []byte("HDR3small payload")) {
		t.Fatalf("writes of %v bytes; want the small ones joined, the big one alone", lens(w.got))
	}
}

func lens(bufs [][]byte) []int {
	var n []int
	for _, b := range bufs {
		n = append(n, len(b))
	}
	return n
}

// An FDConn's Writev writes every buffer, in order, on a pipe, waiting
// for room while the reader is slower than the writer: more buffers than
// one writev(2) takes, empty ones between and at the end.
func TestFDConnWritevWaitsForRoom(t *testing.T) {
	defer goleak.VerifyNone(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	wfd, err := syscall.Dup(int(w.Fd()))
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewFDConn(wfd, wfd, "pipe")
	if err != nil {
		t.Fatal(err)
	}
	var bufs [][]byte
	for i := range 2000 { // more than IOV_MAX buffers, 4 MiB: beyond the pipe's room
		bufs = append(bufs, bytes.Repeat([]byte{byte(i)}, 2<<10), nil)
	}
	want := bytes.Join(bufs, nil)
	got := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(r)
		got <- b
	}()
	n, err := c.Writev(bufs)
	c.Close()
	if err != nil || n != int64(len(want)) {
		t.Fatalf("Writev: %d of %d bytes, %v", n, len(want), err)
	}
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("read %d bytes, not the %d written in order", len(b), len(want))
	}
}
