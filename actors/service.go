package actors

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/mitogo/mitogo/messages"
)

// Services (Mitogen's mitogen.service): state that lives in one actor of
// a context, and methods that other contexts call like functions.
//
// A service is registered by name at package init, with a start function
// that makes its state, and methods, each a registered function
// ("service:<service>/<method>") with a policy saying who may call it. It
// is activated in a context on the first call that context's authority
// makes there: the context itself or one of its ancestors (its parent
// chain up to the master), and only they. Activation runs start once and
// spawns the service's actor, which holds the state until the router
// shuts down. A method runs in the actor's Receive, one call after
// another in the order they arrived, unless it is Concurrent.

// The registry of services, like the function registry: every process
// runs the same binary, so a name means the same service everywhere.
var services = struct {
	sync.RWMutex
	byName  map[string]*serviceDef
	methods map[string]bool // the function names of service methods
}{byName: map[string]*serviceDef{}, methods: map[string]bool{}}

type serviceDef struct {
	name  string
	start func(*Router) (any, error)
}

// isServiceMethod reports whether fn names a service method, which
// applies its own Policy rather than the router's upward policy.
func isServiceMethod(fn string) bool {
	services.RLock()
	defer services.RUnlock()
	return services.methods[fn]
}

// Service is a registered service whose state is of type S.
type Service[S any] struct{ def *serviceDef }

// RegisterService registers a service under name. start makes its state
// when the service is activated in a context: once per context, in the
// goroutine of the call that activates it, with the router of that
// context. An error from start fails that call (a *CallError) and leaves
// the service inactive, so a later call tries again. Call it at package
// init, like Register; registering a name twice panics.
//
// If S implements io.Closer, Close is called in the service's actor when
// it stops, which is when its router shuts down.
func RegisterService[S any](name string, start func(r *Router) (S, error)) *Service[S] {
	def := &serviceDef{name: name, start: func(r *Router) (any, error) { return start(r) }}
	services.Lock()
	defer services.Unlock()
	if _, dup := services.byName[name]; dup {
		panic(fmt.Sprintf("mitogo: service %q registered twice", name))
	}
	services.byName[name] = def
	return &Service[S]{def: def}
}

// Name is the service's registered name.
func (s *Service[S]) Name() string { return s.def.name }

// Activate activates the service in target now, unless it is active
// there already. Only target itself and its ancestors may (a refusal is a
// *CallError matching ErrRefused); a call of any of its methods by one of
// them activates it too. A service whose methods others may call (Anyone,
// AllowList) must be activated before they can: they cannot activate it.
func (s *Service[S]) Activate(ctx context.Context, target *Context) error {
	_, err := activateService.Call(ctx, target, s.def.name)
	return err
}

var activateService = Register("mitogo.service.activate", func(ctx context.Context, name string) (struct{}, error) {
	ci := ctx.Value(callInfoKey{}).(*callInfo)
	services.RLock()
	def := services.byName[name]
	services.RUnlock()
	if def == nil {
		return struct{}{}, &codedError{re: &messages.RemoteError{Code: messages.CodeUnknown, Type: "mitogo.UnknownService",
			Message: fmt.Sprintf("unknown service %q: nothing is registered under that name in %s", name, ci.r.Name())}}
	}
	_, err := ci.r.services.get(ctx, ci.r, def, ci.caller)
	return struct{}{}, err
})

// Policy says which contexts may call a service method. A context itself
// and its ancestors (the contexts that started it, up to the master) may
// always call its services' methods: they have authority over it. The
// zero Policy is ParentsOnly.
//
// A call must also reach the context: a call between sibling subtrees is
// forwarded only where the tree allows sideways calls (AllowSideways).
// Calls from descendants need no AllowUpward: the method's policy decides.
type Policy struct {
	anyone bool
	allow  func(caller int) bool
	desc   string
}

// ParentsOnly lets the context itself and its ancestors call the method.
// It is the default.
func ParentsOnly() Policy { return Policy{} }

// Anyone lets every context that reaches the service call the method:
// its ancestors, its descendants and, where sideways calls are allowed,
// the others.
func Anyone() Policy { return Policy{anyone: true, desc: "anyone"} }

// AllowList lets the contexts whose ids are listed call the method,
// besides the context itself and its ancestors.
func AllowList(ids ...int) Policy {
	ids = slices.Clone(ids)
	return Policy{allow: func(c int) bool { return slices.Contains(ids, c) }, desc: fmt.Sprintf("parents and contexts %v", ids)}
}

// AllowFunc lets the contexts fn approves of call the method, besides the
// context itself and its ancestors. fn runs in the service's context for
// every other caller, with its id, and must be safe for concurrent use: it
// is for a list that changes while the program runs.
func AllowFunc(fn func(caller int) bool) Policy {
	return Policy{allow: fn, desc: "parents and those allowed"}
}

func (p Policy) String() string {
	if p.desc == "" {
		return "parents only"
	}
	return p.desc
}

// allows reports whether caller may call a method with policy p in r's context.
func (p Policy) allows(r *Router, caller uint32) bool {
	return p.anyone || r.hasAuthority(caller) || (p.allow != nil && p.allow(int(caller)))
}

// hasAuthority reports whether caller is this context or one of its ancestors.
func (r *Router) hasAuthority(caller uint32) bool {
	return caller == r.id || slices.Contains(r.ancestors, caller)
}

// MethodOption configures a service method.
type MethodOption func(*methodConfig)

type methodConfig struct {
	policy     Policy
	concurrent bool
}

// WithPolicy sets who may call the method (default ParentsOnly).
func WithPolicy(p Policy) MethodOption { return func(c *methodConfig) { c.policy = p } }

// Concurrent lets calls of the method run at once, each on its caller's
// goroutine, rather than one after another in the service's actor. They
// share the state with each other and with the serialized methods running
// in the actor: a concurrent method must synchronize what it touches.
func Concurrent() MethodOption { return func(c *methodConfig) { c.concurrent = true } }

// Method registers fn as the method name of service s and returns the
// handle to call it with, like a registered function's: Call, Go, Fan,
// Future... Its target is the context the service runs in. fn gets the
// service's state; by default it runs in the service's actor, one call at
// a time, so it may change the state without a lock. Call it at package
// init; registering a method twice panics.
//
// Errors are *CallError: the method's error (Code "error"), a refusal by
// its policy or, for a caller without authority, by an inactive service
// (matching ErrRefused), or its panic (Code "panic", with the stack). A
// service whose method panicked goes on serving, with its state as the
// method left it. A serialized method that calls a serialized method of
// its own service, directly or through other contexts, waits for itself
// until its ctx ends.
func Method[S, A, R any](s *Service[S], name string, fn func(ctx context.Context, state S, args A) (R, error), opts ...MethodOption) Func[A, R] {
	var cfg methodConfig
	for _, o := range opts {
		o(&cfg)
	}
	full := "service:" + s.def.name + "/" + name
	f := &function{name: full, invoke: func(ctx context.Context, payload []byte) ([][]byte, error, error) {
		ci := ctx.Value(callInfoKey{}).(*callInfo)
		r := ci.r
		if !cfg.policy.allows(r, ci.caller) {
			return nil, &codedError{re: &messages.RemoteError{Code: messages.CodeRefused, Type: "mitogo." + messages.CodeRefused,
				Message: fmt.Sprintf("refused by policy: %s may not call %s in %s (%s)", r.table.Load().name(ci.caller), full, r.Name(), cfg.policy)}}, nil
		}
		in, err := r.services.get(ctx, r, s.def, ci.caller)
		if err != nil {
			return nil, err, nil
		}
		var a A
		if len(payload) > 0 {
			if err := decodeValue(payload, &a); err != nil {
				return nil, nil, fmt.Errorf("arguments do not decode into %v: %v", reflect.TypeFor[A](), err)
			}
		}
		state := in.state.(S)
		call := func() ([][]byte, error) {
			res, err := fn(ctx, state, a)
			if err != nil {
				return nil, err
			}
			out, err := encodeValue(res)
			if err != nil {
				return nil, fmt.Errorf("encoding the result (%T): %w", res, err)
			}
			return out, nil
		}
		if cfg.concurrent {
			out, err := call() // a panic is run's to answer, with this stack
			return out, err, nil
		}
		out, err := in.run(ctx, call)
		return out, err, nil
	}}
	functions.Lock()
	defer functions.Unlock()
	if _, dup := functions.byName[full]; dup {
		panic(fmt.Sprintf("mitogo: service method %q registered twice", full))
	}
	functions.byName[full] = f
	services.Lock()
	services.methods[full] = true
	services.Unlock()
	return Func[A, R]{name: full}
}

// codedError is a call's failure with its own code (a refusal, a panic in
// a service's actor), answered as it is rather than as Code "error".
type codedError struct{ re *messages.RemoteError }

func (e *codedError) Error() string { return e.re.Message }

// serviceHost holds the services active in one context.
//
// Invariant: an instance is in active from the moment one caller with
// authority begins to activate it; it is removed only when that
// activation fails. Once closed (the router shuts down), nothing is
// activated any more.
type serviceHost struct {
	mu     sync.Mutex
	active map[string]*serviceInstance
	closed bool
}

// serviceInstance is one service active in this context.
type serviceInstance struct {
	ready chan struct{} // closed when activation has ended
	err   error         // why activation failed; set before ready closes

	// Set before ready closes when activation succeeded.
	state   any
	pid     *actor.PID
	root    *actor.RootContext
	stopped chan struct{} // closed when the actor has stopped
}

// get returns the service def, active in r's context, activating it if
// caller has authority to. Concurrent first calls activate it once: the
// first with authority activates, the others wait for it.
func (h *serviceHost) get(ctx context.Context, r *Router, def *serviceDef, caller uint32) (*serviceInstance, error) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, &codedError{re: &messages.RemoteError{Code: messages.CodeShutdown, Type: "mitogo." + messages.CodeShutdown,
			Message: fmt.Sprintf("service %q in %s: the context is shutting down", def.name, r.Name())}}
	}
	in := h.active[def.name]
	if in == nil {
		if !r.hasAuthority(caller) {
			h.mu.Unlock()
			return nil, &codedError{re: &messages.RemoteError{Code: messages.CodeRefused, Type: "mitogo." + messages.CodeRefused,
				Message: fmt.Sprintf("refused by policy: service %q is not active in %s, and %s may not activate it (only %s and its ancestors may)",
					def.name, r.Name(), r.table.Load().name(caller), r.Name())}}
		}
		in = &serviceInstance{ready: make(chan struct{})}
		if h.active == nil {
			h.active = map[string]*serviceInstance{}
		}
		h.active[def.name] = in
		h.mu.Unlock()
		in.activate(r, def)
		if in.err != nil {
			h.mu.Lock()
			delete(h.active, def.name)
			h.mu.Unlock()
			return nil, in.err
		}
		return in, nil
	}
	h.mu.Unlock()
	select {
	case <-in.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if in.err != nil {
		return nil, in.err
	}
	return in, nil
}

// activate runs the service's start and spawns its actor.
func (in *serviceInstance) activate(r *Router, def *serviceDef) {
	defer close(in.ready)
	defer func() {
		if p := recover(); p != nil {
			in.err = &codedError{re: &messages.RemoteError{Code: messages.CodePanic, Type: "panic",
				Message: fmt.Sprintf("activating service %q: %v", def.name, p), Stack: string(debug.Stack())}}
		}
	}()
	state, err := def.start(r)
	if err != nil {
		in.err = fmt.Errorf("activating service %q in %s: %w", def.name, r.Name(), err)
		return
	}
	sys := r.System()
	stopped := make(chan struct{})
	a := &serviceActor{name: def.name, state: state, stopped: stopped, logger: r.logger}
	pid, err := sys.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return a }), "mitogo.service."+def.name)
	if err != nil {
		closeState(state, def.name, r)
		in.err = fmt.Errorf("activating service %q in %s: spawning its actor: %w", def.name, r.Name(), err)
		return
	}
	in.state, in.pid, in.root, in.stopped = state, pid, sys.Root, stopped
}

// run runs call in the service's actor, after the calls before it, and
// returns its result; it gives up when ctx ends (the call is then skipped
// if it has not begun).
func (in *serviceInstance) run(ctx context.Context, call func() ([][]byte, error)) ([][]byte, error) {
	m := &serviceCall{ctx: ctx, call: call, reply: make(chan serviceReply, 1)}
	in.root.Send(in.pid, m)
	select {
	case rep := <-m.reply:
		return rep.out, rep.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// stop stops every service active here and waits for their actors to
// stop (closing their state), or for ctx to end.
func (h *serviceHost) stop(ctx context.Context) {
	h.mu.Lock()
	h.closed = true
	var ins []*serviceInstance
	for _, in := range h.active {
		ins = append(ins, in)
	}
	h.mu.Unlock()
	for _, in := range ins {
		select {
		case <-in.ready:
		case <-ctx.Done():
			return
		}
		if in.err == nil {
			in.root.Stop(in.pid)
		}
	}
	for _, in := range ins {
		if in.err != nil {
			continue
		}
		select {
		case <-in.stopped:
		case <-ctx.Done():
			return // a method that ignores its cancelled context holds its actor
		}
	}
}

// stopServices stops the services of a child about to exit, giving them
// up to grace.
func (r *Router) stopServices(grace time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	r.services.stop(ctx)
}

// serviceCall is a call of a serialized method, sent to the service's actor.
type serviceCall struct {
	ctx   context.Context
	call  func() ([][]byte, error)
	reply chan serviceReply // buffered: the actor never waits on it
}

type serviceReply struct {
	out [][]byte
	err error
}

// serviceActor holds a service's state and runs its serialized methods.
type serviceActor struct {
	name    string
	state   any
	stopped chan struct{}
	logger  *slog.Logger
}

func (a *serviceActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *serviceCall:
		if err := m.ctx.Err(); err != nil {
			m.reply <- serviceReply{err: err} // its caller has gone
			return
		}
		m.reply <- a.serve(m)
	case *actor.Stopping:
		if c, ok := a.state.(io.Closer); ok {
			if err := c.Close(); err != nil {
				a.logger.Warn("closing a service's state failed", "service", a.name, "error", err)
			}
		}
	case *actor.Stopped:
		close(a.stopped)
	}
}

// serve runs one call; its panic is the call's *CallError, and the actor
// goes on.
func (a *serviceActor) serve(m *serviceCall) (rep serviceReply) {
	defer func() {
		if p := recover(); p != nil {
			a.logger.Error("service method panicked", "service", a.name, "panic", fmt.Sprint(p))
			rep = serviceReply{err: &codedError{re: &messages.RemoteError{Code: messages.CodePanic, Type: "panic", Message: fmt.Sprint(p), Stack: string(debug.Stack())}}}
		}
	}()
	out, err := m.call()
	return serviceReply{out: out, err: err}
}

// closeState closes a state whose actor could not be spawned.
func closeState(state any, name string, r *Router) {
	if c, ok := state.(io.Closer); ok {
		if err := c.Close(); err != nil {
			r.logger.Warn("closing a service's state failed", "service", name, "error", err)
		}
	}
}
