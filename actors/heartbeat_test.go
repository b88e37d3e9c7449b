package actors

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mitogo/mitogo/messages"
	"github.com/mitogo/mitogo/transport"
)

// Streams over net.Pipe whose far end is played by the test: a frozen
// peer (a stopped process behind a live sshd) or one that answers pings.
// No outcome depends on timing: each test waits for what must happen, with
// a guard deadline far beyond it that only stops a hang.

const guard = 20 * time.Second

// pipeStream makes a master router with one stream to "context 1", whose
// far end is returned; the stream is watched with hb.
func pipeStream(t *testing.T, hb heartbeatConfig) (*Router, *conn, net.Conn) {
	t.Helper()
	r, err := NewRouter(WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	near, far := net.Pipe()
	c := newConn(r, transport.NewStream(near, 0), 1, "peer", false)
	if err := r.ask(&addRoutes{c: c, ids: []uint32{1}, names: []string{"peer"}}); err != nil {
		t.Fatal(err)
	}
	if err := r.startStream(c, hb, heartbeatVersion); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		far.Close()
		ctx, cancel := context.WithTimeout(context.Background(), guard)
		defer cancel()
		if err := r.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return r, c, far
}

// waitDone waits for c's stream to end and returns why it ended.
func waitDone(t *testing.T, c *conn) error {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(guard):
		t.Fatalf("the stream to a silent peer is still open after %v", guard)
	}
	if p := c.closeErr.Load(); p != nil {
		return *p
	}
	return nil
}

// A peer that reads nothing: the pings cannot even be written, and the
// stream is declared dead all the same.
func TestHeartbeatPeerReadingNothingIsDeclaredDead(t *testing.T) {
	_, c, _ := pipeStream(t, heartbeatConfig{Interval: 20 * time.Millisecond, Misses: 3})
	err := waitDone(t, c)
	if !errors.Is(err, ErrHeartbeat) || err.Error() != "no answer to 3 heartbeats in 60ms" {
		t.Fatalf("stream closed with %v, want no answer to 3 heartbeats", err)
	}
}

// A peer that reads everything and answers nothing: a call waiting on it
// fails with a *ChannelError saying so, long before its own deadline.
func TestHeartbeatSilentPeerFailsPendingCall(t *testing.T) {
	r, _, far := pipeStream(t, heartbeatConfig{Interval: 20 * time.Millisecond, Misses: 3})
	pings := make(chan struct{}, 100)
	go readFrames(far, func(h messages.Header) {
		if h.Type == messages.ControlPing {
			pings <- struct{}{}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	_, err := Function[string, string]("test.echo").Call(ctx, r.Context(1), "x")
	var ce *ChannelError
	if !errors.As(err, &ce) || !errors.Is(err, ErrHeartbeat) || !errors.Is(err, ErrMitogo) {
		t.Fatalf("call to a silent peer: %T %v; want a *ChannelError matching ErrHeartbeat", err, err)
	}
	if ce.Context != "peer" || ce.Reason != "its stream closed: no answer to 3 heartbeats in 60ms" {
		t.Fatalf("ChannelError %+v", ce)
	}
	if n := len(pings); n > 3 {
		t.Fatalf("%d pings before giving up, want at most 3", n)
	}
}

// A peer that answers every ping keeps the stream open, however long it
// stays otherwise silent: here, for more pings than would have declared it
// dead four times over.
func TestHeartbeatAnsweringPeerStaysAlive(t *testing.T) {
	// Many misses allowed: only a machine that stalls the pongs for two
	// seconds could fail this, not a slow one.
	hb := heartbeatConfig{Interval: 50 * time.Millisecond, Misses: 40}
	r, c, far := pipeStream(t, hb)
	var answered atomic.Int32
	enough := make(chan struct{})
	go readFrames(far, func(h messages.Header) {
		if h.Type != messages.ControlPing {
			return
		}
		pong := messages.Header{Kind: messages.KindControl, Dst: 0, Src: 1, ReqID: h.ReqID, Type: messages.ControlPong}
		if messages.WriteFrame(far, messages.AppendHeader(nil, &pong), messages.DefaultMaxFrame) != nil {
			return
		}
		if answered.Add(1) == 16 {
			close(enough)
		}
	})
	select {
	case <-enough:
	case <-c.done:
		t.Fatalf("the stream closed after %d answered pings: %v", answered.Load(), *c.closeErr.Load())
	case <-time.After(guard):
		t.Fatalf("only %d pings in %v", answered.Load(), guard)
	}
	select {
	case <-c.done:
		t.Fatalf("the stream closed: %v", *c.closeErr.Load())
	default:
	}
	if r.table.Load().lookup(1) != c {
		t.Fatal("the route to the peer is gone")
	}
}

// The stream's reader answers a ping itself, echoing its ReqID, even on a
// stream that has no heartbeat of its own.
func TestHeartbeatPingAnsweredByReader(t *testing.T) {
	_, _, far := pipeStream(t, heartbeatConfig{})
	ping := messages.Header{Kind: messages.KindControl, Dst: 0, Src: 1, ReqID: 42, Type: messages.ControlPing}
	go messages.WriteFrame(far, messages.AppendHeader(nil, &ping), messages.DefaultMaxFrame)
	body, err := messages.ReadFrame(far, messages.DefaultMaxFrame)
	if err != nil {
		t.Fatal(err)
	}
	h, _, err := messages.DecodeHeader(body)
	if err != nil || h.Kind != messages.KindControl || h.Type != messages.ControlPong || h.ReqID != 42 || h.Dst != 1 {
		t.Fatalf("answer to a ping: %+v, %v; want a pong with ReqID 42", h, err)
	}
}

// readFrames calls f with the header of every frame read from conn, until
// it fails.
func readFrames(conn io.Reader, f func(messages.Header)) {
	for {
		body, err := messages.ReadFrame(conn, messages.DefaultMaxFrame)
		if err != nil {
			return
		}
		if h, _, err := messages.DecodeHeader(body); err == nil {
			f(h)
		}
	}
}

func TestHeartbeatDefaults(t *testing.T) {
	for _, tc := range []struct {
		method string
		opt    *heartbeatConfig // nil: no Heartbeat option
		want   heartbeatConfig
	}{
		{"ssh", nil, heartbeatConfig{Interval: 10 * time.Second, Misses: 3}},
		{"openssh", nil, heartbeatConfig{Interval: 10 * time.Second, Misses: 3}},
		{"local", nil, heartbeatConfig{}},
		{"sudo", nil, heartbeatConfig{}},
		{"su", nil, heartbeatConfig{}},
		{"doas", nil, heartbeatConfig{}},
		{"local", &heartbeatConfig{Interval: time.Second, Misses: 5}, heartbeatConfig{Interval: time.Second, Misses: 5}},
		{"sudo", &heartbeatConfig{Interval: time.Second}, heartbeatConfig{Interval: time.Second, Misses: 3}},
		{"ssh", &heartbeatConfig{Interval: -1}, heartbeatConfig{}},
		{"ssh", &heartbeatConfig{Misses: 7}, heartbeatConfig{Interval: 10 * time.Second, Misses: 7}},
	} {
		cc := defaultConnectConfig()
		if tc.opt != nil {
			Heartbeat(tc.opt.Interval, tc.opt.Misses)(&cc)
		}
		if got := cc.heartbeat.resolve(tc.method, cc.heartbeatSet); got != tc.want {
			t.Errorf("%s with %v: %+v, want %+v", tc.method, tc.opt, got, tc.want)
		}
	}
}
