package transport

import (
	"fmt"
	"io"
	"sync"
)

// outputPumpMax bounds what an outputPump holds for its reader: more than
// an SSH channel's window (2 MiB in x/crypto/ssh), so that a burst the far
// side may send at once is kept whole while the reader catches up.
const outputPumpMax = 4 << 20

// outputPump reads a side channel (an SSH session's stderr) to its end on
// a goroutine of its own, whether or not anyone reads the pump: over SSH
// the session's stderr and stdout share one flow-control window, so
// stderr left unread would stop the stream on stdout. What it read waits
// for Read, up to outputPumpMax bytes; beyond that it is dropped, and Read
// says how much in a line of its own. After Close, what comes is read and
// dropped. The goroutine ends when the side channel does; Wait joins it.
type outputPump struct {
	mu      sync.Mutex
	cond    sync.Cond
	buf     []byte
	dropped int64
	err     error // how the side channel ended
	closed  bool
	done    chan struct{}
}

func newOutputPump(r io.Reader) *outputPump {
	p := &outputPump{done: make(chan struct{})}
	p.cond.L = &p.mu
	go p.run(r)
	return p
}

func (p *outputPump) run(r io.Reader) {
	defer close(p.done)
	b := make([]byte, 4<<10) // held for the session's life: small, per context
	for {
		n, err := r.Read(b)
		p.mu.Lock()
		switch room := outputPumpMax - len(p.buf); {
		case p.closed:
		case n <= room:
			p.buf = append(p.buf, b[:n]...)
		default:
			p.buf = append(p.buf, b[:room]...)
			p.dropped += int64(n - room)
		}
		if err != nil {
			p.err = err
		}
		p.cond.Broadcast()
		p.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// Read returns what the side channel sent, then io.EOF once it ended.
func (p *outputPump) Read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.buf) == 0 && p.dropped == 0 && p.err == nil && !p.closed {
		p.cond.Wait()
	}
	if p.closed {
		return 0, io.EOF
	}
	if len(p.buf) == 0 && p.dropped > 0 {
		p.buf = fmt.Appendf(nil, "\n[mitogo: %d bytes of output dropped: they came faster than they were read]\n", p.dropped)
		p.dropped = 0
	}
	if len(p.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(b, p.buf)
	p.buf = p.buf[n:]
	if len(p.buf) == 0 {
		p.buf = nil
	}
	return n, nil
}

// Close ends reading: Read returns io.EOF, and what still comes is
// dropped. The pump goes on reading the side channel until it ends.
func (p *outputPump) Close() error {
	p.mu.Lock()
	p.closed, p.buf = true, nil
	p.cond.Broadcast()
	p.mu.Unlock()
	return nil
}

// Wait waits for the side channel to end and the pump's goroutine with it.
func (p *outputPump) Wait() { <-p.done }
