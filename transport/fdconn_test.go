package transport

import (
	"bytes"
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mitogo/mitogo/messages"
	"go.uber.org/goleak"
)

// fdPair returns two streams on the ends of a socketpair, both FDConns.
func fdPair(t *testing.T) (*Stream, *Stream) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewFDConn(fds[0], fds[0], "a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewFDConn(fds[1], fds[1], "b")
	if err != nil {
		t.Fatal(err)
	}
	sa, sb := NewStream(a, 64<<20), NewStream(b, 64<<20)
	t.Cleanup(func() { sa.Close(); sb.Close() })
	return sa, sb
}

// fdAndPeer returns an FDConn on one end of a socketpair and the other end
// as a plain file.
func fdAndPeer(t *testing.T, name string) (*FDConn, *os.File) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewFDConn(fds[0], fds[0], name)
	if err != nil {
		t.Fatal(err)
	}
	return c, os.NewFile(uintptr(fds[1]), "peer")
}

// closedAll closes peer and checks that as many descriptors are open as
// before.
func closedAll(t *testing.T, peer *os.File, before int) {
	t.Helper()
	peer.Close()
	if after := openFDs(t); after != before {
		t.Fatalf("%d descriptors open before, %d after Close", before, after)
	}
}

// openFDs counts this process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// Frames of every size cross an FDConn whole and in order, from several
// senders at once, including frames far larger than the socket's buffer
// (the writer waits for room, the reader for bytes).
func TestFDConnCarriesFrames(t *testing.T) {
	defer goleak.VerifyNone(t)
	a, b := fdPair(t)
	sizes := []int{0, 1, 100, 64 << 10, 8 << 20}
	const senders = 4
	var wg sync.WaitGroup
	for s := 0; s < senders; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, n := range sizes {
				body := bytes.Repeat([]byte{byte(s*16 + i)}, n)
				if err := a.Send(&messages.Header{Kind: messages.KindCall, Dst: uint32(s), ReqID: uint64(i)}, body); err != nil {
					t.Errorf("sender %d: %v", s, err)
					return
				}
			}
		}()
	}
	next := make([]uint64, senders)
	for range senders * len(sizes) {
		body, err := b.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		h, payload, err := messages.DecodeHeader(body)
		if err != nil {
			t.Fatal(err)
		}
		s, i := h.Dst, h.ReqID
		if i != next[s] {
			t.Fatalf("sender %d: frame %d came before %d", s, i, next[s])
		}
		next[s]++
		if want := bytes.Repeat([]byte{byte(int(s)*16 + int(i))}, sizes[i]); !bytes.Equal(payload, want) {
			t.Fatalf("sender %d frame %d: %d bytes, not the %d sent", s, i, len(payload), len(want))
		}
	}
	wg.Wait()
}

// A read deadline interrupts a read that waits, at once when it is in the
// past and when it passes otherwise; what was read of a frame is kept and
// the next read finishes it.
func TestFDConnReadDeadline(t *testing.T) {
	defer goleak.VerifyNone(t)
	r, w := fdPair(t)
	if !r.CanInterrupt() {
		t.Fatal("an FDConn stream says it cannot be interrupted")
	}
	body := bytes.Repeat([]byte("0123456789"), 10_000) // its first third fits in the socket's buffer
	frame := append(messages.AppendFrameHeader(nil, len(body)), body...)
	cut := len(frame) / 3
	if err := w.WriteRaw(frame[:cut]); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		_, err := r.ReadFrame()
		got <- err
	}()
	if err := r.SetReadDeadline(time.Unix(1, 0)); err != nil {
		t.Fatal(err)
	}
	if err := <-got; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("ReadFrame under a past deadline: %v", err)
	}
	// A deadline that passes while the read waits ends it too.
	if err := r.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadFrame(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("ReadFrame past its deadline: %v", err)
	}
	if err := r.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	go func() { got <- w.WriteRaw(frame[cut:]) }()
	resumed, err := r.ReadFrame()
	if err != nil || !bytes.Equal(resumed, body) {
		t.Fatalf("the resumed frame: %d bytes, %v", len(resumed), err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
}

// Close wakes a read and a write that wait (the write on a peer that does
// not read), and every descriptor it owns is closed once they return.
func TestFDConnCloseWakesWaiters(t *testing.T) {
	defer goleak.VerifyNone(t)
	before := openFDs(t)
	c, peer := fdAndPeer(t, "under test") // peer never reads
	readErr, writeErr := make(chan error, 1), make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 10))
		readErr <- err
	}()
	go func() {
		_, err := c.Write(make([]byte, 64<<20)) // far beyond the socket's buffers
		writeErr <- err
	}()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-readErr; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("a read waiting when Close came: %v, want net.ErrClosed", err)
	}
	if err := <-writeErr; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("a write waiting when Close came: %v, want net.ErrClosed", err)
	}
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after Close: %v", err)
	}
	closedAll(t, peer, before)
}

// A read sees the peer's close as io.EOF, after what it sent.
func TestFDConnEOF(t *testing.T) {
	defer goleak.VerifyNone(t)
	r, w := fdPair(t)
	if err := w.WriteValue("last"); err != nil {
		t.Fatal(err)
	}
	w.Close()
	var s string
	if err := r.ReadValue(&s); err != nil || s != "last" {
		t.Fatalf("the frame before the close: %q, %v", s, err)
	}
	if _, err := r.ReadFrame(); err == nil {
		t.Fatal("ReadFrame after the peer closed succeeded")
	}
}

// A DirectLimit makes FDConns of as many streams as it allows, the rest
// the runtime poller's, and a closed FDConn gives its place back. Both
// kinds carry a command's stream (cat echoes it).
func TestDirectLimit(t *testing.T) {
	defer goleak.VerifyNone(t)
	limit := NewDirectLimit(1)
	start := func() *Child {
		c, err := StartCommand([]string{"cat"}, nil, limit)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	echo := func(c *Child) {
		s := NewStream(c.Conn, 0)
		if err := s.WriteValue("ping"); err != nil {
			t.Fatal(err)
		}
		var got string
		if err := s.ReadValue(&got); err != nil || got != "ping" {
			t.Fatalf("echo: %q, %v", got, err)
		}
		s.Close()
		c.Output.Close()
		c.Proc.Wait()
	}
	first := start()
	if _, ok := first.Conn.(*FDConn); !ok {
		t.Fatalf("the first stream is a %T, want an FDConn", first.Conn)
	}
	second := start()
	if _, ok := second.Conn.(*FDConn); ok {
		t.Fatal("a second FDConn beyond a limit of 1")
	}
	echo(first)
	echo(second)
	if n := limit.InUse(); n != 0 {
		t.Fatalf("%d FDConns in use after both closed", n)
	}
	third := start()
	if _, ok := third.Conn.(*FDConn); !ok {
		t.Fatalf("after the first closed, a new stream is a %T, want an FDConn", third.Conn)
	}
	echo(third)
}

// A read that waits past its idle time waits on in the runtime poller
// (SetIdleAfter), and from there still gets its bytes, its deadline and
// its Close, leaving no descriptor behind.
func TestFDConnIdleWait(t *testing.T) {
	defer goleak.VerifyNone(t)
	before := openFDs(t)
	c, peer := fdAndPeer(t, "idle")
	c.SetIdleAfter(time.Microsecond)
	idle := func() bool { // the read is in the poller's wait
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.idle != nil
	}
	waitIdle := func() {
		for deadline := time.Now().Add(time.Minute); !idle(); {
			if time.Now().After(deadline) {
				t.Fatal("the read never went to the poller")
			}
			time.Sleep(time.Millisecond)
		}
	}
	got := make(chan error, 1)
	buf := make([]byte, 5)
	read := func() { _, err := c.Read(buf); got <- err }

	go read()
	waitIdle()
	if _, err := peer.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil || string(buf) != "hello" {
		t.Fatalf("read from the poller: %q, %v", buf, err)
	}

	go read()
	waitIdle()
	if err := c.SetReadDeadline(time.Unix(1, 0)); err != nil {
		t.Fatal(err)
	}
	if err := <-got; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a past deadline on a read in the poller: %v", err)
	}
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}

	go read()
	waitIdle()
	c.Close()
	if err := <-got; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Close of a read in the poller: %v", err)
	}
	closedAll(t, peer, before)
}

// A deadline in the past stops a read that could go on (bytes are
// there), as a net.Conn's does: a cancelled caller does not read on
// through a stream that never runs dry.
func TestFDConnPastDeadlineStopsAReadyRead(t *testing.T) {
	defer goleak.VerifyNone(t)
	r, w := fdPair(t)
	if err := w.WriteValue("waiting"); err != nil {
		t.Fatal(err)
	}
	if err := r.SetReadDeadline(time.Unix(1, 0)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadFrame(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("ReadFrame with bytes there, under a past deadline: %v", err)
	}
	if err := r.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	var s string
	if err := r.ReadValue(&s); err != nil || s != "waiting" {
		t.Fatalf("the frame after the deadline was cleared: %q, %v", s, err)
	}
}
