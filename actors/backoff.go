package actors

import (
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// Strategy is what a context's supervisor does when the context dies or
// a restart fails to connect: any protoactor SupervisorStrategy. Its
// Decider (for the strategies that take one) sees the failure's reason,
// a *ChannelError when a process of the context died, or the
// *StreamError or *TimeoutError of a connection that failed.
//
// A dead process cannot resume: ResumeDirective is taken as a restart (a
// new process under the same id and handle). StopDirective leaves the
// context dead: its handle's Done closes. EscalateDirective hands the
// failure to the supervisor's own parent (for contexts made by the
// Router's connection methods, which the Router's broker supervises, it
// stops the context: the broker has nothing above it to escalate to).
type Strategy = actor.SupervisorStrategy

// Stop leaves a dead context dead: its handle's Done closes and calls fail
// with *ChannelError. It is the default.
func Stop() Strategy { return stopStrategy }

var stopStrategy = actor.NewOneForOneStrategy(0, 0, func(any) actor.Directive { return actor.StopDirective })

// Backoff is the strategy Restart returns: a restart after a delay that
// doubles with each failure in a row, up to a limit of failures within a
// window. Unlike protoactor's ExponentialBackoffStrategy (whose delay
// grows linearly, which never gives up, and whose timers nobody stops),
// its delays double, it gives up, and its pending restarts are cancelled
// and joined when the Router that the supervised actors belong to shuts
// down, or by Close. One Backoff may supervise many actors.
type Backoff struct {
	initial     time.Duration
	max         time.Duration
	maxRestarts int
	window      time.Duration
	decider     actor.DeciderFunc
	atLimit     actor.Directive

	mu      sync.Mutex
	pending map[*pendingRestart]struct{} // armed restarts, until they fire or are cancelled
	wg      sync.WaitGroup               // one per armed restart whose callback may still run
}

// pendingRestart is one restart waiting for its delay.
type pendingRestart struct {
	sys   *actor.ActorSystem
	child *actor.PID
	t     *time.Timer
}

// Restart starts a new process for a context that died, waiting initial
// before the first attempt and doubling the wait after each failure in a
// row up to max. After maxRestarts failures within window (0: no limit)
// it gives up: the context is stopped (see OnLimit). Calls made while it
// restarts wait for it, within their deadline. The reason of every
// failure goes through its decider first (see WithDecider).
func Restart(initial, max time.Duration, maxRestarts int, window time.Duration) *Backoff {
	if initial <= 0 {
		initial = 10 * time.Millisecond
	}
	if max < initial {
		max = initial
	}
	return &Backoff{initial: initial, max: max, maxRestarts: maxRestarts, window: window,
		atLimit: actor.StopDirective, pending: map[*pendingRestart]struct{}{}}
}

// WithDecider makes d decide on each failure first: RestartDirective and
// ResumeDirective restart with backoff, StopDirective stops the context at
// once, EscalateDirective passes the failure to the supervisor's parent.
// The default restarts on every failure. It returns b.
func (b *Backoff) WithDecider(d actor.DeciderFunc) *Backoff {
	b.decider = d
	return b
}

// OnLimit sets what happens when the limit of failures within the window
// is passed: StopDirective (the default) stops the context;
// EscalateDirective passes the failure to the supervisor's parent, whose
// own strategy then decides about the supervisor. It returns b.
func (b *Backoff) OnLimit(d actor.Directive) *Backoff {
	b.atLimit = d
	return b
}

// HandleFailure implements actor.SupervisorStrategy.
func (b *Backoff) HandleFailure(sys *actor.ActorSystem, sup actor.Supervisor, child *actor.PID, rs *actor.RestartStatistics, reason, message any) {
	directive := actor.RestartDirective
	if b.decider != nil {
		directive = b.decider(reason)
	}
	switch directive {
	case actor.StopDirective:
		publishFailure(sys, child, reason, directive)
		sup.StopChildren(child)
		return
	case actor.EscalateDirective:
		sup.EscalateFailure(reason, message)
		return
	}
	// Restart, and Resume, which a dead process cannot do.
	if b.window > 0 && rs.NumberOfFailures(b.window) == 0 {
		rs.Reset() // a new streak: the delay starts over
	}
	rs.Fail()
	if b.maxRestarts > 0 && rs.NumberOfFailures(b.window) > b.maxRestarts {
		rs.Reset()
		if b.atLimit == actor.EscalateDirective {
			sup.EscalateFailure(reason, message)
			return
		}
		publishFailure(sys, child, reason, actor.StopDirective)
		sup.StopChildren(child)
		return
	}
	d := b.delay(rs.FailureCount())
	restart := func() { b.after(sys, child, d, func() { sup.RestartChildren(child) }) }
	if r := routerOf(sys); r == nil {
		restart()
	} else if !r.armRestart(b, restart) {
		sup.StopChildren(child) // the router is shutting down
		return
	}
	publishFailure(sys, child, reason, actor.RestartDirective)
}

// delay is the wait before the restart after n failures in a row.
func (b *Backoff) delay(n int) time.Duration {
	d := b.initial
	for i := 1; i < n && d < b.max; i++ {
		d *= 2
	}
	return min(d, b.max)
}

// after runs restart once d has passed, unless the restart is cancelled
// first (cancel, stopTimers, Close).
func (b *Backoff) after(sys *actor.ActorSystem, child *actor.PID, d time.Duration, restart func()) {
	p := &pendingRestart{sys: sys, child: child}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.wg.Add(1)
	p.t = time.AfterFunc(d, func() {
		defer b.wg.Done()
		b.mu.Lock()
		_, armed := b.pending[p]
		delete(b.pending, p)
		b.mu.Unlock()
		if armed {
			restart()
		}
	})
	b.pending[p] = struct{}{}
}

// cancel drops the restarts pending for child of sys: it stopped.
func (b *Backoff) cancel(sys *actor.ActorSystem, child *actor.PID) {
	b.drop(func(p *pendingRestart) bool { return p.sys == sys && p.child.Equal(child) })
}

// stopTimers drops every restart pending in sys and waits for those whose
// timer has fired to return.
func (b *Backoff) stopTimers(sys *actor.ActorSystem) {
	b.drop(func(p *pendingRestart) bool { return p.sys == sys })
	b.wg.Wait()
}

// Close cancels every pending restart and waits for those under way. The
// Router does this for its own actor system when it shuts down; Close is
// for a Backoff that supervises actors of another system.
func (b *Backoff) Close() {
	b.drop(func(*pendingRestart) bool { return true })
	b.wg.Wait()
}

func (b *Backoff) drop(match func(*pendingRestart) bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for p := range b.pending {
		if match(p) {
			delete(b.pending, p)
			if p.t.Stop() {
				b.wg.Done() // its callback will never run
			}
		}
	}
}

// publishFailure tells the event stream what was decided, as protoactor's
// own strategies do.
func publishFailure(sys *actor.ActorSystem, child *actor.PID, reason any, d actor.Directive) {
	sys.EventStream.Publish(&actor.SupervisorEvent{Child: child, Reason: reason, Directive: d})
}
