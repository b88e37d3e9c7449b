package actors

import (
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/mitogo/mitogo/transport"
)

// connectProgress is how far the connection of one child has come: what
// the *TimeoutError of a connect that times out says (its Phase), and the
// steps logged as each completes, so that a log of a connect that hangs
// ends with the last step done. It is set on the connecting goroutine and
// from bootstrap's callbacks.
type connectProgress struct {
	r       *Router
	name    string
	stage1  time.Time // when stage 1 began
	mu      sync.Mutex
	at      string // the Phase of a timeout now
	answer  bool   // stage 1 said whether it has this program (the step was logged)
	sending bool   // the binary (or a delta) is being sent
	sent    int64
	total   int64
}

// newConnectProgress follows the connection of the context name.
func newConnectProgress(r *Router, name string) *connectProgress {
	return &connectProgress{r: r, name: name}
}

// step logs that the step called name completed, in took, at Debug (-v -v):
// the "connected" record sums the steps up (see Router.logPhases).
func (p *connectProgress) step(name string, took time.Duration, attrs ...any) {
	p.r.logger.Debug("connect step done",
		append([]any{slog.String("context", p.name), slog.String("step", name), slog.Duration("took", took)}, attrs...)...)
}

// set says where the connection is now.
func (p *connectProgress) set(at string) {
	p.mu.Lock()
	p.at = at
	p.mu.Unlock()
}

// where is the Phase of a *TimeoutError now.
func (p *connectProgress) where() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sending {
		return fmt.Sprintf("uploading the binary (%d of %d bytes sent)", p.sent, p.total)
	}
	return p.at
}

// startStage1 says that stage 1 runs now; silent is where a timeout finds
// it before the far side says anything.
func (p *connectProgress) startStage1(silent string) {
	p.mu.Lock()
	p.at, p.stage1 = silent, time.Now()
	p.mu.Unlock()
}

// answered notes the first bytes from stage 1.
func (p *connectProgress) answered() {
	p.set("in stage 1 (the far side printed something, not yet its answer)")
}

// upload notes sent of total bytes of the binary sent; the first call
// also ends stage 1's probe.
func (p *connectProgress) upload(sent, total int64) {
	p.mu.Lock()
	first := !p.answer
	p.answer, p.sending, p.sent, p.total = true, true, sent, total
	p.mu.Unlock()
	if first {
		p.step("stage1", time.Since(p.stage1))
	}
}

// stage1Done notes that stage 1 ended and the child announced itself:
// probe and transfer are the times of its two parts.
func (p *connectProgress) stage1Done(probe, transfer time.Duration, uploaded bool, sent int64) {
	p.mu.Lock()
	logged := p.answer
	p.answer, p.sending = true, false
	p.at = "in the handshake (the child started and did not answer)"
	p.mu.Unlock()
	if !logged {
		p.step("stage1", probe)
	}
	if uploaded {
		p.step("upload", transfer, slog.Int64("sent", sent))
	} else {
		p.step("exec", transfer)
	}
}

// transportStep logs a step the method reports (ssh: tcp, ssh_handshake,
// auth, session).
func (p *connectProgress) transportStep(ph transport.Phase) { p.step(ph.Name, ph.Took) }

// firstReadWriter calls first once, when the first bytes are read.
type firstReadWriter struct {
	io.ReadWriter
	once  sync.Once
	first func()
}

func (f *firstReadWriter) Read(b []byte) (int, error) {
	n, err := f.ReadWriter.Read(b)
	if n > 0 {
		f.once.Do(f.first)
	}
	return n, err
}
