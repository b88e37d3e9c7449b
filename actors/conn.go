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
// new reader takes over the stream.
const inlineBudget = 200 * time.Microsecond

// runInline runs a call on the reader's goroutine: most calls are short,
// and running them here spares the cross-CPU wake-up that starting a
// goroutine costs on a small VM. If the call outlasts inlineBudget, a timer
// starts a new reader, and runInline reports false: this goroutine is then
// the call's alone and must stop reading when the call ends.
func (c *conn) runInline(job func()) bool {
	var state atomic.Int32 // 0 running inline, 1 done, 2 handed off
	t := time.AfterFunc(inlineBudget, func() {
		if state.CompareAndSwap(0, 2) {
			c.r.wg.Add(1)
			defer c.r.wg.Done()
			c.serve()
		}
	})
	job()
	if state.CompareAndSwap(0, 1) {
		t.Stop()
		return true
	}
	return false
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
