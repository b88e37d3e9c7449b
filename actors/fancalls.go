package actors

import (
	"context"
	"sync"
	"sync/atomic"
)

// fanCalls runs the calls of one fan-out (Func.Fan) without a goroutine
// per call. Each call is started with a done function, as Future's are
// (Func.startEncoded, Router.callAsync): whoever ends the call runs it,
// typically the stream reader that read the reply, and done puts the
// result in out, which has room for every result, so it never blocks.
// The goroutine iterating the fan-out takes the results from out: one
// wake-up per result, where a goroutine per call blocked in Router.call
// cost that goroutine's start, its wake-up by the reader, and the
// consumer's.
//
// Without a limit the calls are all sent at once by the goroutine that
// starts the iteration (newFanCalls). With Limit(n) one goroutine, the
// starter, sends them, each once a slot in slots is free; done frees the
// slot of its call.
//
// Invariant: emitted counts the results that are in out or will be put
// there (one per call started, one per target skipped); it is final once
// the starter has returned (wg). received counts those taken out, by the
// iterating goroutine only.
type fanCalls[T any] struct {
	outer  context.Context    // the fan-out's ctx: its end skips the targets not started
	ctx    context.Context    // outer, also cancelled when the iteration ends (stop)
	cancel context.CancelFunc // cancels ctx
	cfg    fanConfig
	start  func(ctx context.Context, i int, done func(T)) // starts target i's call; done gets its result once
	skip   func(i int, err error) T                       // the result of target i, not started because of err

	out      chan T
	slots    chan struct{} // with a limit: a token per call running; nil without
	emitted  atomic.Int64
	received int
	wg       sync.WaitGroup // the starter
}

// newFanCalls starts the calls of n targets under cfg: all of them at
// once, or with a limit the first ones and a starter for the rest.
func newFanCalls[T any](ctx context.Context, n int, cfg fanConfig, start func(context.Context, int, func(T)), skip func(int, error) T) *fanCalls[T] {
	f := &fanCalls[T]{outer: ctx, cfg: cfg, start: start, skip: skip, out: make(chan T, n)}
	f.ctx, f.cancel = context.WithCancel(ctx)
	if cfg.limit <= 0 || cfg.limit >= n {
		for i := range n {
			f.startOne(i, false)
		}
		return f
	}
	f.slots = make(chan struct{}, cfg.limit)
	f.wg.Go(func() {
		for i := range n {
			took := false
			select {
			case f.slots <- struct{}{}:
				took = true
			case <-f.ctx.Done():
			}
			if !f.startOne(i, took) {
				return
			}
		}
	})
	return f
}

// startOne starts target i's call, or gives it its skip result when the
// fan-out's ctx has ended. took says that a slot was taken for it. It
// reports false, and starts nothing, when the iteration has ended: nobody
// reads the results any more.
func (f *fanCalls[T]) startOne(i int, took bool) bool {
	if err := f.outer.Err(); err != nil {
		if took {
			<-f.slots
		}
		f.emitted.Add(1)
		f.out <- f.skip(i, err)
		return true
	}
	if f.ctx.Err() != nil {
		if took {
			<-f.slots
		}
		return false
	}
	f.emitted.Add(1)
	ctx, cancel := f.ctx, context.CancelFunc(nil)
	if f.cfg.timeout > 0 {
		ctx, cancel = context.WithTimeout(f.ctx, f.cfg.timeout)
	}
	f.start(ctx, i, func(res T) {
		if cancel != nil {
			cancel()
		}
		if took {
			<-f.slots
		}
		f.out <- res
	})
	return true
}

// next waits for the next result.
func (f *fanCalls[T]) next() T {
	res := <-f.out
	f.received++
	return res
}

// stop ends the fan-out: the calls still running are cancelled (they end
// with ctx's error), no further one starts, and stop waits until every
// call started has ended.
func (f *fanCalls[T]) stop() {
	f.cancel()
	f.wg.Wait()
	for int64(f.received) < f.emitted.Load() {
		f.next()
	}
}
