package transport

import (
	"bytes"
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mitogo/mitogo/messages"
	"go.uber.org/goleak"
)

func pair(t *testing.T, max int) (*Stream, *Stream) {
	t.Helper()
	a, b := net.Pipe()
	sa, sb := NewStream(a, max), NewStream(b, max)
	t.Cleanup(func() { sa.Close(); sb.Close() })
	return sa, sb
}

// Many goroutines sending at once: every envelope arrives whole, and each
// sender's envelopes arrive in its order.
func TestConcurrentSendersKeepFramesWholeAndOrdered(t *testing.T) {
	defer goleak.VerifyNone(t)
	a, b := pair(t, 1<<20)
	const senders, each = 8, 200
	var wg sync.WaitGroup
	for s := 0; s < senders; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				h := messages.Header{Kind: messages.KindCall, Src: uint32(s), ReqID: uint64(i), Target: "f"}
				if err := a.Send(&h, make([]byte, i*7)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	next := make([]uint64, senders)
	for n := 0; n < senders*each; n++ {
		body, err := b.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		h, payload, err := messages.DecodeHeader(body)
		if err != nil {
			t.Fatal(err)
		}
		if h.ReqID != next[h.Src] || len(payload) != int(h.ReqID)*7 {
			t.Fatalf("sender %d: got req %d with %d bytes, want req %d", h.Src, h.ReqID, len(payload), next[h.Src])
		}
		next[h.Src]++
	}
	wg.Wait()
}

func TestOversizeSendRefusedStreamUsable(t *testing.T) {
	a, b := pair(t, 1024)
	h := messages.Header{Kind: messages.KindCall, Target: "f"}
	err := a.Send(&h, make([]byte, 2000))
	var fe *messages.FrameSizeError
	if !errors.As(err, &fe) || fe.Max != 1024 || fe.Size <= 2000 {
		t.Fatalf("oversize send: %v", err)
	}
	go a.Send(&h, []byte{0xc0})
	body, err := b.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	if _, payload, err := messages.DecodeHeader(body); err != nil || len(payload) != 1 {
		t.Fatalf("after refusal: %v %v", payload, err)
	}
}

// Close unblocks a writer stuck on a peer that does not read.
func TestCloseUnblocksWriter(t *testing.T) {
	defer goleak.VerifyNone(t)
	a, _ := pair(t, 1<<20)
	done := make(chan error)
	go func() { done <- a.Send(&messages.Header{}, make([]byte, 1000)) }()
	a.Close()
	if err := <-done; err == nil {
		t.Fatal("send on a closed stream succeeded")
	}
	if err := a.Send(&messages.Header{}, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("send after close: %v", err)
	}
}

// failingConn fails every write and counts its closes.
type failingConn struct{ closes atomic.Int32 }

func (c *failingConn) Read([]byte) (int, error)  { return 0, errors.New("not read in this test") }
func (c *failingConn) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }
func (c *failingConn) Close() error              { c.closes.Add(1); return nil }

// A write that fails closes the connection before it returns, on the
// writer's goroutine: no goroutine is left behind to do it, and a later
// Close does not close it again.
func TestFailedWriteClosesTheConnection(t *testing.T) {
	defer goleak.VerifyNone(t)
	c := &failingConn{}
	s := NewStream(c, 0)
	if err := s.Send(&messages.Header{Kind: messages.KindCall}, []byte("x")); err == nil {
		t.Fatal("Send on a broken connection succeeded")
	}
	if n := c.closes.Load(); n != 1 {
		t.Fatalf("the connection was closed %d times when Send returned, want 1", n)
	}
	s.Close()
	if n := c.closes.Load(); n != 1 {
		t.Fatalf("closed %d times after Close, want 1", n)
	}
}

// Stats counts the frames and bytes each way, length prefixes included.
func TestStatsCountFrames(t *testing.T) {
	defer goleak.VerifyNone(t)
	a, b := pair(t, 1<<20)
	h := messages.Header{Kind: messages.KindCall, Target: "f"}
	done := make(chan error, 1)
	go func() {
		for range 3 {
			if _, err := b.ReadFrame(); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for range 2 {
		if err := a.Send(&h, make([]byte, 10)); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Forward([]byte("abc")); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	out, in := a.Stats(), b.Stats()
	if out.FramesOut != 3 || in.FramesIn != 3 || out.BytesOut != in.BytesIn || out.BytesOut < 2*(10+4)+3+4 {
		t.Fatalf("sender %+v, receiver %+v", out, in)
	}
	if out.FramesIn != 0 || in.FramesOut != 0 {
		t.Fatalf("counted the wrong way: sender %+v, receiver %+v", out, in)
	}
}

// A read deadline that passes in the middle of a frame fails ReadFrame
// with os.ErrDeadlineExceeded and keeps what was read: once the deadline
// is cleared, the next ReadFrame returns that frame whole, then the next.
func TestReadFrameResumesAfterDeadline(t *testing.T) {
	a, b := net.Pipe()
	r, w := NewStream(a, 0), NewStream(b, 0)
	t.Cleanup(func() { r.Close(); w.Close() })
	if !r.CanInterrupt() {
		t.Fatal("a net.Conn stream says it cannot be interrupted")
	}
	body := make([]byte, 1<<20)
	for i := range body {
		body[i] = byte(i * 7)
	}
	frame := append(messages.AppendFrameHeader(nil, len(body)), body...)
	type read struct {
		body []byte
		err  error
	}
	readOne := func() <-chan read {
		ch := make(chan read, 1)
		go func() {
			got, err := r.ReadFrame()
			ch <- read{got, err}
		}()
		return ch
	}
	for _, cut := range []int{2, len(frame) / 2} { // in the length prefix, in the body
		first := readOne()
		// net.Pipe: the write returns once the reader has taken all of it.
		if err := w.WriteRaw(frame[:cut]); err != nil {
			t.Fatal(err)
		}
		if err := r.SetReadDeadline(time.Unix(1, 0)); err != nil {
			t.Fatal(err)
		}
		if got := <-first; !errors.Is(got.err, os.ErrDeadlineExceeded) {
			t.Fatalf("cut at %d: ReadFrame under a past deadline: %d bytes, %v", cut, len(got.body), got.err)
		}
		if err := r.SetReadDeadline(time.Time{}); err != nil {
			t.Fatal(err)
		}
		second := readOne()
		if err := w.WriteRaw(frame[cut:]); err != nil {
			t.Fatal(err)
		}
		if got := <-second; got.err != nil || !bytes.Equal(got.body, body) {
			t.Fatalf("cut at %d: the resumed frame: %d bytes, %v", cut, len(got.body), got.err)
		}
	}
	next := readOne()
	if err := w.WriteValue("next"); err != nil {
		t.Fatal(err)
	}
	var s string
	if got := <-next; got.err != nil || messages.Unmarshal(got.body, &s) != nil || s != "next" {
		t.Fatalf("the frame after: %q, %v", s, got.err)
	}
}
