package actors

import (
	"context"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// Strategy says what a context's supervisor does when the context dies.
type Strategy struct {
	restart     bool
	initial     time.Duration
	max         time.Duration
	maxRestarts int
	window      time.Duration
}

// Stop leaves a dead context dead: its handle's Done closes and calls fail
// with *ChannelError. It is the default.
func Stop() Strategy { return Strategy{} }

// Restart starts a new process for a context that died, waiting initial
// before the first attempt and doubling the wait after each failure up to
// max. After maxRestarts failures within window it gives up and the context
// is dead. Calls made while it restarts wait for it (within their deadline).
func Restart(initial, max time.Duration, maxRestarts int, window time.Duration) Strategy {
	if initial <= 0 {
		initial = 10 * time.Millisecond
	}
	if max < initial {
		max = initial
	}
	return Strategy{restart: true, initial: initial, max: max, maxRestarts: maxRestarts, window: window}
}

// supervision ties a Context handle to its two actors: a supervisor whose
// strategy decides on failures, and the Context actor below it, which runs
// the connection and turns the child's death into a failure.
type supervision struct {
	c        *Context
	strategy Strategy
	connect  func(ctx context.Context) (pid int, err error)

	firstCtx context.Context
	first    chan error // the outcome of the first connection

	mu      sync.Mutex
	sup     *actor.PID
	supDone chan struct{} // closed when the supervisor actor has stopped
	self    *actor.PID
	timer   *time.Timer
	lastErr error
	stopped bool
}

// lostMsg tells the Context actor that its child's route went away.
type lostMsg struct{ err error }

func (s *supervision) start(ctx context.Context) error {
	s.firstCtx = ctx
	first := make(chan error, 1)
	s.first = first
	sys := s.c.r.System()
	props := actor.PropsFromProducer(func() actor.Actor { return &supervisorActor{s: s} },
		actor.WithSupervisor(&strategyAdapter{s: s}))
	s.supDone = make(chan struct{})
	s.mu.Lock()
	s.sup = sys.Root.Spawn(props)
	s.mu.Unlock()
	return <-first
}

func (s *supervision) lost(err error) {
	s.mu.Lock()
	s.lastErr = err
	self := s.self
	s.mu.Unlock()
	if self != nil {
		s.c.r.system.Root.Send(self, &lostMsg{err: err})
	}
}

// stop cancels a pending restart and stops both actors.
func (s *supervision) stop() {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return
	}
	s.stopped = true
	if s.timer != nil {
		s.timer.Stop()
	}
	sup := s.sup
	s.mu.Unlock()
	if sup == nil {
		return
	}
	select {
	case <-s.supDone:
	default:
		s.c.r.system.Root.Stop(sup)
		<-s.supDone
	}
}

func (s *supervision) isStopped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped
}

type supervisorActor struct{ s *supervision }

func (a *supervisorActor) Receive(ctx actor.Context) {
	switch ctx.Message().(type) {
	case *actor.Started:
		pid := ctx.Spawn(actor.PropsFromProducer(func() actor.Actor { return &contextActor{s: a.s} }))
		a.s.mu.Lock()
		a.s.self = pid
		a.s.mu.Unlock()
	case *actor.Terminated:
		ctx.Stop(ctx.Self())
	case *actor.Stopped:
		close(a.s.supDone)
	}
}

// contextActor connects its context when it starts (and restarts), and
// fails when the context dies, so that the supervisor's strategy acts.
type contextActor struct {
	s *supervision
}

func (a *contextActor) Receive(ctx actor.Context) {
	s, c := a.s, a.s.c
	switch m := ctx.Message().(type) {
	case *actor.Started:
		first := s.first != nil
		cctx := s.c.r.base
		if first {
			cctx = s.firstCtx
		}
		pid, err := s.connect(cctx)
		if first {
			s.first <- err
			s.first = nil
			s.firstCtx = nil
			if err != nil {
				s.mu.Lock()
				s.lastErr = err
				s.mu.Unlock()
				ctx.Stop(ctx.Self())
				return
			}
		} else if err != nil {
			s.mu.Lock()
			s.lastErr = err
			s.mu.Unlock()
			c.r.logger.Warn("restarting a context failed", "context", c.name, "error", err)
			panic(err) // a failure: the strategy decides on another attempt
		}
		c.markUp(pid)
		if !first {
			c.r.logger.Info("context restarted", "context", c.name, "pid", pid)
		}
	case *lostMsg:
		c.mu.Lock()
		stopping := c.stopping
		c.mu.Unlock()
		if stopping || s.isStopped() || c.r.isClosing() {
			ctx.Stop(ctx.Self())
			return
		}
		panic(m.err) // the child died: a failure for the supervisor
	case *actor.Stopped:
		s.mu.Lock()
		err := s.lastErr
		s.mu.Unlock()
		c.markDead(err)
		c.r.forgetHandle(c) // the handle lives on with its user
	}
}

// strategyAdapter is the protoactor SupervisorStrategy for one context.
type strategyAdapter struct{ s *supervision }

func (st *strategyAdapter) HandleFailure(_ *actor.ActorSystem, sup actor.Supervisor, child *actor.PID, rs *actor.RestartStatistics, reason interface{}, _ interface{}) {
	s := st.s
	strat := s.strategy
	if !strat.restart || s.isStopped() || s.c.r.isClosing() {
		sup.StopChildren(child)
		return
	}
	if strat.window > 0 && rs.NumberOfFailures(strat.window) == 0 {
		rs.Reset()
	}
	rs.Fail()
	n := rs.FailureCount()
	if strat.maxRestarts > 0 && n > strat.maxRestarts {
		s.c.r.logger.Warn("context failed too often; giving up", "context", s.c.name, "failures", n, "reason", reason)
		sup.StopChildren(child)
		return
	}
	delay := strat.initial
	for i := 1; i < n && delay < strat.max; i++ {
		delay *= 2
	}
	if delay > strat.max {
		delay = strat.max
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		sup.StopChildren(child)
		return
	}
	s.timer = time.AfterFunc(delay, func() { sup.RestartChildren(child) })
}
