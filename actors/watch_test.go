package actors_test

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/mitogo/mitogo/actors"
)

// watchProbe watches and unwatches what it is told to, and passes every
// Terminated it gets on got.
type watchProbe struct{ got chan *actor.Terminated }

// watchCmd asks a watchProbe to watch pid (or unwatch it); it answers
// once it has, that is once the Watch left its context.
type watchCmd struct {
	pid     *actor.PID
	unwatch bool
}

func (p *watchProbe) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *watchCmd:
		if m.unwatch {
			c.Unwatch(m.pid)
		} else {
			c.Watch(m.pid)
		}
		c.Respond(true)
	case *actor.Terminated:
		p.got <- m
	}
}

func spawnWatchProbe(t *testing.T, sys *actor.ActorSystem) (*actor.PID, chan *actor.Terminated) {
	t.Helper()
	got := make(chan *actor.Terminated, 16)
	return sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return &watchProbe{got: got} })), got
}

func tell(t *testing.T, sys *actor.ActorSystem, probe *actor.PID, cmd *watchCmd) {
	t.Helper()
	if _, err := sys.Root.RequestFuture(probe, cmd, 20*time.Second).Result(); err != nil {
		t.Fatal(err)
	}
}

func nextTerminated(t *testing.T, got chan *actor.Terminated) *actor.Terminated {
	t.Helper()
	select {
	case m := <-got:
		return m
	case <-time.After(20 * time.Second):
		t.Fatal("no Terminated within 20s")
		return nil
	}
}

func expectTerminated(t *testing.T, got chan *actor.Terminated, who *actor.PID, why actor.TerminatedReason) {
	t.Helper()
	m := nextTerminated(t, got)
	if !m.Who.Equal(who) || m.Why != why {
		t.Fatalf("got Terminated{%v, %v}, want Terminated{%v, %v}", m.Who, m.Why, who, why)
	}
}

func expectWatchCounts(t *testing.T, r *actors.Router, cs ...*actors.Context) {
	t.Helper()
	if w, p := actors.WatchCounts(r); w != 0 || p != 0 {
		t.Errorf("master still holds %d watches and %d proxies", w, p)
	}
	for _, c := range cs {
		n, err := actors.ChildWatchCounts.Call(ctxT(t), c, struct{}{})
		if err != nil {
			t.Fatal(err)
		}
		if n != [2]int{} {
			t.Errorf("%s still holds %d watches and %d proxies", c.Name(), n[0], n[1])
		}
	}
}

// stopActors stops the named actors of its context one after another,
// each once it has stopped and told its watchers.
var stopActors = actors.Register("test.stopActors", func(ctx context.Context, names []string) (bool, error) {
	sys := actors.RouterFrom(ctx).System()
	for _, n := range names {
		if err := sys.Root.StopFuture(actor.NewPID(sys.Address(), n)).Wait(); err != nil {
			return false, err
		}
	}
	return true, nil
})

func TestWatchActorInChild(t *testing.T) {
	r := newRouter(t)
	c := local(t, r)
	sys := r.System()
	if _, err := spawnPong.Call(ctxT(t), c, "x"); err != nil {
		t.Fatal(err)
	}
	probe, got := spawnWatchProbe(t, sys)
	tell(t, sys, probe, &watchCmd{pid: c.PID("x")})
	sys.Root.Stop(c.PID("x")) // on the same stream as the Watch, after it
	expectTerminated(t, got, c.PID("x"), actor.TerminatedReason_Stopped)
	expectWatchCounts(t, r, c)
}

func TestWatchMissingActorInChild(t *testing.T) {
	r := newRouter(t)
	c := local(t, r)
	probe, got := spawnWatchProbe(t, r.System())
	tell(t, r.System(), probe, &watchCmd{pid: c.PID("nobody")})
	expectTerminated(t, got, c.PID("nobody"), actor.TerminatedReason_NotFound)
	expectWatchCounts(t, r, c)
}

func TestUnwatchActorInChild(t *testing.T) {
	r := newRouter(t)
	c := local(t, r)
	sys := r.System()
	for _, n := range []string{"x", "y"} {
		if _, err := spawnPong.Call(ctxT(t), c, n); err != nil {
			t.Fatal(err)
		}
	}
	probe, got := spawnWatchProbe(t, sys)
	tell(t, sys, probe, &watchCmd{pid: c.PID("x")})
	tell(t, sys, probe, &watchCmd{pid: c.PID("y")})
	tell(t, sys, probe, &watchCmd{pid: c.PID("x"), unwatch: true})
	// x stops first and tells its watchers before y stops: a Terminated
	// for x would come back on the same stream before y's, the marker.
	if _, err := stopActors.Call(ctxT(t), c, []string{"x", "y"}); err != nil {
		t.Fatal(err)
	}
	expectTerminated(t, got, c.PID("y"), actor.TerminatedReason_Stopped)
	select {
	case m := <-got:
		t.Fatalf("Terminated after the marker: %v", m)
	default:
	}
	expectWatchCounts(t, r, c)
}

func TestWatchActorTwoHopsDownMiddleKilled(t *testing.T) {
	r := newRouter(t)
	c1 := local(t, r)
	c2 := local(t, r, actors.Via(c1))
	if _, err := spawnPong.Call(ctxT(t), c2, "leaf"); err != nil {
		t.Fatal(err)
	}
	probe, got := spawnWatchProbe(t, r.System())
	tell(t, r.System(), probe, &watchCmd{pid: c2.PID("leaf")})
	// A call on the same way, after the Watch: once it returns, the
	// leaf is watched.
	if _, err := actors.ChildWatchCounts.Call(ctxT(t), c2, struct{}{}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(c1.ProcessID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	expectTerminated(t, got, c2.PID("leaf"), actor.TerminatedReason_AddressTerminated)
	expectWatchCounts(t, r)
}

func TestWatchedContextKilled(t *testing.T) {
	r := newRouter(t)
	c := local(t, r)
	if _, err := spawnPong.Call(ctxT(t), c, "x"); err != nil {
		t.Fatal(err)
	}
	probe, got := spawnWatchProbe(t, r.System())
	tell(t, r.System(), probe, &watchCmd{pid: c.PID("x")})
	n, err := actors.ChildWatchCounts.Call(ctxT(t), c, struct{}{})
	if err != nil || n[1] != 1 {
		t.Fatalf("child's watch counts %v, %v; want one proxy", n, err)
	}
	if err := syscall.Kill(c.ProcessID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	expectTerminated(t, got, c.PID("x"), actor.TerminatedReason_AddressTerminated)
	expectWatchCounts(t, r)
	// A watch made after the loss ends at once, the same way.
	tell(t, r.System(), probe, &watchCmd{pid: c.PID("x")})
	expectTerminated(t, got, c.PID("x"), actor.TerminatedReason_AddressTerminated)
}

// Watches made by an actor in a child: childWatch starts a probe there
// watching target and answers once its Watch has left; childTerminated
// waits for what that probe gets.
type terminatedInfo struct {
	Who string
	Why int32
}

var childProbes sync.Map // probe id -> chan *actor.Terminated, in a child

var (
	childWatch = actors.Register("test.childWatch", func(ctx context.Context, target [2]string) (string, error) {
		sys := actors.RouterFrom(ctx).System()
		got := make(chan *actor.Terminated, 16)
		probe := sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return &watchProbe{got: got} }))
		childProbes.Store(probe.Id, got)
		if _, err := sys.Root.RequestFuture(probe, &watchCmd{pid: actor.NewPID(target[0], target[1])}, 20*time.Second).Result(); err != nil {
			return "", err
		}
		return probe.Id, nil
	})
	childTerminated = actors.Register("test.childTerminated", func(ctx context.Context, probe string) (terminatedInfo, error) {
		v, ok := childProbes.Load(probe)
		if !ok {
			return terminatedInfo{}, fmt.Errorf("no probe %q", probe)
		}
		select {
		case m := <-v.(chan *actor.Terminated):
			return terminatedInfo{Who: m.Who.String(), Why: int32(m.Why)}, nil
		case <-ctx.Done():
			return terminatedInfo{}, ctx.Err()
		}
	})
)

func watchFromChild(t *testing.T, c *actors.Context, target *actor.PID) string {
	t.Helper()
	probe, err := childWatch.Call(ctxT(t), c, [2]string{target.Address, target.Id})
	if err != nil {
		t.Fatal(err)
	}
	return probe
}

func expectChildTerminated(t *testing.T, c *actors.Context, probe string, who *actor.PID, why actor.TerminatedReason) {
	t.Helper()
	got, err := childTerminated.Call(ctxT(t), c, probe)
	if err != nil {
		t.Fatal(err)
	}
	if want := (terminatedInfo{Who: who.String(), Why: int32(why)}); got != want {
		t.Fatalf("%s got Terminated %+v, want %+v", c.Name(), got, want)
	}
}

func TestChildWatchesMasterActor(t *testing.T) {
	r := newRouter(t, actors.AllowUpward("actor:target"))
	c := local(t, r)
	sys := r.System()
	target, err := sys.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return &pongActor{} }), "target")
	if err != nil {
		t.Fatal(err)
	}
	probe := watchFromChild(t, c, target)
	if _, p := actors.WatchCounts(r); p != 1 {
		t.Fatalf("master holds %d proxies, want 1", p)
	}
	if err := sys.Root.StopFuture(target).Wait(); err != nil {
		t.Fatal(err)
	}
	expectChildTerminated(t, c, probe, target, actor.TerminatedReason_Stopped)
	expectWatchCounts(t, r, c)

	// A watcher's context that goes away takes its watches with it.
	other, err := sys.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return &pongActor{} }), "target")
	if err != nil {
		t.Fatal(err)
	}
	watchFromChild(t, c, other)
	if err := syscall.Kill(c.ProcessID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-c.Done()
	expectWatchCounts(t, r)
}

func TestChildWatchRefusedUpward(t *testing.T) {
	r := newRouter(t) // no actor allowed upward
	c := local(t, r)
	sys := r.System()
	target, err := sys.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return &pongActor{ctxID: 0} }), "target")
	if err != nil {
		t.Fatal(err)
	}
	probe := watchFromChild(t, c, target)
	expectChildTerminated(t, c, probe, target, actor.TerminatedReason_AddressTerminated)
	expectWatchCounts(t, r, c)
	// The refused watcher did nothing to the target.
	if _, err := sys.Root.RequestFuture(target, &Ping{Text: "alive"}, 20*time.Second).Result(); err != nil {
		t.Fatal(err)
	}
}

func TestWatchSideways(t *testing.T) {
	for _, allowed := range []bool{false, true} {
		t.Run(fmt.Sprintf("allowed=%v", allowed), func(t *testing.T) {
			var opts []actors.Option
			if allowed {
				opts = append(opts, actors.AllowSideways())
			}
			r := newRouter(t, opts...)
			a, b := local(t, r), local(t, r)
			if _, err := spawnPong.Call(ctxT(t), b, "x"); err != nil {
				t.Fatal(err)
			}
			probe := watchFromChild(t, a, b.PID("x"))
			if !allowed {
				expectChildTerminated(t, a, probe, b.PID("x"), actor.TerminatedReason_AddressTerminated)
				expectWatchCounts(t, r, a, b)
				return
			}
			// The master forwarded a's Watch to b before it read the
			// reply to childWatch, so b reads it before this call.
			if n, err := actors.ChildWatchCounts.Call(ctxT(t), b, struct{}{}); err != nil || n[1] != 1 {
				t.Fatalf("b's watch counts %v, %v; want one proxy", n, err)
			}
			if _, err := stopActors.Call(ctxT(t), b, []string{"x"}); err != nil {
				t.Fatal(err)
			}
			expectChildTerminated(t, a, probe, b.PID("x"), actor.TerminatedReason_Stopped)
			expectWatchCounts(t, r, a, b)
		})
	}
}

func TestShutdownReleasesWatches(t *testing.T) {
	r := newRouter(t, actors.AllowUpward("actor:target"))
	c := local(t, r)
	sys := r.System()
	target, err := sys.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return &pongActor{} }), "target")
	if err != nil {
		t.Fatal(err)
	}
	watchFromChild(t, c, target)
	if _, err := spawnPong.Call(ctxT(t), c, "x"); err != nil {
		t.Fatal(err)
	}
	probe, _ := spawnWatchProbe(t, sys)
	tell(t, sys, probe, &watchCmd{pid: c.PID("x")})
	if w, p := actors.WatchCounts(r); w != 1 || p != 1 {
		t.Fatalf("master holds %d watches and %d proxies, want 1 and 1", w, p)
	}
	if err := r.Shutdown(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if w, p := actors.WatchCounts(r); w != 0 || p != 0 {
		t.Fatalf("after Shutdown the master holds %d watches and %d proxies", w, p)
	}
}

// A context that stops answering heartbeats is lost like a dead one: its
// watched actors end in AddressTerminated.
func TestWatchedContextSilent(t *testing.T) {
	r := newRouter(t)
	c := local(t, r, actors.Heartbeat(50*time.Millisecond, 2))
	if _, err := spawnPong.Call(ctxT(t), c, "x"); err != nil {
		t.Fatal(err)
	}
	probe, got := spawnWatchProbe(t, r.System())
	tell(t, r.System(), probe, &watchCmd{pid: c.PID("x")})
	stop(t, c.ProcessID())
	expectTerminated(t, got, c.PID("x"), actor.TerminatedReason_AddressTerminated)
	expectWatchCounts(t, r)
}
