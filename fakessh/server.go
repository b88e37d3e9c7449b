package fakessh

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"

	"github.com/mitogo/mitogo/actors"
	"github.com/mitogo/mitogo/builtins"
)

// EnvSocket is the environment variable that makes this program the ssh
// stand-in and names the Server's socket.
const EnvSocket = "MITOGO_FAKESSH"

// Server runs the commands of ssh stand-ins in contexts. Close it when the
// tools are done.
type Server struct {
	r    *actors.Router
	dir  string // private 0700 directory holding the socket
	sock string
	ln   *net.UnixListener
	prog string

	ctx    context.Context // cancelled by Close: ends every relay
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	hosts map[string]*actors.Context
	def   *actors.Context
	conns map[net.Conn]struct{}
}

// request is what a stand-in sends first: its command line.
type request struct {
	Args []string `json:"args"`
}

// Serve starts a Server on r. target (may be nil) answers every host name
// that Add did not name.
func Serve(r *actors.Router, target *actors.Context) (*Server, error) {
	prog, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("fakessh: finding this program: %w", err)
	}
	dir, err := os.MkdirTemp("", "mitogo-fakessh-")
	if err != nil {
		return nil, fmt.Errorf("fakessh: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("fakessh: %w", err)
	}
	// The stand-in is this program by a name in the private directory: it
	// acts as ssh only when started by that name.
	link := filepath.Join(dir, "ssh")
	if err := os.Symlink(prog, link); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("fakessh: %w", err)
	}
	prog = link
	sock := filepath.Join(dir, "sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("fakessh: listening on %s: %w", sock, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{r: r, dir: dir, sock: sock, ln: ln, prog: prog, ctx: ctx, cancel: cancel,
		hosts: map[string]*actors.Context{}, def: target, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Add makes host name c in the command lines tools give ssh.
func (s *Server) Add(host string, c *actors.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hosts[host] = c
}

// Program is the ssh stand-in to give tools: a link to this program's
// executable in the Server's private directory. It works only with Env in
// the tool's environment, and only if main calls actors.Main first.
func (s *Server) Program() string { return s.prog }

// Env is the environment that points the stand-in at this Server, and git
// at the stand-in (GIT_SSH), so `git clone target:repo.git` needs no flag.
func (s *Server) Env() []string {
	return []string{EnvSocket + "=" + s.sock, "GIT_SSH=" + s.prog, "GIT_SSH_VARIANT=ssh"}
}

// Command is exec.Command with Env added to this process's environment.
func (s *Server) Command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), s.Env()...)
	return cmd
}

// Close stops listening, ends the relays still running (their commands are
// killed) and removes the socket's directory.
func (s *Server) Close() error {
	err := s.ln.Close()
	s.mu.Lock()
	s.cancel()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	os.RemoveAll(s.dir)
	return err
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.ctx.Err() != nil { // Close ran between the accept and here
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serve(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			c.Close()
		}()
	}
}

// serve relays one stand-in: it reads the command line, runs the command
// in its context and streams stdin, stdout and stderr until it exits.
func (s *Server) serve(c *net.UnixConn) {
	var wmu sync.Mutex
	send := func(typ byte, data []byte) error {
		wmu.Lock()
		defer wmu.Unlock()
		return writeFrame(c, typ, data)
	}
	fail := func(err error) { send(frameError, []byte(err.Error())) }

	typ, body, err := readFrame(c, nil)
	if err != nil || typ != frameRequest {
		return
	}
	var req request
	if err := json.Unmarshal(body, &req); err != nil {
		fail(fmt.Errorf("bad request: %w", err))
		return
	}
	inv, err := parseArgs(req.Args)
	if err != nil {
		fail(err)
		return
	}
	target := s.lookup(inv.Host)
	if target == nil {
		fail(fmt.Errorf("no context is named %q here", inv.Host))
		return
	}
	script, err := inv.script()
	if err != nil {
		fail(err)
		return
	}

	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	stdinR, stdinW := io.Pipe()
	q := newStdinQueue()
	// The command's stdin is written by its own goroutine, which returns
	// credit for what it wrote: the stand-in sends no more than window
	// bytes ahead, so the frame reader below never blocks and always sees
	// a lost stand-in (the tool was killed) at once.
	go func() {
		for {
			chunk, eof, ok := q.pop()
			if !ok {
				stdinW.CloseWithError(io.ErrUnexpectedEOF)
				return
			}
			if eof {
				stdinW.Close()
				return
			}
			if _, err := stdinW.Write(chunk); err != nil {
				q.close() // the command closed its stdin: the rest is dropped
			}
			var cr [4]byte
			binary.BigEndian.PutUint32(cr[:], uint32(len(chunk)))
			send(frameCredit, cr[:])
		}
	}()
	var cr [4]byte
	binary.BigEndian.PutUint32(cr[:], stdinWindow)
	if err := send(frameCredit, cr[:]); err != nil {
		return
	}
	relayDone := make(chan struct{})
	go func() {
		defer close(relayDone)
		defer q.close()
		buf := make([]byte, 64<<10)
		for {
			typ, data, err := readFrame(c, buf)
			if err != nil {
				cancel()
				return
			}
			switch typ {
			case frameStdin:
				q.push(append([]byte(nil), data...))
			case frameStdinEOF:
				q.pushEOF()
			}
		}
	}()
	out := frameWriter{typ: frameStdout, send: send}
	errOut := frameWriter{typ: frameStderr, send: send}
	exit, err := builtins.Run(ctx, s.r, target, builtins.RunRequest{Argv: []string{"/bin/sh", "-c", script}}, stdinR, out, errOut)
	stdinR.Close()
	if err != nil {
		if ctx.Err() == nil {
			fail(fmt.Errorf("running %q in %s: %w", inv.Command, target.Name(), err))
		}
	} else {
		var st [4]byte
		binary.BigEndian.PutUint32(st[:], uint32(exit))
		send(frameExit, st[:])
	}
	c.CloseWrite()
	// The stand-in closes its end once it has the status.
	<-relayDone
}

func (s *Server) lookup(host string) *actors.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.hosts[host]; ok {
		return c
	}
	return s.def
}

// stdinWindow is how many bytes of stdin the stand-in may send ahead of
// what the command has read.
const stdinWindow = 1 << 20

// stdinQueue holds stdin chunks between the frame reader and the writer
// to the command; the credit window bounds it.
type stdinQueue struct {
	mu     sync.Mutex
	cond   *sync.Cond
	chunks [][]byte
	eof    bool
	closed bool
}

func newStdinQueue() *stdinQueue {
	q := &stdinQueue{}
	q.cond = sync.NewCond(&q.mu)
	return q
}

func (q *stdinQueue) push(b []byte) {
	q.mu.Lock()
	if !q.closed {
		q.chunks = append(q.chunks, b)
	}
	q.mu.Unlock()
	q.cond.Signal()
}

func (q *stdinQueue) pushEOF() {
	q.mu.Lock()
	q.eof = true
	q.mu.Unlock()
	q.cond.Signal()
}

// close drops what is queued and ends pop.
func (q *stdinQueue) close() {
	q.mu.Lock()
	q.closed, q.chunks = true, nil
	q.mu.Unlock()
	q.cond.Signal()
}

// pop waits for a chunk; eof once stdin ended and all was popped; !ok once
// closed.
func (q *stdinQueue) pop() (chunk []byte, eof, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.chunks) == 0 && !q.eof && !q.closed {
		q.cond.Wait()
	}
	switch {
	case q.closed:
		return nil, false, false
	case len(q.chunks) > 0:
		chunk, q.chunks = q.chunks[0], q.chunks[1:]
		return chunk, false, true
	}
	return nil, true, true
}

// frameWriter writes the command's output as frames to the stand-in.
type frameWriter struct {
	typ  byte
	send func(byte, []byte) error
}

func (w frameWriter) Write(p []byte) (int, error) {
	for rest := p; len(rest) > 0; {
		n := min(len(rest), maxFrame)
		if err := w.send(w.typ, rest[:n]); err != nil {
			return len(p) - len(rest), errors.Join(errors.New("fakessh: the ssh stand-in went away"), err)
		}
		rest = rest[n:]
	}
	return len(p), nil
}
