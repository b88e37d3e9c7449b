package actors

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mitogo/mitogo/messages"
	"github.com/mitogo/mitogo/transport"
	"github.com/vmihailenco/msgpack/v5"
)

// conn is one stream of this context: to its parent (up) or to a child.
// Its reader goroutine routes every frame it reads; writes go straight to
// the stream from whichever goroutine sends.
type conn struct {
	r    *Router
	s    *transport.Stream
	up   bool   // the stream to the parent
	peer uint32 // the context at the other end
	name string // its name, for errors and logs

	child   *transport.Child // the process behind it, if this process started one
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
}

func newConn(r *Router, s *transport.Stream, peer uint32, name string, up bool) *conn {
	return &conn{r: r, s: s, up: up, peer: peer, name: name, done: make(chan struct{})}
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
	watch.remove(c)
	if ce := c.closeErr.Load(); ce != nil {
		err = *ce
	}
	c.s.Close()
	if c.child != nil && !errors.Is(err, io.EOF) {
		c.child.Proc.Kill() // it broke the protocol, or its stream broke
	}
	c.r.connLost(c, err)
	if c.child != nil {
		c.reap()
	}
}

func (c *conn) readLoop() error {
	r := c.r
	for {
		body, err := c.s.ReadFrame()
		if err != nil {
			if errors.Is(err, messages.ErrFrameTooLarge) {
				r.logger.Error("oversize frame; closing the stream", "stream", c.name, "error", err)
			}
			return err
		}
		h, payload, err := messages.DecodeHeader(body)
		if err != nil {
			r.logger.Error("malformed frame; closing the stream", "stream", c.name, "error", err)
			return fmt.Errorf("malformed frame: %w", err)
		}
		if !c.up && !r.table.Load().owns(c, h.Src) {
			err := fmt.Errorf("forged source: %s sent an envelope from context %d, which is not in its subtree", c.name, h.Src)
			r.logger.Error("forged envelope dropped; closing the stream", "stream", c.name, "src", h.Src, "kind", h.Kind.String())
			return err
		}
		if job := r.route(c, body, h, payload); job != nil && !c.runInline(job) {
			return errHandedOff
		}
	}
}

// inlineBudget is how long a call runs on the reader's goroutine before a
// new reader takes over the stream: the watchdog notices it within
// inlineTick after that.
const (
	inlineBudget = 200 * time.Microsecond
	inlineTick   = 200 * time.Microsecond
	// inlineLinger is how long the watchdog keeps ticking after the last
	// inline call started, so that a busy stream does not start one per call.
	inlineLinger = 20 * time.Millisecond
)

// runInline runs a call on the reader's goroutine: most calls are short,
// and running them here spares the cross-CPU wake-up that starting a
// goroutine costs on a small VM. If the call outlasts inlineBudget, the
// watchdog starts a new reader, and runInline reports false: this goroutine
// is then the call's alone and must stop reading when the call ends.
//
// No timer is armed per call: arming one costs a wake-up of another thread
// (the runtime wakes an idle P to watch the new timer), which was ~15 µs of
// a ~80 µs round trip. The call's start time goes in c.inline instead, where
// the one watchdog of the process looks at it every inlineTick.
func (c *conn) runInline(job func()) bool {
	start := monoNow()
	c.inline.Store(start)
	if !c.watched.Load() {
		watch.add(c)
	}
	if !watch.running.Load() {
		watch.start()
	}
	job()
	return c.inline.CompareAndSwap(start, -start)
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

// monoEpoch anchors monoNow.
var monoEpoch = time.Now()

// monoNow is a monotonic clock in nanoseconds, always positive.
func monoNow() int64 { return int64(time.Since(monoEpoch)) + 1 }

// inlineWatch is the watchdog of the calls run inline, one per process. It
// runs only while calls are run inline: it stops inlineLinger after the last
// one started, so an idle process never wakes up for it.
type inlineWatch struct {
	running atomic.Bool
	mu      sync.Mutex
	conns   map[*conn]struct{} // whose readers have run calls inline
}

var watch = inlineWatch{conns: map[*conn]struct{}{}}

// add registers c; serve unregisters it when its reader stops.
func (w *inlineWatch) add(c *conn) {
	w.mu.Lock()
	w.conns[c] = struct{}{}
	c.watched.Store(true)
	w.mu.Unlock()
}

func (w *inlineWatch) remove(c *conn) {
	if !c.watched.Load() {
		return
	}
	w.mu.Lock()
	delete(w.conns, c)
	w.mu.Unlock()
}

func (w *inlineWatch) start() {
	if w.running.CompareAndSwap(false, true) {
		go w.loop()
	}
}

func (w *inlineWatch) loop() {
	for {
		time.Sleep(inlineTick)
		w.mu.Lock()
		if !w.scan() {
			// Stop, unless a call started since the scan: runInline stores
			// c.inline before it loads w.running, so either it sees false
			// and starts a watchdog, or the rescan here sees the call.
			w.running.Store(false)
			if !w.scan() || !w.running.CompareAndSwap(false, true) {
				w.mu.Unlock()
				return
			}
		}
		w.mu.Unlock()
	}
}

// scan hands off every stream whose call has outlasted inlineBudget, and
// reports whether the watchdog is still needed. w.mu must be held.
func (w *inlineWatch) scan() (busy bool) {
	now := monoNow()
	for c := range w.conns {
		v := c.inline.Load()
		switch {
		case v > 0: // a call running since v
			busy = true
			if now-v >= int64(inlineBudget) && c.inline.CompareAndSwap(v, 0) {
				c.handOff()
			}
		case v < 0: // the last call started at -v, and is done
			if now+v < int64(inlineLinger) {
				busy = true
			}
		}
	}
	return busy
}

// close ends the stream because of err; the reader reports the loss.
func (c *conn) close(err error) {
	c.closeOnce.Do(func() {
		c.closeErr.Store(&err)
		c.s.Close()
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

// drainOutput turns each line the child prints into a log record, and
// keeps the last few for errors.
func (r *Router) drainOutput(name string, f io.ReadCloser, t *tail) {
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		t.add(line)
		r.logLine(name, line)
	}
}

// tail keeps the last lines of a child's output.
type tail struct {
	mu    sync.Mutex
	lines []string
}

func (t *tail) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.lines) == 10 {
		t.lines = t.lines[1:]
	}
	t.lines = append(t.lines, line)
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}

// logLine forwards one line of a child's output as a log record.
func (r *Router) logLine(ctxName, line string) {
	r.emit(&messages.LogRecord{Time: time.Now(), Level: int(slog.LevelInfo), Message: line, Context: ctxName,
		Attrs: []messages.Attr{{Key: "stream", Value: "output"}}})
}

func encode(v any) ([]byte, error) { return msgpack.Marshal(v) }

func decode(b []byte, v any) error {
	if len(b) == 0 {
		return io.ErrUnexpectedEOF
	}
	return messages.Unmarshal(b, v)
}
