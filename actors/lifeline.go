package actors

import "sync"

// plainHandles are the handles on contexts this router did not start
// (from Router.Context, Caller and Parent), one per context id while the
// context is not known here to be gone, so that its Done can close when
// it goes.
//
// Invariant, whenever mu is not held: byID holds the handle given out for
// each id whose context is not known to be gone; a handle leaves it
// exactly once, by lost (its route here was removed, or a gone notice
// named it) or by closeAll (shutdown, or the process exits), which then
// mark it dead. Once closed is set, no handle enters it: new ones are
// dead at once. Nothing of it is read on a call's hot path.
type plainHandles struct {
	mu     sync.Mutex
	byID   map[uint32]*Context
	closed error // why every handle is gone, once it is
}

func newPlainHandles() plainHandles {
	return plainHandles{byID: map[uint32]*Context{}}
}

// plainHandle returns the handle on context id, which this router did
// not start. In the master, a context with no route is gone at once.
func (r *Router) plainHandle(id uint32) *Context {
	ph := &r.plain
	ph.mu.Lock()
	c, ok := ph.byID[id]
	if ok {
		ph.mu.Unlock()
		return c
	}
	c = newPlainContext(r, id, r.table.Load().name(id))
	if err := ph.closed; err != nil {
		ph.mu.Unlock()
		c.markDead(&ChannelError{Context: c.label, Reason: "the router shut down", Err: err})
		return c
	}
	ph.byID[id] = c
	ph.mu.Unlock()
	// Registered first, then checked: a route removed since is either
	// seen missing here, or the removal finds the handle (lost).
	if id != r.id && r.table.Load().lookup(id) == nil {
		ph.lost([]uint32{id}, "no route to it from "+r.Name(), ErrNoRoute)
	}
	return c
}

// lost marks the handles on ids dead: their contexts are gone.
func (ph *plainHandles) lost(ids []uint32, reason string, cause error) {
	ph.mu.Lock()
	var gone []*Context
	for _, id := range ids {
		if c, ok := ph.byID[id]; ok {
			delete(ph.byID, id)
			gone = append(gone, c)
		}
	}
	ph.mu.Unlock()
	for _, c := range gone {
		c.markDead(&ChannelError{Context: c.label, Reason: reason, Err: cause})
	}
}

// closeAll marks every handle dead, and every later one: the router is
// shutting down, or the process exits.
func (ph *plainHandles) closeAll(reason string, cause error) {
	if cause == nil {
		cause = ErrShutdown
	}
	ph.mu.Lock()
	if ph.closed == nil {
		ph.closed = cause
	}
	gone := ph.byID
	ph.byID = map[uint32]*Context{}
	ph.mu.Unlock()
	for _, c := range gone {
		c.markDead(&ChannelError{Context: c.label, Reason: reason, Err: cause})
	}
}
