package actors

import (
	"errors"
	"math"
	"sync"
)

// children is what this context has started or opened and must end when
// it shuts down: the streams to its child processes, the supervised
// handles on the contexts started from here, its channel ends, and, in
// the master, the ids handed out for new contexts.
//
// Invariant, whenever mu is not held: conns holds every stream to a child
// whose stream actor the broker has spawned and that has not stopped (the
// broker adds it on startStream and removes it on the actor's Terminated:
// see broker.go); contexts holds the live supervised handles started from
// here, each under its own id (connect adds, the handle's context actor
// removes it when it stops for good); channels holds
// every channel end made here and not released; starters maps each id
// handed out (nextID only grows, master only) to the context that will
// start it; once closing is set it is never cleared, and nothing new is
// started. None of it is read on a call's hot path: calls find their
// stream in the route table, a snapshot of its own.
type children struct {
	mu       sync.Mutex
	conns    map[*conn]struct{}  // streams to children
	contexts map[uint32]*Context // supervised handles started from here
	channels map[string]*Channel
	nextID   uint32            // next context id to hand out (master only)
	starters map[uint32]uint32 // master: context id → the context that starts it
	nextChan uint64
	closing  bool
}

func newChildren() children {
	return children{
		conns:    map[*conn]struct{}{},
		contexts: map[uint32]*Context{},
		starters: map[uint32]uint32{},
		channels: map[string]*Channel{},
	}
}

// connList returns the streams to children, except but.
func (ch *children) connList(but *conn) []*conn {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	out := make([]*conn, 0, len(ch.conns))
	for c := range ch.conns {
		if c != but {
			out = append(out, c)
		}
	}
	return out
}

func (ch *children) dropConn(c *conn) {
	ch.mu.Lock()
	delete(ch.conns, c)
	ch.mu.Unlock()
}

// handle returns the supervised handle on context id, if it is one.
func (ch *children) handle(id uint32) (*Context, bool) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	c, ok := ch.contexts[id]
	return c, ok
}

// handles returns the handles among ids, in order.
func (ch *children) handles(ids []uint32) []*Context {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	var out []*Context
	for _, id := range ids {
		if h, ok := ch.contexts[id]; ok {
			out = append(out, h)
		}
	}
	return out
}

// forgetHandle removes c from the handles if it is still the one under its id.
func (ch *children) forgetHandle(c *Context) {
	ch.mu.Lock()
	if ch.contexts[c.id] == c {
		delete(ch.contexts, c.id)
	}
	ch.mu.Unlock()
}

// beginClosing sets closing and returns the handles to stop; first is
// false when closing was already set.
func (ch *children) beginClosing() (handles []*Context, first bool) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.closing {
		return nil, false
	}
	ch.closing = true
	for _, c := range ch.contexts {
		handles = append(handles, c)
	}
	return handles, true
}

func (ch *children) isClosing() bool {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return ch.closing
}

// newID hands out a fresh context id (master only), to be started by starter.
func (ch *children) newID(starter uint32) (uint32, error) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.nextID == math.MaxUint32 {
		return 0, errors.New("context ids exhausted")
	}
	id := ch.nextID
	ch.nextID++
	ch.starters[id] = starter
	return id, nil
}

// starter returns the context that was to start id.
func (ch *children) starter(id uint32) (uint32, bool) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	s, ok := ch.starters[id]
	return s, ok
}

// channelList returns every channel end not released.
func (ch *children) channelList() []*Channel {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	out := make([]*Channel, 0, len(ch.channels))
	for _, c := range ch.channels {
		out = append(out, c)
	}
	return out
}

func (ch *children) channel(id string) *Channel {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return ch.channels[id]
}

func (ch *children) releaseChannel(id string) {
	ch.mu.Lock()
	delete(ch.channels, id)
	ch.mu.Unlock()
}
