package actors_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mitogo/mitogo/actors"
)

type countRequest struct {
	Reply actors.ChannelAddr
	N     int
}

// countTo sends 1..N on a channel to the caller, after its own address,
// closes it and returns N.
var countTo = actors.Register("test.countTo", func(ctx context.Context, req countRequest) (int, error) {
	ch := actors.RouterFrom(ctx).NewChannel()
	defer ch.Release()
	ch.Connect(req.Reply)
	if err := ch.Send(ctx, ch.Addr()); err != nil {
		return 0, err
	}
	for i := 1; i <= req.N; i++ {
		if err := ch.Send(ctx, i); err != nil {
			return 0, err
		}
	}
	return req.N, ch.Close()
})

// A select over pending calls of two result types and a channel receiver
// gives every result once, each with its source and target, the channel's
// items in order, and then ErrSelectEmpty.
func TestSelectMixed(t *testing.T) {
	r := newRouter(t)
	a, b := local(t, r), local(t, r)
	ch := r.NewChannel()
	defer ch.Release()
	counting := countTo.Go(ctxT(t), b, countRequest{Reply: ch.Addr(), N: 3})
	var peer actors.ChannelAddr
	if err := ch.Recv(ctxT(t), &peer); err != nil {
		t.Fatal(err)
	}
	ch.Connect(peer)

	hello := echo.Go(ctxT(t), a, "hello")
	failing := fail.Go(ctxT(t), a, "/nowhere")
	items := actors.Receive[int](ch)
	s := actors.NewSelect(hello, failing, counting, items)
	defer s.Close()

	var got []int
	done := map[actors.Source]bool{}
	for res, err := range s.All(ctxT(t)) {
		if err != nil {
			t.Fatal(err)
		}
		if done[res.Source] {
			t.Fatalf("a second result from %v", res.Source)
		}
		switch res.Source {
		case hello:
			v, err := actors.As[string](res)
			if err != nil || v != "hello" || res.Target != a {
				t.Fatalf("echo: %q, %v from %v", v, err, res.Target)
			}
			done[res.Source] = true
		case failing:
			var ce *actors.CallError
			if !errors.As(res.Err, &ce) || res.Value != nil || res.Target != a {
				t.Fatalf("fail: want a *CallError from a, got %v, %v from %v", res.Value, res.Err, res.Target)
			}
			done[res.Source] = true
		case counting:
			if n, err := actors.As[int](res); err != nil || n != 3 || res.Target != b {
				t.Fatalf("countTo: %d, %v from %v", n, err, res.Target)
			}
			done[res.Source] = true
		case items:
			v, err := actors.As[int](res)
			if err != nil || res.Target != b {
				t.Fatalf("item: %v, %v from %v", v, err, res.Target)
			}
			got = append(got, v)
		default:
			t.Fatalf("result from an unknown source %v", res.Source)
		}
	}
	if len(done) != 3 || len(got) != 3 || got[0] != 1 || got[1] != 2 || got[2] != 3 {
		t.Fatalf("results from %d calls, items %v", len(done), got)
	}
	if _, err := s.Next(ctxT(t)); err != actors.ErrSelectEmpty {
		t.Fatalf("Next after the end: %v, want ErrSelectEmpty", err)
	}
	if _, err := actors.As[string](actors.Selected{Source: hello, Value: 1}); err == nil {
		t.Fatal("As[string] of an int did not fail")
	}
}

// A deadline on Next gives a *TimeoutError naming what is outstanding and
// ends nothing: the call's result comes later.
func TestSelectDeadline(t *testing.T) {
	r := newRouter(t)
	c := local(t, r)
	callCtx, stop := context.WithCancel(ctxT(t))
	p := sleepy.Go(callCtx, c, time.Hour)
	s := actors.NewSelect(p, echo.Go(ctxT(t), c, "quick"))
	defer s.Close()
	if res, err := s.Next(ctxT(t)); err != nil || res.Value != "quick" {
		t.Fatalf("first: %v, %v", res.Value, err)
	}
	short, cancel := context.WithTimeout(ctxT(t), 20*time.Millisecond)
	defer cancel()
	_, err := s.Next(short)
	var te *actors.TimeoutError
	if !errors.As(err, &te) || len(te.Outstanding) != 1 || te.Outstanding[0] != c.Name() || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want a *TimeoutError naming %s outstanding, got %T %v", c.Name(), err, err)
	}
	stop()
	res, err := s.Next(ctxT(t))
	if err != nil || res.Source != p || res.Err == nil || res.Target != c {
		t.Fatalf("after cancelling the call: %+v, %v", res, err)
	}
	if _, err := s.Next(ctxT(t)); err != actors.ErrSelectEmpty {
		t.Fatalf("want ErrSelectEmpty, got %v", err)
	}
}

// Adding a source twice is a mistake that would duplicate its result,
// also when the source has already finished.
func TestSelectAddTwicePanics(t *testing.T) {
	r := newRouter(t)
	p := echo.Go(ctxT(t), r.Self(), "x")
	s := actors.NewSelect(p)
	defer s.Close()
	if _, err := s.Next(ctxT(t)); err != nil { // p has given its result
		t.Fatal(err)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	s.Add(p)
}
