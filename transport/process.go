package transport

import (
	"sync"
)

// Process is the far end of a child's stream as something that can end:
// a local process, or an SSH session. One goroutine per Process waits for
// it from the start, so Done is always accurate; it ends with the process.
type Process struct {
	kill     func()
	killOnce sync.Once
	done     chan struct{}
	err      error
	status   string
}

// newProcess starts waiting for a process; wait returns a description of
// how it ended ("exit status 3") and its end as an error.
func newProcess(wait func() (string, error), kill func()) *Process {
	p := &Process{kill: kill, done: make(chan struct{})}
	go func() {
		p.status, p.err = wait()
		close(p.done)
	}()
	return p
}

// Kill ends the process at once. It is idempotent.
func (p *Process) Kill() { p.killOnce.Do(p.kill) }

// Done is closed once the process has ended (and was reaped).
func (p *Process) Done() <-chan struct{} { return p.done }

// Wait waits for the process to end and returns how it ended.
func (p *Process) Wait() error {
	<-p.done
	return p.err
}

// Status describes how the process ended ("exit status 3", "signal:
// killed"), or "" while it runs.
func (p *Process) Status() string {
	select {
	case <-p.done:
		return p.status
	default:
		return ""
	}
}
