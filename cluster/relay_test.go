package cluster_test

import (
	"io"
	"net"
	"strings"
	"sync"
	"testing"
)

// relay forwards TCP connections from a listener on 127.0.0.1 to a target
// address; cutting it closes every connection it carries and refuses new
// ones until it is healed: a network cut between one client and a server.
type relay struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// newRelay starts a relay to the host:port of a nats:// URL; Cleanup
// closes it.
func newRelay(t *testing.T, url string) *relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{ln: ln, target: strings.TrimPrefix(url, "nats://"), conns: map[net.Conn]struct{}{}}
	r.wg.Go(r.accept)
	t.Cleanup(r.close)
	return r
}

// URL is the relay's nats:// URL.
func (r *relay) URL() string { return "nats://" + r.ln.Addr().String() }

func (r *relay) accept() {
	for {
		in, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.mu.Lock()
		if r.cut {
			r.mu.Unlock()
			in.Close()
			continue
		}
		out, err := net.Dial("tcp", r.target)
		if err != nil {
			r.mu.Unlock()
			in.Close()
			continue
		}
		r.conns[in], r.conns[out] = struct{}{}, struct{}{}
		r.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			io.Copy(dst, src)
			dst.Close()
			src.Close()
			r.mu.Lock()
			delete(r.conns, dst)
			delete(r.conns, src)
			r.mu.Unlock()
		}
		r.wg.Go(func() { pipe(out, in) })
		r.wg.Go(func() { pipe(in, out) })
	}
}

// Cut closes every connection through the relay and refuses new ones.
func (r *relay) Cut() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cut = true
	for c := range r.conns {
		c.Close()
	}
}

// Heal lets connections through again.
func (r *relay) Heal() {
	r.mu.Lock()
	r.cut = false
	r.mu.Unlock()
}

func (r *relay) close() {
	r.ln.Close()
	r.Cut()
	r.wg.Wait()
}
