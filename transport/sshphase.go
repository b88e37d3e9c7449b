package transport

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"
)

// Where an SSH connection is, as StalledError.Phase says it: each
// completes "timed out after 2s: ...".
const (
	PhasePacing  = "waiting for a handshake slot (this router had the most handshakes to the host at once)"
	PhaseTCP     = "the TCP connection was not made"
	PhaseBanner  = "TCP connected, no SSH banner"
	PhaseKex     = "during the SSH handshake"
	PhaseAuth    = "during authentication"
	PhaseSession = "opening the SSH session (the server did not answer)"
)

// StalledError reports a connection whose ctx ended before it was made,
// and the step it had reached. It matches context.DeadlineExceeded.
type StalledError struct {
	Addr  string // host:port
	Phase string // Phase*: where it was
	Err   error  // what the step returned when the deadline ended it
}

// Error names the address, the step and what the step returned.
func (e *StalledError) Error() string {
	return fmt.Sprintf("connecting to %s: %v: %s (%v)", e.Addr, context.DeadlineExceeded, e.Phase, e.Err)
}

// Unwrap returns context.DeadlineExceeded and the step's error.
func (e *StalledError) Unwrap() []error { return []error{context.DeadlineExceeded, e.Err} }

// sshProgress follows one connection attempt: the step it is in, and the
// steps done, each reported to onPhase as it completes. The key exchange
// runs on x/crypto's goroutine, so it is locked.
type sshProgress struct {
	onPhase func(Phase) // nil: nothing reported

	mu     sync.Mutex
	at     string
	since  time.Time // when the step began
	phases []Phase
}

func newSSHProgress(onPhase func(Phase), at string) *sshProgress {
	return &sshProgress{onPhase: onPhase, at: at, since: time.Now()}
}

// done ends the step called name (its time is since the previous step
// ended) and says where the attempt is now.
func (p *sshProgress) done(name, next string) {
	p.mu.Lock()
	now := time.Now()
	ph := Phase{Name: name, Took: now.Sub(p.since)}
	p.phases = append(p.phases, ph)
	p.at, p.since = next, now
	p.mu.Unlock()
	if p.onPhase != nil {
		p.onPhase(ph)
	}
}

// moveTo says where the attempt is, within the same step.
func (p *sshProgress) moveTo(at string) {
	p.mu.Lock()
	p.at = at
	p.mu.Unlock()
}

// restart begins a new attempt at the step at: the steps done so far
// are forgotten (a dropped connection is tried again), and the step's
// time begins now (after a wait for a handshake slot).
func (p *sshProgress) restart(at string) {
	p.mu.Lock()
	p.at, p.since, p.phases = at, time.Now(), p.phases[:0]
	p.mu.Unlock()
}

func (p *sshProgress) where() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.at
}

func (p *sshProgress) steps() []Phase {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Phase(nil), p.phases...)
}

// bannerConn notes the first byte the server sends (the start of its
// banner), so that a server that accepts and never speaks is told apart
// from one that stops in the key exchange.
type bannerConn struct {
	net.Conn
	p    *sshProgress
	once sync.Once
}

func (c *bannerConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.once.Do(func() { c.p.moveTo(PhaseKex) })
	}
	return n, err
}
