package actors_test

import (
	"context"
	"errors"
	"testing"

	"github.com/mitogo/mitogo/actors"
)

// Handles from Router.Context and Caller learn that their context is gone.
var callers = make(chan *actors.Context, 10)

var (
	holdCaller = actors.Register("test.holdCaller", func(ctx context.Context, _ struct{}) (bool, error) {
		callers <- actors.Caller(ctx)
		return true, nil
	})
	callUp = actors.Register("test.callUp", func(ctx context.Context, _ struct{}) (bool, error) {
		return holdCaller.Call(ctx, actors.RouterFrom(ctx).Context(0), struct{}{})
	})
	spawnLocal = actors.Register("test.spawnLocal", func(ctx context.Context, _ struct{}) (ident, error) {
		c, err := actors.RouterFrom(ctx).Local(ctx)
		if err != nil {
			return ident{}, err
		}
		return ident{ID: c.ID(), PID: c.ProcessID(), Name: c.Name()}, nil
	})
)

func TestPlainHandleDoneWhenRouteLost(t *testing.T) {
	r := newRouter(t)
	c1 := local(t, r)
	grandchild, err := spawnLocal.Call(ctxT(t), c1, struct{}{})
	if err != nil {
		t.Fatal(err)
	}
	h := r.Context(grandchild.ID)
	if h.ActorPID() != nil {
		t.Fatal("a plain handle has an actor")
	}
	if got, err := echo.Call(ctxT(t), h, "x"); err != nil || got != "x" {
		t.Fatalf("call through Router.Context: %q %v", got, err)
	}
	kill(t, grandchild.PID)
	waitDone(t, h)
	expectGone(t, h.Err(), grandchild.Name)
	// A context with no route is gone at once (in the master).
	none := r.Context(999)
	waitDone(t, none)
	if !errors.Is(none.Err(), actors.ErrNoRoute) {
		t.Fatalf("no route: Err = %v", none.Err())
	}
}

// The caller is a context that this router did not start: a grandchild
// started by its child.
func TestCallerDoneWhenCallerDies(t *testing.T) {
	r := newRouter(t, actors.AllowUpward("test.holdCaller"))
	c1 := local(t, r)
	gc, err := spawnLocal.Call(ctxT(t), c1, struct{}{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := callUp.Call(ctxT(t), r.Context(gc.ID), struct{}{}); err != nil {
		t.Fatal(err)
	}
	h := <-callers
	if h.ID() != gc.ID || h.ActorPID() != nil {
		t.Fatalf("Caller is context %d (actor %v), want %d", h.ID(), h.ActorPID(), gc.ID)
	}
	select {
	case <-h.Done():
		t.Fatal("Caller's Done closed while it lives")
	default:
	}
	kill(t, gc.PID)
	waitDone(t, h)
	expectGone(t, h.Err(), gc.Name)
}
