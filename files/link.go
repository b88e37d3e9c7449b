package files

import (
	"context"
	"fmt"
	"time"

	"github.com/mitogo/mitogo/actors"
)

// link is the sending end of one branch of a transfer: a channel to a
// receiver (files.receive in another context, or a local goroutine). A
// link that fails is dropped; the others go on.
type link struct {
	ch   *actors.Channel
	ctx  context.Context // ends when the receiver's call has ended
	name string
	err  error
	// Set for links this side opened: the receiver's end (a call, or a
	// goroutine here) and how to wait for its results.
	cancel  context.CancelFunc
	done    <-chan struct{}
	wait    func() ([]targetResult, error)
	watched chan struct{}
	ids     []int // the targets behind it
	peer    bool  // connected to the receiver's end
	claim   item  // the receiver's last kindHave
}

func (l *link) live() bool { return l.err == nil }

// fail records why the link is dropped: the call's error, when it has
// ended with one, says more than a send that was cut short.
func (l *link) fail(err error) {
	if l.err != nil {
		return
	}
	if l.done != nil {
		select {
		case <-l.done:
			if _, cerr := l.wait(); cerr != nil {
				err = cerr
			}
		default:
		}
	}
	l.err = err
}

func (l *link) send(it *item) {
	if l.err != nil {
		return
	}
	if err := l.ch.Send(l.ctx, it); err != nil {
		l.fail(err)
	}
}

// sendData sends data as a kindData item, encoded in one allocation of
// its exact size (see encodeData).
func (l *link) sendData(data []byte) {
	if l.err == nil {
		l.sendEncoded(encodeData(data))
	}
}

// sendEncoded sends an item already encoded; payload may go to several
// links, and must not change afterwards.
func (l *link) sendEncoded(payload []byte) {
	if l.err != nil {
		return
	}
	if err := l.ch.SendEncoded(l.ctx, payload); err != nil {
		l.fail(err)
	}
}

func (l *link) recv(it *item) bool {
	if l.err != nil {
		return false
	}
	if err := l.ch.Recv(l.ctx, it); err != nil {
		l.fail(err)
		return false
	}
	return true
}

// receiveFn is files.receive: receive a tree into Dst, and/or relay it to
// Children.
// Registered in init: receive opens links itself.
var receiveFn = actors.Function[receiveRequest, []targetResult]("files.receive")

func init() { actors.Register("files.receive", receive) }

// openLink calls files.receive in target (which relays to children, and
// writes to dst itself when self) and connects a channel to it.
func openLink(ctx context.Context, r *actors.Router, target *actors.Context, n node, dst, name string, owner int) *link {
	lctx, cancel := context.WithCancel(ctx)
	ch := newChannel(r)
	l := &link{ch: ch, ctx: lctx, cancel: cancel, name: target.Name(), ids: n.ids()}
	call := receiveFn.Go(lctx, target, receiveRequest{Dst: dst, Name: name, Owner: owner, Reply: ch.Addr(), Self: n.Self, Children: n.Children})
	l.done, l.wait = call.Done(), call.Wait
	l.watch()
	var first item
	if !l.recv(&first) {
		return l
	}
	if first.Kind != kindAddr || first.Addr == nil {
		l.fail(protocolf("%s: first item is of kind %d, not its address", l.name, first.Kind))
		return l
	}
	ch.Connect(*first.Addr)
	l.peer = true
	return l
}

// localLink runs a receiver for dst in this context, on a goroutine, as
// a relay's own target.
func localLink(ctx context.Context, r *actors.Router, dst, name string, owner int) *link {
	lctx, cancel := context.WithCancel(ctx)
	a, b := newChannel(r), newChannel(r)
	a.Connect(b.Addr())
	b.Connect(a.Addr())
	done := make(chan struct{})
	var res targetResult
	var err error
	go func() {
		defer close(done)
		defer b.Release()
		defer b.Close()
		res, err = receiveTree(lctx, b, dst, name, owner, nil)
		res.ID = r.ID()
	}()
	l := &link{ch: a, ctx: lctx, cancel: cancel, name: r.Name(), ids: []int{r.ID()}, done: done, peer: true}
	l.wait = func() ([]targetResult, error) {
		<-done
		return []targetResult{res}, err
	}
	l.watch()
	return l
}

// watch cancels the link's context once its receiver has finished, so a
// send to it does not wait for credit that will never come.
func (l *link) watch() {
	l.watched = make(chan struct{})
	go func() {
		defer close(l.watched)
		select {
		case <-l.done:
			l.cancel()
		case <-l.ctx.Done():
		}
	}()
}

// stopGrace bounds how long a failed link waits for its receiver to say
// it has stopped writing.
const stopGrace = 5 * time.Second

// finish closes the link and returns the results of the targets behind it.
// When the link failed, it first waits (for a while) until the receiver
// has closed its end: stopped writing, so that its partial file is final
// when the transfer returns.
func (l *link) finish() []targetResult {
	l.ch.Close()
	if l.peer && (l.err != nil || l.ctx.Err() != nil) {
		ctx, cancel := context.WithTimeout(context.Background(), stopGrace)
		for {
			var it item
			if l.ch.Recv(ctx, &it) != nil {
				break
			}
		}
		cancel()
	}
	var res []targetResult
	var err error
	if l.wait != nil {
		res, err = l.wait()
		l.cancel()
		<-l.watched
	}
	l.ch.Release()
	if err == nil && len(res) == 0 {
		err = l.err
	}
	if err != nil {
		res = res[:0]
		for _, id := range l.ids {
			res = append(res, targetResult{ID: id, Err: err.Error(), Code: codeOf(err), err: err})
		}
	}
	// A receiver that says it succeeded although this side could not
	// send it everything did not get everything.
	for i := range res {
		if res[i].Err == "" && l.err != nil {
			res[i].Err, res[i].Code, res[i].err = l.err.Error(), codeOf(l.err), l.err
		}
	}
	return res
}

func (n node) ids() []int {
	var ids []int
	if n.Self {
		ids = append(ids, n.ID)
	}
	for _, c := range n.Children {
		ids = append(ids, c.ids()...)
	}
	return ids
}

func (l *link) String() string { return fmt.Sprintf("link to %s", l.name) }
