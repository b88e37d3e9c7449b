package actors

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime/debug"
	"sync"
	"time"

	"github.com/mitogo/mitogo/messages"
	"github.com/vmihailenco/msgpack/v5"
)

// The function registry: every process runs the same binary, and functions
// register at package init, so a name means the same function everywhere.
var functions = struct {
	sync.RWMutex
	byName map[string]*function
}{byName: map[string]*function{}}

type function struct {
	name   string
	invoke func(ctx context.Context, payload []byte) (result [][]byte, err error, argErr error)
}

// Func is a registered function, callable in any context of the tree.
type Func[A, R any] struct{ name string }

// Register makes fn callable from other contexts under name and returns
// the handle to call it with. Call it at package init (a package-level var),
// so that every copy of the binary knows the function. Registering a name
// twice panics.
func Register[A, R any](name string, fn func(context.Context, A) (R, error)) Func[A, R] {
	f := &function{name: name, invoke: func(ctx context.Context, payload []byte) ([][]byte, error, error) {
		var a A
		if len(payload) > 0 {
			if err := decodeArgs(ctx, payload, &a); err != nil {
				return nil, nil, fmt.Errorf("arguments do not decode into %v: %v", reflect.TypeFor[A](), err)
			}
		}
		res, err := fn(ctx, a)
		if err != nil {
			return nil, err, nil
		}
		out, err := encodeValue(res)
		if err != nil {
			return nil, fmt.Errorf("encoding the result (%T): %w", res, err), nil
		}
		return out, nil, nil
	}}
	functions.Lock()
	defer functions.Unlock()
	if _, dup := functions.byName[name]; dup {
		panic(fmt.Sprintf("mitogo: function %q registered twice", name))
	}
	functions.byName[name] = f
	return Func[A, R]{name: name}
}

// Registered reports whether a function is registered under name in this
// program, and so in every context it starts (they run the same binary):
// a caller can refuse an unknown name before it connects anywhere.
func Registered(name string) bool {
	functions.RLock()
	defer functions.RUnlock()
	_, ok := functions.byName[name]
	return ok
}

// Function returns a handle on a function registered under name, typed by
// the caller. It is for calling a function whose Register call is in code
// this package cannot see; a wrong name fails at the far side.
func Function[A, R any](name string) Func[A, R] { return Func[A, R]{name: name} }

// Name is the function's registered name.
func (f Func[A, R]) Name() string { return f.name }

// Call runs the function in target with args and returns its result. A
// deadline on ctx bounds the call (a *TimeoutError) and, when it passes,
// cancels the function's context.Context on the far side. A []byte
// argument is sent without a copy: leave it unchanged until Call returns.
func (f Func[A, R]) Call(ctx context.Context, target *Context, args A) (R, error) {
	var zero R
	if target == nil {
		return zero, errorf("mitogo: call %s: the target is nil", f.name)
	}
	payload, passed, err := encodeArgs(target, args, false)
	if err != nil {
		err = errorf("mitogo: call %s: encoding arguments (%T): %w", f.name, args, err)
		passed.callEnded(err)
		return zero, err
	}
	res, err := f.callEncoded(ctx, target, payload)
	passed.callEnded(err)
	return res, err
}

// Pending is a call started with Go; Wait returns its result. It knows
// its target and function, so that a Select over many of them can say
// where each result came from.
type Pending[R any] struct {
	target *Context
	fn     string
	done   chan struct{}
	res    R
	err    error

	mu    sync.Mutex
	hooks []func() // run once when the call completes (Select)
}

func newPending[R any](target *Context, fn string) *Pending[R] {
	return &Pending[R]{target: target, fn: fn, done: make(chan struct{})}
}

// Wait blocks until the call completes and returns its result.
func (p *Pending[R]) Wait() (R, error) {
	<-p.done
	return p.res, p.err
}

// Done is closed when the call has completed.
func (p *Pending[R]) Done() <-chan struct{} { return p.done }

// Target is the context the call runs in.
func (p *Pending[R]) Target() *Context { return p.target }

// Function is the registered name of the function called.
func (p *Pending[R]) Function() string { return p.fn }

// complete records the call's result, wakes Wait and runs the hooks.
func (p *Pending[R]) complete(res R, err error) {
	p.mu.Lock()
	p.res, p.err = res, err
	close(p.done)
	hooks := p.hooks
	p.hooks = nil
	p.mu.Unlock()
	for _, h := range hooks {
		h()
	}
}

// onDone runs fn once the call has completed: at once if it has.
func (p *Pending[R]) onDone(fn func()) {
	p.mu.Lock()
	select {
	case <-p.done:
		p.mu.Unlock()
		fn()
		return
	default:
	}
	p.hooks = append(p.hooks, fn)
	p.mu.Unlock()
}

// Go starts the call and returns at once; the call is bound by ctx as in Call.
func (f Func[A, R]) Go(ctx context.Context, target *Context, args A) *Pending[R] {
	p := newPending[R](target, f.name)
	go func() {
		p.complete(f.Call(ctx, target, args))
	}()
	return p
}

// Send runs the function in target without waiting for it and without a
// reply: errors on the far side are logged there. It returns once the
// message is on its way.
func (f Func[A, R]) Send(target *Context, args A) error {
	// Encoding copies: Send returns before the bytes are written, and the
	// caller may reuse its slice at once.
	if target == nil {
		return errorf("mitogo: send %s: the target is nil", f.name)
	}
	payload, _, err := encodeArgs(target, args, true)
	if err != nil {
		return errorf("mitogo: send %s: encoding arguments (%T): %w", f.name, args, err)
	}
	return target.sendCall(f.name, payload)
}

// call sends a call envelope to dst and waits for its reply. The caller
// reads its reply from the stream itself when nobody else reads it
// (conn.readFor): it is then woken by the network poller, not by another
// goroutine, which costs a wake-up of another CPU. A caller whose ctx can
// end does so too where the stream can be interrupted (a read deadline):
// when ctx ends it stops reading and gives the stream back.
func (r *Router) call(ctx context.Context, dst uint32, dstName, fn string, payload [][]byte, flags uint8) ([]byte, error) {
	// A ctx already ended sends nothing: the caller gets ctx's error every
	// time, not whichever of the reply and the cancellation came first.
	if err := ctx.Err(); err != nil {
		return nil, ctxCallError(ctx, dstName, fn, 0)
	}
	p := &pendingCall{dst: dst, name: dstName, fn: fn, ch: make(chan callResult, 1)}
	canRead := false
	if dst != r.id {
		if c := r.table.Load().lookup(dst); c != nil {
			p.via = c
			p.counted.Store(true)
			c.calls.Add(1)
			canRead = ctx.Done() == nil || c.interruptible
			c.lastReader.Store(canRead)
			defer p.settle()
		}
	}
	id := r.pending.add(p)
	h := messages.Header{Kind: messages.KindCall, Flags: flags, Dst: dst, Src: r.id, ReqID: id, Target: fn}
	if err := r.send(&h, payload...); err != nil {
		r.dropPending(id)
		return nil, sendError(dstName, fn, err)
	}
	if c := p.via; c != nil {
		if canRead {
			switch res, got := c.readFor(ctx, p); got {
			case readGot:
				return res.payload, res.err
			case readEnded:
				return r.giveUp(ctx, p, id)
			}
		}
		c.wakeReader() // if nobody reads the stream
		c.unstick()    // if its reader is busy with a call
	}
	return r.await(ctx, p, id)
}

// await waits for the reply to call id, or gives it up when ctx ends.
func (r *Router) await(ctx context.Context, p *pendingCall, id uint64) ([]byte, error) {
	defer p.settle()
	select {
	case res := <-p.ch:
		return res.payload, res.err
	case <-ctx.Done():
		return r.giveUp(ctx, p, id)
	}
}

// giveUp ends call id, whose ctx has ended: the reply, if it still comes,
// is dropped, and the callee is told to cancel the call.
func (r *Router) giveUp(ctx context.Context, p *pendingCall, id uint64) ([]byte, error) {
	r.dropPending(id)
	cancel := messages.Header{Kind: messages.KindCancel, Dst: p.dst, Src: r.id, ReqID: id}
	_ = r.send(&cancel, nil)
	return nil, ctxCallError(ctx, p.name, p.fn, time.Duration(monoNow()-p.start))
}

func sendError(dstName, fn string, err error) error {
	if _, ok := err.(*ChannelError); ok {
		return err
	}
	if isTooLarge(err) {
		return errorf("mitogo: call %s in %s: message refused: %w", fn, dstName, err)
	}
	return &ChannelError{Context: dstName, Reason: err.Error(), Err: err}
}

// dispatch prepares an incoming call as a job that runs the function under
// a context cancelled when the caller gives up or this context shuts down.
func (r *Router) dispatch(h messages.Header, payload []byte) (job func()) {
	if h.Type != "" {
		return r.dispatchChained(h, payload) // a call in a Chain
	}
	functions.RLock()
	f := functions.byName[h.Target]
	functions.RUnlock()
	if f == nil {
		r.replyError(&h, &messages.RemoteError{Code: messages.CodeUnknown, Type: "mitogo.UnknownFunction",
			Message: fmt.Sprintf("unknown function %q: nothing is registered under that name in %s (functions are registered at package level or in init, before actors.Main runs, so that every copy of the program has them)", h.Target, r.Name())})
		return nil
	}
	ctx, cancel := context.WithCancel(r.base)
	key := callKey{h.Src, h.ReqID}
	if !r.incoming.start(key, h.Target, cancel) {
		cancel()
		r.refuseShuttingDown(&h)
		return nil
	}
	if offReader(h.Target) {
		// incoming counts it: Shutdown waits for it as for any call.
		return func() { go r.run(ctx, cancel, key, f, h, payload) }
	}
	return func() { r.run(ctx, cancel, key, f, h, payload) }
}

func (r *Router) run(ctx context.Context, cancel context.CancelFunc, key callKey, f *function, h messages.Header, payload []byte) {
	defer func() {
		cancel()
		r.incoming.end(key)
	}()
	ctx, ci := withCall(ctx, r, h.Src)
	defer func() {
		if p := recover(); p != nil {
			ci.endStreams(errPanicked)
			r.logger.Error("function panicked", "function", f.name, "panic", fmt.Sprint(p))
			r.replyError(&h, &messages.RemoteError{Code: messages.CodePanic, Type: "panic", Message: fmt.Sprint(p), Stack: string(debug.Stack())})
		}
	}()
	res, err, argErr := f.invoke(ctx, payload)
	// Before the reply: the caller's ends learn first that these are gone.
	ci.endStreams(errors.Join(err, argErr))
	switch {
	case argErr != nil:
		r.replyError(&h, &messages.RemoteError{Code: messages.CodeArgs, Type: "mitogo.ArgumentError", Message: argErr.Error()})
	case err != nil:
		if ce, ok := err.(*codedError); ok { // a service's refusal or panic (service.go)
			r.replyError(&h, ce.re)
			return
		}
		r.replyError(&h, &messages.RemoteError{Code: messages.CodeError, Type: fmt.Sprintf("%T", err), Message: err.Error()})
	default:
		if h.Flags&messages.FlagNoReply != 0 {
			return
		}
		rh := messages.Header{Kind: messages.KindReply, Dst: h.Src, Src: r.id, ReqID: h.ReqID}
		if err := r.send(&rh, res...); err != nil {
			if isTooLarge(err) {
				r.replyError(&h, &messages.RemoteError{Code: messages.CodeError, Type: "mitogo.TooLarge", Message: "the result was refused: " + err.Error()})
				return
			}
			r.logger.Debug("reply not sent", "function", f.name, "error", err)
		}
	}
}

// refuseShuttingDown answers call h, which came as this context shuts
// down, with the shutdown code (ErrShutdown at the caller).
func (r *Router) refuseShuttingDown(h *messages.Header) {
	r.replyError(h, &messages.RemoteError{Code: messages.CodeShutdown, Type: "mitogo.Shutdown",
		Message: fmt.Sprintf("%s is shutting down", r.Name())})
}

// replyError answers call h with an error, unless its caller wants no reply.
func (r *Router) replyError(h *messages.Header, re *messages.RemoteError) {
	if h.Flags&messages.FlagNoReply != 0 {
		r.logger.Warn("call failed", "function", h.Target, "code", re.Code, "error", re.Message)
		return
	}
	payload, _ := encode(re)
	rh := messages.Header{Kind: messages.KindReply, Flags: messages.FlagError, Dst: h.Src, Src: r.id, ReqID: h.ReqID}
	if err := r.send(&rh, payload); err != nil {
		r.logger.Debug("error reply not sent", "function", h.Target, "error", err)
	}
}

// encodeValue encodes a call's argument or result. A []byte goes as a
// msgpack bin header followed by the slice itself, uncopied: a 64 MiB
// argument costs no encoding buffer at all.
func encodeValue(v any) ([][]byte, error) {
	if b, ok := v.([]byte); ok && b != nil {
		return [][]byte{messages.AppendBinHeader(nil, len(b)), b}, nil
	}
	out, err := msgpack.Marshal(v)
	if err != nil {
		return nil, err
	}
	return [][]byte{out}, nil
}

// decodeValue decodes payload into v. Into a *[]byte, a payload that is
// one bin value decodes without a copy: the slice aliases the frame, which
// nothing else holds.
func decodeValue(payload []byte, v any) error {
	if bp, ok := v.(*[]byte); ok {
		if b, ok := messages.Bin(payload); ok {
			*bp = b
			return nil
		}
	}
	return messages.Unmarshal(payload, v)
}
