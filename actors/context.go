package actors

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/mitogo/mitogo/messages"
)

// Context is a handle on one context of the tree, for calls, actor
// messages and lifecycle. Handles from Local (and the other connection
// methods) and from ContextProps are supervised: they track the child
// through a context actor (ActorPID), and with a restarting strategy they
// keep serving calls through a new process after it dies. Handles from
// Router.Context, Caller and Parent are not: they only learn that the
// context is gone (Done).
type Context struct {
	r    *Router
	id   uint32
	name string
	// label is the name as the user's options made it, hop by hop, without
	// the "#ID" that name may have to tell it from a live namesake (see
	// Name): errors name the context by it, so that they say what the user
	// wrote; log records and Debug use name.
	label string

	// Set for supervised handles only.
	sup      *supervision
	mu       sync.Mutex
	state    ctxState
	up       chan struct{} // closed while the context is connected
	gone     chan struct{} // closed when the current process's route is lost
	done     chan struct{} // closed once it is gone for good
	err      error         // why it is gone
	pid      int           // OS pid of the current process
	stopping bool          // Shutdown was asked: do not restart
	onDead   func()        // run once it is gone for good
}

type ctxState int

const (
	stateStarting ctxState = iota
	stateUp
	stateRestarting
	stateDead
)

func newPlainContext(r *Router, id uint32, name string) *Context {
	up := make(chan struct{})
	close(up)
	return &Context{r: r, id: id, name: name, label: name, state: stateUp, up: up, done: make(chan struct{})}
}

// ID is the context's numeric id, unique in the tree; the master is 0.
func (c *Context) ID() int { return int(c.id) }

// Name is the context's full name, e.g. "local.1/local.2", with "#<id>"
// where a live namesake needed it (see the Name option); errors name the
// context without it.
func (c *Context) Name() string { return c.name }

// String returns the name.
func (c *Context) String() string { return c.name }

// Router is the router this handle belongs to.
func (c *Context) Router() *Router { return c.r }

// Done is closed when the context is gone for good. For a supervised
// handle: it died and its supervisor did not restart it, or it was shut
// down; its context actor stops then (Terminated). For a handle from
// Router.Context, Caller or Parent: this context learned that it is gone
// (see Router.Context), or this router shut down.
func (c *Context) Done() <-chan struct{} { return c.done }

// ActorPID is the PID of a supervised handle's context actor, which lives
// as long as the context, across restarts: Watch it to receive Terminated
// when the context is gone for good, then read the cause with Err. It is
// nil for handles that are not supervised (Router.Context, Caller,
// Parent, Self) and while a ContextProps actor is not started.
func (c *Context) ActorPID() *actor.PID {
	if c.sup == nil {
		return nil
	}
	return c.sup.actorPID()
}

// Err says why the context is gone, or nil while it is not: a
// *ChannelError when its process (or one on the way) died, the
// *StreamError or *TimeoutError of the last failed reconnection, or
// ErrShutdown when it was shut down. It is set before Done closes and
// before its context actor's watchers receive Terminated.
func (c *Context) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// ProcessID is the OS process id of the context's current process (0 when
// not known, e.g. for a handle from Router.Context).
func (c *Context) ProcessID() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pid
}

// PID addresses the actor named name inside this context. Messages sent to
// it with the router's actor system (Send, Request, RequestFuture) travel to
// that context, and replies come back.
func (c *Context) PID(name string) *actor.PID { return actor.NewPID(addressOf(c.id), name) }

// ready waits until the context can take a call: at once when it is up,
// after the restart when its supervisor is restarting it.
func (c *Context) ready(ctx context.Context) error {
	c.mu.Lock()
	up, err := c.up, c.err
	c.mu.Unlock()
	if err != nil {
		return goneError(c.label, err)
	}
	select {
	case <-up:
		return nil
	default:
	}
	select {
	case <-up:
		return nil
	case <-c.done:
		return goneError(c.label, c.Err())
	case <-ctx.Done():
		if ctx.Err() == context.DeadlineExceeded {
			return &TimeoutError{Context: c.label, Op: "waiting for the restart"}
		}
		return errorf("mitogo: waiting for %s to restart: %w", c.label, ctx.Err())
	}
}

func (c *Context) call(ctx context.Context, fn string, payload [][]byte, flags uint8) ([]byte, error) {
	if err := c.ready(ctx); err != nil {
		return nil, err
	}
	return c.r.call(ctx, c.id, c.label, fn, payload, flags)
}

func (c *Context) sendCall(fn string, payload [][]byte) error {
	if err := c.ready(context.Background()); err != nil {
		return err
	}
	h := messages.Header{Kind: messages.KindCall, Flags: messages.FlagNoReply, Dst: c.id, Src: c.r.id, Target: fn}
	if err := c.r.send(&h, payload...); err != nil {
		return sendError(c.label, fn, err)
	}
	return nil
}

// markUp records that a (new) process serves the context.
func (c *Context) markUp(pid int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pid = pid
	if c.state != stateUp {
		c.state = stateUp
		c.gone = make(chan struct{})
		close(c.up)
	}
}

// markDown records that the process is gone and a restart may follow.
func (c *Context) markDown() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == stateUp {
		c.up = make(chan struct{})
		if c.gone != nil {
			close(c.gone)
		}
	}
	if c.state != stateDead {
		c.state = stateRestarting
	}
}

// markDead records that the context is gone for good.
func (c *Context) markDead(err error) {
	c.mu.Lock()
	if c.state == stateDead {
		c.mu.Unlock()
		return
	}
	if err == nil {
		err = ErrShutdown
	}
	c.state, c.err = stateDead, err
	close(c.done)
	onDead := c.onDead
	c.mu.Unlock()
	if onDead != nil {
		onDead()
	}
}

// lost is called by the router actor when the context's route went away.
func (c *Context) lost(err *ChannelError) {
	c.markDown()
	if c.sup != nil {
		c.sup.lost(err)
		return
	}
	c.markDead(err)
}

// Shutdown stops the context and its descendants in order and waits until
// they are gone (or ctx ends, when they are killed).
func (c *Context) Shutdown(ctx context.Context) error {
	c.mu.Lock()
	c.stopping = true
	c.mu.Unlock()
	if c.sup == nil {
		return errorf("mitogo: shutdown %s: only contexts started by this router (Local, SSH, Sudo) can be shut down through it", c.label)
	}
	h := messages.Header{Kind: messages.KindControl, Dst: c.id, Src: c.r.id, Type: messages.ControlShutdown}
	if err := c.r.send(&h, nil); err != nil {
		c.markDead(ErrShutdown)
		if c.sup != nil {
			c.sup.stop()
		}
		return nil
	}
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		c.r.killContext(c.id)
		t := time.NewTimer(5 * time.Second)
		defer t.Stop()
		select {
		case <-c.done:
		case <-t.C: // started through another context, which did not answer
		}
		return errorf("mitogo: shutdown %s: %w", c.label, ctx.Err())
	}
}

// goneError is the error for a call to a context that is gone for good.
func goneError(name string, err error) error {
	var ce *ChannelError
	if errors.As(err, &ce) {
		return ce
	}
	return &ChannelError{Context: name, Reason: err.Error(), Err: err}
}
