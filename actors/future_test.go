package actors_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/mitogo/mitogo/actors"
)

// spawn starts an actor with receive in r's actor system and stops it
// when the test ends.
func spawn(t *testing.T, r *actors.Router, receive actor.ReceiveFunc) *actor.PID {
	t.Helper()
	root := r.System().Root
	pid := root.Spawn(actor.PropsFromFunc(receive))
	t.Cleanup(func() { root.StopFuture(pid).Wait() })
	return pid
}

// recv waits for one value on ch, or fails the test after a generous
// deadline that only guards against a hang.
func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(20 * time.Second):
		t.Fatal("nothing arrived")
		panic("unreachable")
	}
}

type callMsg struct {
	fn  actors.Func[string, string]
	arg string
	ctx context.Context
}

// TestCallToResultAsMessage: the result and the error of a call made
// inside an actor arrive in its mailbox as *Result messages, and the actor
// goes on with its messages while the call runs.
func TestCallToResultAsMessage(t *testing.T) {
	r := newRouter(t)
	c := local(t, r)
	results := make(chan *actors.Result[string], 4)
	pongs := make(chan string, 1)
	pid := spawn(t, r, func(ctx actor.Context) {
		switch m := ctx.Message().(type) {
		case *callMsg:
			m.fn.CallTo(m.ctx, ctx, c, m.arg)
		case string: // while a call is out, the actor still answers
			pongs <- m
		case *actors.Result[string]:
			results <- m
		}
	})
	root := r.System().Root

	root.Send(pid, &callMsg{fn: echo, arg: "hi", ctx: ctxT(t)})
	res := recv(t, results)
	if res.Err != nil || res.Value != "hi" || res.Target != c {
		t.Fatalf("echo result = %+v", res)
	}

	root.Send(pid, &callMsg{fn: fail, arg: "/nope", ctx: ctxT(t)})
	res = recv(t, results)
	var ce *actors.CallError
	if !errors.As(res.Err, &ce) || ce.Code != "error" || ce.Context != c.Name() {
		t.Fatalf("fail result = %+v", res)
	}

	// A call that blocks until cancelled does not block the actor.
	slow := actors.Function[string, string]("test.sleepString")
	ctx, cancel := context.WithCancel(ctxT(t))
	root.Send(pid, &callMsg{fn: slow, arg: "1h", ctx: ctx})
	root.Send(pid, "ping")
	if got := recv(t, pongs); got != "ping" {
		t.Fatalf("pong = %q", got)
	}
	select {
	case res := <-results:
		t.Fatalf("result before the cancel: %+v", res)
	default:
	}
	cancel()
	res = recv(t, results)
	if !errors.Is(res.Err, context.Canceled) || !errors.Is(res.Err, actors.ErrMitogo) {
		t.Fatalf("cancelled result = %+v", res)
	}
	// The far side saw the cancel.
	waitFor(t, func() bool { n, err := running.Call(ctxT(t), c, struct{}{}); return err == nil && n == 0 })
}

var sleepString = actors.Register("test.sleepString", func(ctx context.Context, d string) (string, error) {
	dur, err := time.ParseDuration(d)
	if err != nil {
		return "", err
	}
	return sleepy.Call(ctx, actors.CurrentContext(ctx), dur)
})

// TestFutureReenterAfterAndPipeTo: Future is a protoactor future that
// ReenterAfter and PipeTo work with, completed with a *Result whose Err is
// the call's error (a *TimeoutError for a passed deadline; a
// *ChannelError for a context that died).
func TestFutureReenterAfterAndPipeTo(t *testing.T) {
	r := newRouter(t)
	c := local(t, r)
	type reenter struct{ arg string }
	got := make(chan string, 2)
	piped := make(chan any, 1)
	pid := spawn(t, r, func(ctx actor.Context) {
		switch m := ctx.Message().(type) {
		case *reenter:
			f := echo.Future(context.Background(), c, m.arg)
			ctx.ReenterAfter(f, func(res any, err error) {
				// In the actor, with the message that started the call.
				got <- fmt.Sprintf("%s:%s:%v:%v", ctx.Message().(*reenter).arg, res.(*actors.Result[string]).Value, res.(*actors.Result[string]).Err, err)
			})
		case *actors.Result[string]:
			piped <- m
		}
	})
	root := r.System().Root
	root.Send(pid, &reenter{arg: "x"})
	if s := recv(t, got); s != "x:x:<nil>:<nil>" {
		t.Fatalf("reentered with %q", s)
	}

	ctx, cancel := context.WithTimeout(ctxT(t), 50*time.Millisecond)
	defer cancel()
	f := sleepy.Future(ctx, c, time.Hour)
	raw, err := f.Result()
	res := raw.(*actors.Result[string])
	var te *actors.TimeoutError
	if err != nil || !errors.As(res.Err, &te) || te.Context != c.Name() {
		t.Fatalf("timed-out future = %+v, %v", res, err)
	}

	f2 := sleepString.Future(ctxT(t), c, "1h")
	f2.PipeTo(pid)
	waitFor(t, func() bool { n, err := running.Call(ctxT(t), c, struct{}{}); return err == nil && n == 1 })
	if err := syscall.Kill(c.ProcessID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	m := recv(t, piped).(*actors.Result[string])
	var che *actors.ChannelError
	if !errors.As(m.Err, &che) {
		t.Fatalf("piped result after the child died = %+v", m)
	}
}

// fanTo counts, in this process, the calls of test.fanToCount started.
var fanToStarted atomic.Int64

var fanToCount = actors.Register("test.fanToCount", func(ctx context.Context, _ struct{}) (int64, error) {
	return fanToStarted.Add(1), nil
})

// TestFanToBound: 200 calls fanned out into an actor that processes its
// results one at a time, slowly: never more than the window's results are
// outstanding (started and not yet processed), and each target gives
// exactly one result.
func TestFanToBound(t *testing.T) {
	const n, window = 200, 5
	fanToStarted.Store(0)
	r := newRouter(t)
	targets := make([]*actors.Context, n)
	for i := range targets {
		targets[i] = r.Self()
	}
	type start struct{}
	took := make(chan *actors.Result[int64])
	release := make(chan struct{})
	var processed atomic.Int64
	pid := spawn(t, r, func(ctx actor.Context) {
		switch m := ctx.Message().(type) {
		case start:
			fanToCount.FanTo(context.Background(), ctx, targets, struct{}{}, actors.Limit(window))
		case *actors.Result[int64]:
			took <- m
			<-release // the actor is slow: the test says when it is done
			processed.Add(1)
		}
	})
	r.System().Root.Send(pid, start{})
	seen := make([]bool, n)
	maxOut := int64(0)
	for k := range n {
		res := recv(t, took)
		if res.Err != nil || seen[res.Index] {
			t.Fatalf("result %d: %+v (seen before: %v)", k, res, seen[res.Index])
		}
		seen[res.Index] = true
		// Let every call that may start do so, then count.
		want := min(int64(n), processed.Load()+window)
		waitFor(t, func() bool { return fanToStarted.Load() >= want })
		out := fanToStarted.Load() - processed.Load()
		if out > window {
			t.Fatalf("after %d processed, %d calls started: %d outstanding, over the window of %d", processed.Load(), fanToStarted.Load(), out, window)
		}
		maxOut = max(maxOut, out)
		release <- struct{}{}
	}
	if maxOut != window {
		t.Fatalf("at most %d outstanding, want the window, %d", maxOut, window)
	}
	waitFor(t, func() bool { return processed.Load() == n })
	if got := fanToStarted.Load(); got != n {
		t.Fatalf("%d calls started, want %d", got, n)
	}
}

// TestFanToCancelled: once ctx ends, targets not started give a result
// with ctx's error without being called.
func TestFanToCancelled(t *testing.T) {
	const n = 10
	fanToStarted.Store(0)
	r := newRouter(t)
	targets := make([]*actors.Context, n)
	for i := range targets {
		targets[i] = r.Self()
	}
	ctx, cancel := context.WithCancel(context.Background())
	type start struct{}
	results := make(chan *actors.Result[int64], n)
	pid := spawn(t, r, func(actx actor.Context) {
		switch m := actx.Message().(type) {
		case start:
			fanToCount.FanTo(ctx, actx, targets, struct{}{}, actors.Limit(1))
		case *actors.Result[int64]:
			if m.Index == 2 {
				cancel()
			}
			results <- m
		}
	})
	r.System().Root.Send(pid, start{})
	var ok, notStarted int
	for range n {
		res := recv(t, results)
		switch {
		case res.Err == nil:
			ok++
		case errors.Is(res.Err, context.Canceled):
			notStarted++
		default:
			t.Fatalf("result %+v", res)
		}
	}
	if ok != 3 || notStarted != n-3 || fanToStarted.Load() != 3 {
		t.Fatalf("%d ok, %d not started, %d calls made; want 3, %d, 3", ok, notStarted, fanToStarted.Load(), n-3)
	}
}
