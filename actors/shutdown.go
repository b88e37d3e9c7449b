package actors

import (
	"context"
	"errors"
	"time"

	"github.com/mitogo/mitogo/messages"
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
func (r *Router) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	if r.closing {
		r.mu.Unlock()
		<-r.done
		return nil
	}
	r.closing = true
	r.beginStopping(ErrShutdown)
	var sups []*supervision
	var handles []*Context
	for _, c := range r.contexts {
		handles = append(handles, c)
		if c.sup != nil {
			sups = append(sups, c.sup)
		}
	}
	r.mu.Unlock()
	for _, s := range sups {
		s.mu.Lock()
		if s.timer != nil {
			s.timer.Stop()
		}
		s.mu.Unlock()
	}
	r.shutdownConns(ctx)
	r.stopBase()
	r.waitCallsCtx(ctx)
	for _, s := range sups {
		s.stop()
	}
	for _, c := range handles {
		c.markDead(ErrShutdown)
	}
	r.closeChannels()
	r.ensureSystem()
	r.system.Root.StopFuture(r.routerPID).Wait()
	r.system.Shutdown()
	waited := make(chan struct{})
	go func() {
		r.wg.Wait()
		r.notices.close()
		close(waited)
	}()
	select {
	case <-waited:
	case <-ctx.Done():
		// A function that ignores its cancelled context keeps a goroutine;
		// Shutdown does not wait for it past its deadline.
		r.logger.Warn("shutdown deadline passed with goroutines still running", "context", r.Name())
	}
	close(r.done)
	return ctx.Err()
}

// shutdownChildren is Shutdown's first step with a fixed grace period.
func (r *Router) shutdownChildren(grace time.Duration) {
	r.mu.Lock()
	r.closing = true
	r.mu.Unlock()
	r.beginStopping(ErrShutdown)
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	r.shutdownConns(ctx)
}

// shutdownConns asks every child to stop and waits for its stream to end
// and its process to be reaped, killing it once ctx ends.
func (r *Router) shutdownConns(ctx context.Context) {
	r.mu.Lock()
	conns := make([]*conn, 0, len(r.conns))
	for c := range r.conns {
		conns = append(conns, c)
	}
	r.mu.Unlock()
	for _, c := range conns {
		h := messages.Header{Kind: messages.KindControl, Dst: c.peer, Src: r.id, Type: messages.ControlShutdown}
		if err := c.s.Send(&h, nil); err != nil {
			c.kill()
		}
	}
	for _, c := range conns {
		select {
		case <-c.done:
		case <-ctx.Done():
			c.kill()
			<-c.done
		}
	}
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
	done := make(chan struct{})
	go func() {
		r.running.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
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
