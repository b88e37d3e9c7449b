package actors

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/mitogo/mitogo/messages"
)

// streamActor is the life of one stream to a child process, a child of
// the broker: it starts the stream's heartbeat and its reader goroutine,
// and it is the one place where the stream's loss becomes a message. What
// the stream carries never goes through its mailbox: the reader routes
// every frame itself, with the route table's snapshot (see conn.serve and
// handoff.go).
//
// It takes:
//   - (nothing at Started: the broker starts the heartbeat and the reader
//     as it spawns the actor, so a connect returns with its stream read);
//   - *readerStopped: the reader has stopped (the stream failed, closed,
//     its heartbeat went unanswered, or the child exited): the child is
//     killed unless it closed the stream itself, the router drops the
//     routes behind the stream (failing what waited on them, telling the
//     supervisors), the process and its session are reaped (session.go),
//     and the actor stops;
//   - Stopping (the broker stops, or it failed): the child is asked to
//     stop, killed once the router hurries, and then lost as above.
//
// The stream to the parent has no actor: its reader is the main
// goroutine of a child, and its loss ends the process (childExit).
type streamActor struct {
	c    *conn
	lost bool // lose has run
}

// readerStopped tells the stream actor that its reader has stopped;
// conn.readErr says why.
type readerStopped struct{}

func (a *streamActor) Receive(ctx actor.Context) {
	switch ctx.Message().(type) {
	case *actor.Started:
		// The broker started its heartbeat and its reader (startStream).
	case *readerStopped:
		a.lose()
		ctx.Stop(ctx.Self())
	case *actor.Stopping:
		if !a.lost {
			a.stopChild()
			a.lose()
		}
	}
}

// stopChild asks the child to stop and waits until its reader has
// stopped; once the router hurries, it kills the child.
func (a *streamActor) stopChild() {
	c := a.c
	r := c.r
	h := messages.Header{Kind: messages.KindControl, Dst: c.peer, Src: r.id, Type: messages.ControlShutdown}
	if err := c.s.Send(&h, nil); err != nil {
		c.kill()
	}
	select {
	case <-c.readerDone:
		return
	case <-r.hurry.Done():
	}
	c.kill()
	<-c.readerDone
}

// lose handles the end of the stream, once its reader has stopped.
func (a *streamActor) lose() {
	a.lost = true
	c := a.c
	defer close(c.done)
	err := c.readErr
	if c.child != nil && !errors.Is(err, io.EOF) {
		c.child.Proc.Kill() // it broke the protocol, or its stream broke
	}
	if c.child != nil && errors.Is(err, io.EOF) {
		err = withEnd(err, c.child.Proc, c.r.hurry.Done())
	}
	if c.hb != nil {
		c.hb.stop() // after the reader closed the stream, which ends a ping's write
	}
	c.r.ask(&dropConn{c: c, err: err})
	if c.child != nil {
		c.reap()
	}
}

// endWait bounds how long the loss of a stream that ended (EOF) waits for
// its process to be reaped, to say how it ended.
const endWait = 250 * time.Millisecond

// withEnd adds to err, the end of a child's stream, how the child's
// process ended ("signal: killed", "exit status 2") when it ends within
// endWait: a user whose context was killed learns that, not only that its
// stream closed. err's causes are kept.
func withEnd(err error, p interface {
	Done() <-chan struct{}
	Status() string
}, hurry <-chan struct{}) error {
	t := time.NewTimer(endWait)
	defer t.Stop()
	select {
	case <-p.Done():
	case <-t.C:
		return err
	case <-hurry:
		return err
	}
	status := p.Status()
	if status == "" || status == "exit status 0" {
		return err
	}
	return fmt.Errorf("%w; its process ended: %s", err, status)
}
