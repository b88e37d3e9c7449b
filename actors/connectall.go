package actors

import (
	"context"
	"errors"
	"fmt"
)

// Connector starts one context: typically a closure over one of the
// connection methods, e.g.
//
//	func(ctx context.Context, r *actors.Router) (*actors.Context, error) {
//		return r.SSH(ctx, "web1.example.com", actors.User("deploy"))
//	}
type Connector func(ctx context.Context, r *Router) (*Context, error)

// ConnectTarget is one context for ConnectAll to start.
type ConnectTarget struct {
	Name    string    // how results and errors name the target, e.g. the host
	Connect Connector // starts it
}

// Connected is one target's outcome in ConnectAll: Context when it
// started, else Err.
type Connected struct {
	Name    string
	Context *Context
	Err     error
}

// Connections are ConnectAll's results, in the order of its targets.
type Connections []Connected

// Contexts returns the contexts that started, in target order.
func (cs Connections) Contexts() []*Context {
	var out []*Context
	for _, c := range cs {
		if c.Err == nil {
			out = append(out, c.Context)
		}
	}
	return out
}

// Failed returns the targets that did not start.
func (cs Connections) Failed() Connections {
	var out Connections
	for _, c := range cs {
		if c.Err != nil {
			out = append(out, c)
		}
	}
	return out
}

// Err joins the failures (errors.Join), each prefixed with its target's
// name, or returns nil when every target started. errors.As still finds
// each *StreamError, *TimeoutError... in it.
func (cs Connections) Err() error {
	var errs []error
	for _, c := range cs.Failed() {
		errs = append(errs, fmt.Errorf("%s: %w", c.Name, c.Err))
	}
	return errors.Join(errs...)
}

// ConnectAll starts every target, at most Limit at once, each bounded by
// TargetTimeout (on top of its method's own ConnectTimeout), and returns
// every target's outcome in target order. One target's failure or hang
// never holds the others back: a hung one ends at its TargetTimeout. When
// ctx ends, the targets not started yet fail with its error. The contexts
// that did start are the caller's, as from the methods themselves.
func (r *Router) ConnectAll(ctx context.Context, targets []ConnectTarget, opts ...FanOption) Connections {
	cfg := fanConfig{}
	for _, o := range opts {
		o(&cfg)
	}
	out := make(Connections, len(targets))
	type indexed struct {
		i int
		c Connected
	}
	for res := range fanRun(ctx, len(targets), cfg, func(ctx context.Context, i int) indexed {
		t := targets[i]
		res := Connected{Name: t.Name}
		if t.Connect == nil {
			res.Err = errorf("mitogo: connect %s: no Connector", t.Name)
		} else if res.Context, res.Err = t.Connect(ctx, r); res.Err != nil {
			res.Context = nil
		}
		return indexed{i, res}
	}, func(i int, err error) indexed {
		name := targets[i].Name
		if err == context.DeadlineExceeded {
			return indexed{i, Connected{Name: name, Err: &TimeoutError{Context: name, Op: "connect (not started)"}}}
		}
		return indexed{i, Connected{Name: name, Err: errorf("mitogo: connect %s: not started: %w", name, err)}}
	}) {
		out[res.i] = res.c
	}
	return out
}
