package transport

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"sync/atomic"
	"syscall"
	"time"
)

// EnvChild is the environment variable that tells a process it was started
// as a child context, and how to find its stream: "fd:N" for a descriptor it
// inherited, "stdio" for its standard input and output.
const EnvChild = "MITOGO_CHILD"

// childFD is where a local child finds its end of the socketpair.
const childFD = 3

// Child is a started child process: its stream's connection and the
// handles to reap it and read what it prints.
type Child struct {
	Conn    Conn          // the stream's connection to the child
	Proc    *Process      // the process (or SSH session) at the other end, to wait for or kill
	Output  io.ReadCloser // what the far side prints on stdout and stderr before (and beside) the stream
	Cleanup func()        // called once the handshake is over, either way (nil: nothing)
	Phases  []Phase       // how long the steps of starting it took, when the method tells (ssh)
	// Terminal: the child's standard input is a terminal (su, doas on a
	// pty), whose password prompt may read or discard what is written
	// before the far side speaks.
	Terminal bool
	// Warnings are what the method could not use and went on without
	// (ssh: an identity file given that is not there or not a key), for
	// the caller to log.
	Warnings []error

	refusal   atomic.Pointer[error]
	suspicion atomic.Pointer[error]
}

// Phase is one step of starting a child and how long it took, for logs.
type Phase struct {
	Name string        // tcp, ssh_handshake, auth, session
	Took time.Duration // how long the step took
}

// Suspect records a likely cause of a failure (ErrPasswordIncorrect when a
// password was taken, then the tool ended), used when nothing the far side
// printed explains it.
func (c *Child) Suspect(cause error) { c.suspicion.Store(&cause) }

// Suspicion is what Suspect recorded, or nil.
func (c *Child) Suspicion() error {
	if p := c.suspicion.Load(); p != nil {
		return *p
	}
	return nil
}

// Refuse records why the far side refused us (ErrPasswordIncorrect,
// ErrPasswordRequired).
func (c *Child) Refuse(cause error) { c.refusal.Store(&cause) }

// Refusal is what Refuse recorded, or nil.
func (c *Child) Refusal() error {
	if p := c.refusal.Load(); p != nil {
		return *p
	}
	return nil
}

// execProcess watches a started command.
func execProcess(cmd *exec.Cmd) *Process {
	return newProcess(func() (string, error) {
		awaitExit(cmd.Process.Pid) // without holding a thread
		err := cmd.Wait()
		return cmd.ProcessState.String(), err
	}, func() { cmd.Process.Kill() })
}

// Conn is a child's stream connection: a socket, or a pair of pipes.
// Deadlines bound the handshake.
type Conn interface {
	io.ReadWriteCloser
	SetDeadline(t time.Time) error
}

// LocalSpec says how to start a local child.
type LocalSpec struct {
	Path string   // the executable; os.Executable() when empty
	Args []string // arguments after argv[0]
	Env  []string // extra environment entries, added to the current environment
	// Direct, if it has room, makes the stream an FDConn, whose reader
	// the kernel wakes itself (faster calls; a thread per waiting
	// reader); otherwise (nil, full) the runtime poller watches it.
	Direct *DirectLimit
}

// socketConn makes the connection of socket fd, which it owns: an FDConn
// if direct has room, else a net.Conn the runtime poller watches.
func socketConn(fd int, name string, direct *DirectLimit) (Conn, error) {
	if direct.take() {
		c, err := NewFDConn(fd, fd, name) // closes fd if it fails
		if err != nil {
			direct.release()
			return nil, err
		}
		c.release = direct.release
		return c, nil
	}
	f := os.NewFile(uintptr(fd), name)
	conn, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("wrapping the socketpair: %w", err)
	}
	return conn, nil
}

// StartLocal starts a child on this machine with one end of a socketpair as
// its stream (descriptor 3) and a pipe as its stdout and stderr, so nothing
// it prints can reach the stream. The child leads a session of its own, so
// a terminal's ^C reaches only the master, which shuts the tree down in
// order, and what the child's functions start stays in its session, where
// the child (or, if it was killed, its parent) ends it.
func StartLocal(spec LocalSpec) (*Child, error) {
	path := spec.Path
	if path == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("finding this program's executable: %w", err)
		}
		path = exe
	}
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socketpair: %w", err)
	}
	for _, fd := range fds {
		// Larger buffers let a big message cross in fewer wake-ups.
		_ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_SNDBUF, 1<<20)
		_ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF, 1<<20)
	}
	childEnd := os.NewFile(uintptr(fds[1]), "mitogo-stream-child")
	defer childEnd.Close()
	conn, err := socketConn(fds[0], "stream to local child", spec.Direct)
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("output pipe: %w", err)
	}
	defer outW.Close()

	cmd := exec.Command(path, spec.Args...)
	cmd.Env = append(append(os.Environ(), spec.Env...), fmt.Sprintf("%s=fd:%d", EnvChild, childFD))
	cmd.Stdout = outW
	cmd.Stderr = outW
	cmd.ExtraFiles = []*os.File{childEnd}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		conn.Close()
		outR.Close()
		return nil, fmt.Errorf("starting %s: %w", path, err)
	}
	return &Child{Conn: conn, Proc: execProcess(cmd), Output: outR}, nil
}
