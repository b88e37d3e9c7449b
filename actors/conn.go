package actors

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/mitogo/mitogo/messages"
	"github.com/mitogo/mitogo/transport"
	"github.com/vmihailenco/msgpack/v5"
)

// conn is one stream of this context: to its parent (up) or to a child.
// Its reader goroutine routes every frame it reads (on a stream to a child,
// a caller may read in its stead: see readFor); writes go straight to the
// stream from whichever goroutine sends.
type conn struct {
	r    *Router
	s    *transport.Stream
	up   bool   // the stream to the parent
	peer uint32 // the context at the other end
	name string // its name, for errors and logs

	hb *heartbeat // nil without a heartbeat; set before the reader starts

	attach *attachPolicy // a process attached through a Listener: what it may reach; nil otherwise

	child   *transport.Child // the process behind it, if this process started one
	session int              // the session the child leads on this host, ended when it is reaped (0: none or elsewhere)
	output  *tail            // its last output lines
	drained chan struct{}    // closed when its output has been read to the end

	closeOnce sync.Once
	closeErr  atomic.Pointer[error] // why close was called
	done      chan struct{}         // closed when the reader has stopped and the child is reaped

	// A stream to a child has an actor (streamactor.go), set before its
	// reader starts; the reader that stops last sets readErr, closes
	// readerDone and tells the actor, which handles the loss.
	actor      *actor.PID
	readErr    error
	readerDone chan struct{}

	// inline is the state of the call its reader runs: since when it runs
	// (> 0), when the last one started (< 0, done), or 0: none yet, or the
	// watchdog handed the stream to a new reader. See runInline.
	inline  atomic.Int64
	watched atomic.Bool // registered with the watchdog

	// Who reads the stream: the reader goroutine, a caller waiting for its
	// reply, or nobody (rdFree: the reader waits on resume). See readFor.
	rd         atomic.Int32
	freeAt     atomic.Int64   // monoNow when rd last became rdFree
	resume     chan resumeMsg // gives reading back to the reader goroutine
	calls      atomic.Int32   // calls waiting for a reply through this stream
	lastReader atomic.Bool    // the latest call's caller can read its reply

	// A caller whose ctx can end reads only a stream it can interrupt:
	// when its ctx ends, a read deadline in the past wakes it (see
	// readFor, interrupt).
	interruptible bool
	dlOwner       atomic.Pointer[pendingCall] // the call whose caller may interrupt the read
	dlMu          sync.Mutex                  // orders interrupt and disarm
	dlSet         bool                        // a deadline is set (under dlMu)
}

func newConn(r *Router, s *transport.Stream, peer uint32, name string, up bool) *conn {
	return &conn{r: r, s: s, up: up, peer: peer, name: name, done: make(chan struct{}), readerDone: make(chan struct{}),
		resume: make(chan resumeMsg, 1), interruptible: s.CanInterrupt()}
}

// serve reads frames until the stream fails, then reports the loss: to
// the stream's actor, or, on the stream to the parent, by ending the
// process (childExit).
func (c *conn) serve() {
	err := c.readLoop()
	if err == errHandedOff {
		return
	}
	c.rd.Store(rdStopped)
	c.r.watch.remove(c)
	if ce := c.closeErr.Load(); ce != nil {
		err = *ce
	}
	c.s.Close()
	if c.up {
		defer close(c.done)
		if c.hb != nil {
			c.hb.stop() // after Close, which ends a ping's write
		}
		if c.r.detached != nil {
			c.r.detach(err) // an attached router leaves the tree and lives on
			return
		}
		c.r.childExit(err)
		return
	}
	c.readErr = err
	close(c.readerDone)
	c.r.system.Root.Send(c.actor, &readerStopped{})
}

// handle routes one frame read from the stream (or the error reading it):
// it returns a call to run here, whether the frame was a reply to a call
// made here, or the error that ends the stream.
func (c *conn) handle(body []byte, err error) (job func(), reply bool, _ error) {
	r := c.r
	if err != nil {
		if errors.Is(err, messages.ErrFrameTooLarge) {
			r.logger.Error("oversize frame; closing the stream", "stream", c.name, "error", err)
		}
		return nil, false, err
	}
	if c.hb != nil {
		c.hb.alive()
	}
	h, payload, err := messages.DecodeHeader(body)
	if err != nil {
		r.logger.Error("malformed frame; closing the stream", "stream", c.name, "error", err)
		return nil, false, fmt.Errorf("malformed frame: %w", err)
	}
	if !c.up && !r.table.Load().owns(c, h.Src) {
		err := fmt.Errorf("forged source: %s sent an envelope from context %d, which is not in its subtree", c.name, h.Src)
		r.logger.Error("forged envelope dropped; closing the stream", "stream", c.name, "src", h.Src, "kind", h.Kind.String())
		return nil, false, err
	}
	if c.heartbeatFrame(&h) {
		return nil, false, nil
	}
	return r.route(c, body, h, payload), h.Kind == messages.KindReply && h.Dst == r.id, nil
}

// close ends the stream because of err; the reader reports the loss.
func (c *conn) close(err error) {
	c.closeOnce.Do(func() {
		c.closeErr.Store(&err)
		c.s.Close()
		c.wakeReader() // so that it sees the stream closed
	})
}

// reap waits for the child process to end, killing it if it lingers
// after its stream closed.
//
// Each wait here ends at once when the router hurries (Shutdown's ctx has
// ended): the child is killed, what is left in its session gets SIGKILL
// without a grace period, and its output is no longer waited for.
func (c *conn) reap() {
	hurry := c.r.hurry.Done()
	t := time.NewTimer(3 * time.Second)
	defer t.Stop()
	select {
	case <-c.child.Proc.Done():
	case <-t.C:
		c.child.Proc.Kill()
		<-c.child.Proc.Done()
	case <-hurry:
		c.child.Proc.Kill()
		<-c.child.Proc.Done()
	}
	if c.session != 0 {
		// A child that was killed could not end what its functions left.
		endSession(c.session, c.r.reapGrace, hurry, c.r.logger)
	}
	if c.drained == nil {
		return
	}
	t.Reset(time.Second)
	select {
	case <-c.drained:
	case <-hurry:
		c.child.Output.Close()
	case <-t.C:
		// A process it started still holds its output pipe: stop reading,
		// so shutting down never waits for a daemon.
		c.child.Output.Close()
	}
}

// kill ends the child process at once.
func (c *conn) kill() {
	if c.child != nil {
		c.child.Proc.Kill()
	}
	c.close(errors.New("killed"))
}

func encode(v any) ([]byte, error) { return msgpack.Marshal(v) }

func decode(b []byte, v any) error {
	if len(b) == 0 {
		return io.ErrUnexpectedEOF
	}
	return messages.Unmarshal(b, v)
}
