package actors_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/mitogo/mitogo/actors"
)

func expectPokes(t *testing.T, c *actors.Context, want ...string) {
	t.Helper()
	got, err := pokes.Call(ctxT(t), c, struct{}{})
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("calls that ran in %s: %q, %v; want %q", c, got, err, want)
	}
}

// After a failure, later calls of the chain fail with that error and do
// not run; Reset makes them run again.
func TestChainStopsAtFailure(t *testing.T) {
	r := newRouter(t)
	c := local(t, r)
	ch := actors.NewChain(c)
	if err := poke.SendIn(ch, "a"); err != nil {
		t.Fatal(err)
	}
	failed := fail.GoIn(ctxT(t), ch, "/first")
	if err := poke.SendIn(ch, "b"); err != nil {
		t.Fatal(err)
	}
	_, err := poke.CallIn(ctxT(t), ch, "c")
	_, first := failed.Wait()
	var ce, ce1 *actors.CallError
	if !errors.As(first, &ce1) || !errors.As(err, &ce) || ce.Type != ce1.Type || ce.Message != ce1.Message || ce.Context != c.Name() {
		t.Fatalf("later call: %v; want the chain's first failure %v", err, first)
	}
	expectPokes(t, c, "a")

	if err := ch.Reset(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := poke.CallIn(ctxT(t), ch, "d"); err != nil {
		t.Fatal(err)
	}
	expectPokes(t, c, "a", "d")
}

// childGate blocks test.gateWait calls in a child until test.gateOpen.
var childGate = make(chan struct{})

var (
	gateWait = actors.Register("test.gateWait", func(ctx context.Context, _ struct{}) (struct{}, error) {
		select {
		case <-childGate:
			return struct{}{}, nil
		case <-ctx.Done():
			return struct{}{}, ctx.Err()
		}
	})
	gateOpen = actors.Register("test.gateOpen", func(ctx context.Context, _ struct{}) (struct{}, error) {
		close(childGate)
		return struct{}{}, nil
	})
)

// Calls of a chain run in the order they were made, each after the one
// before it has finished.
func TestChainOrder(t *testing.T) {
	r := newRouter(t)
	c := local(t, r)
	ch := actors.NewChain(c)
	blocked := gateWait.GoIn(ctxT(t), ch, struct{}{})
	var want []string
	for i := range 40 {
		w := fmt.Sprint(i)
		want = append(want, w)
		if i%2 == 0 {
			if err := poke.SendIn(ch, w); err != nil {
				t.Fatal(err)
			}
		} else {
			poke.GoIn(ctxT(t), ch, w)
		}
	}
	expectPokes(t, c) // all wait for the blocked call
	if _, err := gateOpen.Call(ctxT(t), c, struct{}{}); err != nil {
		t.Fatal(err)
	}
	got, err := pokes.CallIn(ctxT(t), ch, struct{}{})
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("ran %q, %v; want %q", got, err, want)
	}
	if _, err := blocked.Wait(); err != nil {
		t.Fatal(err)
	}
}

// Two chains on one context do not interfere: one's failure stops only
// its own later calls, and a call waiting in one chain does not hold the
// other back.
func TestChainsIndependent(t *testing.T) {
	r := newRouter(t)
	c := local(t, r)
	one, two := actors.NewChain(c), actors.NewChain(c)
	if _, err := fail.CallIn(ctxT(t), one, "/x"); err == nil {
		t.Fatal("fail did not fail")
	}
	callCtx, stop := context.WithCancel(ctxT(t))
	sleeping := sleepy.GoIn(callCtx, two, time.Hour)
	waitRunning(t, c)
	if _, err := poke.CallIn(ctxT(t), one, "in one"); err == nil {
		t.Fatal("chain one ran a call after its failure")
	}
	if _, err := poke.Call(ctxT(t), c, "outside"); err != nil {
		t.Fatal(err)
	}
	three := actors.NewChain(c)
	if _, err := poke.CallIn(ctxT(t), three, "in three"); err != nil {
		t.Fatal(err)
	}
	// The call after the sleeping one waits for it; cancelling the
	// sleeping call fails chain two, so it never runs.
	after := poke.GoIn(ctxT(t), two, "after sleep")
	stop()
	if _, err := sleeping.Wait(); err == nil {
		t.Fatal("cancelled call succeeded")
	}
	if _, err := after.Wait(); err == nil {
		t.Fatal("the call after a cancelled one ran")
	}
	expectPokes(t, c, "outside", "in three")
}
