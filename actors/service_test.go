package actors_test

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mitogo/mitogo/actors"
)

// counter is the state of the test service: n is changed only by
// serialized methods, without a lock.
type counter struct {
	n    int
	pair chan struct{} // where two concurrent calls of test.counter/pair meet
}

// Close counts, in the process that hosted it, a service state closed.
func (c *counter) Close() error {
	counterClosed.Add(1)
	return nil
}

// In the process that hosts the service: how many times it was started
// and closed.
var counterStarts, counterClosed atomic.Int64

// allowedCaller is the context id test.counter/listed lets call it, in
// the process that hosts it.
var allowedCaller atomic.Int64

var counterSvc = actors.RegisterService("test.counter", func(r *actors.Router) (*counter, error) {
	counterStarts.Add(1)
	return &counter{pair: make(chan struct{})}, nil
})

var (
	// incr would race without serialization: it reads, yields, writes.
	counterIncr = actors.Method(counterSvc, "incr", func(ctx context.Context, c *counter, by int) (int, error) {
		n := c.n
		runtime.Gosched()
		c.n = n + by
		return c.n, nil
	})
	counterPanic = actors.Method(counterSvc, "panic", func(ctx context.Context, c *counter, _ struct{}) (int, error) {
		var m map[string]int
		//lint:ignore SA5000 the method panics on purpose
		m["x"]++ // panics: assignment to entry in nil map
		return 0, nil
	})
	// pair returns once another call of pair runs at the same time.
	counterPair = actors.Method(counterSvc, "pair", func(ctx context.Context, c *counter, _ struct{}) (bool, error) {
		select {
		case c.pair <- struct{}{}:
		case <-c.pair:
		case <-ctx.Done():
			return false, ctx.Err()
		}
		return true, nil
	}, actors.Concurrent())
	counterParents = actors.Method(counterSvc, "parents", func(ctx context.Context, c *counter, _ struct{}) (int, error) { return c.n, nil })
	counterOpen    = actors.Method(counterSvc, "open", func(ctx context.Context, c *counter, _ struct{}) (int, error) { return c.n, nil },
		actors.WithPolicy(actors.Anyone()))
	counterListed = actors.Method(counterSvc, "listed", func(ctx context.Context, c *counter, _ struct{}) (int, error) { return c.n, nil },
		actors.WithPolicy(actors.AllowFunc(func(caller int) bool { return int64(caller) == allowedCaller.Load() })))
)

// Plain functions the tests run in children.
var (
	counterStartCount = actors.Register("test.counterStarts", func(ctx context.Context, _ struct{}) (int64, error) {
		return counterStarts.Load(), nil
	})
	setAllowedCaller = actors.Register("test.setAllowedCaller", func(ctx context.Context, id int) (struct{}, error) {
		allowedCaller.Store(int64(id))
		return struct{}{}, nil
	})
	// callService calls a service method in another context and says how
	// it went: "ok", "refused", or the error's text.
	callService = actors.Register("test.callService", func(ctx context.Context, a serviceCall) (string, error) {
		r := actors.RouterFrom(ctx)
		_, err := actors.Function[struct{}, int](a.Method).Call(ctx, r.Context(a.Target), struct{}{})
		switch {
		case err == nil:
			return "ok", nil
		case errors.As(err, new(*actors.CallError)) && errors.Is(err, actors.ErrRefused) && errors.Is(err, actors.ErrMitogo):
			return "refused", nil
		}
		return err.Error(), nil
	})
)

type serviceCall struct {
	Target int
	Method string
}

// TestServiceLazyActivation: a service is not started until its first
// call, and twenty first calls at once start it once; the state it made
// serves them all.
func TestServiceLazyActivation(t *testing.T) {
	r := newRouter(t)
	c := local(t, r)
	if n, err := counterStartCount.Call(ctxT(t), c, struct{}{}); err != nil || n != 0 {
		t.Fatalf("starts before the first call = %d, %v", n, err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			if _, err := counterIncr.Call(ctxT(t), c, 1); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n, err := counterStartCount.Call(ctxT(t), c, struct{}{}); err != nil || n != 1 {
		t.Fatalf("starts after 20 first calls = %d, %v", n, err)
	}
	if n, err := counterIncr.Call(ctxT(t), c, 0); err != nil || n != 20 {
		t.Fatalf("count = %d, %v; want 20", n, err)
	}
}

// TestServiceSerialized: calls of a method that reads, yields and writes
// the state run one at a time (the race detector would see them
// otherwise, and increments would be lost); a Concurrent method's calls
// run at once; the state is closed when the router shuts down.
func TestServiceSerialized(t *testing.T) {
	r, err := actors.NewRouter(actors.WithLogger(discard()))
	if err != nil {
		t.Fatal(err)
	}
	closedBefore := counterClosed.Load()
	self := r.Self()
	const n = 50
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if _, err := counterIncr.Call(ctxT(t), self, 1); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got, err := counterIncr.Call(ctxT(t), self, 0); err != nil || got != n {
		t.Fatalf("count = %d, %v; want %d", got, err, n)
	}
	// Two calls of pair meet only if they run at the same time.
	for range 2 {
		wg.Go(func() {
			if ok, err := counterPair.Call(ctxT(t), self, struct{}{}); err != nil || !ok {
				t.Errorf("pair = %v, %v", ok, err)
			}
		})
	}
	wg.Wait()
	if err := r.Shutdown(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if got := counterClosed.Load() - closedBefore; got != 1 {
		t.Fatalf("states closed by shutdown: %d, want 1", got)
	}
}

// TestServicePanic: a method's panic is the caller's *CallError with the
// stack, and the service goes on serving with its state.
func TestServicePanic(t *testing.T) {
	r := newRouter(t)
	c := local(t, r)
	if _, err := counterIncr.Call(ctxT(t), c, 5); err != nil {
		t.Fatal(err)
	}
	_, err := counterPanic.Call(ctxT(t), c, struct{}{})
	var ce *actors.CallError
	if !errors.As(err, &ce) || ce.Code != "panic" || !strings.Contains(ce.Message, "nil map") || !strings.Contains(ce.Stack, "service_test.go") || ce.Context != c.Name() {
		t.Fatalf("panic = %#v", err)
	}
	if n, err := counterIncr.Call(ctxT(t), c, 1); err != nil || n != 6 {
		t.Fatalf("after the panic: %d, %v; want 6", n, err)
	}
}

// TestServicePolicy: a child calls a service in the master only when the
// method allows it and the master has activated it: the child cannot.
func TestServicePolicy(t *testing.T) {
	r := newRouter(t)
	c1, c2 := local(t, r), local(t, r)
	try := func(from *actors.Context, method actors.Func[struct{}, int]) string {
		t.Helper()
		got, err := callService.Call(ctxT(t), from, serviceCall{Target: 0, Method: method.Name()})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := try(c1, counterOpen); got != "refused" {
		t.Fatalf("a child's call activating a service in the master: %s", got)
	}
	if err := counterSvc.Activate(ctxT(t), r.Self()); err != nil {
		t.Fatal(err)
	}
	allowedCaller.Store(int64(c1.ID()))
	for _, tc := range []struct {
		from   *actors.Context
		method actors.Func[struct{}, int]
		want   string
	}{
		{c1, counterOpen, "ok"},
		{c1, counterParents, "refused"},
		{c1, counterListed, "ok"},
		{c2, counterListed, "refused"},
		{c2, counterOpen, "ok"},
	} {
		if got := try(tc.from, tc.method); got != tc.want {
			t.Errorf("%s calling %s in the master: %s, want %s", tc.from, tc.method.Name(), got, tc.want)
		}
	}
	// An unknown service cannot be activated.
	_, err := actors.Function[string, struct{}]("mitogo.service.activate").Call(ctxT(t), c1, "no.such.service")
	if !errors.As(err, new(*actors.CallError)) || !errors.Is(err, actors.ErrUnknownFunction) {
		t.Fatalf("activating an unknown service: %v", err)
	}
}

// TestServiceAuthority: in a grandchild, its whole parent chain may
// activate and call a ParentsOnly method, a context in another subtree
// may not (though sideways calls are allowed), and it may call an Anyone
// method once the service is active.
func TestServiceAuthority(t *testing.T) {
	r := newRouter(t, actors.AllowSideways())
	c1 := local(t, r)
	c2 := local(t, r, actors.Via(c1))
	c3 := local(t, r)
	if _, err := counterParents.Call(ctxT(t), c2, struct{}{}); err != nil {
		t.Fatalf("the master calling its grandchild's service: %v", err)
	}
	for _, tc := range []struct {
		from   *actors.Context
		method actors.Func[struct{}, int]
		want   string
	}{
		{c1, counterParents, "ok"},
		{c3, counterParents, "refused"},
		{c3, counterOpen, "ok"},
	} {
		got, err := callService.Call(ctxT(t), tc.from, serviceCall{Target: c2.ID(), Method: tc.method.Name()})
		if err != nil || got != tc.want {
			t.Errorf("%s calling %s in %s: %s, %v; want %s", tc.from, tc.method.Name(), c2, got, err, tc.want)
		}
	}
	// A descendant may not activate its parent's service.
	got, err := callService.Call(ctxT(t), c2, serviceCall{Target: c1.ID(), Method: counterOpen.Name()})
	if err != nil || got != "refused" {
		t.Fatalf("a child activating its parent's service: %s, %v", got, err)
	}
	if _, err := setAllowedCaller.Call(ctxT(t), c1, c2.ID()); err != nil {
		t.Fatal(err)
	}
	if err := counterSvc.Activate(ctxT(t), c1); err != nil {
		t.Fatal(err)
	}
	got, err = callService.Call(ctxT(t), c2, serviceCall{Target: c1.ID(), Method: counterListed.Name()})
	if err != nil || got != "ok" {
		t.Fatalf("a listed child calling its parent's service: %s, %v", got, err)
	}
}
