package actors

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mitogo/mitogo/connect"
	"github.com/mitogo/mitogo/messages"
)

// Heartbeats: SSH keepalives are answered by sshd, so they cannot tell a
// stopped or wedged mitogo process behind a healthy sshd. Each end of a
// stream with a heartbeat therefore looks, every interval, whether it read
// any frame since the last look; any frame is a sign of life, so a busy
// stream sends no pings. After a silent interval it pings (ControlPing),
// which the other end's reader answers at once (ControlPong). After
// misses silent intervals in a row with a ping sent in each, the next
// silent one declares the peer dead: the stream is closed with a
// *heartbeatError, which fails everything waiting on it, and a child
// whose parent went silent exits as if its parent had gone.

// heartbeatConfig is a stream's heartbeat: an interval ≤ 0 is none.
type heartbeatConfig struct {
	Interval time.Duration `msgpack:"interval"`
	Misses   int           `msgpack:"misses"`
}

// Defaults of Heartbeat: on for the methods that reach another machine,
// whose processes can stop behind a live sshd; off for the others, whose
// child's death the parent sees as the end of its pipe.
const (
	defaultHeartbeat       = 10 * time.Second
	defaultHeartbeatMisses = 3
)

// Heartbeat makes both ends of the connection watch each other: when a
// stream has been silent for interval, each end pings the other, and a
// peer that answers none of misses pings in a row is declared dead. Its
// stream is closed and everything waiting on it fails with a *ChannelError
// matching ErrHeartbeat; a child whose parent stops answering exits. This
// is not the SSH keepalive (Keepalive), which sshd answers even when the
// mitogo process behind it is stopped or wedged. Default 10s × 3 for SSH
// and OpenSSH, off for Local, Sudo, Su and Doas; interval < 0 turns it
// off, 0 keeps the method's default, misses ≤ 0 means 3. Both ends must
// speak protocol version 2; with an older child the connection is made
// without a heartbeat, and a warning is logged.
func Heartbeat(interval time.Duration, misses int) ConnectOption {
	return func(c *connectConfig) {
		c.heartbeat, c.heartbeatSet = heartbeatConfig{Interval: interval, Misses: misses}, true
	}
}

// resolve fills in the defaults for method: the heartbeat a connection
// made with it gets.
func (h heartbeatConfig) resolve(method string, set bool) heartbeatConfig {
	if !set || h.Interval == 0 {
		h.Interval = -1
		if m, ok := connect.Lookup(method); ok && m.Remote {
			h.Interval = defaultHeartbeat
		}
	}
	if h.Interval <= 0 {
		return heartbeatConfig{}
	}
	if h.Misses <= 0 {
		h.Misses = defaultHeartbeatMisses
	}
	return h
}

// hello is the config in the units of the handshake, and back.
func (h heartbeatConfig) hello() (ms, misses int) {
	if h.Interval <= 0 {
		return 0, 0
	}
	return max(int(h.Interval/time.Millisecond), 1), h.Misses
}

func heartbeatFromHello(hello *messages.Hello) heartbeatConfig {
	if hello.HeartbeatMS <= 0 {
		return heartbeatConfig{}
	}
	return heartbeatConfig{Interval: time.Duration(hello.HeartbeatMS) * time.Millisecond,
		Misses: max(hello.HeartbeatMisses, 1)}
}

// heartbeatError is why a stream whose peer went silent was closed.
type heartbeatError struct {
	misses   int
	interval time.Duration
}

func (e *heartbeatError) Error() string {
	return fmt.Sprintf("no answer to %d heartbeats in %v", e.misses, time.Duration(e.misses)*e.interval)
}

// Is reports whether target is ErrHeartbeat.
func (e *heartbeatError) Is(target error) bool { return target == ErrHeartbeat }

// heartbeat watches one stream. Its only timer fires every interval; a
// tick runs on the timer's goroutine, and stop waits for the tick in
// progress. A tick re-arms the timer before it writes a ping, so a ping
// stuck behind a peer that reads nothing does not stop the count: the
// next tick finds the stream still silent, and the last one closes it,
// which ends the stuck write.
type heartbeat struct {
	c        *conn
	interval time.Duration
	misses   int

	// heard is set by the stream's reader for each frame it reads, and
	// cleared by each tick. The reader sets it only when it is clear: a
	// load, not a store, on the hot path.
	heard atomic.Bool

	mu      sync.Mutex
	timer   *time.Timer
	stopped bool           // no tick may start
	ticks   sync.WaitGroup // ticks in progress; Add only under mu while !stopped
	silent  int            // intervals in a row without a frame
	pinging bool           // a ping's write has not returned
	seq     uint64         // the last ping's ReqID
}

// startHeartbeat starts watching c. It must be called before c's reader
// starts, and at most once.
func (c *conn) startHeartbeat(cfg heartbeatConfig) {
	if cfg.Interval <= 0 {
		return
	}
	h := &heartbeat{c: c, interval: cfg.Interval, misses: cfg.Misses}
	h.mu.Lock()
	h.timer = time.AfterFunc(cfg.Interval, h.tick)
	h.mu.Unlock()
	c.hb = h
}

// heartbeatVersion is the first protocol version with heartbeats.
const heartbeatVersion = 2

// startHeartbeatVersion starts watching c if the protocol version its ends
// chose has heartbeats, and says so when it has not.
func (c *conn) startHeartbeatVersion(cfg heartbeatConfig, version int) {
	if cfg.Interval > 0 && version < heartbeatVersion {
		c.r.logger.Warn("no heartbeat on this stream: the peer speaks an older protocol", "stream", c.name,
			"version", version, "heartbeat_from", heartbeatVersion)
		return
	}
	c.startHeartbeat(cfg)
}

// alive notes that a frame was read.
func (h *heartbeat) alive() {
	if !h.heard.Load() {
		h.heard.Store(true)
	}
}

func (h *heartbeat) tick() {
	h.mu.Lock()
	if h.stopped {
		h.mu.Unlock()
		return
	}
	h.ticks.Add(1)
	defer h.ticks.Done()
	if h.heard.Swap(false) {
		h.silent = 0
	} else {
		h.silent++
	}
	if h.silent > h.misses {
		h.stopped = true
		h.mu.Unlock()
		h.c.dead(&heartbeatError{misses: h.misses, interval: h.interval})
		return
	}
	h.timer.Reset(h.interval)
	ping := h.silent > 0 && !h.pinging
	if ping {
		h.pinging = true
		h.seq++
	}
	seq := h.seq
	h.mu.Unlock()
	if !ping {
		return
	}
	c := h.c
	_ = c.s.Send(&messages.Header{Kind: messages.KindControl, Dst: c.peer, Src: c.r.id, ReqID: seq, Type: messages.ControlPing})
	h.mu.Lock()
	h.pinging = false
	h.mu.Unlock()
}

// stop ends the ticks and waits for the one in progress. A tick may be
// writing a ping: the stream must be closed first, which ends the write.
func (h *heartbeat) stop() {
	h.mu.Lock()
	h.stopped = true
	h.timer.Stop()
	h.mu.Unlock()
	h.ticks.Wait()
}

// dead closes a stream whose peer stopped answering.
func (c *conn) dead(err error) {
	if !c.up {
		// Up, the logger writes to the silent parent; childExit says why.
		c.r.logger.Warn("peer unresponsive; closing its stream", "stream", c.name, "error", err)
	}
	c.close(err)
}

// heartbeatFrame handles a ping or pong read on c's stream; it reports
// whether h was one. A ping is answered here, on the reader, so that the
// answer never waits behind a busy dispatcher.
func (c *conn) heartbeatFrame(h *messages.Header) bool {
	if h.Kind != messages.KindControl {
		return false
	}
	switch h.Type {
	case messages.ControlPing:
		_ = c.s.Send(&messages.Header{Kind: messages.KindControl, Dst: c.peer, Src: c.r.id, ReqID: h.ReqID, Type: messages.ControlPong})
		return true
	case messages.ControlPong:
		return true // being read is all it is for
	}
	return false
}
