package transport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

const fdConnSupported = true

// FDConn is a stream's connection on descriptors that Go's network poller
// does not watch: rfd is read and wfd written (the same socket, or the two
// pipes to a child). Both are non-blocking; a read or write that would
// block waits in ppoll(2) on its own thread, with an eventfd beside the
// descriptor that deadlines and Close write to.
//
// Why not the poller: a descriptor the poller watches is in its epoll set
// for reading and writing alike, so every frame woke a thread of each
// process twice for nothing: the writer's bytes woke the reader's epoll
// thread beside the reader, and the reader taking them woke the writer's
// (the socket has room again). A goroutine parked in the poller is also
// woken by the epoll thread, which hands it to a P, often waking another
// thread, and the runtime's monitor thread, asleep while every P was idle,
// is woken at the next system call. On a small VM each wake-up costs
// 10-30 µs. A ping-pong of small frames between two Go processes over a
// socketpair took 17-50 µs a round trip through the poller and 13-16 µs
// with each side waiting in ppoll (2-vCPU VM, same run).
//
// The cost: a goroutine waiting here holds an OS thread (the poller would
// hold none). A process has one such wait per stream it reads, so only a
// few of its streams are FDConns (DirectLimit). Close is required: an
// FDConn never closed keeps its descriptors (the runtime closes no file
// of its own here).
//
// One goroutine reads and one writes at a time (a Stream's reader and its
// combining writer); Close and the deadline setters may come from any.
type FDConn struct {
	rfd, wfd int
	name     string

	mu     sync.Mutex
	refs   int  // system calls under way on rfd or wfd
	closed bool // Close was called: no new system call starts
	rd, wr waiter

	release func() // called once when it closes (a DirectLimit's slot), or nil

	// idleAfter, when not 0, is how long a read waits in ppoll before it
	// waits in the runtime poller instead (see SetIdleAfter); idle is the
	// poller's file it then waits on (under mu).
	idleAfter time.Duration
	idle      *os.File
}

// SetIdleAfter makes a read that has waited d in ppoll wait on in the
// runtime poller, with no thread of its own, until bytes come. Call it
// before the first Read.
//
// Why: while a goroutine waits in a system call, its P is not idle, and
// the runtime's monitor thread, which sleeps only when every P is, polls
// every 20 µs to 10 ms meanwhile: a context that takes one call now and
// then (a fan-out's target) paid ~60 of its wake-ups per call, and 200 of
// them on 2 CPUs made the fan-out 1.5x slower. Calls back to back stay
// in ppoll; a stream idle for d leaves it. Entering the poller costs a
// dup(2) and its registration, and the poller's wake-up when bytes come.
func (c *FDConn) SetIdleAfter(d time.Duration) { c.idleAfter = d }

// waiter is one direction's wait: its eventfd and deadline.
type waiter struct {
	wake     int // eventfd, written to interrupt a wait
	waiting  bool
	deadline time.Time
	// passed is the deadline in Unix nanoseconds (0: none), read without
	// the lock before each system call, so that a deadline in the past
	// stops a read or write that could go on (as a net.Conn's does): a
	// cancelled caller does not read on through a stream that never runs
	// dry.
	passed atomic.Int64
}

// expired reports whether w's deadline has passed.
func (w *waiter) expired() bool {
	d := w.passed.Load()
	return d != 0 && time.Now().UnixNano() >= d
}

// set records deadline t; c.mu is held.
func (w *waiter) set(t time.Time) {
	w.deadline = t
	if t.IsZero() {
		w.passed.Store(0)
	} else {
		w.passed.Store(max(t.UnixNano(), 1))
	}
}

// NewFDConn makes a connection of rfd and wfd (the same descriptor for a
// socket), which it owns from then on (it closes them if it fails) and
// sets non-blocking.
func NewFDConn(rfd, wfd int, name string) (*FDConn, error) {
	c := &FDConn{rfd: rfd, wfd: wfd, name: name, rd: waiter{wake: -1}, wr: waiter{wake: -1}}
	var err error
	for _, fd := range []int{rfd, wfd} {
		if err == nil {
			err = unix.SetNonblock(fd, true)
		}
	}
	if err == nil {
		c.rd.wake, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	}
	if err == nil {
		c.wr.wake, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	}
	if err != nil {
		c.closeFDs()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return c, nil
}

// enter starts a system call on the descriptors: false once closed.
func (c *FDConn) enter() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.refs++
	return true
}

// leave ends one; the last one after Close closes the descriptors.
func (c *FDConn) leave() {
	c.mu.Lock()
	c.refs--
	last := c.closed && c.refs == 0
	c.mu.Unlock()
	if last {
		c.closeFDs()
	}
}

// closeFDs closes every descriptor of c once (rfd and wfd may be one).
func (c *FDConn) closeFDs() {
	fds := []int{c.rfd, c.rd.wake, c.wr.wake}
	if c.wfd != c.rfd {
		fds = append(fds, c.wfd)
	}
	for _, fd := range fds {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	c.rfd, c.wfd, c.rd.wake, c.wr.wake = -1, -1, -1, -1
}

func (c *FDConn) opError(op string, err error) error {
	return fmt.Errorf("%s: %w", c.name, os.NewSyscallError(op, err))
}

// Read reads what is there, waiting for it if nothing is.
func (c *FDConn) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	if !c.enter() {
		return 0, net.ErrClosed
	}
	defer c.leave()
	for {
		if c.rd.expired() {
			return 0, os.ErrDeadlineExceeded
		}
		n, err := unix.Read(c.rfd, b)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
		case err != nil:
			return 0, c.opError("read", err)
		case n == 0:
			return 0, io.EOF
		default:
			return n, nil
		}
		if err := c.wait(c.rfd, unix.POLLIN, &c.rd); err != nil {
			return 0, err
		}
	}
}

// Write writes all of b, waiting while the far side does not read.
func (c *FDConn) Write(b []byte) (int, error) {
	n, err := c.Writev([][]byte{b})
	return int(n), err
}

// Writev writes all of bufs in as few writev(2) calls as it can, changing
// the slices in bufs as it goes. It is what Stream's combining writer
// uses: a frame's header and payload leave in one system call.
func (c *FDConn) Writev(bufs [][]byte) (int64, error) {
	if !c.enter() {
		return 0, net.ErrClosed
	}
	defer c.leave()
	var total int64
	iov := consumed(bufs, 0) // bufs's slices are changed as they are written
	for len(iov) > 0 {
		if c.wr.expired() {
			return total, os.ErrDeadlineExceeded
		}
		n, err := unix.Writev(c.wfd, iovBatch(iov))
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			if err := c.wait(c.wfd, unix.POLLOUT, &c.wr); err != nil {
				return total, err
			}
			continue
		case err != nil:
			return total, c.opError("write", err)
		}
		total += int64(n)
		iov = consumed(iov, n)
	}
	return total, nil
}

// wait blocks until fd is ready for events, w's deadline passes (an error
// matching os.ErrDeadlineExceeded) or the connection closes (net.ErrClosed).
// A deadline moved meanwhile wakes it to look again.
func (c *FDConn) wait(fd int, events int16, w *waiter) error {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return net.ErrClosed
		}
		var timeout *unix.Timespec
		wait, idleAt := time.Duration(-1), false // -1: no timeout
		if !w.deadline.IsZero() {
			wait = time.Until(w.deadline)
			if wait <= 0 {
				c.mu.Unlock()
				return os.ErrDeadlineExceeded
			}
		}
		if w == &c.rd && c.idleAfter > 0 && (wait < 0 || wait > c.idleAfter) {
			wait, idleAt = c.idleAfter, true
		}
		if wait >= 0 {
			ts := unix.NsecToTimespec(wait.Nanoseconds())
			timeout = &ts
		}
		w.waiting = true
		fds := [2]unix.PollFd{{Fd: int32(fd), Events: events}, {Fd: int32(w.wake), Events: unix.POLLIN}}
		c.mu.Unlock()

		n, err := unix.Ppoll(fds[:], timeout, nil)

		c.mu.Lock()
		w.waiting = false
		if fds[1].Revents != 0 {
			var buf [8]byte
			_, _ = unix.Read(w.wake, buf[:]) // reset the count
		}
		c.mu.Unlock()
		if err != nil && err != unix.EINTR {
			return c.opError("ppoll", err)
		}
		if n > 0 && fds[0].Revents != 0 {
			return nil // ready, or an error or hang-up the next call reports
		}
		if n == 0 && err == nil && idleAt {
			if err := c.waitIdle(fd); err != nil {
				return err
			}
			return nil // read again: bytes came, or a deadline moved
		}
	}
}

// waitIdle waits for fd to be readable in the runtime poller (see
// SetIdleAfter), on a duplicate of it registered there for this wait only
// (a registration lasting longer would wake the poller's thread for every
// frame, as it does for a net.Conn). Deadlines and Close reach it through
// the duplicate's read deadline.
func (c *FDConn) waitIdle(fd int) error {
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil // ppoll waits on
	}
	f := os.NewFile(uintptr(dup), c.name) // non-blocking, so the poller's
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		f.Close()
		return net.ErrClosed
	}
	_ = f.SetReadDeadline(c.rd.deadline)
	c.idle = f
	c.mu.Unlock()

	var rerr error
	if rc, err := f.SyscallConn(); err == nil {
		rerr = rc.Read(func(fd uintptr) bool {
			p := [1]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			n, _ := unix.Poll(p[:], 0)
			return n != 0 // readable, hung up or failed: the read says which
		})
	}

	c.mu.Lock()
	c.idle = nil
	closed := c.closed
	c.mu.Unlock()
	f.Close()
	if closed {
		return net.ErrClosed
	}
	if rerr != nil && !errors.Is(rerr, os.ErrDeadlineExceeded) {
		return c.opError("poll", rerr)
	}
	return nil // the caller's loop looks at the deadline again
}

// interrupt wakes w's waiter, if any; c.mu is held.
func (c *FDConn) interrupt(w *waiter) {
	if w.waiting {
		c.wake(w)
	}
}

// wake writes to w's eventfd, so that its ppoll returns now or at once
// when it starts; c.mu is held.
func (c *FDConn) wake(w *waiter) {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	_, _ = unix.Write(w.wake, one[:])
}

// SetReadDeadline sets when a waiting Read gives up (a time in the past:
// at once, even one already waiting); the zero time clears it.
func (c *FDConn) SetReadDeadline(t time.Time) error { return c.setDeadline(&c.rd, t) }

// SetWriteDeadline is SetReadDeadline for writes.
func (c *FDConn) SetWriteDeadline(t time.Time) error { return c.setDeadline(&c.wr, t) }

// setDeadline sets w's deadline to t and wakes its waiter to look at it
// (a read waiting in the poller through its duplicate's).
func (c *FDConn) setDeadline(w *waiter, t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return net.ErrClosed
	}
	w.set(t)
	c.interrupt(w)
	if w == &c.rd && c.idle != nil {
		_ = c.idle.SetReadDeadline(t)
	}
	return nil
}

// SetDeadline sets both deadlines.
func (c *FDConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// Close wakes whoever waits (they return net.ErrClosed) and closes the
// descriptors once no system call uses them.
func (c *FDConn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return net.ErrClosed
	}
	c.closed = true
	c.wake(&c.rd) // whether or not it waits: it looks at closed again
	c.wake(&c.wr)
	if c.idle != nil {
		_ = c.idle.SetReadDeadline(time.Unix(1, 0)) // wakes it; it sees closed
	}
	last := c.refs == 0
	c.mu.Unlock()
	if last {
		c.closeFDs()
	}
	if c.release != nil {
		c.release()
	}
	return nil
}
