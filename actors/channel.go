package actors

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/mitogo/mitogo/messages"
	"github.com/vmihailenco/msgpack/v5"
)

// channelWindow is how many items a sender may have in flight by default:
// the receiver's inbox never holds more, and the sender waits for credit.
const channelWindow = 64

// ChannelAddr names one end of a channel anywhere in the tree. It is plain
// data, so it can be passed as (part of) a call's argument.
type ChannelAddr struct {
	Context uint32 `msgpack:"context"`
	ID      string `msgpack:"id"`
}

// Channel is one end of a two-way, ordered flow of messages between two
// contexts. Make one with Router.NewChannel, pass its Addr to the other side
// (typically as a call argument), and Connect each end to the other. Its
// inbox is bounded: a sender that runs ahead of its receiver waits.
//
// An end is bound to the context of its peer from the moment that is
// known: when it is Connected, when its Addr is passed in a call's
// arguments (bound to the call's target until the first item comes, then
// to that item's sender), or when it is made bound (typed streams, see
// NewStream). A bound end fails with a *ChannelError when that context is
// lost, whatever it waits for; so does a connected end whose peer releases
// its end (ErrChannelClosed) or whose router shuts down (ErrShutdown).
type Channel struct {
	r  *Router
	id string

	mu         sync.Mutex
	peer       ChannelAddr // peer.Context is valid when bound, all of it when connected
	peerName   string
	bound      bool
	connected  bool
	inbox      [][]byte
	window     int // items in flight at most; both ends use the same
	credit     int
	consumed   int
	peerClosed bool
	closed     bool
	released   bool // this end was released and its peer told
	err        error
	recvWake   chan struct{}
	sendWake   chan struct{}
}

// NewChannel makes a channel end in this context. The router keeps it
// until Release: release every channel you are done with.
func (r *Router) NewChannel() *Channel { return r.NewChannelWindow(channelWindow) }

// NewChannelWindow makes a channel end whose sender may have at most
// window items in flight (NewChannel's is 64): with large items, a smaller
// window keeps the bytes held by the receiver's inbox the same. Both ends
// of a channel must be made with the same window.
func (r *Router) NewChannelWindow(window int) *Channel {
	window = max(window, 2)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.nextChan++
	ch := r.newChannelLocked("ch"+fmt.Sprint(r.nextChan), window)
	r.channels[ch.id] = ch
	return ch
}

// newChannelLocked makes (but does not register) the end id with window;
// r.mu is held.
func (r *Router) newChannelLocked(id string, window int) *Channel {
	ch := &Channel{r: r, id: id, window: window, credit: window,
		recvWake: make(chan struct{}, 1), sendWake: make(chan struct{}, 1)}
	if r.closing {
		ch.err = &ChannelError{Context: r.Name(), Reason: "the router is shut down", Err: ErrShutdown}
	}
	return ch
}

// Addr is this end's address, for the other side to Connect to.
func (ch *Channel) Addr() ChannelAddr { return ChannelAddr{Context: ch.r.id, ID: ch.id} }

// Connect sets the other end; Send goes there.
func (ch *Channel) Connect(peer ChannelAddr) {
	ch.mu.Lock()
	ch.peer, ch.connected, ch.bound = peer, true, true
	ch.peerName = ch.r.table.Load().name(peer.Context)
	ch.mu.Unlock()
}

// bindTo binds an end not yet connected to the context id: its peer is
// there (it was passed there, or an item came from there).
func (ch *Channel) bindTo(id uint32) {
	ch.mu.Lock()
	if !ch.connected {
		ch.peer.Context, ch.bound = id, true
		ch.peerName = ch.r.table.Load().name(id)
	}
	ch.mu.Unlock()
}

// fail ends whatever waits on the channel with err, unless it has failed
// already.
func (ch *Channel) fail(err error) {
	ch.mu.Lock()
	if ch.err == nil {
		ch.err = err
	}
	ch.mu.Unlock()
	wake(ch.recvWake)
	wake(ch.sendWake)
}

func wake(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Send encodes v and sends it to the other end, waiting while the other
// end's inbox is full.
func (ch *Channel) Send(ctx context.Context, v any) error {
	payload, err := msgpack.Marshal(v)
	if err != nil {
		return errorf("mitogo: channel send: encoding %T: %w", v, err)
	}
	return ch.SendEncoded(ctx, payload)
}

// SendEncoded sends payload, one value already encoded as msgpack (what
// Recv decodes), as Send sends what it encodes. The channel keeps payload:
// the caller must not change it afterwards. It is for senders that build
// a large message in one allocation of its exact size, rather than let
// the encoder grow a buffer to it (a file's data chunks).
func (ch *Channel) SendEncoded(ctx context.Context, payload []byte) error {
	for {
		ch.mu.Lock()
		switch {
		case ch.err != nil:
			err := ch.err
			ch.mu.Unlock()
			return err
		case !ch.connected:
			ch.mu.Unlock()
			return errorf("mitogo: channel send: not connected")
		case ch.closed:
			ch.mu.Unlock()
			return errorf("mitogo: channel send: channel closed")
		case ch.credit > 0:
			ch.credit--
			h := messages.Header{Kind: messages.KindChannel, Dst: ch.peer.Context, Src: ch.r.id, Target: ch.peer.ID}
			ch.mu.Unlock()
			if err := ch.r.send(&h, payload); err != nil {
				return sendError(ch.peerName, "channel send", err)
			}
			return nil
		}
		ch.mu.Unlock()
		select {
		case <-ch.sendWake:
		case <-ctx.Done():
			if ctx.Err() == context.DeadlineExceeded {
				return &TimeoutError{Context: ch.peerName, Op: "channel send"}
			}
			return errorf("mitogo: channel send to %s: %w", ch.peerName, ctx.Err())
		}
	}
}

// Recv waits for the next message and decodes it into v. It returns io.EOF
// once the other end has closed and every message was received.
func (ch *Channel) Recv(ctx context.Context, v any) error {
	for {
		ch.mu.Lock()
		if len(ch.inbox) > 0 {
			payload := ch.inbox[0]
			ch.inbox[0] = nil
			ch.inbox = ch.inbox[1:]
			ch.consumed++
			var grant int
			if ch.consumed >= ch.window/2 && ch.connected {
				grant, ch.consumed = ch.consumed, 0
			}
			peer := ch.peer
			ch.mu.Unlock()
			if grant > 0 {
				h := messages.Header{Kind: messages.KindChannel, Flags: messages.FlagCredit, Dst: peer.Context, Src: ch.r.id, Target: peer.ID, ReqID: uint64(grant)}
				_ = ch.r.send(&h, nil)
			}
			if err := messages.Unmarshal(payload, v); err != nil {
				return errorf("mitogo: channel receive: decoding into %T: %w", v, err)
			}
			return nil
		}
		if ch.peerClosed {
			ch.mu.Unlock()
			return io.EOF
		}
		if ch.err != nil {
			err := ch.err
			ch.mu.Unlock()
			return err
		}
		ch.mu.Unlock()
		select {
		case <-ch.recvWake:
		case <-ctx.Done():
			if ctx.Err() == context.DeadlineExceeded {
				return &TimeoutError{Context: ch.peerName, Op: "channel receive"}
			}
			return errorf("mitogo: channel receive from %s: %w", ch.peerName, ctx.Err())
		}
	}
}

// Close tells the other end that nothing more will be sent; its Recv
// returns io.EOF after the last message. Receiving goes on.
func (ch *Channel) Close() error {
	ch.mu.Lock()
	if ch.closed {
		ch.mu.Unlock()
		return nil
	}
	ch.closed = true
	peer, connected := ch.peer, ch.connected
	ch.mu.Unlock()
	wake(ch.sendWake)
	if !connected {
		return nil
	}
	h := messages.Header{Kind: messages.KindChannel, Flags: messages.FlagClose, Dst: peer.Context, Src: ch.r.id, Target: peer.ID}
	return ch.r.send(&h, nil)
}

// Release forgets the channel in its router; later messages to it are
// dropped. A connected peer is told: its sends fail from then on, and so
// do its receives after the items sent before (io.EOF instead if this end
// was closed first), with a *ChannelError matching ErrChannelClosed.
func (ch *Channel) Release() {
	ch.release(nil)
}

// release is Release telling the peer why, when cause has a code (see
// causes.go).
func (ch *Channel) release(cause error) {
	ch.r.releaseChannel(ch.id)
	ch.mu.Lock()
	peer, connected, released := ch.peer, ch.connected, ch.released
	ch.closed, ch.released = true, true
	if ch.err == nil {
		ch.err = &ChannelError{Context: ch.r.Name(), Reason: "this end was released", Err: ErrChannelClosed}
	}
	ch.mu.Unlock()
	wake(ch.recvWake)
	wake(ch.sendWake)
	if !connected || released {
		return
	}
	var payload []byte
	if code := causeCode(cause); code != "" {
		payload, _ = msgpack.Marshal(code)
	}
	h := messages.Header{Kind: messages.KindChannel, Flags: messages.FlagRelease, Dst: peer.Context, Src: ch.r.id, Target: peer.ID}
	_ = ch.r.send(&h, payload)
}

func (r *Router) deliverChannel(h messages.Header, payload []byte) {
	ch := r.channel(h.Target)
	if ch == nil {
		r.logger.Debug("item for an unknown channel dropped", "channel", h.Target)
		return
	}
	ch.mu.Lock()
	if ch.connected && h.Src != ch.peer.Context {
		ch.mu.Unlock()
		r.logger.Warn("channel item from a context that is not its peer dropped", "channel", h.Target, "src", h.Src)
		return
	}
	if !ch.connected && (!ch.bound || ch.peer.Context != h.Src) {
		// Whoever sends to an end passed by address is its peer now.
		ch.peer.Context, ch.bound = h.Src, true
		ch.peerName = r.table.Load().name(h.Src)
	}
	switch {
	case h.Flags&messages.FlagRelease != 0:
		if ch.err == nil {
			var code string
			_ = messages.Unmarshal(payload, &code)
			reason, cause := "it released its end", ErrChannelClosed
			if !ch.peerClosed {
				reason = "it released its end without closing it"
			}
			if c := causeFromCode(code); c != nil {
				reason, cause = "its end was released: "+c.Error(), errors.Join(ErrChannelClosed, c)
			}
			ch.err = &ChannelError{Context: ch.peerName, Reason: reason, Err: cause}
		}
		ch.mu.Unlock()
		wake(ch.recvWake)
		wake(ch.sendWake)
		return
	case ch.err != nil:
		ch.mu.Unlock() // failed: nothing more is taken
		return
	case h.Flags&messages.FlagCredit != 0:
		ch.credit += int(min(h.ReqID, uint64(ch.window)))
		ch.mu.Unlock()
		wake(ch.sendWake)
		return
	case h.Flags&messages.FlagClose != 0:
		ch.peerClosed = true
	default:
		if len(ch.inbox) >= 2*ch.window {
			ch.mu.Unlock()
			r.logger.Warn("channel item beyond the sender's credit dropped", "channel", h.Target, "src", h.Src)
			return
		}
		ch.inbox = append(ch.inbox, payload)
	}
	ch.mu.Unlock()
	wake(ch.recvWake)
}

// failChannels fails the channels whose other end was in a context that is
// gone, for reason, caused by cause if known.
func (r *Router) failChannels(ids []uint32, reason string, cause error) {
	gone := map[uint32]bool{}
	for _, id := range ids {
		gone[id] = true
	}
	for _, ch := range r.channelList() {
		ch.mu.Lock()
		if ch.bound && gone[ch.peer.Context] && ch.err == nil {
			ch.err = &ChannelError{Context: ch.peerName, Reason: reason, Err: cause}
		}
		ch.mu.Unlock()
		wake(ch.recvWake)
		wake(ch.sendWake)
	}
}

// closeChannels fails every channel end as the router shuts down, and
// tells their peers why.
func (r *Router) closeChannels() {
	for _, ch := range r.channelList() {
		ch.fail(&ChannelError{Context: r.Name(), Reason: "the router is shut down", Err: ErrShutdown})
		ch.release(ErrShutdown)
	}
}
