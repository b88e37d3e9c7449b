package actors_test

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/mitogo/mitogo/actors"
)

// probeActor is an actor that reports every message it receives on events,
// and runs start when it starts (to spawn or watch).
type probeActor struct {
	events chan any
	start  func(ctx actor.Context)
}

func (p *probeActor) Receive(ctx actor.Context) {
	if _, ok := ctx.Message().(*actor.Started); ok && p.start != nil {
		p.start(ctx)
	}
	p.events <- ctx.Message()
}

func spawnProbe(t *testing.T, r *actors.Router, start func(actor.Context), opts ...actor.PropsOption) (*actor.PID, chan any) {
	t.Helper()
	events := make(chan any, 1000)
	pid := r.System().Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return &probeActor{events: events, start: start} }, opts...))
	return pid, events
}

// next waits for the next event of type T, skipping others.
func next[T any](t *testing.T, events chan any) T {
	t.Helper()
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	for {
		select {
		case e := <-events:
			if v, ok := e.(T); ok {
				return v
			}
		case <-deadline.C:
			var zero T
			t.Fatalf("no %T within 20s", zero)
			return zero
		}
	}
}

// noEvent fails if events holds a T now.
func noEvent[T any](t *testing.T, events chan any) {
	t.Helper()
	for {
		select {
		case e := <-events:
			if _, ok := e.(T); ok {
				t.Fatalf("unexpected %T", e)
			}
		default:
			return
		}
	}
}

func kill(t *testing.T, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
}

func waitDone(t *testing.T, c *actors.Context) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: Done not closed within 20s", c.Name())
	}
}

func expectReasonChannelError(t *testing.T, reason any) {
	t.Helper()
	err, _ := reason.(error)
	var ce *actors.ChannelError
	if !errors.As(err, &ce) {
		t.Fatalf("want a *ChannelError, got %T %v", reason, reason)
	}
}

// A watcher of a context's actor gets Terminated when the context dies,
// and by then the handle's Done is closed and Err says why.
func TestWatchContextActor(t *testing.T) {
	r := newRouter(t)
	c := local(t, r)
	pid := c.ActorPID()
	if pid == nil {
		t.Fatal("a supervised handle has no actor PID")
	}
	w, events := spawnProbe(t, r, func(ctx actor.Context) { ctx.Watch(pid) })
	defer r.System().Root.Stop(w)
	next[*actor.Started](t, events)
	kill(t, c.ProcessID())
	term := next[*actor.Terminated](t, events)
	if !term.Who.Equal(pid) {
		t.Fatalf("Terminated for %v, want %v", term.Who, pid)
	}
	select {
	case <-c.Done():
	default:
		t.Fatal("Terminated arrived before Done closed")
	}
	expectGone(t, c.Err(), c.Name())
}

// The context actor lives across restarts: no Terminated while the
// strategy restarts the context, one when it is shut down. A call in
// flight on the old process fails with *ChannelError.
func TestContextActorOutlivesRestart(t *testing.T) {
	r := newRouter(t)
	c := local(t, r, actors.Supervise(actors.Restart(10*time.Millisecond, time.Second, 5, time.Minute)))
	pid := c.ActorPID()
	w, events := spawnProbe(t, r, func(ctx actor.Context) { ctx.Watch(pid) })
	defer r.System().Root.Stop(w)
	next[*actor.Started](t, events)
	p := sleepy.Go(ctxT(t), c, time.Hour)
	waitRunning(t, c)
	before := c.ProcessID()
	kill(t, before)
	_, err := p.Wait()
	expectGone(t, err, c.Name())
	waitFor(t, func() bool { return c.ProcessID() != before })
	if got, err := echo.Call(ctxT(t), c, "back"); err != nil || got != "back" {
		t.Fatalf("after restart: %q %v", got, err)
	}
	if !c.ActorPID().Equal(pid) {
		t.Fatalf("actor PID changed on restart: %v → %v", pid, c.ActorPID())
	}
	noEvent[*actor.Terminated](t, events)
	if err := c.Shutdown(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if term := next[*actor.Terminated](t, events); !term.Who.Equal(pid) {
		t.Fatalf("Terminated for %v, want %v", term.Who, pid)
	}
}

// A user's actor supervises a context it spawns from ContextProps with its
// own strategy: its Decider sees the *ChannelError, a restart keeps the
// handle, and stopping the user's actor shuts the context down.
func TestContextPropsUnderUserStrategy(t *testing.T) {
	r := newRouter(t)
	reasons := make(chan any, 10)
	strategy := actor.NewOneForOneStrategy(5, time.Minute, func(reason any) actor.Directive {
		reasons <- reason
		return actor.RestartDirective
	})
	props := r.ContextProps(func(ctx context.Context, r *actors.Router) (*actors.Context, error) {
		return r.Local(ctx, actors.Name("kept"))
	})
	sup, events := spawnProbe(t, r, func(ctx actor.Context) { ctx.Spawn(props) }, actor.WithSupervisor(strategy))
	up := next[*actors.ContextUp](t, events)
	c := up.Context
	if up.Restart || c.Name() != "kept" || !up.Actor.Equal(c.ActorPID()) {
		t.Fatalf("first ContextUp: %+v (name %q)", up, c.Name())
	}
	p := sleepy.Go(ctxT(t), c, time.Hour)
	waitRunning(t, c)
	before := c.ProcessID()
	kill(t, before)
	_, err := p.Wait()
	expectGone(t, err, c.Name())
	expectReasonChannelError(t, <-reasons)
	up = next[*actors.ContextUp](t, events)
	if !up.Restart || up.Context != c || c.ProcessID() == before {
		t.Fatalf("after the restart: %+v, pid %d (was %d)", up, c.ProcessID(), before)
	}
	if got, err := echo.Call(ctxT(t), c, "again"); err != nil || got != "again" {
		t.Fatalf("after restart: %q %v", got, err)
	}
	// Stopping the supervising actor stops its context actor first, which
	// shuts the context down.
	now := c.ProcessID()
	if err := r.System().Root.StopFuture(sup).Wait(); err != nil {
		t.Fatal(err)
	}
	waitDone(t, c)
	waitFor(t, func() bool { return syscall.Kill(now, 0) != nil })
}

// All-for-one groups the contexts of one supervisor: one dies, both
// restart.
func TestContextPropsAllForOne(t *testing.T) {
	r := newRouter(t)
	strategy := actor.NewAllForOneStrategy(5, time.Minute, func(any) actor.Directive { return actor.RestartDirective })
	named := func(name string) *actor.Props {
		return r.ContextProps(func(ctx context.Context, r *actors.Router) (*actors.Context, error) {
			return r.Local(ctx, actors.Name(name))
		})
	}
	a, b := named("a"), named("b")
	_, events := spawnProbe(t, r, func(ctx actor.Context) { ctx.Spawn(a); ctx.Spawn(b) }, actor.WithSupervisor(strategy))
	ups := map[string]*actors.Context{}
	for len(ups) < 2 {
		up := next[*actors.ContextUp](t, events)
		ups[up.Context.Name()] = up.Context
	}
	pa, pb := ups["a"].ProcessID(), ups["b"].ProcessID()
	kill(t, pa)
	restarted := map[string]bool{}
	for len(restarted) < 2 {
		up := next[*actors.ContextUp](t, events)
		if up.Restart {
			restarted[up.Context.Name()] = true
		}
	}
	if ups["a"].ProcessID() == pa || ups["b"].ProcessID() == pb {
		t.Fatalf("both must have new processes: a %d→%d, b %d→%d", pa, ups["a"].ProcessID(), pb, ups["b"].ProcessID())
	}
	waitFor(t, func() bool { return syscall.Kill(pb, 0) != nil }) // the healthy one's old process was stopped
	for _, c := range ups {
		if got, err := echo.Call(ctxT(t), c, "x"); err != nil || got != "x" {
			t.Fatalf("%s after restart: %q %v", c.Name(), got, err)
		}
	}
}

// A Backoff that passes its limit escalates: the supervisor's parent
// decides, here stopping the supervisor, which stops its context.
func TestBackoffEscalatesAtLimit(t *testing.T) {
	r := newRouter(t)
	escalated := make(chan any, 10)
	top := actor.NewOneForOneStrategy(0, 0, func(reason any) actor.Directive {
		escalated <- reason
		return actor.StopDirective
	})
	props := r.ContextProps(func(ctx context.Context, r *actors.Router) (*actors.Context, error) { return r.Local(ctx) })
	backoff := actors.Restart(time.Millisecond, time.Millisecond, 1, time.Minute).OnLimit(actor.EscalateDirective)
	middleEvents := make(chan any, 1000)
	middle := actor.PropsFromProducer(func() actor.Actor {
		return &probeActor{events: middleEvents, start: func(ctx actor.Context) { ctx.Spawn(props) }}
	}, actor.WithSupervisor(backoff))
	_, _ = spawnProbe(t, r, func(ctx actor.Context) { ctx.Spawn(middle) }, actor.WithSupervisor(top))
	up := next[*actors.ContextUp](t, middleEvents)
	c := up.Context
	kill(t, c.ProcessID()) // the first failure: restarted
	up = next[*actors.ContextUp](t, middleEvents)
	if !up.Restart {
		t.Fatal("the first failure was not a restart")
	}
	kill(t, c.ProcessID()) // the second, past the limit of 1: escalated
	select {
	case reason := <-escalated:
		expectReasonChannelError(t, reason)
	case <-time.After(20 * time.Second):
		t.Fatal("no escalation")
	}
	waitDone(t, c)
	expectGone(t, c.Err(), c.Name())
}

// A dead process cannot resume: Resume restarts the context.
func TestResumeIsRestart(t *testing.T) {
	r := newRouter(t)
	strategy := actor.NewOneForOneStrategy(5, time.Minute, func(any) actor.Directive { return actor.ResumeDirective })
	props := r.ContextProps(func(ctx context.Context, r *actors.Router) (*actors.Context, error) { return r.Local(ctx) })
	_, events := spawnProbe(t, r, func(ctx actor.Context) { ctx.Spawn(props) }, actor.WithSupervisor(strategy))
	c := next[*actors.ContextUp](t, events).Context
	before := c.ProcessID()
	kill(t, before)
	if up := next[*actors.ContextUp](t, events); !up.Restart || up.Context != c {
		t.Fatalf("after resume: %+v", up)
	}
	if c.ProcessID() == before {
		t.Fatal("same process after resume")
	}
	if got, err := echo.Call(ctxT(t), c, "x"); err != nil || got != "x" {
		t.Fatalf("after resume: %q %v", got, err)
	}
}

// A ContextProps whose connections fail: its Decider sees the
// *StreamError, and stopping gives the handle that error.
func TestContextPropsConnectFailureIsAFailure(t *testing.T) {
	r := newRouter(t)
	reasons := make(chan any, 10)
	strategy := actor.NewOneForOneStrategy(1, time.Minute, func(reason any) actor.Directive {
		reasons <- reason
		return actor.RestartDirective
	})
	props := r.ContextProps(func(ctx context.Context, r *actors.Router) (*actors.Context, error) {
		return r.Local(ctx, actors.Executable("/nonexistent/prog"))
	})
	_, events := spawnProbe(t, r, func(ctx actor.Context) { ctx.Spawn(props) }, actor.WithSupervisor(strategy))
	for i := 0; i < 2; i++ {
		var se *actors.StreamError
		if err, _ := (<-reasons).(error); !errors.As(err, &se) {
			t.Fatalf("failure %d: want a *StreamError, got %v", i, err)
		}
	}
	next[*actor.Terminated](t, events) // two failures in the window, limit 1: stopped
}

var systemBuilt = actors.Register("test.systemBuilt", func(ctx context.Context, _ struct{}) (bool, error) {
	return actors.SystemBuilt(actors.RouterFrom(ctx)), nil
})

// A leaf child never builds its actor system (no broker, no router
// actor): calls do not need it. A child that starts one of its own does.
func TestLeafChildHasNoBroker(t *testing.T) {
	r := newRouter(t)
	c1 := local(t, r)
	leaf := local(t, r, actors.Via(c1))
	if built, err := systemBuilt.Call(ctxT(t), leaf, struct{}{}); err != nil || built {
		t.Fatalf("leaf child: system built %v, %v", built, err)
	}
	if built, err := systemBuilt.Call(ctxT(t), c1, struct{}{}); err != nil || !built {
		t.Fatalf("middle child: system built %v, %v", built, err)
	}
}
