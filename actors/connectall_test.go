package actors_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mitogo/mitogo/actors"
)

// ConnectAll reports a target that cannot start as that target's failure;
// the others start and serve calls.
func TestConnectAllOneBad(t *testing.T) {
	r := newRouter(t)
	local := func(opts ...actors.ConnectOption) actors.Connector {
		return func(ctx context.Context, r *actors.Router) (*actors.Context, error) { return r.Local(ctx, opts...) }
	}
	targets := []actors.ConnectTarget{
		{Name: "one", Connect: local(actors.Name("one"))},
		{Name: "bad", Connect: local(actors.Name("bad"), actors.Executable("/nonexistent/mitogo"))},
		{Name: "two", Connect: local(actors.Name("two"))},
		{Name: "none"},
		{Name: "three", Connect: local(actors.Name("three"))},
	}
	conns := r.ConnectAll(ctxT(t), targets, actors.Limit(2))
	if len(conns) != len(targets) {
		t.Fatalf("%d results for %d targets", len(conns), len(targets))
	}
	for i, c := range conns {
		if c.Name != targets[i].Name {
			t.Fatalf("result %d is %s, want %s", i, c.Name, targets[i].Name)
		}
	}
	failed := conns.Failed()
	var se *actors.StreamError
	if len(failed) != 2 || failed[0].Name != "bad" || !errors.As(failed[0].Err, &se) || failed[0].Context != nil || failed[1].Name != "none" {
		t.Fatalf("failures: %+v", failed)
	}
	if err := conns.Err(); !errors.As(err, &se) {
		t.Fatalf("Err: %v", err)
	}
	ok := conns.Contexts()
	if len(ok) != 3 {
		t.Fatalf("%d contexts started, want 3", len(ok))
	}
	for res := range echo.Fan(ctxT(t), ok, "hi") {
		if res.Err != nil || res.Value != "hi" {
			t.Fatalf("%s: %v", res.Target, res.Err)
		}
	}
}

// TargetTimeout ends a connection that hangs (a program that never
// answers the handshake) as that target's *TimeoutError.
func TestConnectAllTargetTimeout(t *testing.T) {
	r := newRouter(t)
	conns := r.ConnectAll(ctxT(t), []actors.ConnectTarget{{Name: "mute", Connect: func(ctx context.Context, r *actors.Router) (*actors.Context, error) {
		return r.Local(ctx, actors.Name("mute"), actors.Executable("/bin/sleep", "60"))
	}}}, actors.TargetTimeout(100*time.Millisecond))
	var te *actors.TimeoutError
	if len(conns) != 1 || !errors.As(conns[0].Err, &te) {
		t.Fatalf("want a *TimeoutError, got %+v", conns)
	}
}
