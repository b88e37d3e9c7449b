// Package wanrelay is a TCP relay on the loopback that makes a link look like
// a wide-area one for the peer benchmarks: each direction is delayed by a
// fixed time and capped at a rate, and the bytes each way are counted.
//
// Each direction is a reader and a writer joined by a bounded queue of
// chunks. The reader stamps each chunk with its release time (when the rate
// lets it leave, see bucket, plus the delay) and goes on reading; the writer
// sleeps until a chunk's release time and writes it. So the delay does not
// serialise throughput (a 40 ms round trip still carries the full rate),
// and the queue bounds what is in flight the way a router's buffer does.
package wanrelay

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Config is how a relay listens, where it forwards and what link it fakes.
type Config struct {
	Listen    string        // address to listen on, e.g. "127.0.0.1:0"
	Target    string        // address every connection is forwarded to
	Delay     time.Duration // added to each direction (one way)
	Rate      float64       // bits per second per direction; 0 for no cap
	Burst     int           // bytes the rate lets through at once (default 16 KiB)
	Queue     int           // bytes queued per direction before reading stops (default 256 KiB)
	StatsFile string        // if set, Stats as JSON, written by Listen and rewritten whenever a connection opens or closes
}

// Stats counts connections and the bytes relayed: Up from clients to the
// target, Down back. A connection's bytes are added once it is closed.
type Stats struct {
	Open   int   `json:"open"`
	Closed int   `json:"closed"`
	Up     int64 `json:"up_bytes"`
	Down   int64 `json:"down_bytes"`
}

// chunkSize is the most one read takes from a connection.
const chunkSize = 16 << 10

// ErrClosed is returned by Serve once Close was called.
var ErrClosed = errors.New("wanrelay: closed")

// Relay forwards the connections accepted on its listener.
type Relay struct {
	cfg Config
	ln  net.Listener

	wg     sync.WaitGroup // Serve's connections
	mu     sync.Mutex
	links  map[*link]struct{}
	stats  Stats
	closed bool
}

// Listen starts listening; Serve relays.
func Listen(cfg Config) (*Relay, error) {
	if cfg.Target == "" {
		return nil, errors.New("wanrelay: no target")
	}
	if cfg.Burst <= 0 {
		cfg.Burst = chunkSize
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 256 << 10
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("wanrelay: listening: %w", err)
	}
	r := &Relay{cfg: cfg, ln: ln, links: map[*link]struct{}{}}
	// A client reads the counts before its first connection, too (to
	// subtract them from those after): they are there from the start.
	if err := r.writeStats(); err != nil {
		ln.Close()
		return nil, err
	}
	return r, nil
}

// Addr is the address the relay listens on.
func (r *Relay) Addr() net.Addr { return r.ln.Addr() }

// Stats returns the counts so far.
func (r *Relay) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// Serve accepts and relays connections until Close; it then waits for
// every connection's goroutines and returns ErrClosed.
func (r *Relay) Serve() error {
	defer r.wg.Wait()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			r.mu.Lock()
			closed := r.closed
			r.mu.Unlock()
			if closed {
				return ErrClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("wanrelay: accepting: %w", err)
		}
		l := &link{client: c, done: make(chan struct{})}
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			c.Close()
			return ErrClosed
		}
		r.links[l] = struct{}{}
		r.stats.Open++
		r.mu.Unlock()
		r.writeStats()
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.run(l)
		}()
	}
}

// Close stops accepting, cuts every open connection and returns once they
// are gone if Serve runs (Serve returns after them).
func (r *Relay) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	links := make([]*link, 0, len(r.links))
	for l := range r.links {
		links = append(links, l)
	}
	r.mu.Unlock()
	err := r.ln.Close()
	for _, l := range links {
		l.cut()
	}
	return err
}

// writeStats writes Stats to StatsFile, whole (a temporary file renamed).
func (r *Relay) writeStats() error {
	if r.cfg.StatsFile == "" {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock() // held so that two writers do not rename an older count last
	data, _ := json.Marshal(r.stats)
	tmp := r.cfg.StatsFile + ".tmp"
	err := os.WriteFile(tmp, append(data, '\n'), 0o644)
	if err == nil {
		err = os.Rename(tmp, filepath.Clean(r.cfg.StatsFile))
	}
	if err != nil {
		return fmt.Errorf("wanrelay: writing the stats: %w", err)
	}
	return nil
}

// link is one relayed connection.
type link struct {
	client, server net.Conn
	done           chan struct{} // closed by cut
	once           sync.Once
	mu             sync.Mutex // guards server against cut
}

// cut closes both ends; everything of the link then ends.
func (l *link) cut() {
	l.once.Do(func() {
		close(l.done)
		l.client.Close()
		l.mu.Lock()
		if l.server != nil {
			l.server.Close()
		}
		l.mu.Unlock()
	})
}

func (r *Relay) run(l *link) {
	var up, down int64
	defer func() {
		l.cut()
		r.mu.Lock()
		delete(r.links, l)
		r.stats.Open--
		r.stats.Closed++
		r.stats.Up += up
		r.stats.Down += down
		r.mu.Unlock()
		r.writeStats()
	}()
	s, err := net.DialTimeout("tcp", r.cfg.Target, 10*time.Second)
	if err != nil {
		return
	}
	l.mu.Lock()
	l.server = s
	l.mu.Unlock()
	select {
	case <-l.done: // cut while dialling
		s.Close()
		return
	default:
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); up = r.pipe(l, l.client, s) }()
	go func() { defer wg.Done(); down = r.pipe(l, s, l.client) }()
	wg.Wait()
}

// chunk is bytes read and when they may be written.
type chunk struct {
	data    []byte
	release time.Time
}

// pipe relays src to dst with the delay and rate of cfg and returns the
// bytes read from src. At src's EOF it half-closes dst once all is written;
// on any error it cuts the link.
func (r *Relay) pipe(l *link, src, dst net.Conn) int64 {
	q := make(chan chunk, max(1, r.cfg.Queue/chunkSize))
	rate := newBucket(r.cfg.Rate/8, r.cfg.Burst, time.Now())
	var n int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the writer
		defer wg.Done()
		timer := time.NewTimer(0)
		defer timer.Stop()
		for c := range q {
			if d := time.Until(c.release); d > 0 {
				timer.Reset(d)
				select {
				case <-timer.C:
				case <-l.done:
					return
				}
			}
			if _, err := dst.Write(c.data); err != nil {
				l.cut()
				return
			}
		}
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
	}()
	defer wg.Wait()
	defer close(q)
	for {
		buf := make([]byte, chunkSize)
		k, err := src.Read(buf)
		if k > 0 {
			n += int64(k)
			now := time.Now()
			c := chunk{data: buf[:k], release: rate.depart(k, now).Add(r.cfg.Delay)}
			select {
			case q <- c:
			case <-l.done:
				return n
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				l.cut()
			}
			return n
		}
	}
}
