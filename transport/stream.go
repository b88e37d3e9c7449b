package transport

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mitogo/mitogo/messages"
	"github.com/vmihailenco/msgpack/v5"
)

// ErrClosed is returned by writes on a stream that was closed.
var ErrClosed = errors.New("stream closed")

// readBufferSize is a stream's read buffer. Every stream of a context has
// one for its whole life, so its size is memory per connected context; a
// frame larger than what is buffered is read straight into its body, so
// a larger buffer only saves reads of bursts of small frames.
const readBufferSize = 16 << 10

// maxQueued bounds the bytes queued behind a write in progress; a writer
// beyond it waits, which is how a slow peer pushes back on its senders.
const maxQueued = 8 << 20

// Stream is one framed connection between two processes. Its methods are
// safe for concurrent use, except ReadFrame, which belongs to one reader.
type Stream struct {
	rwc io.ReadWriteCloser
	// writev is rwc's vector write when it has one (an FDConn, an SSH
	// session, a child's stdout): one system call or packet per batch.
	writev   func([][]byte) (int64, error)
	r        *bufio.Reader
	maxFrame int

	// The frame ReadFrame is reading, kept when a read deadline interrupts
	// it so that the next ReadFrame goes on where it stopped.
	frames messages.FrameReader

	mu       sync.Mutex
	cond     sync.Cond
	queue    net.Buffers
	spare    net.Buffers
	queued   int
	flushing bool
	err      error // first write error, or ErrClosed

	closeOnce sync.Once
	connOnce  sync.Once // closes rwc, from Close or from a failed write
	connErr   error

	// Counters for Stats: atomic adds by the reader and the writers, no
	// lock on the path of a frame.
	framesIn, bytesIn, framesOut, bytesOut atomic.Uint64
}

// Stats are a stream's counters since it was made. Bytes count frames
// whole (their length prefix included); the handshake counts too.
type Stats struct {
	FramesIn  uint64 `msgpack:"frames_in" json:"frames_in"`
	BytesIn   uint64 `msgpack:"bytes_in" json:"bytes_in"`
	FramesOut uint64 `msgpack:"frames_out" json:"frames_out"` // queued to be written
	BytesOut  uint64 `msgpack:"bytes_out" json:"bytes_out"`
}

// Stats returns the stream's counters. It may be called at any time.
func (s *Stream) Stats() Stats {
	return Stats{FramesIn: s.framesIn.Load(), BytesIn: s.bytesIn.Load(), FramesOut: s.framesOut.Load(), BytesOut: s.bytesOut.Load()}
}

// NewStream frames rwc. maxFrame bounds the body of every frame read or
// written (messages.DefaultMaxFrame if zero).
func NewStream(rwc io.ReadWriteCloser, maxFrame int) *Stream {
	if maxFrame <= 0 {
		maxFrame = messages.DefaultMaxFrame
	}
	s := &Stream{rwc: rwc, r: bufio.NewReaderSize(rwc, readBufferSize), maxFrame: maxFrame}
	s.cond.L = &s.mu
	if wv, ok := rwc.(interface{ Writev([][]byte) (int64, error) }); ok {
		s.writev = wv.Writev
	}
	return s
}

// MaxFrame is the largest frame body this stream reads or writes.
func (s *Stream) MaxFrame() int { return s.maxFrame }

// SetMaxFrame changes the limit, e.g. once the handshake told the child
// what its parent uses. Call it before the stream carries envelopes.
func (s *Stream) SetMaxFrame(n int) {
	if n > 0 {
		s.maxFrame = n
	}
}

// ReadFrame returns the next frame body. A frame over the maximum is a
// *messages.FrameSizeError; the stream cannot be read after that.
//
// A read deadline (SetReadDeadline) that passes makes ReadFrame return an
// error that matches os.ErrDeadlineExceeded; what it had read of the frame
// is kept, and the next ReadFrame (from any goroutine, once the deadline is
// moved) goes on with the same frame: the stream stays whole.
func (s *Stream) ReadFrame() ([]byte, error) {
	body, err := s.frames.Read(s.r, s.maxFrame)
	if err == nil {
		s.framesIn.Add(1)
		s.bytesIn.Add(uint64(len(body) + messages.FrameHeaderLen))
	}
	return body, err
}

// ErrNoDeadline is returned by SetReadDeadline on a stream whose
// connection has no read deadline (an SSH session's channel).
var ErrNoDeadline = errors.New("the connection has no read deadline")

type readDeadliner interface {
	SetReadDeadline(t time.Time) error
}

// CanInterrupt reports whether SetReadDeadline works on this stream: the
// connection has read deadlines, and they work on it (a file that the
// runtime cannot poll refuses them). Asking clears the read deadline.
func (s *Stream) CanInterrupt() bool {
	d, ok := s.rwc.(readDeadliner)
	return ok && d.SetReadDeadline(time.Time{}) == nil
}

// SetReadDeadline sets the time after which ReadFrame fails with an error
// matching os.ErrDeadlineExceeded (a time in the past: at once, even a
// ReadFrame already blocked); the zero time clears it. It may be called
// from any goroutine.
func (s *Stream) SetReadDeadline(t time.Time) error {
	d, ok := s.rwc.(readDeadliner)
	if !ok {
		return ErrNoDeadline
	}
	return d.SetReadDeadline(t)
}

// Buffered is how many bytes were read from the connection but not yet
// returned by ReadFrame. Like ReadFrame, it belongs to the reader.
func (s *Stream) Buffered() int { return s.r.Buffered() }

// Send writes one envelope whose payload is the concatenation of parts.
// A body over the maximum is refused with a *messages.FrameSizeError before
// anything is written, and the stream stays usable. The parts are not
// copied (one writev sends them): they must not change until Send returns.
func (s *Stream) Send(h *messages.Header, parts ...[]byte) error {
	buf := make([]byte, messages.FrameHeaderLen, 64+len(h.Target)+len(h.Sender)+len(h.Type))
	buf = messages.AppendHeader(buf, h)
	n := len(buf) - messages.FrameHeaderLen
	for _, p := range parts {
		n += len(p)
	}
	if n > s.maxFrame {
		return &messages.FrameSizeError{Size: int64(n), Max: int64(s.maxFrame)}
	}
	messages.AppendFrameHeader(buf[:0], n)
	if len(parts) == 0 {
		return s.count(n, s.write(buf))
	}
	return s.count(n, s.write(append([][]byte{buf}, parts...)...))
}

// count records one frame of body size n as sent, unless err says it was
// not; it returns err.
func (s *Stream) count(n int, err error) error {
	if err == nil {
		s.framesOut.Add(1)
		s.bytesOut.Add(uint64(n + messages.FrameHeaderLen))
	}
	return err
}

// Forward writes a frame body received on another stream, unchanged.
func (s *Stream) Forward(body []byte) error {
	if len(body) > s.maxFrame {
		return &messages.FrameSizeError{Size: int64(len(body)), Max: int64(s.maxFrame)}
	}
	return s.count(len(body), s.write(messages.AppendFrameHeader(make([]byte, 0, messages.FrameHeaderLen), len(body)), body))
}

// WriteValue writes v, msgpack-encoded, as one frame: the handshake's form.
func (s *Stream) WriteValue(v any) error {
	body, err := msgpack.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding %T: %w", v, err)
	}
	return s.count(len(body), s.write(messages.AppendFrameHeader(nil, len(body)), body))
}

// ValueFrame is the frame WriteValue writes for v, length prefix and all,
// for a caller that gets it to the far end another way: ahead of the
// stream, in stage 1's input (bootstrap.Options.Early). Counted records it.
func ValueFrame(v any) ([]byte, error) {
	body, err := msgpack.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding %T: %w", v, err)
	}
	return append(messages.AppendFrameHeader(make([]byte, 0, messages.FrameHeaderLen+len(body)), len(body)), body...), nil
}

// Counted records in the stream's counters a frame (ValueFrame's) that
// went out by other means.
func (s *Stream) Counted(frame []byte) {
	s.count(len(frame)-messages.FrameHeaderLen, nil)
}

// ReadValue reads one frame and decodes it into v.
func (s *Stream) ReadValue(v any) error {
	body, err := s.ReadFrame()
	if err != nil {
		return err
	}
	if err := messages.Unmarshal(body, v); err != nil {
		return fmt.Errorf("decoding %T: %w", v, err)
	}
	return nil
}

// write queues bufs and, unless another goroutine is already writing,
// writes everything queued until the queue is empty.
func (s *Stream) write(bufs ...[]byte) error {
	s.mu.Lock()
	for s.err == nil && s.flushing && s.queued > maxQueued {
		s.cond.Wait()
	}
	if s.err != nil {
		err := s.err
		s.mu.Unlock()
		return err
	}
	for _, b := range bufs {
		s.queue = append(s.queue, b)
		s.queued += len(b)
	}
	if s.flushing {
		s.mu.Unlock()
		return nil
	}
	s.flushing = true
	failed := false
	for len(s.queue) > 0 && s.err == nil {
		q := s.queue
		s.queue, s.spare = s.spare[:0], nil
		s.queued = 0
		s.cond.Broadcast()
		s.mu.Unlock()
		keep := q
		var err error
		if s.writev != nil {
			_, err = s.writev(q)
		} else { // a net.Conn's WriteTo writes vectors itself
			_, err = q.WriteTo(s.rwc)
		}
		clear(keep)
		s.mu.Lock()
		s.spare = keep[:0]
		if err != nil && s.err == nil {
			s.err = fmt.Errorf("writing: %w", err)
			failed = true
		}
	}
	s.flushing = false
	err := s.err
	s.cond.Broadcast()
	s.mu.Unlock()
	if failed {
		// A stream that cannot be written is dead: close it, so the
		// reader fails too and what was pending on it fails now.
		s.closeConn()
	}
	return err
}

// closeConn closes the connection once, outside s.mu: closing may wait
// for what the connection owns (an SSH session's goroutines).
func (s *Stream) closeConn() error {
	s.connOnce.Do(func() { s.connErr = s.rwc.Close() })
	return s.connErr
}

// Close closes the connection; the reader's next ReadFrame fails and
// pending or later writes return ErrClosed. It is idempotent.
func (s *Stream) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.mu.Lock()
		if s.err == nil {
			s.err = ErrClosed
		}
		s.cond.Broadcast()
		s.mu.Unlock()
		err = s.closeConn()
	})
	return err
}

// Flush waits until everything queued has been written (or writing failed).
func (s *Stream) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.flushing && s.err == nil {
		s.cond.Wait()
	}
	if s.err == ErrClosed {
		return nil
	}
	return s.err
}

// WriteRaw writes b as it is, without framing. It exists for tests that
// must send a malformed stream; nothing else should use it.
func (s *Stream) WriteRaw(b []byte) error { return s.write(b) }
