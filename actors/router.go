package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/mitogo/mitogo/messages"
	"github.com/mitogo/mitogo/transport"
)

// Router is the runtime of one context: its actor system, its routing
// table, the calls it has in flight and the streams to its children. The
// master's Router (context 0) comes from NewRouter; inside a child, the
// functions it runs reach their process's Router with RouterFrom.
type Router struct {
	id       uint32
	parentID uint32
	name     string // "" in the master
	cfg      config
	logger   *slog.Logger

	// direct bounds the streams to children that are FDConns, whose
	// readers the kernel wakes itself (see transport.DirectLimit).
	direct *transport.DirectLimit

	system     *actor.ActorSystem
	sysOnce    sync.Once   // builds system, routerPID and brokerPID on first use
	sysBuilt   atomic.Bool // set once they are built
	routerPID  *actor.PID
	routerDone chan struct{} // closed when the router actor has stopped
	brokerPID  *actor.PID
	brokerDone chan struct{} // closed when the broker has stopped

	backoffMu      sync.Mutex
	backoffs       map[*Backoff]struct{} // strategies that armed restarts here (see Backoff)
	backoffsClosed bool                  // Shutdown dropped them: no more are armed

	table  atomic.Pointer[routeTable]
	parent *conn // nil in the master

	// Its state in owned pieces, each with its own lock and invariant:
	pending  pendingCalls  // the calls this context waits for (pending.go)
	incoming incomingCalls // the calls running here (incoming.go)
	children               // what it started and must end (children.go)
	binStore               // the binaries it hands to stage 1 (binstore.go)
	watch    watchdog      // its streams' inline calls and unread streams (handoff.go)
	watches  watchTable    // watches across contexts, both ways (watch.go)
	chains   chainTable    // chains of calls made to this context (chain.go)
	services serviceHost   // the services active here (service.go)

	// listeners are the sockets processes attach through (attach.go).
	listeners listeners

	// detached is closed when an attached router (Attach) left its tree;
	// nil in every other router.
	detached chan struct{}

	// stopping is cancelled, with cause ErrShutdown, when the router
	// begins to shut down: connects in flight end at once (unlessStopping).
	stopping      context.Context
	beginStopping context.CancelCauseFunc

	pacer transport.Pacer // SSH handshakes per host

	session int // in a child: the session it leads, whose processes it ends as it exits (0: none)

	// ancestors is the parent chain, the master first and the parent
	// last (nil in the master): the contexts with authority over this
	// one's services (service.go). Set before the router serves.
	ancestors []uint32

	// hurry is cancelled when Shutdown's ctx has ended with children
	// left: from then on reaping a child waits for no grace period.
	hurry    context.Context
	hurryNow context.CancelFunc
	// reapGrace is how long the processes left in a reaped child's
	// session get between SIGTERM and SIGKILL (see session.go).
	reapGrace time.Duration

	base     context.Context // parent of every incoming call's context
	stopBase context.CancelFunc
	wg       sync.WaitGroup // every goroutine this router owns
	notices  noticeGroup    // tellGone's sends; Shutdown joins them after wg
	connects noticeGroup    // context actors' connections (supervise.go); Shutdown joins them
	plain    plainHandles   // handles from Context, Caller and Parent (lifeline.go)
	done     chan struct{}  // closed when the first Shutdown returns
	joined   chan struct{}  // closed when wg and notices are joined, after Shutdown
}

// NewRouter starts the master's runtime, context 0. Shut it down with
// Shutdown: it owns child processes.
//
// In a process started as a child context whose main did not call Main
// first, NewRouter refuses: it answers the parent's handshake with a
// refusal (so the parent's connect fails at once) and returns an error
// matching ErrMainNotCalled. Such a process never starts children, so a
// program that forgets Main cannot fork without end.
func NewRouter(opts ...Option) (*Router, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.logger == nil {
		cfg.logger = slog.Default()
	}
	if cfg.maxFrame <= 0 {
		return nil, fmt.Errorf("mitogo: MaxMessageSize must be positive, got %d", cfg.maxFrame)
	}
	if err := refuseWithoutMain(); err != nil {
		return nil, err
	}
	r := newRouter(0, 0, "", cfg, cfg.logger)
	r.nextID = 1
	r.ensureSystem()
	return r, nil
}

// directStreams is how many streams to children a context makes FDConns
// (transport.DirectLimit): enough for a chain's hops, a few accounts and a
// few local children; a fleet of local children beyond it shares the
// runtime poller's one thread.
const directStreams = 8

func newRouter(id, parentID uint32, name string, cfg config, logger *slog.Logger) *Router {
	r := &Router{
		id: id, parentID: parentID, name: name, cfg: cfg, logger: logger,
		pending:    newPendingCalls(),
		incoming:   newIncomingCalls(),
		children:   newChildren(),
		watch:      newWatchdog(),
		done:       make(chan struct{}),
		joined:     make(chan struct{}),
		routerDone: make(chan struct{}),
		brokerDone: make(chan struct{}),
		plain:      newPlainHandles(),
		reapGrace:  sessionGrace,
		direct:     transport.NewDirectLimit(directStreams),
	}
	r.hurry, r.hurryNow = context.WithCancel(context.Background())
	r.base, r.stopBase = context.WithCancel(context.Background())
	r.stopping, r.beginStopping = context.WithCancelCause(context.Background())
	t := &routeTable{routes: map[uint32]*conn{}, names: map[uint32]string{}}
	if name != "" {
		t.names[id] = name
	}
	r.table.Store(t)
	return r
}

// ensureSystem creates the actor system and the router actor on first use.
// A child builds it only when something needs it (an actor message, a
// route change, System()): calls do not, and building it costs 3–5 ms of
// CPU (protoactor's process registry allocates 1024 maps), which twenty
// children started at once would otherwise spend together.
func (r *Router) ensureSystem() *actor.ActorSystem {
	r.sysOnce.Do(r.startSystem)
	return r.system
}

func (r *Router) startSystem() {
	protoLogger := slog.New(demoteHandler{r.logger.Handler()}).With("lib", "protoactor")
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return protoLogger }))
	sys.ProcessRegistry.Address = addressOf(r.id)
	sys.ProcessRegistry.RegisterAddressResolver(r.resolve)
	sys.Extensions.Register(routerExt{r})
	pid, err := sys.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return &routerActor{r: r} }), "mitogo.router")
	if err != nil {
		panic(fmt.Sprintf("mitogo: spawning the router actor: %v", err))
	}
	broker, err := sys.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return newBroker(r) }), "mitogo.broker")
	if err != nil {
		panic(fmt.Sprintf("mitogo: spawning the broker: %v", err))
	}
	r.system, r.routerPID, r.brokerPID = sys, pid, broker
	r.sysBuilt.Store(true)
}

// System returns the context's protoactor actor system, whose address is
// "ctx:<id>". PIDs with another context's address reach that context.
func (r *Router) System() *actor.ActorSystem {
	return r.ensureSystem()
}

// ID is this context's id; the master is 0.
func (r *Router) ID() int { return int(r.id) }

// ParentID is the id of the context that started this one (0 for the master).
func (r *Router) ParentID() int { return int(r.parentID) }

// IsMaster reports whether this router is the master's.
func (r *Router) IsMaster() bool { return r.parent == nil }

// Name is this context's full name ("master" for the master).
func (r *Router) Name() string {
	if r.name == "" {
		return "master"
	}
	return r.name
}

// Logger is the logger that reaches the master's handler from this context.
func (r *Router) Logger() *slog.Logger { return r.logger }

// Context returns a handle on context id, for calls and messages to a
// context this router did not start (a sibling, an ancestor). Whether the
// call is allowed is the policy's business.
//
// Its Done closes, and Err says why, when this context learns that the
// context is gone: its route here was lost (it, or a context on the way,
// died), or, for a context reached through the parent, a gone notice
// came down (with AllowSideways), or this router shut down. In the
// master, a handle on a context with no route is gone at once.
func (r *Router) Context(id int) *Context {
	if c, ok := r.handle(uint32(id)); ok {
		return c
	}
	return r.plainHandle(uint32(id))
}

// Parent returns a handle on this context's parent (nil in the master).
// Its Done closes when the stream to the parent is lost, as this process
// exits.
func (r *Router) Parent() *Context {
	if r.parent == nil {
		return nil
	}
	return r.Context(int(r.parentID))
}

// Self returns a handle on this context itself; calls to it run locally.
func (r *Router) Self() *Context { return newPlainContext(r, r.id, r.Name()) }

// send routes one envelope from this context.
func (r *Router) send(h *messages.Header, parts ...[]byte) error {
	if h.Dst == r.id {
		body := messages.AppendHeader(nil, h)
		for _, p := range parts {
			body = append(body, p...)
		}
		h2, p, _ := messages.DecodeHeader(body)
		if job := r.deliver(nil, h2, p); job != nil {
			go job()
		}
		return nil
	}
	t := r.table.Load()
	c := t.lookup(h.Dst)
	if c == nil {
		return &ChannelError{Context: t.name(h.Dst), Reason: "no route to it from " + r.Name(), Err: ErrNoRoute}
	}
	return c.s.Send(h, parts...)
}

// route handles one frame read from c: deliver it here or forward it. A
// call to run here comes back as a job for the caller to run or hand off.
func (r *Router) route(c *conn, body []byte, h messages.Header, payload []byte) (job func()) {
	if h.Dst == r.id {
		return r.deliver(c, h, payload)
	}
	t := r.table.Load()
	if h.Kind == messages.KindControl && c != nil && !c.up {
		// Router messages from below are for this router only; passed on,
		// a child could shut down its siblings.
		r.logger.Warn("control message from below for another context dropped", "from", t.name(h.Src), "to", t.name(h.Dst), "type", h.Type)
		return nil
	}
	next := t.lookup(h.Dst)
	if next == nil {
		r.bounce(&h, messages.CodeNoRoute, fmt.Sprintf("no route to %s from %s", t.name(h.Dst), r.Name()))
		return nil
	}
	if c != nil && !c.up && !next.up && !r.cfg.sideways && policed(h.Kind) && !attachedMay(c, next, h.Kind) {
		r.bounce(&h, messages.CodeRefused, fmt.Sprintf("refused by policy: %s may not reach %s through %s (sideways)", t.name(h.Src), t.name(h.Dst), r.Name()))
		return nil
	}
	if err := next.s.Forward(body); err != nil {
		r.bounce(&h, messages.CodeNoRoute, fmt.Sprintf("forwarding to %s: %v", t.name(h.Dst), err))
	}
	return nil
}

// attachedMay reports whether an envelope of kind k may pass from stream
// from to stream to, both below this context, by a listener's policy
// (ListenDescendants): an attached process may reach this context's
// descendants, and they may answer it on a channel, never call it.
func attachedMay(from, to *conn, k messages.Kind) bool {
	switch {
	case from.attach != nil && from.attach.descendants && to.attach == nil:
		return true
	case to.attach != nil && to.attach.descendants && from.attach == nil:
		return k == messages.KindChannel
	}
	return false
}

// policed kinds are the ones the upward/sideways policy applies to.
func policed(k messages.Kind) bool {
	return k == messages.KindCall || k == messages.KindActor || k == messages.KindChannel
}

// bounce answers an envelope that cannot be delivered, so its sender fails
// at once instead of waiting.
func (r *Router) bounce(h *messages.Header, code, msg string) {
	switch {
	case h.Kind == messages.KindCall && h.Flags&messages.FlagNoReply == 0:
		r.replyError(h, &messages.RemoteError{Code: code, Type: "mitogo." + code, Message: msg})
	case h.Kind == messages.KindChannel && h.Flags&(messages.FlagClose|messages.FlagCredit) == 0:
		r.logger.Debug("channel item dropped", "reason", msg)
	case h.Kind == messages.KindActor && h.Flags&messages.FlagSystem != 0 && h.Type == typeWatch:
		r.logger.Debug("watch refused", "target", h.Target, "reason", msg)
		r.refuseWatch(h)
	default:
		r.logger.Debug("envelope dropped", "kind", h.Kind.String(), "target", h.Target, "reason", msg)
	}
}

// deliver handles an envelope addressed to this context. c is the stream
// it came on, nil when it came from this process. A call is returned as a
// job, so that the stream's reader can run it without a goroutine hand-off.
func (r *Router) deliver(c *conn, h messages.Header, payload []byte) (job func()) {
	fromBelow := c != nil && !c.up
	switch h.Kind {
	case messages.KindCall:
		if fromBelow && !r.allowedUpward(h.Target) && !c.attach.allows(h.Target) && !isServiceMethod(h.Target) { // a service method applies its own policy
			r.bounce(&h, messages.CodeRefused, fmt.Sprintf("refused by policy: %s may not call %s in %s (not allowed upward)", r.table.Load().name(h.Src), h.Target, r.Name()))
			return nil
		}
		return r.dispatch(h, payload)
	case messages.KindReply:
		r.complete(h, payload)
	case messages.KindCancel:
		r.cancelCall(callKey{h.Src, h.ReqID})
	case messages.KindActor:
		if h.Flags&messages.FlagSystem != 0 {
			r.deliverSystem(h, payload, fromBelow) // policy of its own (remote.go)
			return nil
		}
		if fromBelow && !r.actorAllowedUpward(h.Target) && !c.attach.allows("actor:"+h.Target) {
			r.logger.Warn("actor message refused by policy", "from", r.table.Load().name(h.Src), "target", h.Target)
			return nil
		}
		r.deliverActor(h, payload)
	case messages.KindLog:
		r.deliverLog(h.Src, payload)
	case messages.KindControl:
		r.control(c, h, payload)
	case messages.KindChannel:
		r.deliverChannel(h, payload)
	default:
		r.logger.Warn("envelope of unknown kind dropped", "kind", h.Kind.String(), "from", r.table.Load().name(h.Src))
	}
	return nil
}

func (r *Router) allowedUpward(fn string) bool {
	if fn == fnAllocateID || fn == fnBinary {
		return true
	}
	for _, a := range r.cfg.upward {
		if a == fn {
			return true
		}
	}
	return false
}

func (r *Router) actorAllowedUpward(target string) bool {
	// Replies to requests go to futures; other actors must be allowed by name.
	if len(target) >= 7 && target[:7] == "future$" {
		return true
	}
	return r.allowedUpward("actor:" + target)
}

// control handles router-to-router messages; they travel one hop at a time.
func (r *Router) control(c *conn, h messages.Header, payload []byte) {
	switch h.Type {
	case messages.ControlAddRoute, messages.ControlDelRoute:
		if c == nil || c.up {
			r.logger.Warn("route update from above ignored", "type", h.Type)
			return
		}
		var rs messages.Routes
		if err := decode(payload, &rs); err != nil {
			c.close(fmt.Errorf("malformed route update: %w", err))
			return
		}
		if h.Type == messages.ControlAddRoute {
			if err := r.ask(&addRoutes{c: c, ids: rs.IDs, names: rs.Names, claimed: true}); err != nil {
				r.logger.Warn("route update refused; closing the stream", "from", c.name, "error", err)
				c.close(err)
			}
			return
		}
		r.ask(&delRoutes{c: c, ids: rs.IDs, reason: rs.Err, cause: causeFromCode(rs.Cause)})
	case messages.ControlGone:
		if c == nil || !c.up {
			r.logger.Warn("gone notice from below ignored")
			return
		}
		var rs messages.Routes
		if err := decode(payload, &rs); err != nil {
			c.close(fmt.Errorf("malformed gone notice: %w", err))
			return
		}
		r.failPending(rs.IDs, rs.Names, rs.Err, causeFromCode(rs.Cause))
		r.failChannels(rs.IDs, rs.Err, causeFromCode(rs.Cause))
		r.routesLost(rs.IDs)
		r.plain.lost(rs.IDs, rs.Err, causeFromCode(rs.Cause))
		r.tellGone(nil, payload)
	case messages.ControlShutdown:
		switch {
		case c == nil || !c.up:
		case r.detached != nil:
			c.close(fmt.Errorf("the listener shuts down: %w", ErrShutdown)) // an attached router leaves the tree, and lives on
		default:
			go r.childShutdown()
		}
	default:
		r.logger.Warn("unknown control message dropped", "type", h.Type)
	}
}

// ask sends msg to the router actor and waits until it is applied, so that
// a route change is in the table before the next frame is read.
//
// The answer comes back on a private Go channel, not a protoactor future:
// futures are addressable actors, and one a child could name is one it
// could answer.
func (r *Router) ask(msg routeChange) error {
	r.ensureSystem()
	done := make(chan error, 1)
	msg.setReply(done)
	r.system.Root.Send(r.routerPID, msg)
	select {
	case err := <-done:
		return err
	case <-r.routerDone:
		return ErrShutdown
	}
}

// allocateID hands out a fresh context id: locally in the master, by
// asking the master elsewhere. starter is the context that will start it;
// only a stream towards the starter may later announce a route to it.
func (r *Router) allocateID(ctx context.Context, starter uint32) (uint32, error) {
	if r.parent == nil {
		return r.newID(starter)
	}
	id, err := Function[struct{}, uint32](fnAllocateID).Call(ctx, r.Context(0), struct{}{})
	return id, err
}

// sameWay reports whether contexts a and b are reached from here by the
// same stream (the parent's, for contexts outside this subtree).
func (r *Router) sameWay(a, b uint32) bool {
	t := r.table.Load()
	return t.routes[a] == t.routes[b]
}

// childName returns the full name of a new child of this context.
func (r *Router) childName(last string) string {
	if r.name == "" {
		return last
	}
	return r.name + "/" + last
}

func isTooLarge(err error) bool { return errors.Is(err, messages.ErrFrameTooLarge) }

func addressOf(id uint32) string { return "ctx:" + itoa(id) }

func platform() string { return runtime.GOOS + "/" + runtime.GOARCH }
