package actors

import (
	"context"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// The reader hand-off: who reads a stream, and who runs the calls read
// from it.
//
// Each stream has a reader goroutine (serve, readLoop). A call that comes
// in is run on that goroutine (runInline) rather than on a new one; a
// reply that a caller waits for may be read by the caller itself rather
// than by the reader goroutine (readFor). Two small state machines, both
// in atomics of the conn, say which goroutine does what.
//
// Who reads (conn.rd):
//
//	state      who reads the stream            what moves it on
//	rdReader   the reader goroutine            after routing a reply for this context, with no
//	                                           other call waiting, nothing buffered and the
//	                                           last caller able to read: yield → rdFree
//	                                           the stream fails: serve → rdStopped
//	rdFree     nobody; the reader goroutine    a caller that can read: readFor → rdCaller
//	           waits on resume                 a caller that cannot read, close, the watchdog
//	                                           after freeGrace: wakeReader → rdReader
//	rdCaller   one caller, in readFor, routing its reply in, frames still buffered → rdReader
//	           every frame as the reader would its reply in, nothing buffered → rdFree (and
//	                                           wakeReader at once if calls wait or it is closed)
//	                                           it read a call to run or an error → rdReader,
//	                                           handing it over on resume
//	                                           its ctx ended (a read deadline woke it) → rdReader,
//	                                           the deadline cleared, the frame it was reading
//	                                           kept by the stream for the reader goroutine
//	rdStopped  nobody, ever again              (final)
//
// A move to rdReader from rdFree or rdCaller is always followed by one
// message on resume, which the reader goroutine is waiting for.
//
// Who runs the call the reader read (conn.inline):
//
//	value      meaning                         what moves it on
//	> 0        the reader runs a call inline,  the call returns: runInline → -start
//	           started at that time            the call outlasts inlineBudget (watchdog) or a
//	                                           call made here waits on this stream (unstick):
//	                                           → 0, and handOff starts a new reader goroutine;
//	                                           the old one ends with its call (errHandedOff)
//	< 0        the last inline call started    the next call: runInline → > 0
//	           at -value and has returned
//	0          no inline call yet, or the      the next call: runInline → > 0
//	           last was handed off
//
// The watchdog (one per Router) is what moves a stream on with time. It
// runs only while a stream has an inline call or is unread, and
// watchLinger after; Shutdown, and a child's exit, stop and join it.

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

// errHandedOff ends a reader that became a call's goroutine.
var errHandedOff = errors.New("reader handed off")

// The watchdog's periods. A call runs on the reader's goroutine for at
// least inlineBudget before a new reader takes the stream, and a stream
// that nobody reads is given back to its reader goroutine at least
// freeGrace after that (see readFor): the watchdog looks every watchTick.
// (A shorter period would not be kept: an idle Go process sleeps in
// epoll_wait, whose timeout is in whole milliseconds, so the 200 µs timer
// this replaces fired after about 1 ms too.) It stops watchLinger after its
// last use, so an idle process does not tick. The linger is two ticks:
// calls back to back (less than a tick apart) keep it running, and a
// context that takes one call now and then (a fan-out's target) pays two
// ticks per call, where each tick wakes two or three threads (~30 µs of CPU
// on a small VM; 20 ticks cost a fan-out's 200 children 4x the CPU of the
// calls themselves). A call made while the stream's reader runs a call
// needs no watchdog (unstick).
const (
	inlineBudget = 200 * time.Microsecond
	freeGrace    = 50 * time.Microsecond
	watchTick    = time.Millisecond
	watchLinger  = 2 * watchTick
)

func (c *conn) readLoop() error {
	for {
		body, err := c.s.ReadFrame()
		if err != nil && errors.Is(err, os.ErrDeadlineExceeded) && c.closeErr.Load() == nil {
			// Left by a caller's interrupted read (readFor), which cleared
			// its deadline: the stream and the frame being read are whole.
			continue
		}
		job, reply, err := c.handle(body, err)
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
// the router's watchdog looks at it every watchTick.
func (c *conn) runInline(job func()) bool {
	start := monoNow()
	c.inline.Store(start)
	c.r.watch.need(c)
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
// round trip. A caller that reads its reply itself is woken as a plain read
// is: by the kernel itself on a transport.FDConn, by the network poller
// otherwise. So after a reply on a stream to a
// child, when no other call waits on the stream and the last caller could
// read (its ctx cannot end, or the stream has read deadlines, with which a
// ctx that ends interrupts the read: every stream but an SSH session's), the
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
	c.r.watch.need(c)
}

// wakeReader resumes the reader goroutine if nobody reads the stream.
func (c *conn) wakeReader() {
	if c.rd.Load() == rdFree && c.rd.CompareAndSwap(rdFree, rdReader) {
		c.resume <- resumeMsg{}
	}
}

// What readFor did.
const (
	readNot   = iota // it did not read, or gave reading back before p's result came: wait on p.ch
	readGot          // p's result is in
	readEnded        // ctx ended while it read; the stream is given back
)

// readFor reads the stream for the caller of p, if nobody else reads it,
// until p's result is in, routing every other frame as the reader
// goroutine would. It gives reading back to the reader goroutine when it
// reads a call to run or an error (readNot: the caller then waits on p.ch
// as any other) and when ctx ends (readEnded): a ctx that can end arms
// interrupt, which sets a read deadline in the past, and the frame being
// read is kept by the stream for the reader goroutine to finish
// (transport.Stream.ReadFrame).
func (c *conn) readFor(ctx context.Context, p *pendingCall) (callResult, int) {
	if c.rd.Load() != rdFree || !c.rd.CompareAndSwap(rdFree, rdCaller) {
		return callResult{}, readNot
	}
	var stop func() bool
	if ctx.Done() != nil {
		c.dlOwner.Store(p)
		stop = context.AfterFunc(ctx, func() { c.interrupt(p) })
	}
	for {
		select {
		case res := <-p.ch:
			c.disarm(stop)
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
			return res, readGot
		default:
		}
		body, err := c.s.ReadFrame()
		if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
			c.disarm(stop)
			c.rd.Store(rdReader)
			c.resume <- resumeMsg{}
			if ctx.Err() != nil {
				return callResult{}, readEnded
			}
			return callResult{}, readNot
		}
		job, _, err := c.handle(body, err)
		if err != nil || job != nil {
			c.disarm(stop)
			c.rd.Store(rdReader)
			c.resume <- resumeMsg{job: job, err: err}
			return callResult{}, readNot
		}
	}
}

// interrupt wakes the read of p's caller, whose ctx has ended, if it still
// reads the stream.
func (c *conn) interrupt(p *pendingCall) {
	c.dlMu.Lock()
	if c.dlOwner.Load() == p {
		_ = c.s.SetReadDeadline(time.Unix(1, 0))
		c.dlSet = true
	}
	c.dlMu.Unlock()
}

// disarm ends what readFor armed with stop (nil: nothing): once it
// returns, no interrupt of this caller's is pending and the stream has no
// read deadline, so the next reader reads it as it was.
func (c *conn) disarm(stop func() bool) {
	if stop == nil {
		return
	}
	if stop() {
		c.dlOwner.Store(nil)
		return
	}
	// interrupt has run or is running: wait for it, then undo it.
	c.dlMu.Lock()
	c.dlOwner.Store(nil)
	if c.dlSet {
		_ = c.s.SetReadDeadline(time.Time{})
		c.dlSet = false
	}
	c.dlMu.Unlock()
}

// monoEpoch anchors monoNow.
var monoEpoch = time.Now()

// monoNow is a monotonic clock in nanoseconds, always positive.
func monoNow() int64 { return int64(time.Since(monoEpoch)) + 1 }

// watchdog looks after a router's streams: calls run inline for too long,
// and streams that nobody reads. Its goroutine runs only while it has
// something to look after, and watchLinger after.
//
// Invariant: running is true while a loop goroutine runs or is about to
// (need set it and starts one, unless stopped), and wg counts that
// goroutine. conns (under mu) holds the streams registered by need whose
// reader has not stopped (serve removes them). Once stopped is set (under
// mu, by stop) no loop starts again.
type watchdog struct {
	running atomic.Bool
	mu      sync.Mutex
	conns   map[*conn]struct{}
	stopped bool
	quit    chan struct{} // closed by stop
	wg      sync.WaitGroup
}

func newWatchdog() watchdog {
	return watchdog{conns: map[*conn]struct{}{}, quit: make(chan struct{})}
}

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
		w.mu.Lock()
		if !w.stopped {
			w.wg.Add(1)
			go w.loop()
		}
		w.mu.Unlock()
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

// stop ends the watchdog for good and waits for its goroutine: streams
// are no longer handed off or resumed with time.
func (w *watchdog) stop() {
	w.mu.Lock()
	if !w.stopped {
		w.stopped = true
		close(w.quit)
	}
	w.mu.Unlock()
	w.wg.Wait()
}

func (w *watchdog) loop() {
	defer w.wg.Done()
	t := time.NewTimer(watchTick)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-w.quit:
			return
		}
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
		t.Reset(watchTick)
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
