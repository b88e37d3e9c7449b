package actors

import (
	"strings"
	"sync"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/mitogo/mitogo/messages"
)

// Remote watch: protoactor's Watch, Unwatch and Terminated between actors
// in different contexts.
//
// The watcher's side: ctx.Watch(pid) on a PID of context N reaches
// remoteProcess.SendSystemMessage, which notes the pair (watcher,
// watchee) under N in Router.watches and sends a Watch envelope. The pair
// ends once, by whichever comes first: a Terminated from N (the watchee
// stopped, or did not exist), Unwatch, or the loss of the route to N
// (routesLost), which ends every pair under N with AddressTerminated.
// Only a Terminated for a pair still noted reaches the watcher, so none
// arrives after Unwatch, and none twice.
//
// The watchee's side: a Watch envelope makes a watchProxy, a process with
// no mailbox registered under its own PID, which watches the local actor
// on behalf of the remote watcher and sends the Terminated it gets back
// across the tree. Unwatch, the loss of the watcher's context and
// Shutdown release it.
//
// Policy is that of actor messages: a Watch from below is taken only for
// an actor allowed upward ("actor:<id>"), and a router refuses a Watch
// going sideways unless AllowSideways. A refused or unroutable Watch is
// answered with Terminated{Why: AddressTerminated}, so the watcher never
// waits for nothing. Terminated may come from anywhere it is owed.

// Wire names of the system messages of remote watch (spec.md §5.5).
const (
	typeWatch      = "protoactor.Watch"
	typeUnwatch    = "protoactor.Unwatch"
	typeTerminated = "protoactor.Terminated"
	typeStop       = "stop"
)

func init() {
	messages.Register[*actor.Watch](typeWatch)
	messages.Register[*actor.Unwatch](typeUnwatch)
	messages.Register[*actor.Terminated](typeTerminated)
}

// watchPair names one watch by actor ids; the remote context it crosses
// to is the key it is filed under.
type watchPair struct{ watcher, watchee string }

// watchTable holds the watches that cross this context's boundary, both
// ways. It is behind a lock, not in an actor: watches are made on their
// watcher's goroutine and must be noted before their envelope leaves, and
// Terminated envelopes arrive on stream readers.
type watchTable struct {
	mu sync.Mutex
	// watching: under each remote context, the watches actors here hold
	// on actors there.
	watching map[uint32]map[watchPair]struct{}
	// proxies: under each remote context, the proxies here standing for
	// its watchers.
	proxies map[uint32]map[watchPair]*watchProxy
	closed  bool // after Shutdown: no new proxies
}

// add notes a watch on an actor in context ctx; false if it was noted.
func (w *watchTable) add(ctx uint32, p watchPair) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.watching == nil {
		w.watching = map[uint32]map[watchPair]struct{}{}
	}
	m := w.watching[ctx]
	if m == nil {
		m = map[watchPair]struct{}{}
		w.watching[ctx] = m
	}
	if _, ok := m[p]; ok {
		return false
	}
	m[p] = struct{}{}
	return true
}

// remove ends a watch on an actor in context ctx; false if it was not
// noted (already ended).
func (w *watchTable) remove(ctx uint32, p watchPair) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := w.watching[ctx]
	if _, ok := m[p]; !ok {
		return false
	}
	delete(m, p)
	if len(m) == 0 {
		delete(w.watching, ctx)
	}
	return true
}

// addProxy files proxy x for a watcher in context ctx; false when one is
// there already or the table is closed.
func (w *watchTable) addProxy(ctx uint32, x *watchProxy) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return false
	}
	if w.proxies == nil {
		w.proxies = map[uint32]map[watchPair]*watchProxy{}
	}
	m := w.proxies[ctx]
	if m == nil {
		m = map[watchPair]*watchProxy{}
		w.proxies[ctx] = m
	}
	if _, ok := m[x.pair]; ok {
		return false
	}
	m[x.pair] = x
	return true
}

// takeProxy removes and returns the proxy for pair p of context ctx;
// nil if there is none. Only its taker releases a proxy.
func (w *watchTable) takeProxy(ctx uint32, p watchPair) *watchProxy {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := w.proxies[ctx]
	x := m[p]
	if x == nil {
		return nil
	}
	delete(m, p)
	if len(m) == 0 {
		delete(w.proxies, ctx)
	}
	return x
}

// takeContexts removes everything filed under the contexts ids.
func (w *watchTable) takeContexts(ids []uint32) (watching map[uint32][]watchPair, proxies []*watchProxy) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, id := range ids {
		for p := range w.watching[id] {
			if watching == nil {
				watching = map[uint32][]watchPair{}
			}
			watching[id] = append(watching[id], p)
		}
		delete(w.watching, id)
		for _, x := range w.proxies[id] {
			proxies = append(proxies, x)
		}
		delete(w.proxies, id)
	}
	return watching, proxies
}

// close takes every proxy and forgets every watch; no proxy is filed
// after it.
func (w *watchTable) close() []*watchProxy {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	var all []*watchProxy
	for _, m := range w.proxies {
		for _, x := range m {
			all = append(all, x)
		}
	}
	w.proxies, w.watching = nil, nil
	return all
}

// count is the number of watches and proxies filed (for tests).
func (w *watchTable) count() (watching, proxies int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, m := range w.watching {
		watching += len(m)
	}
	for _, m := range w.proxies {
		proxies += len(m)
	}
	return watching, proxies
}

// watchRemote: the local actor watcher watches watchee, in context dst.
func (r *Router) watchRemote(dst uint32, watchee, watcher *actor.PID) {
	if watcher == nil || !r.isLocalPID(watcher) {
		r.logger.Debug("remote watch with a watcher that is not local dropped", "watchee", watchee.String())
		return
	}
	p := watchPair{watcher: watcher.Id, watchee: watchee.Id}
	if !r.watches.add(dst, p) {
		return // watched already: protoactor's watchers are a set
	}
	if err := r.sendWatch(typeWatch, dst, p); err != nil {
		r.logger.Debug("remote watch not sent", "watchee", watchee.String(), "error", err)
		r.watchEnded(dst, p, actor.TerminatedReason_AddressTerminated)
	}
}

// unwatchRemote ends a watch made by watchRemote.
func (r *Router) unwatchRemote(dst uint32, watchee, watcher *actor.PID) {
	if watcher == nil || !r.watches.remove(dst, watchPair{watcher: watcher.Id, watchee: watchee.Id}) {
		return
	}
	_ = r.sendWatch(typeUnwatch, dst, watchPair{watcher: watcher.Id, watchee: watchee.Id})
}

// sendWatch sends a Watch or Unwatch for pair p to context dst. The
// watcher goes in the sender field too, so that a router on the way can
// answer a Watch it refuses without decoding the payload.
func (r *Router) sendWatch(typ string, dst uint32, p watchPair) error {
	watcher := actor.NewPID(addressOf(r.id), p.watcher)
	var msg any = &actor.Watch{Watcher: watcher}
	if typ == typeUnwatch {
		msg = &actor.Unwatch{Watcher: watcher}
	}
	_, payload, err := messages.EncodeTyped(msg)
	if err != nil {
		return err
	}
	h := messages.Header{Kind: messages.KindActor, Flags: messages.FlagSystem, Dst: dst, Src: r.id, Target: p.watchee, Sender: watcher.Address + "/" + watcher.Id, Type: typ}
	return r.send(&h, payload)
}

// watchEnded ends the watch p on an actor of context ctx, if it is still
// noted, and tells the watcher why.
func (r *Router) watchEnded(ctx uint32, p watchPair, why actor.TerminatedReason) {
	if !r.watches.remove(ctx, p) {
		return
	}
	r.tellTerminated(p.watcher, actor.NewPID(addressOf(ctx), p.watchee), why)
}

// tellTerminated gives the local actor watcherID a Terminated for who, as
// protoactor does for a local watch: a system message.
func (r *Router) tellTerminated(watcherID string, who *actor.PID, why actor.TerminatedReason) {
	proc, ok := r.system.ProcessRegistry.GetLocal(watcherID)
	if !ok {
		return // the watcher is gone
	}
	proc.SendSystemMessage(actor.NewPID(addressOf(r.id), watcherID), &actor.Terminated{Who: who, Why: why})
}

// routesLost ends the watches that cross to the contexts ids, which are
// gone: each watcher here gets Terminated{Why: AddressTerminated}, and
// each proxy here for a watcher there is released. The router actor calls
// it as it removes routes; a route.gone notice does too.
func (r *Router) routesLost(ids []uint32) {
	watching, proxies := r.watches.takeContexts(ids)
	for ctx, pairs := range watching {
		for _, p := range pairs {
			r.tellTerminated(p.watcher, actor.NewPID(addressOf(ctx), p.watchee), actor.TerminatedReason_AddressTerminated)
		}
	}
	for _, x := range proxies {
		x.release()
	}
}

// closeWatches releases every proxy, as the router shuts down.
func (r *Router) closeWatches() {
	for _, x := range r.watches.close() {
		x.release()
	}
}

// isLocalPID reports whether pid names an actor of this context.
func (r *Router) isLocalPID(pid *actor.PID) bool {
	return pid.Address == addressOf(r.id) || pid.Address == "nonhost"
}

// deliverWatch handles a Watch or Unwatch envelope for a local actor.
func (r *Router) deliverWatch(h messages.Header, payload []byte, fromBelow bool) {
	addr, watcherID, ok := strings.Cut(h.Sender, "/")
	src, valid := parseAddress(addr)
	if !ok || !valid || src != h.Src {
		r.logger.Warn("watch with a watcher outside its source dropped", "sender", h.Sender, "src", h.Src)
		return
	}
	msg, err := messages.DecodeTyped(h.Type, payload)
	if err != nil {
		r.logger.Error("watch dropped", "target", h.Target, "error", err)
		return
	}
	var watcher *actor.PID
	switch m := msg.(type) {
	case *actor.Watch:
		watcher = m.Watcher
	case *actor.Unwatch:
		watcher = m.Watcher
	}
	if watcher == nil || watcher.Address != addr || watcher.Id != watcherID {
		r.logger.Warn("watch whose payload names another watcher than its sender dropped", "sender", h.Sender)
		return
	}
	p := watchPair{watcher: watcherID, watchee: h.Target}
	if h.Type == typeUnwatch {
		if x := r.watches.takeProxy(src, p); x != nil {
			x.release()
		}
		return
	}
	if fromBelow && !r.actorAllowedUpward(h.Target) {
		r.logger.Warn("watch refused by policy", "from", r.table.Load().name(h.Src), "target", h.Target)
		r.refuseWatch(&h)
		return
	}
	x := &watchProxy{r: r, src: src, pair: p, watchee: actor.NewPID(addressOf(r.id), h.Target)}
	x.pid, ok = r.system.ProcessRegistry.Add(x, "mitogo.watch"+r.system.ProcessRegistry.NextId())
	if !ok {
		return // cannot happen: NextId is unique
	}
	if !r.watches.addProxy(src, x) {
		r.system.ProcessRegistry.Remove(x.pid)
		return // a duplicate Watch, or shutting down
	}
	// Sent now, on the reader, so that it is in the watchee's mailbox
	// before anything read after it (a stop). An actor that does not
	// exist answers from the dead-letter process with NotFound.
	proc, _ := r.system.ProcessRegistry.GetLocal(h.Target)
	proc.SendSystemMessage(x.watchee, &actor.Watch{Watcher: x.pid})
}

// refuseWatch answers a Watch envelope that will not be delivered (refused
// by policy, no route) with Terminated{Why: AddressTerminated}, from this
// router, so the watcher does not wait for nothing.
func (r *Router) refuseWatch(h *messages.Header) {
	addr, watcherID, ok := strings.Cut(h.Sender, "/")
	if src, valid := parseAddress(addr); !ok || !valid || src != h.Src {
		return
	}
	t := &actor.Terminated{Who: actor.NewPID(addressOf(h.Dst), h.Target), Why: actor.TerminatedReason_AddressTerminated}
	_, payload, err := messages.EncodeTyped(t)
	if err != nil {
		return
	}
	back := messages.Header{Kind: messages.KindActor, Flags: messages.FlagSystem, Dst: h.Src, Src: r.id, Target: watcherID, Type: typeTerminated}
	if err := r.send(&back, payload); err != nil {
		r.logger.Debug("refused watch not answered", "watcher", h.Sender, "error", err)
	}
}

// deliverTerminated handles a Terminated envelope for a local watcher. It
// is taken only for a watch still noted, from the watchee's context, or,
// with AddressTerminated, from a router on the way that refused the Watch.
func (r *Router) deliverTerminated(h messages.Header, payload []byte) {
	msg, err := messages.DecodeTyped(h.Type, payload)
	if err != nil {
		r.logger.Error("terminated dropped", "target", h.Target, "error", err)
		return
	}
	t, _ := msg.(*actor.Terminated)
	if t == nil || t.Who == nil {
		return
	}
	ctx, ok := parseAddress(t.Who.Address)
	if !ok || (ctx != h.Src && t.Why != actor.TerminatedReason_AddressTerminated) {
		r.logger.Warn("terminated for an actor outside its source dropped", "who", t.Who.String(), "src", h.Src)
		return
	}
	r.watchEnded(ctx, watchPair{watcher: h.Target, watchee: t.Who.Id}, t.Why)
}

// watchProxy watches a local actor on behalf of a watcher in context src.
// It is a bare process, like a future: no mailbox, no goroutine. The
// Terminated its watchee sends it goes to the watcher across the tree.
type watchProxy struct {
	r       *Router
	pid     *actor.PID // its own
	src     uint32     // the watcher's context
	pair    watchPair
	watchee *actor.PID
}

func (x *watchProxy) SendUserMessage(*actor.PID, interface{}) {}

func (x *watchProxy) SendSystemMessage(_ *actor.PID, message interface{}) {
	t, ok := message.(*actor.Terminated)
	if !ok || x.r.watches.takeProxy(x.src, x.pair) != x {
		return
	}
	x.r.system.ProcessRegistry.Remove(x.pid)
	_, payload, err := messages.EncodeTyped(&actor.Terminated{Who: x.watchee, Why: t.Why})
	if err != nil {
		return
	}
	h := messages.Header{Kind: messages.KindActor, Flags: messages.FlagSystem, Dst: x.src, Src: x.r.id, Target: x.pair.watcher, Type: typeTerminated}
	if err := x.r.send(&h, payload); err != nil {
		x.r.logger.Debug("terminated not sent", "watchee", x.watchee.String(), "error", err)
	}
}

func (x *watchProxy) Stop(*actor.PID) {}

// release unregisters a proxy its caller took from the table and stops
// its watch.
func (x *watchProxy) release() {
	x.r.system.ProcessRegistry.Remove(x.pid)
	if proc, ok := x.r.system.ProcessRegistry.GetLocal(x.watchee.Id); ok {
		proc.SendSystemMessage(x.watchee, &actor.Unwatch{Watcher: x.pid})
	}
}
