package actors

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"sync"

	"github.com/mitogo/mitogo/messages"
	"github.com/vmihailenco/msgpack/v5"
)

// Typed streams: a Channel whose two ends are typed, one of which travels
// as a call's argument. NewStream makes both ends in this context; the
// caller passes one of them in the arguments of a Call or Go and keeps the
// other. Passing binds the two ends to each other at once: the end that
// stays knows the far end's address (the call's target, and an id derived
// from its own, see remoteEndID) before the call is even sent, and the far
// end is made when the target decodes the arguments. Nothing waits on an
// end whose peer is not known, so every way the far side can go away
// reaches a waiting Send or Recv:
//
//   - the far end is closed (Sender.Close): Recv gives io.EOF after the
//     last value;
//   - the function the far end was passed to returns: its end is closed if
//     the function returned no error, and released in every case; a Send
//     to it, or a Recv from it not closed, fails with ErrChannelClosed;
//   - the call fails without reaching the function (unknown function,
//     arguments that do not decode, no route, the caller's deadline): the
//     end that stayed fails with a *ChannelError wrapping the call's error;
//   - the far context dies or a hop on the way is lost: *ChannelError with
//     the loss's cause (ErrHeartbeat, io.EOF...), as for calls;
//   - either router shuts down: *ChannelError matching ErrShutdown.

// Directions of a typed end on the wire.
const (
	dirSender   = 0
	dirReceiver = 1
)

// stream is what a typed end holds: its channel end, and for the ends
// NewStream made, which of them was passed.
type stream struct {
	ch    *Channel
	local bool // made here by NewStream; else decoded from a call's arguments
	dir   int  // decoded: the direction of this end

	mu       sync.Mutex
	passed   int           // local: 1 + the direction of the end that was passed, 0 none yet
	passedTo string        // local: the context it was passed to
	bound    chan struct{} // local: closed when an end was passed
}

// Sender is the sending end of a typed stream of T values (see NewStream).
// Pass it in a call's arguments (a *Sender[T] field) and the function
// there sends values that the caller's Receiver reads; or keep it and pass
// the Receiver, and the function reads what this end sends. Values go in
// order, and Send waits while the receiver holds a full window (64) of
// values it has not read.
type Sender[T any] struct{ s *stream }

// NewStream makes a stream of T values in r and returns its two ends.
// Pass exactly one of them in the arguments of a Call or Go (not Send,
// Fan or a Chain: a stream joins two contexts, and the call's end tells
// when the far side is done) and use the other here. The function that
// receives its end uses it until it returns; the caller's end fails with a
// *ChannelError saying why when the far side goes away in any way (see
// Sender, Receiver). Close the end kept here when done with it.
//
//	type Args struct{ Progress *actors.Sender[string] }
//	var work = actors.Register("app.work", func(ctx context.Context, a Args) (int, error) {
//		for i := range 3 {
//			if err := a.Progress.Send(ctx, fmt.Sprintf("step %d", i)); err != nil {
//				return 0, err
//			}
//		}
//		return 3, nil // the stream is closed when the function returns nil
//	})
//
//	progress, lines := actors.NewStream[string](r)
//	defer lines.Close()
//	p := work.Go(ctx, c, Args{Progress: progress})
//	for line, err := range lines.All(ctx) { ... }
//	n, err := p.Wait()
func NewStream[T any](r *Router) (*Sender[T], *Receiver[T]) {
	s := &stream{ch: r.NewChannel(), local: true, bound: make(chan struct{})}
	return &Sender[T]{s: s}, &Receiver[T]{ch: s.ch, s: s}
}

// Send sends v to the receiving end, waiting while it holds a full window
// of unread values. On the end that stays with the caller, it first waits
// until the Receiver has been passed in a call. It fails with a
// *ChannelError when the receiving end is gone (see NewStream).
func (s *Sender[T]) Send(ctx context.Context, v T) error {
	st := s.s
	if err := st.waitPassed(ctx, "stream send"); err != nil {
		return err
	}
	if err := st.usable(dirSender, "stream send"); err != nil {
		return err
	}
	return st.ch.Send(ctx, v)
}

// Close tells the receiving end that nothing more will come: it reads
// io.EOF after the last value. Close on the end kept here also releases
// it; on the end a function was passed, the function's return does.
func (s *Sender[T]) Close() error {
	st := s.s
	if st.local && st.passedDir() == dirSender {
		return errorf("mitogo: stream close: this sender was passed to %s", st.passedTo)
	}
	err := st.ch.Close()
	if st.local {
		st.ch.release(nil)
	}
	return err
}

// EncodeMsgpack passes the end as a call's argument (see NewStream).
func (s *Sender[T]) EncodeMsgpack(enc *msgpack.Encoder) error {
	if s == nil {
		return enc.EncodeNil()
	}
	return s.s.encode(enc, dirSender)
}

// DecodeMsgpack makes the end a function was passed.
func (s *Sender[T]) DecodeMsgpack(dec *msgpack.Decoder) error {
	st, err := decodeEnd(dec, dirSender)
	s.s = st
	return err
}

// Recv waits for the next value. It returns io.EOF once the sender has
// closed and every value was read, and a *ChannelError when the sender is
// gone otherwise (see NewStream). After either the end is released.
func (rc *Receiver[T]) Recv(ctx context.Context) (T, error) {
	var v T
	if rc.s != nil {
		if err := rc.s.usable(dirReceiver, "stream receive"); err != nil {
			return v, err
		}
	}
	err := rc.ch.Recv(ctx, &v)
	var ce *ChannelError
	if rc.s != nil && rc.s.local && (err == io.EOF || errors.As(err, &ce)) {
		rc.ch.release(nil) // nothing more can come
	}
	return v, err
}

// All iterates over the values until the sender closes. A failure (the
// sender gone, ctx ended) is yielded once, with a zero value, and ends the
// iteration.
func (rc *Receiver[T]) All(ctx context.Context) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for {
			v, err := rc.Recv(ctx)
			if err == io.EOF {
				return
			}
			if !yield(v, err) || err != nil {
				return
			}
		}
	}
}

// Close stops receiving and releases the end: the sender's next Send fails
// with a *ChannelError matching ErrChannelClosed. For a receiver made by
// Receive, it releases that channel.
func (rc *Receiver[T]) Close() {
	if rc.s != nil && rc.s.local && rc.s.passedDir() == dirReceiver {
		return // the function it was passed to releases it
	}
	rc.ch.release(nil)
}

// EncodeMsgpack passes the end as a call's argument (see NewStream).
func (rc *Receiver[T]) EncodeMsgpack(enc *msgpack.Encoder) error {
	if rc == nil {
		return enc.EncodeNil()
	}
	if rc.s == nil {
		return errors.New("mitogo: only a stream's Receiver (NewStream) can be passed in a call; pass a Channel's Addr")
	}
	return rc.s.encode(enc, dirReceiver)
}

// DecodeMsgpack makes the end a function was passed.
func (rc *Receiver[T]) DecodeMsgpack(dec *msgpack.Decoder) error {
	st, err := decodeEnd(dec, dirReceiver)
	if st != nil {
		rc.s, rc.ch = st, st.ch
	}
	return err
}

// passedDir is the direction of the end that was passed, -1 if none.
func (st *stream) passedDir() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.passed - 1
}

// waitPassed waits, for a stream made here, until one of its ends was
// passed in a call, so that the end that stays knows its peer: a sender
// kept here has nowhere to send before.
func (st *stream) waitPassed(ctx context.Context, op string) error {
	if !st.local {
		return nil
	}
	ch := st.ch
	for {
		select {
		case <-st.bound:
			return nil
		case <-ch.sendWake:
			ch.mu.Lock()
			err := ch.err
			ch.mu.Unlock()
			if err != nil {
				return err
			}
		case <-ctx.Done():
			if ctx.Err() == context.DeadlineExceeded {
				return &TimeoutError{Context: ch.r.Name(), Op: op + " (its receiver was never passed in a call)"}
			}
			return errorf("mitogo: %s: %w", op, ctx.Err())
		}
	}
}

// usable checks that this stream's end of direction dir is used where it
// may be: not once it was passed.
func (st *stream) usable(dir int, op string) error {
	if !st.local {
		return nil
	}
	if st.passedDir() == dir {
		return errorf("mitogo: %s: this end was passed to %s, which uses it", op, st.passedTo)
	}
	return nil
}

// remoteEndID is the id of the far end of the stream whose end (ctx, id)
// stayed with the caller: both sides derive it from the call alone.
func remoteEndID(ctx uint32, id string) string { return "p" + itoa(ctx) + "." + id }

// encode writes the end of direction dir as a call's argument, [dir, ctx,
// id], and binds the end that stays to the call's target.
func (st *stream) encode(enc *msgpack.Encoder, dir int) error {
	if st == nil {
		return enc.EncodeNil()
	}
	w, ok := enc.Writer().(*argWriter)
	switch {
	case !ok:
		return errors.New("mitogo: a stream end can be passed only in the arguments of Call or Go, to one context")
	case w.noReply:
		return errors.New("mitogo: a stream end cannot be passed with Send, which has no reply to tell when the function is done: use Go")
	case !st.local:
		return errors.New("mitogo: a stream end a function was passed cannot be passed on: make a stream of its own")
	case w.r != st.ch.r:
		return errors.New("mitogo: a stream end can be passed only by calls from the router that made it")
	}
	ch := st.ch
	st.mu.Lock()
	ch.mu.Lock()
	closed := ch.closed
	ch.mu.Unlock()
	switch {
	case st.passed != 0:
		st.mu.Unlock()
		return fmt.Errorf("mitogo: a stream end was passed to %s already: a stream joins two contexts", st.passedTo)
	case closed:
		st.mu.Unlock()
		return errors.New("mitogo: a stream end was closed before it was passed")
	}
	st.passed, st.passedTo = dir+1, w.dstName
	st.mu.Unlock()
	ch.Connect(ChannelAddr{Context: w.dst, ID: remoteEndID(ch.r.id, ch.id)})
	if dir == dirReceiver {
		// The sender that stays waits for the far end to exist: it grants
		// its window when made.
		ch.mu.Lock()
		ch.credit = 0
		ch.mu.Unlock()
	}
	close(st.bound)
	w.ends = append(w.ends, st)
	if err := enc.EncodeArrayLen(3); err != nil {
		return err
	}
	if err := enc.EncodeInt(int64(dir)); err != nil {
		return err
	}
	if err := enc.EncodeUint(uint64(ch.r.id)); err != nil {
		return err
	}
	return enc.EncodeString(ch.id)
}

// decodeEnd makes, in the context running a call, the far end of the
// stream end passed in its arguments, of direction dir.
func decodeEnd(dec *msgpack.Decoder, dir int) (*stream, error) {
	n, err := dec.DecodeArrayLen()
	if err != nil {
		return nil, err
	}
	if n != 3 {
		return nil, fmt.Errorf("a stream end is 3 values, got %d", n)
	}
	d, err := dec.DecodeInt()
	if err != nil {
		return nil, err
	}
	ctxID, err := dec.DecodeUint32()
	if err != nil {
		return nil, err
	}
	id, err := dec.DecodeString()
	if err != nil {
		return nil, err
	}
	if d != dir {
		return nil, fmt.Errorf("a stream's %s was passed where its %s was expected", dirName(d), dirName(dir))
	}
	rd, ok := dec.Buffered().(*argReader)
	if !ok {
		return nil, errors.New("a stream end can be decoded only from a call's arguments")
	}
	r := rd.ci.r
	ch, err := r.addBoundChannel(remoteEndID(ctxID, id), ChannelAddr{Context: ctxID, ID: id})
	if err != nil {
		return nil, err
	}
	st := &stream{ch: ch, dir: dir}
	rd.ci.ends = append(rd.ci.ends, st)
	if dir == dirReceiver {
		h := messages.Header{Kind: messages.KindChannel, Flags: messages.FlagCredit, Dst: ctxID, Src: r.id, Target: id, ReqID: channelWindow}
		_ = r.send(&h, nil)
	}
	return st, nil
}

func dirName(d int) string {
	if d == dirSender {
		return "Sender"
	}
	return "Receiver"
}

// addBoundChannel registers a channel end id connected to peer.
func (r *Router) addBoundChannel(id string, peer ChannelAddr) (*Channel, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.channels[id]; dup {
		return nil, fmt.Errorf("channel end %s exists already", id)
	}
	ch := r.newChannelLocked(id, channelWindow)
	ch.peer, ch.connected, ch.bound = peer, true, true
	ch.peerName = r.table.Load().name(peer.Context)
	r.channels[id] = ch
	return ch, nil
}
