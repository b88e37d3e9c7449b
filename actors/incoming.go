package actors

import (
	"context"
	"sync"
	"time"
)

// callKey names an incoming call: who called, and its request id there.
type callKey struct {
	src uint32
	req uint64
}

// incomingCalls are the calls other contexts made that run here.
//
// Invariant, whenever mu is not held: m holds the cancel function of every
// call between dispatch and the end of its run, and running counts those
// same calls (it is added to before the call enters m and done after it
// left it, so Wait returns only when none runs). dispatch adds (start),
// the call's own goroutine removes (end); a cancel envelope (cancel) and
// Shutdown (through the base context every call's context derives from)
// only cancel, never remove. Once closed (wait was called) no call is
// added: running is never added to while it is waited on.
type incomingCalls struct {
	mu      sync.Mutex
	m       map[callKey]incomingCall
	running sync.WaitGroup
	closed  bool
}

// incomingCall is one call running here.
type incomingCall struct {
	cancel context.CancelFunc
	fn     string
	start  int64 // monoNow when dispatched, for Debug
}

func newIncomingCalls() incomingCalls {
	return incomingCalls{m: map[callKey]incomingCall{}}
}

// start records a call of fn about to run; end must follow once it has
// run. It reports false, recording nothing, once the context shuts down
// (wait was called): the call must then be refused.
func (ic *incomingCalls) start(key callKey, fn string, cancel context.CancelFunc) bool {
	call := incomingCall{cancel: cancel, fn: fn, start: monoNow()}
	ic.mu.Lock()
	defer ic.mu.Unlock()
	if ic.closed {
		return false
	}
	ic.running.Add(1)
	ic.m[key] = call
	return true
}

// list describes the calls running here, for Debug; names names contexts.
func (ic *incomingCalls) list(now int64, names *routeTable) []CallInfo {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	out := make([]CallInfo, 0, len(ic.m))
	for key, c := range ic.m {
		out = append(out, CallInfo{Dir: "in", Context: int(key.src), Name: names.name(key.src), Function: c.fn, Request: key.req, Age: time.Duration(now - c.start)})
	}
	return out
}

// end forgets a call that has returned.
func (ic *incomingCalls) end(key callKey) {
	ic.mu.Lock()
	delete(ic.m, key)
	ic.mu.Unlock()
	ic.running.Done()
}

// cancel cancels the call named by key, if it still runs.
func (ic *incomingCalls) cancel(key callKey) {
	ic.mu.Lock()
	call := ic.m[key]
	ic.mu.Unlock()
	if call.cancel != nil {
		call.cancel()
	}
}

// wait waits for every call running here to return, or for ctx to end; it
// reports whether they all returned.
func (ic *incomingCalls) wait(ctx context.Context) bool {
	ic.mu.Lock()
	ic.closed = true
	ic.mu.Unlock()
	done := make(chan struct{})
	go func() {
		ic.running.Wait()
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}

func (r *Router) cancelCall(key callKey) { r.incoming.cancel(key) }
