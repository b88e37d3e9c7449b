package actors

import (
	"context"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/extensions"
)

// The broker is one actor per process ("mitogo.broker"), the parent of
// every stream actor (one per stream to a child process: streamactor.go)
// and of the context actors of the contexts started with the Router's
// connection methods (supervise.go). It decides what joins and leaves
// children.conns, supervises its context actors, each with the Strategy
// it was connected with, and stops the process's tree in order: the
// streams first (each asks its child to stop, waits and reaps it), then
// its context actors. The router actor ("mitogo.router") beside it keeps
// the routing decisions. A child builds both only when it first needs
// its actor system (see ensureSystem): a leaf child has no broker.
//
// It takes:
//   - *startStream: spawn the stream actor of a child that is routed;
//   - *startContext: spawn the context actor of a new supervised handle;
//   - Terminated of a child: a stream leaves children.conns;
//   - Failure of a context actor: its strategy decides (HandleFailure);
//   - Stopping: the orderly stop (stopStreams).
type brokerActor struct {
	r        *Router
	streams  map[string]streamChild  // stream actors, by PID id
	contexts map[string]*supervision // context actors, by PID id
	stopping bool
}

type streamChild struct {
	pid *actor.PID
	c   *conn
}

// startStream asks the broker for the stream actor of c, whose child
// process completed the handshake with protocol version and whose route
// is in the table. It is refused once the router is closing.
type startStream struct {
	replyTo
	c       *conn
	hb      heartbeatConfig
	version int
}

// startContext asks the broker for the context actor of s.
type startContext struct {
	replyTo
	s *supervision
}

func newBroker(r *Router) *brokerActor {
	return &brokerActor{r: r, streams: map[string]streamChild{}, contexts: map[string]*supervision{}}
}

func (b *brokerActor) Receive(ctx actor.Context) {
	r := b.r
	switch m := ctx.Message().(type) {
	case *startStream:
		m.reply <- b.startStream(ctx, m)
	case *startContext:
		if b.stopping || r.isClosing() {
			m.reply <- ErrShutdown
			return
		}
		pid, err := ctx.SpawnNamed(m.s.props(), "context."+itoa(m.s.c.id))
		if err == nil {
			b.contexts[pid.Id] = m.s
		}
		m.reply <- err
	case *actor.Terminated:
		if s, ok := b.streams[m.Who.Id]; ok {
			delete(b.streams, m.Who.Id)
			r.dropConn(s.c)
		}
		delete(b.contexts, m.Who.Id)
	case *actor.Stopping:
		b.stopping = true
		b.stopStreams(ctx)
	case *actor.Stopped:
		close(r.brokerDone)
	}
}

func (b *brokerActor) startStream(ctx actor.Context, m *startStream) error {
	r, c := b.r, m.c
	r.mu.Lock()
	if b.stopping || r.closing {
		r.mu.Unlock()
		return ErrShutdown
	}
	// Before c is listed: Debug reads c.hb of the listed streams.
	c.startHeartbeatVersion(m.hb, m.version)
	r.conns[c] = struct{}{}
	r.mu.Unlock()
	pid := ctx.SpawnPrefix(actor.PropsFromProducer(func() actor.Actor {
		return &streamActor{c: c}
	}), "stream."+itoa(c.peer)+".")
	b.streams[pid.Id] = streamChild{pid: pid, c: c}
	// The reader starts now, not when the actor first runs: a connect
	// returns with its stream read. What it tells the actor waits in the
	// actor's mailbox until then.
	c.actor = pid
	r.wg.Go(c.serve)
	return nil
}

// stopStreams stops every stream actor and waits until each has reaped
// its child. Once the router hurries (Shutdown's ctx ended) the streams
// kill their children, and it waits at most reapWait more: a reaping not
// done by then goes on in its stream actor, which Shutdown joins later.
func (b *brokerActor) stopStreams(ctx actor.Context) {
	r := b.r
	conns := make([]*conn, 0, len(b.streams))
	for _, s := range b.streams {
		ctx.Stop(s.pid)
		conns = append(conns, s.c)
	}
	for i, c := range conns {
		select {
		case <-c.done:
			continue
		case <-r.hurry.Done():
		}
		t := time.NewTimer(reapWait)
		defer t.Stop()
		for _, c := range conns[i:] {
			select {
			case <-c.done:
			case <-t.C:
				r.logger.Warn("children still being reaped after the shutdown deadline", "context", r.Name())
				return
			}
		}
		return
	}
}

// HandleFailure makes the broker the supervisor of its context actors,
// each with its own strategy, as if it were its only child: an
// all-for-one strategy restarts that one context, and an escalation
// stops it (the broker has no one to escalate to). A failed stream actor
// is stopped.
func (b *brokerActor) HandleFailure(sys *actor.ActorSystem, sup actor.Supervisor, child *actor.PID, rs *actor.RestartStatistics, reason, message any) {
	s, ok := b.contexts[child.Id]
	if !ok || b.stopping || b.r.isClosing() {
		sup.StopChildren(child)
		return
	}
	s.strategy.HandleFailure(sys, onlyChild{Supervisor: sup, child: child, s: s}, child, rs, reason, message)
}

// onlyChild is the broker as the supervisor of one context actor.
type onlyChild struct {
	actor.Supervisor
	child *actor.PID
	s     *supervision
}

func (o onlyChild) Children() []*actor.PID { return []*actor.PID{o.child} }

func (o onlyChild) EscalateFailure(reason, _ any) {
	o.s.r.logger.Warn("a context's failure was escalated to the broker, which stops it", "context", o.s.name(), "reason", reason)
	o.StopChildren(o.child)
}

// askBroker sends msg to the broker and waits for its answer, on a
// private channel as ask does; ErrShutdown once the broker has stopped.
func (r *Router) askBroker(msg routeChange) error {
	r.ensureSystem()
	done := make(chan error, 1)
	msg.setReply(done)
	r.system.Root.Send(r.brokerPID, msg)
	select {
	case err := <-done:
		return err
	case <-r.brokerDone:
		return ErrShutdown
	}
}

// startStream hands c, a stream to a child routed from here, to a stream
// actor of its own, which starts its heartbeat and its reader.
func (r *Router) startStream(c *conn, hb heartbeatConfig, version int) error {
	return r.askBroker(&startStream{c: c, hb: hb, version: version})
}

// stopBroker stops the process's streams and the broker's contexts in
// order (see brokerActor) and waits for the broker, until ctx ends and
// reapWait more at most. Once ctx ends the streams hurry: they kill their
// children and cut every grace period of reaping short.
func (r *Router) stopBroker(ctx context.Context) {
	if !r.sysBuilt.Load() {
		return // a child that never needed actors has no streams of its own
	}
	stop := context.AfterFunc(ctx, r.hurryNow)
	defer stop()
	r.system.Root.Stop(r.brokerPID)
	select {
	case <-r.brokerDone:
		return
	case <-ctx.Done():
	}
	t := time.NewTimer(reapWait)
	defer t.Stop()
	select {
	case <-r.brokerDone:
	case <-t.C:
	}
}

// routerExt makes a Router findable from its actor system, for the
// strategies that supervise its actors (Backoff registers its pending
// restarts with it, so that Shutdown cancels and joins them).
type routerExt struct{ r *Router }

var routerExtID = extensions.NextExtensionID()

func (routerExt) ExtensionID() extensions.ExtensionID { return routerExtID }

// routerOf returns the Router whose actor system sys is, or nil.
func routerOf(sys *actor.ActorSystem) *Router {
	if e, ok := sys.Extensions.Get(routerExtID).(routerExt); ok {
		return e.r
	}
	return nil
}

// armRestart runs arm, which arms a restart of b for an actor of this
// router, and notes b so that Shutdown cancels it; once Shutdown has
// begun dropping restarts it arms nothing and reports false.
func (r *Router) armRestart(b *Backoff, arm func()) bool {
	r.backoffMu.Lock()
	defer r.backoffMu.Unlock()
	if r.backoffsClosed {
		return false
	}
	if r.backoffs == nil {
		r.backoffs = map[*Backoff]struct{}{}
	}
	r.backoffs[b] = struct{}{}
	arm()
	return true
}

func (r *Router) backoffList() []*Backoff {
	r.backoffMu.Lock()
	defer r.backoffMu.Unlock()
	out := make([]*Backoff, 0, len(r.backoffs))
	for b := range r.backoffs {
		out = append(out, b)
	}
	return out
}

// cancelRestarts drops the restarts pending for the actor pid: it stopped.
func (r *Router) cancelRestarts(pid *actor.PID) {
	for _, b := range r.backoffList() {
		b.cancel(r.system, pid)
	}
}

// stopRestarts drops every restart pending in this router's actor system
// and waits for those under way; none is armed after.
func (r *Router) stopRestarts() {
	r.backoffMu.Lock()
	r.backoffsClosed = true
	r.backoffMu.Unlock()
	for _, b := range r.backoffList() {
		b.stopTimers(r.system)
	}
}
