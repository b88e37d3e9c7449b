package actors

import (
	"context"
	"errors"
	"time"
)

// Shutdown stops the tree in order: every child is asked to stop (each
// stops its own children first), and Shutdown waits until each is gone,
// killing those still there when ctx ends. A connect still in flight ends
// at once with a *StreamError matching ErrShutdown. Shutdown then stops
// the actor system and waits for every goroutine the router started. It is
// idempotent.
//
// Each child context leads a session of its own. As it stops (asked to, or
// because its parent went away), it ends every process left in that
// session: what its functions started (with os/exec, proc.exec, proc.run)
// and did not wait for gets SIGTERM, then SIGKILL after a grace period of
// two seconds. A child on this host that was killed cannot do this: its
// parent does it when it reaps the child (for another user's child only
// where it may signal that user's processes). A process meant to outlive
// its context must leave the session: start it with setsid (the command,
// or SysProcAttr{Setsid: true}). The master's own session is its user's
// and is left alone.
//
// Shutdown never outlives its ctx by more than a moment (reapWait): once
// ctx ends it kills every child left, and every grace period still running
// (a reaped child's session, its output drain) ends at once, in SIGKILL or
// a closed pipe. Whatever is still not reaped or returned then (a process
// that SIGKILL does not end at once, a function that ignores its
// cancelled context) is left to the router's goroutines, which a later
// call of Shutdown joins: it waits for them until its own ctx ends, and
// returns nil once they are all gone.
func (r *Router) Shutdown(ctx context.Context) error {
	handles, first := r.beginClosing()
	if !first {
		<-r.done
		if !r.awaitJoined(ctx) {
			return ctx.Err()
		}
		return nil
	}
	r.beginStopping(ErrShutdown)
	r.listeners.closeAll() // before the children are listed: no attach is added after
	r.ensureSystem()
	r.stopRestarts()
	r.stopBroker(ctx) // the streams first, then the broker's context actors
	r.stopBase()
	r.waitCallsCtx(ctx)
	r.leaveTree()  // an attached router: while the router actor runs
	r.watch.stop() // before wg's wait: it starts readers (handOff)
	for _, c := range handles {
		if c.sup != nil {
			c.sup.stop() // context actors that users' actors supervise
		}
		c.markDead(ErrShutdown)
	}
	r.plain.closeAll("the router shut down", ErrShutdown)
	r.closeChannels()
	r.services.stop(ctx)
	r.closeWatches()
	r.system.Root.StopFuture(r.routerPID).Wait()
	r.system.Shutdown()
	go func() {
		r.wg.Wait()
		r.notices.close()
		r.connects.close()
		<-r.brokerDone // a stream actor may still reap a child
		close(r.joined)
	}()
	if !r.awaitJoined(ctx) {
		// A function that ignores its cancelled context keeps a goroutine;
		// Shutdown does not wait for it past its deadline.
		r.logger.Warn("shutdown deadline passed with goroutines still running", "context", r.Name())
	}
	close(r.done)
	return ctx.Err()
}

// reapWait is how long Shutdown still waits, once its ctx has ended, for
// what it has killed to be reaped and for its goroutines to return.
const reapWait = 200 * time.Millisecond

// awaitJoined waits until every goroutine of the router has returned, or
// until reapWait after ctx ends; it reports whether they all returned.
func (r *Router) awaitJoined(ctx context.Context) bool {
	select {
	case <-r.joined:
		return true
	case <-ctx.Done():
	}
	t := time.NewTimer(reapWait)
	defer t.Stop()
	select {
	case <-r.joined:
		return true
	case <-t.C:
		return false
	}
}

// shutdownChildren is Shutdown's first step with a fixed grace period,
// for a child that exits.
func (r *Router) shutdownChildren(grace time.Duration) {
	r.beginClosing()
	r.beginStopping(ErrShutdown)
	if r.sysBuilt.Load() {
		r.stopRestarts()
	}
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	r.stopBroker(ctx)
}

// killContext kills a context this router started directly, at once.
func (r *Router) killContext(id uint32) {
	c := r.table.Load().routes[id]
	if c != nil && c.peer == id {
		c.kill()
	}
}

// waitCallsCtx waits for the calls running here to return after their
// contexts were cancelled, or for ctx to end.
func (r *Router) waitCallsCtx(ctx context.Context) {
	if !r.incoming.wait(ctx) {
		r.logger.Warn("calls still running at shutdown", "context", r.Name())
	}
}

// unlessStopping returns ctx, cancelled with cause ErrShutdown as soon as
// the router begins to shut down: a connect in flight must not hold
// Shutdown up until its own timeout.
func (r *Router) unlessStopping(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(r.stopping, func() { cancel(ErrShutdown) })
	return ctx, func() {
		stop()
		cancel(nil)
	}
}

// stoppedBy reports whether ctx was ended by Shutdown (see unlessStopping).
func stoppedBy(ctx context.Context) bool { return errors.Is(context.Cause(ctx), ErrShutdown) }

// shutdownError is the error of a connect that Shutdown ended.
func shutdownError(name, method string) error {
	return &StreamError{Context: name, Method: method, Reason: "the router is shutting down", Err: ErrShutdown}
}
