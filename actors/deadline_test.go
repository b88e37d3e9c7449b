package actors

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mitogo/mitogo/messages"
)

// Tests of a caller whose ctx can end reading its own reply (readFor with
// a read deadline), over net.Pipe with the far end played by the test.

// expiring is a ctx with a deadline that passes when the test calls
// expire, not with the clock: the test can first see the caller reading.
type expiring struct {
	context.Context
}

func newExpiring() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	return expiring{ctx}, cancel
}

func (e expiring) Deadline() (time.Time, bool) { return time.Now().Add(time.Hour), true }

func (e expiring) Err() error {
	if e.Context.Err() != nil {
		return context.DeadlineExceeded
	}
	return nil
}

// A call whose deadline passes while its caller reads the stream for its
// reply ends with a *TimeoutError, the callee is told to cancel, and the
// next call with a deadline through the same stream is answered (read by
// its caller too).
func TestDeadlinePassesWhileCallerReads(t *testing.T) {
	r, c, p := pipePeer(t)
	freeStream(t, r, c, p)
	ctx, expire := newExpiring()
	defer expire()
	res := echoFrom(r, ctx, "never answered")
	call := p.nextOf(t, messages.KindCall)
	waitRd(t, c, rdCaller)
	expire()
	got := result(t, res)
	var te *TimeoutError
	if !errors.As(got.err, &te) || te.Context != "peer" {
		t.Fatalf("the call whose deadline passed: %T %v; want a *TimeoutError naming the peer", got.err, got.err)
	}
	if e := p.nextOf(t, messages.KindCancel); e.h.ReqID != call.h.ReqID {
		t.Fatalf("cancel for request %d, want %d", e.h.ReqID, call.h.ReqID)
	}
	p.reply(t, call, "too late") // dropped: its caller gave up
	gctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	for i := 0; i < 2; i++ {
		res := echoFrom(r, gctx, "next")
		p.reply(t, p.nextOf(t, messages.KindCall), "next")
		if got := result(t, res); got.err != nil || string(got.payload) != "next" {
			t.Fatalf("call %d after the timeout: %q, %v", i, got.payload, got.err)
		}
		waitRd(t, c, rdFree) // the caller read its reply, and left the stream free
	}
}

// A caller cancelled while it reads a large reply (its own, half sent)
// returns at once with ctx's error; the reader goroutine reads the rest of
// that frame, and the stream stays whole: the next call is answered.
func TestCancelDuringLargeReply(t *testing.T) {
	r, c, p := pipePeer(t)
	freeStream(t, r, c, p)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res := echoFrom(r, ctx, "big")
	call := p.nextOf(t, messages.KindCall)
	waitRd(t, c, rdCaller)

	h := messages.Header{Kind: messages.KindReply, Dst: 0, Src: 1, ReqID: call.h.ReqID}
	body := messages.AppendHeader(nil, &h)
	body = messages.AppendBinHeader(body, 64<<20)
	body = append(body, make([]byte, 64<<20)...)
	frame := messages.AppendFrameHeader(nil, len(body))
	frame = append(frame, body...)
	half := len(frame) / 2
	// net.Pipe: a write returns once the router has read all of it, so
	// the caller is in the middle of the frame when it is cancelled.
	if err := p.s.WriteRaw(frame[:half]); err != nil {
		t.Fatal(err)
	}
	cancel()
	if got := result(t, res); !errors.Is(got.err, context.Canceled) {
		t.Fatalf("the call cancelled during its reply: %q, %v; want context.Canceled", got.payload, got.err)
	}
	if err := p.s.WriteRaw(frame[half:]); err != nil {
		t.Fatal(err)
	}
	gctx, gcancel := context.WithTimeout(context.Background(), guard)
	defer gcancel()
	next := echoFrom(r, gctx, "next")
	p.reply(t, p.nextOf(t, messages.KindCall), "next")
	if got := result(t, next); got.err != nil || string(got.payload) != "next" {
		t.Fatalf("the call after: %q, %v", got.payload, got.err)
	}
}

// While a caller with a deadline reads the stream, the replies to other
// callers (waiting on their channels) are routed to them, each its own.
func TestReadingCallerRoutesOthersReplies(t *testing.T) {
	r, c, p := pipePeer(t)
	freeStream(t, r, c, p)
	gctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	first := echoFrom(r, gctx, "first")
	call1 := p.nextOf(t, messages.KindCall)
	waitRd(t, c, rdCaller)
	second := echoFrom(r, gctx, "second")
	call2 := p.nextOf(t, messages.KindCall)
	p.reply(t, call2, "second")
	if got := result(t, second); got.err != nil || string(got.payload) != "second" {
		t.Fatalf("the second caller: %q, %v", got.payload, got.err)
	}
	p.reply(t, call1, "first")
	if got := result(t, first); got.err != nil || string(got.payload) != "first" {
		t.Fatalf("the reading caller: %q, %v", got.payload, got.err)
	}
}
