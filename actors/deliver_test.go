package actors_test

import (
	"errors"
	"sync"
	"testing"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/mitogo/mitogo/actors"
)

// slowActor handles stream values; at every value that is a multiple of
// every it says so on at and waits on gate. It reports the stream's end
// on end.
type slowActor struct {
	every int
	got   []int
	at    chan int
	gate  chan struct{}
	end   chan error
}

func (a *slowActor) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *actors.StreamValue[int]:
		a.got = append(a.got, m.Value)
		if m.Value%a.every == 0 {
			a.at <- m.Value
			<-a.gate
		}
	case *actors.StreamEnd[int]:
		for i, v := range a.got {
			if v != i+1 {
				a.end <- errors.New("values out of order or missing")
				return
			}
		}
		if m.Err != nil {
			a.end <- m.Err
			return
		}
		a.end <- nil
	}
}

// mailboxDepth counts the stream values posted to an actor's mailbox and
// not yet handled, and the most there ever were.
type mailboxDepth struct {
	mu       sync.Mutex
	now, max int
}

func (m *mailboxDepth) MailboxStarted() {}
func (m *mailboxDepth) MailboxEmpty()   {}
func (m *mailboxDepth) MessagePosted(msg any) {
	if _, ok := msg.(*actors.StreamValue[int]); ok {
		m.mu.Lock()
		m.now++
		m.max = max(m.max, m.now)
		m.mu.Unlock()
	}
}
func (m *mailboxDepth) MessageReceived(msg any) {
	if _, ok := msg.(*actors.StreamValue[int]); ok {
		m.mu.Lock()
		m.now--
		m.mu.Unlock()
	}
}

func (m *mailboxDepth) most() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.max
}

// A fast sender in another process, a slow actor: the values reach the
// actor in order; the actor's mailbox never holds more than the value it
// handles and the next (posted once protoactor has answered the last,
// before it counts it received); and the sender is never more than a
// window ahead of what the actor has handled. The actor stops at every
// hundredth value until the sender has filled its window.
func TestDeliverToSlowActor(t *testing.T) {
	r := newRouter(t)
	c := local(t, r)
	const n, every = 1000, 100
	a := &slowActor{every: every, at: make(chan int), gate: make(chan struct{}), end: make(chan error, 1)}
	depth := &mailboxDepth{}
	pid := r.System().Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return a }, actor.WithMailbox(actor.Unbounded(depth))))
	defer func() { r.System().Root.StopFuture(pid).Wait() }()
	tx, rx := actors.NewStream[int](r)
	d := actors.DeliverTo(rx, pid)
	defer d.Stop()
	p := streamCount.Go(ctxT(t), c, countArgs{N: n, Out: tx})
	sent := func() int {
		s, err := streamSentCount.Call(ctxT(t), c, struct{}{})
		if err != nil {
			t.Fatal(err)
		}
		return int(s)
	}
	for handled := every; handled <= n; handled += every {
		if v := <-a.at; v != handled {
			t.Fatalf("the actor is at %d, want %d", v, handled)
		}
		// The actor holds value handled; the delivery has received it, so
		// the sender had credit for a window beyond the last multiple of
		// 32 (the receiver gives credit back in batches of half a window).
		full := min(n, window+handled/32*32)
		waitFor(t, func() bool { return sent() >= full })
		if s := sent(); s > handled+window {
			t.Fatalf("the sender sent %d values while the actor handled %d: more than a window ahead", s, handled)
		}
		if m := depth.most(); m > 2 {
			t.Fatalf("the actor's mailbox held %d stream values", m)
		}
		a.gate <- struct{}{}
	}
	if err := <-a.end; err != nil {
		t.Fatal(err)
	}
	if err := d.Wait(); err != nil {
		t.Fatal(err)
	}
	if got, err := p.Wait(); err != nil || got != n {
		t.Fatalf("call: %d, %v", got, err)
	}
	if m := depth.most(); m > 2 {
		t.Fatalf("the actor's mailbox held %d stream values", m)
	}
}

// An actor that stops ends the delivery, and the sender's next Send fails.
func TestDeliverToStoppedActor(t *testing.T) {
	r := newRouter(t)
	c := local(t, r)
	a := &slowActor{every: 3, at: make(chan int), gate: make(chan struct{}), end: make(chan error, 1)}
	pid := r.System().Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return a }))
	tx, rx := actors.NewStream[int](r)
	d := actors.DeliverTo(rx, pid)
	defer d.Stop()
	p := streamCount.Go(ctxT(t), c, countArgs{N: 1000, Out: tx})
	<-a.at
	stopped := r.System().Root.StopFuture(pid)
	close(a.gate)
	if err := stopped.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := d.Wait(); err == nil {
		t.Fatal("the delivery to a stopped actor ended without an error")
	}
	var ce *actors.CallError
	if _, err := p.Wait(); !errors.As(err, &ce) {
		t.Fatalf("the sender's call: %T %v; want its Send to have failed", err, err)
	}
}
