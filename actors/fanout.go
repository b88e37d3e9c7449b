package actors

import (
	"context"
	"iter"
	"sync"
	"sync/atomic"
	"time"
)

// FanOption configures a fan-out (Func.Fan) or Router.ConnectAll.
type FanOption func(*fanConfig)

type fanConfig struct {
	limit   int           // at most this many at once; 0: no limit
	timeout time.Duration // each target's deadline; 0: none but ctx's
}

// Limit runs at most n targets at once (Ansible's forks); n <= 0 means no
// limit, which is the default.
func Limit(n int) FanOption { return func(c *fanConfig) { c.limit = n } }

// TargetTimeout bounds each target's call (or connection) by d, counted
// from when it starts, not from when the fan-out started: a target that
// waited for a free slot under Limit still gets all of d. When d passes,
// that target's result is a *TimeoutError and its function's context is
// cancelled on the far side; the others go on.
func TargetTimeout(d time.Duration) FanOption { return func(c *fanConfig) { c.timeout = d } }

// Result is one target's outcome in a fan-out.
type Result[R any] struct {
	Index  int      // the target's position in the list given to Fan
	Target *Context // the target
	Value  R        // the function's result, when Err is nil
	Err    error    // why this target failed: a *CallError, *ChannelError, *TimeoutError...
}

// Fan calls the function in every target with the same args and yields
// each target's result as it arrives, in the order they finish. Every
// target gives exactly one Result: a failure (an error returned there, an
// unreachable or dead context, a passed TargetTimeout) is that target's
// result, never the end of the others. With Limit(n) at most n calls run
// at once; the rest start as slots free up.
//
// The calls start when the iteration starts, and the iteration owns them:
// leaving the loop early cancels the calls still running and waits for
// them to end. When ctx ends, calls running fail with ctx's error (a
// *TimeoutError for a deadline), and targets not started yet give a result
// with that error without being called.
//
// No goroutine waits for a call: the calls are sent from the goroutine
// that iterates (with Limit, from one goroutine for the fan-out), and each
// result goes from the stream reader that reads it straight to the loop.
//
//	for res := range facts.Fan(ctx, hosts, struct{}{}, actors.Limit(20), actors.TargetTimeout(30*time.Second)) {
//		if res.Err != nil { log.Printf("%s: %v", res.Target, res.Err); continue }
//		...
//	}
func (f Func[A, R]) Fan(ctx context.Context, targets []*Context, args A, opts ...FanOption) iter.Seq[Result[R]] {
	cfg := fanConfig{}
	for _, o := range opts {
		o(&cfg)
	}
	targets = append([]*Context(nil), targets...) // the caller may reuse its slice
	return func(yield func(Result[R]) bool) {
		if len(targets) == 0 {
			return
		}
		payload, encErr := encodeValue(args)
		if encErr != nil {
			encErr = errorf("mitogo: call %s: encoding arguments (%T): %w", f.name, args, encErr)
		}
		fan := newFanCalls(ctx, len(targets), cfg, func(ctx context.Context, i int, done func(Result[R])) {
			t := targets[i]
			switch {
			case encErr != nil:
				done(Result[R]{Index: i, Target: t, Err: encErr})
			case t == nil:
				done(Result[R]{Index: i, Target: t, Err: errorf("mitogo: call %s: target %d is nil", f.name, i)})
			default:
				f.startEncoded(ctx, i, t, payload, func(res *Result[R]) { done(*res) })
			}
		}, func(i int, err error) Result[R] {
			t := targets[i]
			return Result[R]{Index: i, Target: t, Err: notStarted("call "+f.name, t, err)}
		})
		defer fan.stop()
		for range len(targets) {
			if !yield(fan.next()) {
				return
			}
		}
	}
}

// callEncoded is Call with the arguments already encoded, so that a
// fan-out encodes them once for every target.
func (f Func[A, R]) callEncoded(ctx context.Context, target *Context, payload [][]byte) (R, error) {
	var res R
	reply, err := target.call(ctx, f.name, payload, 0)
	if err != nil {
		return res, err
	}
	if err := decodeValue(reply, &res); err != nil {
		var zero R
		return zero, errorf("mitogo: call %s in %s: decoding the result into %T: %w", f.name, target.label, res, err)
	}
	return res, nil
}

// notStarted is the error of a target a fan-out never started because
// its ctx ended first.
func notStarted(op string, t *Context, err error) error {
	name := "?"
	if t != nil {
		name = t.label
	}
	if err == context.DeadlineExceeded {
		return &TimeoutError{Context: name, Op: op + " (not started)"}
	}
	return errorf("mitogo: %s in %s: not started: %w", op, name, err)
}

// fanRun runs do for 0..n-1, at most cfg.limit at once, each under its own
// deadline when cfg.timeout is set, and yields their results as they
// finish. Once ctx has ended, indexes not yet started give skip(i,
// ctx.Err()) instead. Leaving the iteration early cancels the calls
// running and waits for them.
func fanRun[T any](ctx context.Context, n int, cfg fanConfig, do func(context.Context, int) T, skip func(int, error) T) iter.Seq[T] {
	return func(yield func(T) bool) {
		if n == 0 {
			return
		}
		outer := ctx
		ctx, cancel := context.WithCancel(ctx)
		workers := n
		if cfg.limit > 0 && cfg.limit < n {
			workers = cfg.limit
		}
		// Room for every result: a worker never waits for the consumer,
		// so leaving the loop early cannot strand one.
		out := make(chan T, n)
		var next atomic.Int64
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for {
					i := int(next.Add(1) - 1)
					if i >= n {
						return
					}
					if err := outer.Err(); err != nil {
						out <- skip(i, err)
						continue
					}
					if ctx.Err() != nil {
						continue // the consumer left: nobody reads
					}
					cctx, ccancel := ctx, context.CancelFunc(func() {})
					if cfg.timeout > 0 {
						cctx, ccancel = context.WithTimeout(ctx, cfg.timeout)
					}
					res := do(cctx, i)
					ccancel()
					out <- res
				}
			})
		}
		defer func() {
			cancel()
			wg.Wait()
		}()
		for range n {
			if !yield(<-out) {
				return
			}
		}
	}
}
