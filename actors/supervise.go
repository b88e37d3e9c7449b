package actors

import (
	"context"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/mitogo/mitogo/messages"
)

// Context actors. Every supervised handle (from the Router's connection
// methods, or from ContextProps) has one actor, its PID the handle's
// ActorPID, that lives as long as the context: it connects when it
// starts, and again after each restart, under the same id and handle;
// when a process of the context dies, the actor fails with the
// *ChannelError, and its parent's protoactor SupervisorStrategy decides;
// when it stops for good, the handle's Done closes and Terminated reaches
// its watchers and its parent.
//
// The cause of the end is the handle's Err: it is set before the actor
// stops, so a watcher that receives Terminated (whose Why is only an
// enum) reads it from the handle (ContextUp carries the handle to the
// actor that spawned a ContextProps).
//
// A context actor takes:
//   - Started: connect (on a goroutine of its own; the outcome comes back
//     as *connected), the first time and after each restart;
//   - *connected: the process is up (ContextUp goes to a parent that is
//     not the broker), or connecting failed: a failure for the strategy;
//   - *lostMsg: the context's route was lost (router actor): a failure;
//   - *afterFailure: sent to itself as it fails; if it arrives with
//     nothing connecting, the strategy resumed it, and a dead process
//     cannot resume: it connects again (a restart without the actor's);
//   - Restarting, Stopping: the connection in flight is cancelled and
//     joined, and a process still up is asked to stop (an all-for-one
//     restart of a healthy context, or its supervisor stopping);
//   - Stopped: the handle is dead (Err is the last failure, else
//     ErrShutdown) and pending restarts are dropped.

// supervision is a supervised handle's actor side, shared by the
// incarnations of its context actor.
type supervision struct {
	r         *Router
	strategy  Strategy  // under the broker: decides on its failures; nil under a user's actor
	connector Connector // ContextProps: makes the handle, at its first connection

	mu       sync.Mutex
	c        *Context                                   // the handle; nil until a ContextProps connector made it
	dial     func(context.Context) (pid int, err error) // (re)connects the handle's context, under its id
	first    chan error                                 // the Router's methods: the first connection's outcome, taken once
	firstCtx context.Context                            // and its ctx
	firstPID int                                        // ContextProps: the process the connector's connection started
	pid      *actor.PID                                 // the context actor, once started
	gen      uint64                                     // bumped by each connection attempt
	cancel   context.CancelFunc                         // ends the attempt in flight
	attempt  chan struct{}                              // closed when the attempt in flight has returned
	ups      int                                        // connections made
	lastErr  error
	stopped  bool
	done     chan struct{} // closed when the context actor has stopped
}

func newSupervision(r *Router) *supervision {
	return &supervision{r: r, done: make(chan struct{})}
}

// Messages of a context actor.
type (
	connected struct {
		gen uint64
		pid int
		err error
	}
	lostMsg struct {
		gen uint64
		err error
	}
	afterFailure struct{ gen uint64 }
)

// ContextUp tells the actor that spawned a ContextProps actor that a
// process now serves its context: after the first connection and after
// each restart (Restart set). Context is the handle, the same one each
// time; Actor is the context actor.
type ContextUp struct {
	Context *Context
	Actor   *actor.PID
	Restart bool
}

func (s *supervision) props() *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor { return &contextActor{s: s} })
}

// start spawns the context actor of a handle made by one of the Router's
// methods under the broker, and waits for the first connection.
func (s *supervision) start(ctx context.Context) error {
	first := make(chan error, 1)
	s.mu.Lock()
	s.first, s.firstCtx = first, ctx
	s.mu.Unlock()
	if err := s.r.askBroker(&startContext{s: s}); err != nil {
		return err
	}
	select {
	case err := <-first:
		return err
	case <-s.done:
		select {
		case err := <-first:
			return err
		default:
			return ErrShutdown // stopped while connecting
		}
	}
}

// lost is called by the router actor when the context's route went away.
func (s *supervision) lost(err error) {
	s.mu.Lock()
	s.lastErr = err
	pid, gen := s.pid, s.gen
	s.mu.Unlock()
	if pid != nil {
		s.r.system.Root.Send(pid, &lostMsg{gen: gen, err: err})
	}
}

// stop stops the context actor and waits until it has stopped.
func (s *supervision) stop() {
	s.mu.Lock()
	pid := s.pid
	s.mu.Unlock()
	if pid == nil {
		return
	}
	select {
	case <-s.done:
		return
	default:
	}
	s.r.system.Root.Stop(pid)
	<-s.done
}

func (s *supervision) handle() *Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c
}

func (s *supervision) actorPID() *actor.PID {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pid
}

func (s *supervision) name() string {
	if c := s.handle(); c != nil {
		return c.name
	}
	return "(not connected yet)"
}

func (s *supervision) generation() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gen
}

func (s *supervision) setLastErr(err error) {
	s.mu.Lock()
	s.lastErr = err
	s.mu.Unlock()
}

// giveUp reports whether a failure must stop the actor rather than go to
// the strategy: its handle is being shut down, or the router is.
func (s *supervision) giveUp() bool {
	if c := s.handle(); c != nil {
		c.mu.Lock()
		stopping := c.stopping
		c.mu.Unlock()
		if stopping {
			return true
		}
	}
	return s.r.isClosing()
}

type contextActor struct {
	s  *supervision
	up bool // a process of this incarnation serves the context
}

func (a *contextActor) Receive(ctx actor.Context) {
	s := a.s
	switch m := ctx.Message().(type) {
	case *actor.Started:
		s.mu.Lock()
		if s.pid == nil {
			s.pid = ctx.Self()
		}
		mine := s.pid.Equal(ctx.Self())
		s.mu.Unlock()
		if !mine {
			s.r.logger.Error("a ContextProps was spawned twice; the second actor stops", "actor", ctx.Self().String())
			ctx.Stop(ctx.Self())
			return
		}
		s.attemptConnect(ctx.Self())
	case *connected:
		if m.gen == s.generation() {
			s.endAttempt()
			a.connected(ctx, m)
		}
	case *lostMsg:
		if m.gen == s.generation() && a.up {
			a.up = false
			a.fail(ctx, m.err)
		}
	case *afterFailure:
		s.mu.Lock()
		resumed := m.gen == s.gen && s.attempt == nil && !a.up
		s.mu.Unlock()
		if resumed {
			s.r.logger.Info("a dead process cannot resume: connecting the context again", "context", s.name())
			s.attemptConnect(ctx.Self())
		}
	case *actor.Restarting:
		s.endAttempt()
		s.endProcess()
	case *actor.Stopping:
		s.endAttempt()
		if !s.r.isClosing() && s.actorPID().Equal(ctx.Self()) {
			s.endProcess()
		}
	case *actor.Stopped:
		if s.actorPID().Equal(ctx.Self()) {
			s.finish(ctx.Self())
		}
	}
}

func (a *contextActor) connected(ctx actor.Context, m *connected) {
	s := a.s
	s.mu.Lock()
	first := s.first
	s.first, s.firstCtx = nil, nil
	c := s.c
	s.mu.Unlock()
	if m.err != nil {
		s.setLastErr(m.err)
		if first != nil {
			first <- m.err // the Router's method returns it: nothing to supervise
			ctx.Stop(ctx.Self())
			return
		}
		s.r.logger.Warn("connecting a context failed", "context", s.name(), "error", m.err)
		a.fail(ctx, m.err)
		return
	}
	a.up = true
	c.markUp(m.pid)
	s.mu.Lock()
	s.ups++
	restart := s.ups > 1
	s.mu.Unlock()
	if first != nil {
		first <- nil
	} else if restart {
		s.r.logger.Info("context restarted", "context", c.name, "pid", m.pid)
	}
	if p := ctx.Parent(); p != nil && !p.Equal(s.r.brokerPID) {
		ctx.Send(p, &ContextUp{Context: c, Actor: ctx.Self(), Restart: restart})
	}
}

// fail hands err to the supervisor's strategy: the actor panics with it.
// First it sends itself afterFailure, which tells it, if it is resumed
// rather than restarted, that it has no process and must connect again.
func (a *contextActor) fail(ctx actor.Context, err error) {
	if a.s.giveUp() {
		ctx.Stop(ctx.Self())
		return
	}
	ctx.Send(ctx.Self(), &afterFailure{gen: a.s.generation()})
	panic(err)
}

// attemptConnect connects the context on a goroutine of the router's
// connects group; the outcome comes back to self as *connected.
func (s *supervision) attemptConnect(self *actor.PID) {
	s.mu.Lock()
	base := context.Background()
	if s.first != nil {
		base = s.firstCtx
	}
	ctx, cancel := context.WithCancel(base)
	done := make(chan struct{})
	s.gen++
	gen := s.gen
	s.cancel, s.attempt = cancel, done
	s.mu.Unlock()
	sys := s.r.system
	started := s.r.connects.run(func() {
		defer close(done)
		pid, err := s.connectOnce(ctx)
		cancel()
		sys.Root.Send(self, &connected{gen: gen, pid: pid, err: err})
	})
	if !started {
		cancel()
		close(done)
		sys.Root.Send(self, &connected{gen: gen, err: errorf("mitogo: connecting %s: %w", s.name(), ErrShutdown)})
	}
}

// connectOnce makes one connection: with the handle's dial, or, for a
// ContextProps whose handle does not exist yet, with its connector.
func (s *supervision) connectOnce(ctx context.Context) (int, error) {
	s.mu.Lock()
	dial := s.dial
	s.mu.Unlock()
	if dial != nil {
		return dial(ctx)
	}
	_, err := s.connector(context.WithValue(ctx, supervisionKey{}, s), s.r)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil && s.dial == nil {
		err = errorf("mitogo: ContextProps: the Connector made no connection with the Router's methods")
	}
	return s.firstPID, err
}

// endAttempt cancels the connection attempt in flight and waits for it.
func (s *supervision) endAttempt() {
	s.mu.Lock()
	cancel, done := s.cancel, s.attempt
	s.cancel, s.attempt = nil, nil
	s.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// stopGrace is how long a context asked to stop by its actor gets before
// it is killed (a direct child) or left to its parent.
const stopGrace = 5 * time.Second

// endProcess stops the context's process if it is up, and waits until its
// route is gone.
func (s *supervision) endProcess() {
	c := s.handle()
	if c == nil {
		return
	}
	c.mu.Lock()
	up, gone := c.state == stateUp, c.gone
	c.mu.Unlock()
	if !up {
		return
	}
	h := messages.Header{Kind: messages.KindControl, Dst: c.id, Src: s.r.id, Type: messages.ControlShutdown}
	if err := s.r.send(&h, nil); err != nil {
		return
	}
	t := time.NewTimer(stopGrace)
	defer t.Stop()
	select {
	case <-gone:
		return
	case <-t.C:
	}
	s.r.killContext(c.id)
	t.Reset(reapWait)
	select {
	case <-gone:
	case <-t.C:
		s.r.logger.Warn("a stopped context's process is still there", "context", c.name)
	}
}

// finish records that the context actor stopped for good.
func (s *supervision) finish(self *actor.PID) {
	s.mu.Lock()
	s.stopped = true
	err, c := s.lastErr, s.c
	s.mu.Unlock()
	s.r.cancelRestarts(self)
	if c != nil {
		c.markDead(err)
		s.r.forgetHandle(c) // the handle lives on with its user
	}
	close(s.done)
}

// supervisionKey marks the ctx a ContextProps connector runs with: the
// Router's method it calls makes the handle of that supervision.
type supervisionKey struct{}

// claimedBy returns the supervision whose connector runs with ctx, if
// the handle r is about to make is its: the first one r makes with ctx.
func (r *Router) claimedBy(ctx context.Context) *supervision {
	s, ok := ctx.Value(supervisionKey{}).(*supervision)
	if !ok || s.r != r {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.c != nil {
		return nil
	}
	return s
}

// ContextProps returns the Props of a context actor that keeps one
// context for the actor that spawns it: it connects with connect (which
// must start the context with one of r's methods: Local, SSH, Sudo, ...),
// and its parent supervises it with the parent's own SupervisorStrategy,
// whose Decider sees the *ChannelError of a lost process or the
// *StreamError (or *TimeoutError) of a failed connection.
//
//   - Each time a process serves the context, the parent receives a
//     *ContextUp with the handle (the same one after each restart).
//   - A restart starts a new process under the same id and handle; calls
//     made while it restarts wait for it (within their deadline); calls and
//     channels that were in flight on the old process fail with
//     *ChannelError. Resume is a restart too: a dead process cannot resume.
//     Restart(...) is an exponential backoff with a limit.
//   - Stopping the context actor, or its parent (children stop first),
//     shuts the context down; an all-for-one strategy restarts every
//     context of the parent together; an escalation goes to the parent's
//     parent.
//   - When it stops for good, Terminated reaches its parent and watchers;
//     the handle's Done is closed by then and its Err says why.
//
// Spawn the Props once: each makes one context actor. Router.Shutdown
// stops the context actors it finds, wherever they are in the tree.
func (r *Router) ContextProps(connect Connector) *actor.Props {
	s := newSupervision(r)
	s.connector = connect
	return s.props()
}
