package actors

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

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

	child   *transport.Child // the process behind it, if this process started one
	session int              // the session the child leads on this host, ended when it is reaped (0: none or elsewhere)
	output  *tail            // its last output lines
	drained chan struct{}    // closed when its output has been read to the end

	closeOnce sync.Once
	closeErr  atomic.Pointer[error] // why close was called
	done      chan struct{}         // closed when the reader has stopped and the child is reaped

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
}

// Values of conn.rd.
const (
	rdReader  int32 = iota // the reader goroutine (serve)
	rdCaller               // a caller reading for its own reply (readFor)
	rdFree                 // nobody reads: the reader goroutine waits on resume
	rdStopped              // the reader goroutine has stopped
)

// resumeMsg gives reading back to the reader goroutine, with what the last
// reader left it: a call to run, or the error that ends the stream.
type resumeMsg struct {
	job func()
	err error
}

func newConn(r *Router, s *transport.Stream, peer uint32, name string, up bool) *conn {
	return &conn{r: r, s: s, up: up, peer: peer, name: name, done: make(chan struct{}), resume: make(chan resumeMsg, 1)}
}

// errHandedOff ends a reader that became a call's goroutine.
var errHandedOff = errors.New("reader handed off")

// serve reads frames until the stream fails, then reports the loss.
func (c *conn) serve() {
	err := c.readLoop()
	if err == errHandedOff {
		return
	}
	defer close(c.done)
	c.rd.Store(rdStopped)
	watch.remove(c)
	if ce := c.closeErr.Load(); ce != nil {
		err = *ce
	}
	c.s.Close()
	if c.child != nil && !errors.Is(err, io.EOF) {
		c.child.Proc.Kill() // it broke the protocol, or its stream broke
	}
	if c.hb != nil {
		c.hb.stop() // after Close, which ends a ping's write
	}
	c.r.connLost(c, err)
	if c.child != nil {
		c.reap()
	}
}

func (c *conn) readLoop() error {
	for {
		job, reply, err := c.handle(c.s.ReadFrame())
		if err != nil {
			return err
		}
		if job != nil && !c.runInline(job) {
			return errHandedOff
		}
		if reply && c.yield() {
			m := <-c.resume
			if m.err != nil {
				return m.err
			}
			if m.job != nil && !c.runInline(m.job) {
				return errHandedOff
			}
		}
	}
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

// The watchdog's periods. A call runs on the reader's goroutine for at
// least inlineBudget before a new reader takes the stream, and a stream
// that nobody reads is given back to its reader goroutine at least
// freeGrace after that (see readFor): the watchdog looks every watchTick.
// (A shorter period would not be kept: an idle Go process sleeps in
// epoll_wait, whose timeout is in whole milliseconds, so the 200 µs timer
// this replaces fired after about 1 ms too.) It stops watchLinger after its
// last use, so an idle process does not tick. A call made while the
// stream's reader runs a call needs no watchdog (unstick).
const (
	inlineBudget = 200 * time.Microsecond
	freeGrace    = 50 * time.Microsecond
	watchTick    = time.Millisecond
	watchLinger  = 20 * time.Millisecond
)

// runInline runs a call on the reader's goroutine: most calls are short,
// and running them here spares the cross-CPU wake-up that starting a
// goroutine costs on a small VM. If the call outlasts inlineBudget, or a
// call made here waits for a reply on this stream (unstick), a new reader
// takes the stream over, and runInline reports false: this goroutine is
// then the call's alone and must stop reading when the call ends.
//
// No timer is armed per call: arming one costs a wake-up of another thread
// (the runtime wakes an idle P to watch the new timer), which was ~15 µs of
// a ~80 µs round trip. The call's start time goes in c.inline instead, where
// the one watchdog of the process looks at it every watchTick.
func (c *conn) runInline(job func()) bool {
	start := monoNow()
	c.inline.Store(start)
	watch.need(c)
	job()
	return c.inline.CompareAndSwap(start, -start)
}

// unstick hands the stream to a new reader if its reader is running a call:
// someone waits for a reply on it (maybe that very call, calling back).
func (c *conn) unstick() {
	if v := c.inline.Load(); v > 0 && c.inline.CompareAndSwap(v, 0) {
		c.handOff()
	}
}

// handOff starts a new reader on c's stream: the current one is stuck in a
// call.
func (c *conn) handOff() {
	c.r.wg.Add(1)
	go func() {
		defer c.r.wg.Done()
		c.serve()
	}()
}

// Callers read their own replies when they can:
//
// A reply read by the reader goroutine reaches its caller through a channel,
// and readying the caller makes the runtime wake an idle P (another thread,
// on the other CPU of a small VM, which the far side needs): ~20 µs of a
// round trip. A caller that reads its reply itself is woken by the network
// poller instead, as a plain read is. So after a reply on a stream to a
// child, when no other call waits on the stream and the last caller could
// read (its ctx cannot be cancelled: nothing could interrupt its read), the
// reader goroutine stops reading (yield) and the next caller reads until
// its own reply is in (readFor), routing whatever else comes as the reader
// goroutine would. The reader goroutine takes the stream back when a caller
// that cannot read waits on it, when a caller reads a call to run or an
// error, when the stream is closed, and, from the watchdog, when nobody has
// read it for freeGrace: what a child sends unasked right after a call
// waits at most freeGrace + watchTick.

// yield gives reading up after a reply, if a caller is likely to read
// next: it reports whether the reader goroutine must now wait on resume.
// The stream to the parent is never given up: calls come on it.
func (c *conn) yield() bool {
	if c.up || !c.lastReader.Load() || c.calls.Load() != 0 || c.s.Buffered() != 0 || c.closeErr.Load() != nil {
		return false
	}
	c.free()
	// A caller that cannot read may have come meanwhile: it saw the reader
	// reading and is counted here, or it sees rdFree and resumes it.
	if c.calls.Load() != 0 || c.closeErr.Load() != nil {
		if c.rd.CompareAndSwap(rdFree, rdReader) {
			return false
		}
	}
	return true // resumed now or later
}

// free leaves the stream unread and makes sure the watchdog looks at it.
func (c *conn) free() {
	c.freeAt.Store(monoNow())
	c.rd.Store(rdFree)
	watch.need(c)
}

// wakeReader resumes the reader goroutine if nobody reads the stream.
func (c *conn) wakeReader() {
	if c.rd.Load() == rdFree && c.rd.CompareAndSwap(rdFree, rdReader) {
		c.resume <- resumeMsg{}
	}
}

// readFor reads the stream for the caller of p, if nobody else reads it,
// until p's result is in. It returns false when it did not read, or gave
// reading back to the reader goroutine (a call to run, an error): the
// caller then waits on p.ch as any other.
func (c *conn) readFor(p *pendingCall) (callResult, bool) {
	if c.rd.Load() != rdFree || !c.rd.CompareAndSwap(rdFree, rdCaller) {
		return callResult{}, false
	}
	for {
		select {
		case res := <-p.ch:
			if c.s.Buffered() != 0 {
				// Frames came with the reply: the reader goroutine takes them.
				c.rd.Store(rdReader)
				c.resume <- resumeMsg{}
			} else {
				c.free()
				if c.calls.Load() != 0 || c.closeErr.Load() != nil {
					c.wakeReader() // others wait on the stream, or it is closed
				}
			}
			return res, true
		default:
		}
		job, _, err := c.handle(c.s.ReadFrame())
		if err != nil || job != nil {
			c.rd.Store(rdReader)
			c.resume <- resumeMsg{job: job, err: err}
			return callResult{}, false
		}
	}
}

// monoEpoch anchors monoNow.
var monoEpoch = time.Now()

// monoNow is a monotonic clock in nanoseconds, always positive.
func monoNow() int64 { return int64(time.Since(monoEpoch)) + 1 }

// watchdog looks after the streams of the process: calls run inline for
// too long, and streams that nobody reads. It runs only while it has
// something to look after, and watchLinger after.
type watchdog struct {
	running atomic.Bool
	mu      sync.Mutex
	conns   map[*conn]struct{} // registered by need; serve unregisters them
}

var watch = watchdog{conns: map[*conn]struct{}{}}

// need registers c and starts the watchdog if it is not running. It must
// come after the store that the watchdog is to see (c.inline, c.rd): see
// loop.
func (w *watchdog) need(c *conn) {
	if !c.watched.Load() {
		w.mu.Lock()
		w.conns[c] = struct{}{}
		c.watched.Store(true)
		w.mu.Unlock()
	}
	if !w.running.Load() && w.running.CompareAndSwap(false, true) {
		go w.loop()
	}
}

func (w *watchdog) remove(c *conn) {
	if !c.watched.Load() {
		return
	}
	w.mu.Lock()
	delete(w.conns, c)
	w.mu.Unlock()
}

func (w *watchdog) loop() {
	for {
		time.Sleep(watchTick)
		w.mu.Lock()
		if !w.scan() {
			// Stop, unless something started since the scan: need loads
			// w.running after the store, so either it sees false and starts
			// a watchdog, or the rescan here sees the store.
			w.running.Store(false)
			if !w.scan() || !w.running.CompareAndSwap(false, true) {
				w.mu.Unlock()
				return
			}
		}
		w.mu.Unlock()
	}
}

// scan hands off every stream whose call has outlasted inlineBudget,
// resumes the reader of every stream nobody has read for freeGrace, and
// reports whether the watchdog is still needed. w.mu must be held.
func (w *watchdog) scan() (busy bool) {
	now := monoNow()
	for c := range w.conns {
		switch v := c.inline.Load(); {
		case v > 0: // a call running since v
			busy = true
			if now-v >= int64(inlineBudget) && c.inline.CompareAndSwap(v, 0) {
				c.handOff()
			}
		case v < 0 && now+v < int64(watchLinger): // the last one started at -v
			busy = true
		}
		switch f := c.freeAt.Load(); {
		case c.rd.Load() == rdFree:
			busy = true
			if now-f >= int64(freeGrace) {
				c.wakeReader()
			}
		case f != 0 && now-f < int64(watchLinger):
			busy = true
		}
	}
	return busy
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
func (c *conn) reap() {
	t := time.NewTimer(3 * time.Second)
	defer t.Stop()
	select {
	case <-c.child.Proc.Done():
	case <-t.C:
		c.child.Proc.Kill()
		<-c.child.Proc.Done()
	}
	if c.session != 0 {
		// A child that was killed could not end what its functions left.
		endSession(c.session, sessionGrace, c.r.logger)
	}
	if c.drained == nil {
		return
	}
	t.Reset(time.Second)
	select {
	case <-c.drained:
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
