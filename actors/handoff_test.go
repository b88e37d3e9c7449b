package actors

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mitogo/mitogo/messages"
	"github.com/mitogo/mitogo/transport"
	"go.uber.org/goleak"
)

// Tests of the reader hand-off (handoff.go) over net.Pipe, the far end
// played by the test: a peer that never answers a call, or answers only
// when the test says. Outcomes never depend on timing: each test waits for
// the state it needs (with the guard deadline against a hang).

// test.waitForCancel blocks until its call is cancelled; the tests call it
// by name.
var _ = Register("test.waitForCancel", func(ctx context.Context, _ struct{}) (bool, error) {
	<-ctx.Done()
	return true, nil
})

// peer is the far end of a stream: it reads every frame the router sends
// and hands them to the test, so that the router's writes never block.
type peer struct {
	s      *transport.Stream
	frames chan envelope
}

type envelope struct {
	h       messages.Header
	payload []byte
}

// pipePeer makes a master router (with opts) whose one stream, to context
// 1 ("peer"), is played by the returned peer.
func pipePeer(t *testing.T, opts ...Option) (*Router, *conn, *peer) {
	t.Helper()
	r, err := NewRouter(append([]Option{WithLogger(slog.New(slog.DiscardHandler))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	near, far := net.Pipe()
	c := newConn(r, transport.NewStream(near, 0), 1, "peer", false)
	if err := r.ask(&addRoutes{c: c, ids: []uint32{1}, names: []string{"peer"}}); err != nil {
		t.Fatal(err)
	}
	if err := r.startStream(c, heartbeatConfig{}, heartbeatVersion); err != nil {
		t.Fatal(err)
	}
	p := &peer{s: transport.NewStream(far, 0), frames: make(chan envelope, 100)}
	go func() {
		defer close(p.frames)
		for {
			body, err := p.s.ReadFrame()
			if err != nil {
				return
			}
			h, payload, err := messages.DecodeHeader(body)
			if err != nil {
				t.Errorf("the router sent a malformed frame: %v", err)
				return
			}
			p.frames <- envelope{h, append([]byte(nil), payload...)}
		}
	}()
	t.Cleanup(func() {
		far.Close()
		ctx, cancel := context.WithTimeout(context.Background(), guard)
		defer cancel()
		if err := r.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		for range p.frames {
		}
	})
	return r, c, p
}

// next returns the next frame the router sent.
func (p *peer) next(t *testing.T) envelope {
	t.Helper()
	select {
	case e, ok := <-p.frames:
		if !ok {
			t.Fatal("the stream closed")
		}
		return e
	case <-time.After(guard):
		t.Fatalf("nothing sent in %v", guard)
	}
	panic("unreachable")
}

// nextOf returns the next frame of kind k, skipping others.
func (p *peer) nextOf(t *testing.T, k messages.Kind) envelope {
	t.Helper()
	for {
		if e := p.next(t); e.h.Kind == k {
			return e
		}
	}
}

func (p *peer) send(t *testing.T, h messages.Header, v any) {
	t.Helper()
	var payload []byte
	if v != nil {
		var err error
		if payload, err = encode(v); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.s.Send(&h, payload); err != nil {
		t.Fatal(err)
	}
}

// call sends a call from the peer to the master.
func (p *peer) call(t *testing.T, req uint64, fn string, arg any) {
	t.Helper()
	p.send(t, messages.Header{Kind: messages.KindCall, Dst: 0, Src: 1, ReqID: req, Target: fn}, arg)
}

// reply answers the master's call e with v.
func (p *peer) reply(t *testing.T, e envelope, v any) {
	t.Helper()
	p.send(t, messages.Header{Kind: messages.KindReply, Dst: 0, Src: 1, ReqID: e.h.ReqID}, v)
}

// echoFrom calls test.echo in the peer with ctx, in a goroutine.
func echoFrom(r *Router, ctx context.Context, s string) <-chan callResult {
	res := make(chan callResult, 1)
	go func() {
		out, err := Function[string, string]("test.echo").Call(ctx, r.Context(1), s)
		res <- callResult{payload: []byte(out), err: err}
	}()
	return res
}

func result(t *testing.T, res <-chan callResult) callResult {
	t.Helper()
	select {
	case r := <-res:
		return r
	case <-time.After(guard):
		t.Fatalf("call still waiting after %v", guard)
	}
	panic("unreachable")
}

// waitRd waits until the stream's reader state is want.
func waitRd(t *testing.T, c *conn, want int32) {
	t.Helper()
	deadline := time.Now().Add(guard)
	for c.rd.Load() != want {
		if time.Now().After(deadline) {
			t.Fatalf("reader state %d, want %d, after %v", c.rd.Load(), want, guard)
		}
		time.Sleep(time.Millisecond)
	}
}

// freeStream makes one call that the peer answers, after which nobody
// reads the stream (rdFree) until a caller comes: the router's watchdog,
// which would give the stream back to its reader, is stopped first.
func freeStream(t *testing.T, r *Router, c *conn, p *peer) {
	t.Helper()
	r.watch.stop()
	res := echoFrom(r, context.Background(), "first")
	p.reply(t, p.nextOf(t, messages.KindCall), "first")
	if got := result(t, res); got.err != nil || string(got.payload) != "first" {
		t.Fatalf("first call: %q, %v", got.payload, got.err)
	}
	waitRd(t, c, rdFree)
}

// A call that blocks on the reader's goroutine is handed off to a
// goroutine of its own: another call read from the same stream runs and
// is answered while the first still blocks.
func TestHandOffBlockedInlineCall(t *testing.T) {
	_, _, p := pipePeer(t, AllowUpward("test.waitForCancel", "test.echo"))
	p.call(t, 1, "test.waitForCancel", struct{}{})
	p.call(t, 2, "test.echo", "second")
	e := p.nextOf(t, messages.KindReply)
	var got string
	if e.h.ReqID != 2 || e.h.Flags&messages.FlagError != 0 || decode(e.payload, &got) != nil || got != "second" {
		t.Fatalf("first reply: request %d flags %d %q; want the echo of request 2", e.h.ReqID, e.h.Flags, got)
	}
	p.send(t, messages.Header{Kind: messages.KindCancel, Dst: 0, Src: 1, ReqID: 1}, nil)
	if e := p.nextOf(t, messages.KindReply); e.h.ReqID != 1 {
		t.Fatalf("reply to request %d, want 1 (the cancelled call)", e.h.ReqID)
	}
}

// A caller that reads the stream for its own reply routes what comes
// before the reply as the reader would: a channel item is delivered, and a
// call to run here is run and answered.
func TestReadForDeliversOtherFrames(t *testing.T) {
	r, c, p := pipePeer(t, AllowUpward("test.echo"))
	freeStream(t, r, c, p)
	ch := r.NewChannel()
	defer ch.Release()
	res := echoFrom(r, context.Background(), "mine")
	call := p.nextOf(t, messages.KindCall)
	waitRd(t, c, rdCaller)
	p.send(t, messages.Header{Kind: messages.KindChannel, Dst: 0, Src: 1, Target: ch.id}, 42)
	p.call(t, 7, "test.echo", "theirs")
	p.reply(t, call, "mine")
	if got := result(t, res); got.err != nil || string(got.payload) != "mine" {
		t.Fatalf("the reading caller got %q, %v", got.payload, got.err)
	}
	e := p.nextOf(t, messages.KindReply)
	var s string
	if e.h.ReqID != 7 || decode(e.payload, &s) != nil || s != "theirs" {
		t.Fatalf("reply to request %d %q, want 7 \"theirs\"", e.h.ReqID, s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	var n int
	if err := ch.Recv(ctx, &n); err != nil || n != 42 {
		t.Fatalf("channel item: %d, %v", n, err)
	}
}

// A stream that closes while a caller reads it ends that caller's call
// with a *ChannelError.
func TestReadForStreamClosed(t *testing.T) {
	r, c, p := pipePeer(t)
	freeStream(t, r, c, p)
	res := echoFrom(r, context.Background(), "never answered")
	p.nextOf(t, messages.KindCall)
	waitRd(t, c, rdCaller)
	p.s.Close()
	got := result(t, res)
	var ce *ChannelError
	if !errors.As(got.err, &ce) || ce.Context != "peer" {
		t.Fatalf("call on a closed stream: %T %v; want a *ChannelError naming the peer", got.err, got.err)
	}
}

// A call the peer never answers, given up when its ctx ends, leaves the
// stream read: the next calls, by a caller that cannot read for itself and
// by one that can, are answered.
func TestUnansweredCallLeavesStreamReadable(t *testing.T) {
	r, c, p := pipePeer(t)
	freeStream(t, r, c, p)
	ctx, cancel := context.WithCancel(context.Background())
	res := echoFrom(r, ctx, "never answered")
	p.nextOf(t, messages.KindCall)
	cancel()
	if got := result(t, res); !errors.Is(got.err, context.Canceled) {
		t.Fatalf("the cancelled call: %v", got.err)
	}
	if e := p.nextOf(t, messages.KindCancel); e.h.Dst != 1 {
		t.Fatalf("cancel sent to %d", e.h.Dst)
	}
	gctx, gcancel := context.WithTimeout(context.Background(), guard)
	defer gcancel()
	for _, ctx := range []context.Context{gctx, context.Background()} {
		res := echoFrom(r, ctx, "next")
		p.reply(t, p.nextOf(t, messages.KindCall), "next")
		if got := result(t, res); got.err != nil || string(got.payload) != "next" {
			t.Fatalf("the next call: %q, %v", got.payload, got.err)
		}
	}
}

// Shutdown joins the router's watchdog: after a call ran inline (which
// starts it), nothing of the router is left running once Shutdown returns.
func TestShutdownJoinsWatchdog(t *testing.T) {
	before := goleak.IgnoreCurrent()
	r, _, p := pipePeer(t, AllowUpward("test.echo"))
	p.call(t, 1, "test.echo", "x")
	p.nextOf(t, messages.KindReply)
	p.s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	if err := r.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	// Joined means gone now, not soon: no retry for the watchdog. A
	// goroutine that has called wg.Done may still be seen unwinding for a
	// moment (runnable at its return); one that waits in its loop (for its
	// tick, its lock) was not joined.
	buf := make([]byte, 1<<20)
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(g, "(*watchdog).loop") && !strings.Contains(g, "[runnable]") && !strings.Contains(g, "[running]") {
			t.Fatalf("the watchdog still runs after Shutdown:\n%s", g)
		}
	}
	goleak.VerifyNone(t, before, goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"))
}
