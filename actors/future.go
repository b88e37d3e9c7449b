package actors

import (
	"context"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/mitogo/mitogo/messages"
)

// Results as messages: calls made by code running inside an actor, whose
// result arrives in a mailbox as a *Result[R] instead of blocking the
// actor's Receive.
//
// Such a call does not wait in any goroutine. Its pending call carries a
// done function (pendingCall.done) that the one who ends the call runs:
// the stream reader that reads the reply, the router actor that fails the
// call when the route goes, or ctx's AfterFunc when ctx ends first. done
// decodes the result and posts it to a mailbox (a future's, an actor's),
// which is the call's only hand-off to another goroutine. A plain Call is
// untouched by any of this.

// Future starts the call and returns at once a protoactor future that
// completes with the call's *Result[R] (Index 0): Value when the call
// succeeded, Err (a *CallError, *ChannelError, *TimeoutError...) when it
// did not. The future itself never fails (its Result's error is nil and
// PipeTo sends the *Result[R]), so the error travels where the value
// does; ctx bounds the call as in Call, and the future has no timeout of
// its own.
//
// Inside an actor, use it with ReenterAfter (the continuation runs in the
// actor, in turn with its messages) or PipeTo (the *Result[R] arrives as a
// message); CallTo does the latter in one step. The future belongs to the
// actor system of target's router (Router.System): PipeTo reaches the
// actors of that system, and through it those of other contexts; target
// must not be nil.
//
// The call is sent from the calling goroutine, which does not wait for
// the reply. A []byte argument is sent without a copy: leave it unchanged
// until the result arrives. When target is restarting (a supervised
// context between two processes), a goroutine waits for it and then sends
// the call. A result's delivery must not block: an actor given results
// must not use a blocking bounded mailbox (actor.Bounded), whose full
// queue would hold up the stream that carries the reply; to bound what
// arrives, use FanTo.
func (f Func[A, R]) Future(ctx context.Context, target *Context, args A) *actor.Future {
	sys := target.r.System()
	fut := actor.NewFuture(sys, -1) // no timer: ctx bounds the call
	pid := fut.PID()
	f.start(ctx, 0, target, args, func(res *Result[R]) { sys.Root.Send(pid, res) })
	return fut
}

// CallTo starts the call and returns at once; its *Result[R] (Index 0)
// arrives as a message to the actor whose context actx is, when the call
// ends. Call it from the actor's Receive: the actor goes on with its
// messages meanwhile. ctx bounds the call as in Call. Every CallTo
// delivers one message: an actor that starts many at once receives as
// many results, with nothing to bound them but its own restraint; FanTo
// bounds them. See Future for what holds for the call's arguments.
func (f Func[A, R]) CallTo(ctx context.Context, actx actor.Context, target *Context, args A) {
	sys, self := actx.ActorSystem(), actx.Self()
	f.start(ctx, 0, target, args, func(res *Result[R]) { sys.Root.Send(self, res) })
}

// FanTo calls the function in every target with the same args, and hands
// each target's *Result[R] to the Receive of the actor whose context actx
// is, as the results arrive. Every target gives exactly one Result, as in
// Fan. Call it from the actor's Receive; it returns at once.
//
// At most Limit(n) results are outstanding at any time (64 when no Limit
// is given): a call running, or its result waiting for the actor. The
// next target's call starts only when the actor's Receive has returned
// from a result, so an actor that processes slowly slows the fan-out
// down instead of letting results pile up in its mailbox.
//
// The results come in through ReenterAfter: each is a continuation that
// runs in the actor, in turn with its messages, and calls its Receive with
// the *Result[R] as the message (with no sender, and around the receive
// middleware of its Props). Like every continuation it is a system
// message: it is taken before user messages that are waiting, and runs
// also while the actor's supervisor holds its user messages after a
// failure. TargetTimeout bounds each call. When ctx ends, the calls
// running fail with ctx's error, and targets not started yet give a
// Result with that error without being called. When the actor stops, the
// results still to come are dropped and no further target is called.
func (f Func[A, R]) FanTo(ctx context.Context, actx actor.Context, targets []*Context, args A, opts ...FanOption) {
	cfg := fanConfig{}
	for _, o := range opts {
		o(&cfg)
	}
	window := cfg.limit
	if window <= 0 {
		window = defaultFanWindow
	}
	fan := &fanTo[A, R]{f: f, ctx: ctx, actx: actx, targets: append([]*Context(nil), targets...), args: args, timeout: cfg.timeout}
	for range min(window, len(fan.targets)) {
		fan.startNext()
	}
}

// defaultFanWindow is FanTo's bound on outstanding results when no Limit
// is given: the size of a channel's inbox.
const defaultFanWindow = 64

// fanTo is one FanTo under way. Its fields other than the constants are
// used only on the actor's goroutine (FanTo and the continuations).
type fanTo[A, R any] struct {
	f       Func[A, R]
	ctx     context.Context
	actx    actor.Context
	targets []*Context
	args    A
	timeout time.Duration
	next    int // the next target to call
}

// startNext calls the next target, and arranges for its result to reach
// the actor's Receive and then call the one after.
func (fan *fanTo[A, R]) startNext() {
	i := fan.next
	fan.next++
	sys := fan.actx.ActorSystem()
	fut := actor.NewFuture(sys, -1)
	fan.actx.ReenterAfter(fut, func(res any, _ error) {
		fan.actx.Receive(&actor.MessageEnvelope{Message: res})
		if fan.next < len(fan.targets) {
			fan.startNext()
		}
	})
	pid := fut.PID()
	deliver := func(res *Result[R]) { sys.Root.Send(pid, res) }
	t := fan.targets[i]
	if err := fan.ctx.Err(); err != nil {
		deliver(&Result[R]{Index: i, Target: t, Err: notStarted("call "+fan.f.name, t, err)})
		return
	}
	ctx := fan.ctx
	if fan.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, fan.timeout)
		deliver = func(res *Result[R]) {
			cancel()
			sys.Root.Send(pid, res)
		}
	}
	fan.f.start(ctx, i, t, fan.args, deliver)
}

// start makes the call without waiting for it; done gets its result
// exactly once, on whichever goroutine ends the call (or on this one when
// the call cannot be sent). done must not block.
func (f Func[A, R]) start(ctx context.Context, index int, target *Context, args A, done func(*Result[R])) {
	res := &Result[R]{Index: index, Target: target}
	fail := func(err error) {
		res.Err = err
		done(res)
	}
	if target == nil {
		fail(errorf("mitogo: call %s: target %d is nil", f.name, index))
		return
	}
	payload, err := encodeValue(args)
	if err != nil {
		fail(errorf("mitogo: call %s: encoding arguments (%T): %w", f.name, args, err))
		return
	}
	f.startEncoded(ctx, index, target, payload, done)
}

// startEncoded is start with the arguments already encoded (a fan-out
// encodes them once for every target); target must not be nil.
func (f Func[A, R]) startEncoded(ctx context.Context, index int, target *Context, payload [][]byte, done func(*Result[R])) {
	res := &Result[R]{Index: index, Target: target}
	fail := func(err error) {
		res.Err = err
		done(res)
	}
	finish := func(cr callResult) {
		if cr.err != nil {
			fail(cr.err)
			return
		}
		if err := decodeValue(cr.payload, &res.Value); err != nil {
			var zero R
			res.Value = zero
			fail(errorf("mitogo: call %s in %s: decoding the result into %T: %w", f.name, target.label, zero, err))
			return
		}
		done(res)
	}
	target.mu.Lock()
	up, gone := target.up, target.err
	target.mu.Unlock()
	if gone != nil {
		fail(goneError(target.label, gone))
		return
	}
	select {
	case <-up:
		target.r.callAsync(ctx, target.id, target.label, f.name, payload, finish)
	default:
		// Restarting: wait for the new process without holding up the
		// caller. The wait ends with the restart, the context's end or ctx.
		go func() {
			if err := target.ready(ctx); err != nil {
				fail(err)
				return
			}
			target.r.callAsync(ctx, target.id, target.label, f.name, payload, finish)
		}()
	}
}

// asyncCall is a call made by callAsync: its pending call, and the
// AfterFunc that gives the call up when its ctx ends.
type asyncCall struct {
	r     *Router
	p     *pendingCall
	id    uint64
	ctx   context.Context
	start time.Time // when the call was made, for a deadline's TimeoutError
	done  func(callResult)

	mu       sync.Mutex
	finished bool
	stop     func() bool // stops the AfterFunc; nil until registered
}

// callAsync sends a call envelope to dst and returns without waiting:
// done gets the result, once, from whoever ends the call.
func (r *Router) callAsync(ctx context.Context, dst uint32, dstName, fn string, payload [][]byte, done func(callResult)) {
	if err := ctx.Err(); err != nil {
		done(callResult{err: ctxCallError(ctx, dstName, fn, 0)})
		return
	}
	a := &asyncCall{r: r, ctx: ctx, done: done}
	if _, ok := ctx.Deadline(); ok {
		a.start = time.Now()
	}
	p := &pendingCall{dst: dst, name: dstName, fn: fn, done: a.finish}
	if dst != r.id {
		if c := r.table.Load().lookup(dst); c != nil {
			p.via = c
			p.counted.Store(true)
			c.calls.Add(1)
			c.lastReader.Store(false) // nobody here reads the stream for its reply
		}
	}
	a.p = p
	a.id = r.pending.add(p)
	a.setStop(context.AfterFunc(ctx, a.expire))
	h := messages.Header{Kind: messages.KindCall, Dst: dst, Src: r.id, ReqID: a.id, Target: fn}
	if err := r.send(&h, payload...); err != nil {
		if r.pending.take(a.id, takeAny) != nil {
			a.finish(callResult{err: sendError(dstName, fn, err)})
		}
		return
	}
	if c := p.via; c != nil {
		c.wakeReader() // if nobody reads the stream
		c.unstick()    // if its reader is busy with a call
	}
}

func takeAny(*pendingCall) bool { return true }

// finish ends the call with res: it is no longer counted on its stream,
// its AfterFunc is stopped, and done gets res.
func (a *asyncCall) finish(res callResult) {
	a.p.settle()
	a.mu.Lock()
	a.finished = true
	stop := a.stop
	a.mu.Unlock()
	if stop != nil {
		stop()
	}
	a.done(res)
}

// setStop records the AfterFunc's stop, or stops it at once when the call
// has already ended (a route lost between add and now).
func (a *asyncCall) setStop(stop func() bool) {
	a.mu.Lock()
	finished := a.finished
	if !finished {
		a.stop = stop
	}
	a.mu.Unlock()
	if finished {
		stop()
	}
}

// expire gives the call up when its ctx ends first: the far side is told
// to cancel it, and done gets a *TimeoutError or ctx's error.
func (a *asyncCall) expire() {
	if a.r.pending.take(a.id, takeAny) == nil {
		return // ended already
	}
	cancel := messages.Header{Kind: messages.KindCancel, Dst: a.p.dst, Src: a.r.id, ReqID: a.id}
	_ = a.r.send(&cancel, nil)
	a.finish(callResult{err: ctxCallError(a.ctx, a.p.name, a.p.fn, time.Since(a.start))})
}

// ctxCallError is the error of a call whose ctx ended: a *TimeoutError
// for a deadline, else ctx's error wrapped.
func ctxCallError(ctx context.Context, dstName, fn string, after time.Duration) error {
	if ctx.Err() == context.DeadlineExceeded {
		return &TimeoutError{Context: dstName, Op: "call " + fn, After: after}
	}
	return errorf("mitogo: call %s in %s: %w", fn, dstName, ctx.Err())
}
