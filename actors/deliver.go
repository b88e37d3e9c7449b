package actors

import (
	"context"
	"io"
	"sync"

	"github.com/asynkron/protoactor-go/actor"
)

// StreamValue is one value of a stream delivered to an actor by
// DeliverTo. The delivery answers it by itself once the actor's Receive
// has returned (it is an actor.AutoRespond): that answer is what lets the
// next value go, so the actor needs to do nothing but handle it.
type StreamValue[T any] struct {
	Stream *Receiver[T] // the stream it came on, to tell streams apart
	Value  T
}

// GetAutoResponse is the answer protoactor sends once the actor's Receive
// has handled the value.
func (*StreamValue[T]) GetAutoResponse(actor.Context) any { return &streamTaken{} }

// streamTaken is the answer to a StreamValue.
type streamTaken struct{}

// StreamEnd is the last message of a stream delivered to an actor. Err is
// nil when the sender closed the stream, else why it ended (a
// *ChannelError: the sender's context lost, the router shut down, ...).
type StreamEnd[T any] struct {
	Stream *Receiver[T]
	Err    error
}

// Delivery is a stream being delivered to an actor (DeliverTo).
type Delivery struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error // set before done is closed
}

// DeliverTo delivers the values rx receives to the actor pid, in this
// context, as *StreamValue[T] messages, and then one *StreamEnd[T]. It
// keeps the stream's back-pressure: the next value is received (and the
// channel's credit given back to the sender) only once the actor's
// Receive has returned from the last one, so at most one value waits in
// the actor's mailbox and at most a window (64) in the channel, however
// fast the sender and slow the actor. The delivery owns rx from then on.
//
// An actor that stops ends the delivery: rx is closed, so the sender's
// next Send fails with ErrChannelClosed. An actor that panics on a value
// (and is restarted) never answers it: the delivery then waits until Stop.
// Stop (or Wait for its end) joins the delivery's goroutine.
func DeliverTo[T any](rx *Receiver[T], pid *actor.PID) *Delivery {
	ctx, cancel := context.WithCancel(context.Background())
	d := &Delivery{cancel: cancel, done: make(chan struct{})}
	sys := rx.ch.r.System()
	if pid == nil || pid.Address != sys.Address() {
		rx.Close()
		d.err = errorf("mitogo: deliver: %v is not an actor of context %s", pid, rx.ch.r.Name())
		close(d.done)
		return d
	}
	go deliver(ctx, d, rx, pid, sys)
	return d
}

// deliver is the delivery's goroutine: receive a value, hand it to the
// actor, wait for the actor to have handled it, and again.
func deliver[T any](ctx context.Context, d *Delivery, rx *Receiver[T], pid *actor.PID, sys *actor.ActorSystem) {
	defer close(d.done)
	defer rx.Close()
	// The forwarder is the sender of each value: it gets the actor's
	// answer, or a dead letter's when the actor is gone; it watches the
	// actor, whose stop may also drop a value unanswered.
	taken := make(chan struct{}, 1)
	gone := make(chan struct{})
	var goneOnce sync.Once
	fwd := sys.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		switch m := c.Message().(type) {
		case *actor.Started:
			c.Watch(pid)
		case *streamTaken:
			wake(taken)
		case *actor.DeadLetterResponse:
			goneOnce.Do(func() { close(gone) })
		case *actor.Terminated:
			if m.Who.Equal(pid) {
				goneOnce.Do(func() { close(gone) })
			}
		}
	}))
	defer func() { _ = sys.Root.StopFuture(fwd).Wait() }()
	for {
		v, err := rx.Recv(ctx)
		if ctx.Err() != nil {
			d.err = errorf("mitogo: deliver to %v: stopped", pid)
			return
		}
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			d.err = err
			sys.Root.Send(pid, &StreamEnd[T]{Stream: rx, Err: err})
			return
		}
		sys.Root.RequestWithCustomSender(pid, &StreamValue[T]{Stream: rx, Value: v}, fwd)
		select {
		case <-taken:
		case <-gone:
			d.err = errorf("mitogo: deliver: the actor %v is gone", pid)
			return
		case <-ctx.Done():
			d.err = errorf("mitogo: deliver to %v: stopped", pid)
			return
		}
	}
}

// Stop ends the delivery, closes its receiver and waits for its goroutine.
// The actor gets no StreamEnd. It is safe to call more than once.
func (d *Delivery) Stop() {
	d.cancel()
	<-d.done
}

// Done is closed when the delivery has ended.
func (d *Delivery) Done() <-chan struct{} { return d.done }

// Wait waits for the delivery to end and says why: nil when the sender
// closed the stream and the actor took every value, else the stream's
// error, the actor's end, or the Stop.
func (d *Delivery) Wait() error {
	<-d.done
	return d.err
}
