package actors

import (
	"fmt"
	"strings"
	"sync"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/mitogo/mitogo/messages"
)

// routerActor owns every change to the routing table: it is the only
// writer of Router.table, and it turns a lost stream into failed calls,
// notified contexts and a route deletion sent upwards.
type routerActor struct{ r *Router }

// routeChange is a message for the router actor; its outcome goes back
// on reply.
type routeChange interface{ setReply(chan<- error) }

type replyTo struct{ reply chan<- error }

func (r *replyTo) setReply(c chan<- error) { r.reply = c }

// addRoutes: contexts ids (with names) are now reachable through c.
// claimed is set when a descendant announced them, unset when this router
// connected the child itself.
type addRoutes struct {
	replyTo
	c       *conn
	ids     []uint32
	names   []string
	claimed bool
}

// delRoutes: contexts ids behind c are gone.
type delRoutes struct {
	replyTo
	c      *conn
	ids    []uint32
	reason string
	cause  error // rebuilt from the deletion's cause code; nil if none
}

// dropConn: stream c stopped; everything behind it is gone.
type dropConn struct {
	replyTo
	c   *conn
	err error
}

func (a *routerActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *addRoutes:
		m.reply <- a.add(m)
	case *delRoutes:
		a.remove(m.c, m.ids, m.reason, m.cause)
		m.reply <- nil
	case *dropConn:
		r := a.r
		reason := "its stream closed"
		if m.err != nil {
			reason = fmt.Sprintf("its stream closed: %v", m.err)
		}
		a.remove(m.c, r.table.Load().behind(m.c), reason, m.err)
		m.reply <- nil
	case *actor.Stopped:
		close(a.r.routerDone)
	case *detachParent:
		a.detachParent(m)
		m.reply <- nil
	}
}

func (a *routerActor) add(m *addRoutes) error {
	r := a.r
	old := r.table.Load()
	for _, id := range m.ids {
		if id == r.id || id == 0 || (r.parent != nil && id == r.parentID) {
			return fmt.Errorf("stream %s claims a route to context %d, which is this context or an ancestor", m.c.name, id)
		}
		if m.claimed && r.parent == nil && !r.mayClaim(old, m.c, id) {
			return fmt.Errorf("stream %s claims a route to context %d, which was not started from its subtree", m.c.name, id)
		}
		if cur, ok := old.routes[id]; ok && cur != m.c {
			return fmt.Errorf("stream %s claims a route to context %d, already reachable through %s", m.c.name, id, cur.name)
		}
	}
	// A context below a child is named below it: a child cannot give one of
	// its contexts the name of a context elsewhere (log records and errors
	// name contexts by these names).
	if m.claimed {
		for _, name := range m.names {
			if name != "" && !strings.HasPrefix(name, m.c.name+"/") {
				return fmt.Errorf("stream %s claims a context named %q, which is not below it", m.c.name, name)
			}
		}
	}
	t := old.clone()
	for i, id := range m.ids {
		t.routes[id] = m.c
		if i < len(m.names) && m.names[i] != "" {
			t.names[id] = m.names[i]
		}
	}
	r.table.Store(t)
	if r.parent != nil {
		payload, _ := encode(&messages.Routes{IDs: m.ids, Names: m.names})
		_ = r.parent.s.Send(&messages.Header{Kind: messages.KindControl, Dst: r.parentID, Src: r.id, Type: messages.ControlAddRoute}, payload)
	}
	return nil
}

// remove deletes the routes to ids that go through c, fails what was
// pending on them, tells their supervisors, and tells the parent.
func (a *routerActor) remove(c *conn, ids []uint32, reason string, cause error) {
	r := a.r
	old := r.table.Load()
	t := old.clone()
	var gone []uint32
	var names []string
	for _, id := range ids {
		if old.routes[id] != c {
			continue // not ours to delete: a child cannot remove others' routes
		}
		delete(t.routes, id)
		gone = append(gone, id)
		names = append(names, old.name(id))
	}
	if len(gone) == 0 {
		return
	}
	// Supervised contexts are marked down first, so that a call made now
	// waits for a restart instead of finding no route.
	for _, h := range r.handles(gone) {
		if h.sup != nil {
			h.markDown()
		}
	}
	r.table.Store(t)
	// Publish first, then fail: a call that registered before the new table
	// was published is found here; one that registers later finds no route.
	r.failPending(gone, names, reason, cause)
	r.failChannels(gone, reason, cause)
	r.routesLost(gone)
	r.plain.lost(gone, reason, cause)
	for _, h := range r.handles(gone) {
		h.lost(&ChannelError{Context: h.label, Reason: reason, Err: cause})
	}
	payload, _ := encode(&messages.Routes{IDs: gone, Names: names, Err: reason, Cause: causeCode(cause)})
	if r.parent != nil {
		_ = r.parent.s.Send(&messages.Header{Kind: messages.KindControl, Dst: r.parentID, Src: r.id, Type: messages.ControlDelRoute}, payload)
	}
	r.tellGone(c, payload)
}

// tellGone sends a ControlGone notice down every child stream but from:
// contexts below them may wait on calls to the contexts that went away
// (sideways calls), and only routers on the way up learn of a loss from
// route deletions. Without AllowSideways no such call can exist, and
// nothing is sent. The sends run on their own goroutine: a child that
// does not read (stopped) must not hold up the router actor.
func (r *Router) tellGone(from *conn, payload []byte) {
	if !r.cfg.sideways {
		return
	}
	conns := r.connList(from)
	if len(conns) == 0 {
		return
	}
	r.notices.run(func() {
		for _, c := range conns {
			_ = c.s.Send(&messages.Header{Kind: messages.KindControl, Dst: c.peer, Src: r.id, Type: messages.ControlGone}, payload)
		}
	})
}

// noticeGroup runs notices that must not hold up their sender (a child
// that does not read must not stop the router actor) on goroutines of
// their own. It is not the router's wg: the router actor, which is in no
// WaitGroup, starts them too, and may do so while Shutdown waits on wg.
// Once closed it starts none (the router and its streams are going), and
// close waits for those it started, which end when their streams do.
type noticeGroup struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

// run starts f unless the group is closed; it reports whether it did.
func (g *noticeGroup) run(f func()) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.closed {
		g.wg.Go(f)
	}
	return !g.closed
}

func (g *noticeGroup) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	g.wg.Wait()
}

// mayClaim reports whether stream c may announce a route to id: the
// master gave id out for a context to be started by a context behind c.
func (r *Router) mayClaim(t *routeTable, c *conn, id uint32) bool {
	starter, ok := r.starter(id)
	return ok && t.routes[starter] == c
}
