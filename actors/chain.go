package actors

import (
	"context"
	"fmt"
	"runtime/debug"
	"strconv"
	"sync"

	"github.com/mitogo/mitogo/messages"
	"github.com/vmihailenco/msgpack/v5"
)

// fnChainReset is the call Chain.Reset sends in its chain; the target
// handles it itself, in its turn, without a registered function.
const fnChainReset = "mitogo.chain.reset"

// Chain is an ordered pipeline of calls to one context (Mitogen's
// CallChain). Calls made in a chain (Func.GoIn, CallIn, SendIn) are sent
// back to back without waiting for each other, and the target runs them
// one after another in the order they were made. Once one fails (returns
// an error, panics, is refused, or is cancelled before it ran), every
// later call of the chain fails with that same error without running,
// until Reset. So a caller can SendIn a series of steps and learn from one
// final CallIn whether all of them ran.
//
// Chains are independent of each other and of calls made outside them,
// also on the same context. A failed chain's error is kept in the target
// until Reset, or until the caller's context is gone: Reset a chain that
// may have failed once done with it. A Chain may be used from many
// goroutines; calls made concurrently run in the order their sends won.
type Chain struct {
	target *Context
	id     string
	mu     sync.Mutex // held while sending: the send order is the run order
}

// NewChain returns a new chain of calls to target.
func NewChain(target *Context) *Chain {
	return &Chain{target: target, id: "c" + strconv.FormatUint(target.r.pending.next.Add(1), 36)}
}

// Target is the context the chain's calls run in.
func (ch *Chain) Target() *Context { return ch.target }

// Reset makes the target forget the chain's failure, so that later calls
// run again. It takes its turn after the calls already sent, and returns
// once the target has cleared the error.
func (ch *Chain) Reset(ctx context.Context) error {
	wait, err := ch.send(ctx, fnChainReset, nil, false)
	if err != nil {
		return err
	}
	_, err = wait(ctx)
	return err
}

// GoIn starts the call in chain ch and returns once it is sent; the
// result comes as from Go. ctx bounds the call as in Call.
func (f Func[A, R]) GoIn(ctx context.Context, ch *Chain, args A) *Pending[R] {
	p := newPending[R](ch.target, f.name)
	// Marshal copies: the call waits in the chain after GoIn returns, and
	// the caller may reuse its arguments at once.
	payload, err := msgpack.Marshal(args)
	if err != nil {
		var zero R
		p.complete(zero, errorf("mitogo: call %s: encoding arguments (%T): %w", f.name, args, err))
		return p
	}
	wait, err := ch.send(ctx, f.name, [][]byte{payload}, false)
	if err != nil {
		var zero R
		p.complete(zero, err)
		return p
	}
	go func() {
		var res R
		reply, err := wait(ctx)
		if err == nil {
			if derr := decodeValue(reply, &res); derr != nil {
				err = errorf("mitogo: call %s in %s: decoding the result into %T: %w", f.name, ch.target.name, res, derr)
			}
		}
		p.complete(res, err)
	}()
	return p
}

// CallIn runs the call in chain ch and waits for its result: after the
// chain's earlier calls ran, or with the chain's error if one failed.
func (f Func[A, R]) CallIn(ctx context.Context, ch *Chain, args A) (R, error) {
	return f.GoIn(ctx, ch, args).Wait()
}

// SendIn sends the call in chain ch without waiting and without a reply.
// If it fails there, the chain fails: a later CallIn returns the error.
func (f Func[A, R]) SendIn(ch *Chain, args A) error {
	payload, err := msgpack.Marshal(args)
	if err != nil {
		return errorf("mitogo: send %s: encoding arguments (%T): %w", f.name, args, err)
	}
	_, err = ch.send(context.Background(), f.name, [][]byte{payload}, true)
	return err
}

// send sends one call of the chain and returns the function that waits
// for its reply (nil for noReply).
func (ch *Chain) send(ctx context.Context, fn string, payload [][]byte, noReply bool) (wait func(context.Context) ([]byte, error), err error) {
	c := ch.target
	if err := c.ready(ctx); err != nil {
		return nil, err
	}
	r := c.r
	h := messages.Header{Kind: messages.KindCall, Dst: c.id, Src: r.id, Target: fn, Type: ch.id}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if noReply {
		h.Flags = messages.FlagNoReply
		if err := r.send(&h, payload...); err != nil {
			return nil, sendError(c.label, fn, err)
		}
		return nil, nil
	}
	p := &pendingCall{dst: c.id, name: c.label, fn: fn, ch: make(chan callResult, 1)}
	if c.id != r.id {
		if via := r.table.Load().lookup(c.id); via != nil {
			p.via = via
			p.counted.Store(true)
			via.calls.Add(1)
			via.lastReader.Store(false)
		}
	}
	id := r.pending.add(p)
	h.ReqID = id
	if err := r.send(&h, payload...); err != nil {
		r.dropPending(id)
		p.settle()
		return nil, sendError(c.label, fn, err)
	}
	if via := p.via; via != nil {
		via.wakeReader()
		via.unstick()
	}
	return func(ctx context.Context) ([]byte, error) { return r.await(ctx, p, id) }, nil
}

// The target's side of chains: calls of one chain (one caller, one chain
// id) run one after another, in the order they arrived, and the chain's
// first failure answers every later call until a reset.

type chainKey struct {
	src uint32 // the caller's context
	id  string // the chain's id there
}

type chainState struct {
	tail   chan struct{}         // closed once the last call queued so far has finished
	queued int                   // calls queued and not finished
	err    *messages.RemoteError // the first failure, until a reset
}

// chainTable holds the chains with calls queued or a failure kept.
type chainTable struct {
	mu sync.Mutex
	m  map[chainKey]*chainState
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// enqueue queues a call in chain key: it may run once prev is closed, and
// closes mine when it has finished.
func (t *chainTable) enqueue(key chainKey) (st *chainState, prev, mine chan struct{}) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[chainKey]*chainState{}
	}
	st = t.m[key]
	if st == nil {
		st = &chainState{tail: closedChan}
		t.m[key] = st
	}
	prev, mine = st.tail, make(chan struct{})
	st.tail = mine
	st.queued++
	return st, prev, mine
}

// finish lets the chain's next call run, and forgets a chain with nothing
// queued and no failure.
func (t *chainTable) finish(key chainKey, st *chainState, mine chan struct{}) {
	t.mu.Lock()
	defer t.mu.Unlock()
	close(mine)
	st.queued--
	if st.queued == 0 && st.err == nil && t.m[key] == st {
		delete(t.m, key)
	}
}

// fail records re as the chain's failure, unless it failed already.
func (t *chainTable) fail(st *chainState, re *messages.RemoteError) {
	t.mu.Lock()
	if st.err == nil {
		st.err = re
	}
	t.mu.Unlock()
}

// forget drops the idle chains of callers that are gone.
func (t *chainTable) forget(srcs []uint32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for key, st := range t.m {
		for _, src := range srcs {
			if key.src == src && st.queued == 0 {
				delete(t.m, key)
			}
		}
	}
}

// dispatchChained prepares a call of a chain (h.Type is the chain id).
// Its job returns at once when an earlier call of the chain still runs:
// the call then waits on a goroutine of its own.
func (r *Router) dispatchChained(h messages.Header, payload []byte) (job func()) {
	key := chainKey{h.Src, h.Type}
	ctx, cancel := context.WithCancel(r.base)
	ck := callKey{h.Src, h.ReqID}
	if !r.incoming.start(ck, h.Target, cancel) {
		cancel()
		r.refuseShuttingDown(&h)
		return nil
	}
	st, prev, mine := r.chains.enqueue(key)
	var f *function
	if h.Target != fnChainReset {
		functions.RLock()
		f = functions.byName[h.Target]
		functions.RUnlock()
	}
	run := func() {
		defer r.chains.finish(key, st, mine)
		<-prev // even when cancelled: the next call must not overtake prev
		r.runChained(ctx, cancel, ck, st, f, h, payload)
	}
	return func() {
		select {
		case <-prev:
			run()
		default:
			go run()
		}
	}
}

// runChained runs a chain's call in its turn, or answers it with the
// chain's failure.
func (r *Router) runChained(ctx context.Context, cancel context.CancelFunc, ck callKey, st *chainState, f *function, h messages.Header, payload []byte) {
	if err := ctx.Err(); err != nil {
		r.chains.fail(st, &messages.RemoteError{Code: messages.CodeError, Type: fmt.Sprintf("%T", err),
			Message: fmt.Sprintf("%s was cancelled before it ran in its chain: %v", h.Target, err)})
	}
	r.chains.mu.Lock()
	failed := st.err
	if h.Target == fnChainReset {
		st.err = nil
	}
	r.chains.mu.Unlock()
	if h.Target != fnChainReset && failed == nil && f != nil {
		r.run(ctx, cancel, ck, r.chained(f, st), h, payload) // r.run cleans up
		return
	}
	defer func() {
		cancel()
		r.incoming.end(ck)
	}()
	switch {
	case h.Target == fnChainReset:
		if h.Flags&messages.FlagNoReply != 0 {
			return
		}
		res, _ := encodeValue(struct{}{})
		rh := messages.Header{Kind: messages.KindReply, Dst: h.Src, Src: r.id, ReqID: h.ReqID}
		if err := r.send(&rh, res...); err != nil {
			r.logger.Debug("reply not sent", "function", h.Target, "error", err)
		}
	case failed != nil:
		re := *failed
		r.replyError(&h, &re)
	default: // f == nil
		re := &messages.RemoteError{Code: messages.CodeUnknown, Type: "mitogo.UnknownFunction",
			Message: fmt.Sprintf("unknown function %q: nothing is registered under that name in %s (functions are registered at package level or in init, before actors.Main runs, so that every copy of the program has them)", h.Target, r.Name())}
		r.chains.fail(st, re)
		r.replyError(&h, re)
	}
}

// chained wraps f so that its failure becomes the chain's failure.
func (r *Router) chained(f *function, st *chainState) *function {
	return &function{name: f.name, invoke: func(ctx context.Context, payload []byte) (res [][]byte, err error, argErr error) {
		defer func() {
			if p := recover(); p != nil {
				r.chains.fail(st, &messages.RemoteError{Code: messages.CodePanic, Type: "panic", Message: fmt.Sprint(p), Stack: string(debug.Stack())})
				panic(p) // for run, which answers it
			}
		}()
		res, err, argErr = f.invoke(ctx, payload)
		switch {
		case argErr != nil:
			r.chains.fail(st, &messages.RemoteError{Code: messages.CodeArgs, Type: "mitogo.ArgumentError", Message: argErr.Error()})
		case err != nil:
			r.chains.fail(st, &messages.RemoteError{Code: messages.CodeError, Type: fmt.Sprintf("%T", err), Message: err.Error()})
		}
		return res, err, argErr
	}}
}
