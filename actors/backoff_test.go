package actors

import (
	"log/slog"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// fakeSupervisor records what a strategy decided.
type fakeSupervisor struct {
	restarted chan *actor.PID
	stopped   chan *actor.PID
	escalated chan any
}

func newFakeSupervisor() *fakeSupervisor {
	return &fakeSupervisor{restarted: make(chan *actor.PID, 10), stopped: make(chan *actor.PID, 10), escalated: make(chan any, 10)}
}

func (f *fakeSupervisor) Children() []*actor.PID             { return nil }
func (f *fakeSupervisor) EscalateFailure(reason, _ any)      { f.escalated <- reason }
func (f *fakeSupervisor) RestartChildren(pids ...*actor.PID) { f.restarted <- pids[0] }
func (f *fakeSupervisor) StopChildren(pids ...*actor.PID)    { f.stopped <- pids[0] }
func (f *fakeSupervisor) ResumeChildren(pids ...*actor.PID)  {}
func (f *fakeSupervisor) pending(b *Backoff) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.pending)
}
func expectNone[T any](t *testing.T, ch chan T, what string) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("unexpected %s: %v", what, v)
	default:
	}
}

func quietSystem() *actor.ActorSystem {
	return actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }))
}

func TestBackoffDelayDoubles(t *testing.T) {
	b := Restart(10*time.Millisecond, 80*time.Millisecond, 0, 0)
	for n, want := range []time.Duration{10, 20, 40, 80, 80, 80} {
		if got := b.delay(n + 1); got != want*time.Millisecond {
			t.Errorf("failure %d: delay %v, want %v", n+1, got, want*time.Millisecond)
		}
	}
}

// A Backoff restarts after its delay, gives up past its limit, and Close
// cancels what is pending: no restart runs after it returns.
func TestBackoffLimitAndClose(t *testing.T) {
	sys := quietSystem()
	defer sys.Shutdown()
	child := actor.NewPID("nonhost", "child")
	sup := newFakeSupervisor()
	rs := actor.NewRestartStatistics()

	b := Restart(time.Millisecond, time.Millisecond, 2, time.Minute)
	b.HandleFailure(sys, sup, child, rs, "first", nil)
	select {
	case <-sup.restarted:
	case <-time.After(guard):
		t.Fatal("no restart after the delay")
	}
	b.HandleFailure(sys, sup, child, rs, "second", nil)
	<-sup.restarted
	b.HandleFailure(sys, sup, child, rs, "third", nil) // past the limit of 2
	select {
	case <-sup.stopped:
	case <-time.After(guard):
		t.Fatal("not stopped past the limit")
	}

	slow := Restart(time.Hour, time.Hour, 0, 0)
	slow.HandleFailure(sys, sup, child, actor.NewRestartStatistics(), "x", nil)
	if sup.pending(slow) != 1 {
		t.Fatal("no restart pending")
	}
	slow.Close()
	if sup.pending(slow) != 0 {
		t.Fatal("a restart still pending after Close")
	}
	expectNone(t, sup.restarted, "restart")
}

func TestBackoffDecider(t *testing.T) {
	sys := quietSystem()
	defer sys.Shutdown()
	child := actor.NewPID("nonhost", "child")
	sup := newFakeSupervisor()
	for _, d := range []actor.Directive{actor.StopDirective, actor.EscalateDirective} {
		b := Restart(time.Hour, time.Hour, 0, 0).WithDecider(func(any) actor.Directive { return d })
		b.HandleFailure(sys, sup, child, actor.NewRestartStatistics(), "why", nil)
		if sup.pending(b) != 0 {
			t.Fatalf("%v: a restart is pending", d)
		}
	}
	<-sup.stopped
	if got := <-sup.escalated; got != "why" {
		t.Fatalf("escalated %v", got)
	}
	// Escalation at the limit instead of a stop.
	b := Restart(time.Millisecond, time.Millisecond, 1, time.Minute).OnLimit(actor.EscalateDirective)
	rs := actor.NewRestartStatistics()
	b.HandleFailure(sys, sup, child, rs, "one", nil)
	<-sup.restarted
	b.HandleFailure(sys, sup, child, rs, "two", nil)
	if got := <-sup.escalated; got != "two" {
		t.Fatalf("escalated %v", got)
	}
	expectNone(t, sup.stopped, "stop")
}
