package actors

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/mitogo/mitogo/messages"
)

// pendingCalls are the calls this context has made and waits for, by
// request id.
//
// Invariant, whenever mu is not held: every call in m has a caller blocked
// on its ch (or about to read its reply from the stream, conn.readFor), or
// a done function for its result (a call made with Func.Future and its
// kin, future.go), and no result has been given yet; a call leaves m
// exactly once, under mu, by the one that then gives its result (complete,
// failDst) or by its caller giving up (drop), so each call gets at most one
// result. next only
// grows: a request id is never reused. Router.call adds; the stream
// readers (complete), route loss (failPending) and the caller (drop)
// remove. The hot path takes mu once to add and once to take.
type pendingCalls struct {
	mu   sync.Mutex
	m    map[uint64]*pendingCall
	next atomic.Uint64 // the last request id handed out
}

func newPendingCalls() pendingCalls { return pendingCalls{m: map[uint64]*pendingCall{}} }

// add records p under a fresh request id and returns the id.
func (pc *pendingCalls) add(p *pendingCall) uint64 {
	p.start = monoNow()
	id := pc.next.Add(1)
	pc.mu.Lock()
	pc.m[id] = p
	pc.mu.Unlock()
	return id
}

// drop forgets call id: its caller gave up, or its envelope was not sent.
func (pc *pendingCalls) drop(id uint64) {
	pc.mu.Lock()
	delete(pc.m, id)
	pc.mu.Unlock()
}

// take removes and returns call id if accept approves of it; the caller
// then owns the sending of its result.
func (pc *pendingCalls) take(id uint64, accept func(*pendingCall) bool) *pendingCall {
	pc.mu.Lock()
	p, ok := pc.m[id]
	if ok && accept(p) {
		delete(pc.m, id)
	} else {
		p = nil
	}
	pc.mu.Unlock()
	return p
}

// takeTo removes and returns every call to one of the contexts in gone.
func (pc *pendingCalls) takeTo(gone map[uint32]bool) []*pendingCall {
	pc.mu.Lock()
	var out []*pendingCall
	for id, p := range pc.m {
		if gone[p.dst] {
			out = append(out, p)
			delete(pc.m, id)
		}
	}
	pc.mu.Unlock()
	return out
}

// list describes the calls waiting, for Debug.
func (pc *pendingCalls) list(now int64) []CallInfo {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	out := make([]CallInfo, 0, len(pc.m))
	for id, p := range pc.m {
		out = append(out, CallInfo{Dir: "out", Context: int(p.dst), Name: p.name, Function: p.fn, Request: id, Age: time.Duration(now - p.start)})
	}
	return out
}

// takeUnrouted removes and returns every call to a context that t does
// not route to (and that is not self): after the default route went.
func (pc *pendingCalls) takeUnrouted(t *routeTable, self uint32) []*pendingCall {
	pc.mu.Lock()
	var out []*pendingCall
	for id, p := range pc.m {
		if p.dst != self && t.lookup(p.dst) == nil {
			out = append(out, p)
			delete(pc.m, id)
		}
	}
	pc.mu.Unlock()
	return out
}

// pendingCall is a call this context waits for.
type pendingCall struct {
	dst  uint32
	name string // destination's name
	fn   string
	ch   chan callResult
	done func(callResult) // instead of ch: takes the result, without blocking (future.go)

	via     *conn       // the stream its reply comes on, if counted there
	counted atomic.Bool // in via.calls
	start   int64       // monoNow when it was made, for Debug
}

// settle takes p out of its stream's count of waiting calls, once.
func (p *pendingCall) settle() {
	if p.counted.Load() && p.counted.CompareAndSwap(true, false) {
		p.via.calls.Add(-1)
	}
}

// give hands the call its result: on ch, or to done.
func (p *pendingCall) give(res callResult) {
	if p.done != nil {
		p.done(res)
		return
	}
	p.ch <- res
}

type callResult struct {
	payload []byte
	err     error
}

func (r *Router) dropPending(id uint64) { r.pending.drop(id) }

// complete hands a reply to the call waiting for it. A reply must come from
// the context that was called, except a router's refusal on the way (no
// route, policy), which comes from that router: one that this context
// reaches by the same stream as the callee (a context in another subtree
// cannot refuse a call it never saw).
func (r *Router) complete(h messages.Header, payload []byte) {
	var re *messages.RemoteError
	if h.Flags&messages.FlagError != 0 {
		re = &messages.RemoteError{}
		if err := decode(payload, re); err != nil {
			re = &messages.RemoteError{Code: messages.CodeError, Type: "mitogo.decode", Message: "undecodable error reply: " + err.Error()}
		}
	}
	p := r.pending.take(h.ReqID, func(p *pendingCall) bool {
		return p.dst == h.Src || (re != nil && (re.Code == messages.CodeNoRoute || re.Code == messages.CodeRefused) && r.sameWay(h.Src, p.dst))
	})
	if p == nil {
		return // the caller gave up, or a forged reply
	}
	p.settle() // before the reader looks whether calls wait (conn.yield)
	if re != nil {
		p.give(callResult{err: remoteCallError(p.name, p.fn, re)})
		return
	}
	p.give(callResult{payload: payload})
}

// failPending fails every call waiting on one of ids.
func (r *Router) failPending(ids []uint32, names []string, reason string, cause error) {
	gone := make(map[uint32]bool, len(ids))
	for _, id := range ids {
		gone[id] = true
	}
	r.chains.forget(ids) // the chains those contexts made here
	for _, p := range r.pending.takeTo(gone) {
		name := p.name
		for i, id := range ids {
			if id == p.dst && i < len(names) && names[i] != "" {
				name = names[i]
			}
		}
		if h, ok := r.handle(p.dst); ok {
			name = h.label // started here: named as its options named it
		}
		p.give(callResult{err: &ChannelError{Context: name, Reason: reason, Err: cause}})
	}
}
