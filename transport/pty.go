package transport

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// StartPty runs argv (su or doas, which read a password only from a
// terminal) on a new pseudo-terminal that is its controlling terminal and
// its standard input, output and error. The terminal is raw from the start
// (no echo, no line editing, no signals from bytes), so once the password
// is answered it carries stage 1 and then the stream byte for byte.
//
// The password prompt is recognised by its shape, not its words, so the
// far side's language does not matter: the first text after a newline that
// ends in a colon (and optional spaces) with nothing after it, before stage
// 1 has spoken, and with nothing after it for a moment. It is answered once; a second prompt means the password was
// wrong, and the child is killed and refused with "password incorrect".
// What is printed before stage 1 speaks is also copied to Output.
func StartPty(argv []string, env []string, secret string) (*Child, error) {
	if len(argv) == 0 {
		return nil, errors.New("empty command")
	}
	ptmx, tty, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("opening a pty: %w", err)
	}
	defer tty.Close()
	// pty.Open leaves the master in blocking mode, where deadlines do not
	// work and Close does not wake a reader: use a non-blocking copy.
	master, err := pollable(ptmx)
	ptmx.Close()
	if err != nil {
		return nil, fmt.Errorf("opening a pty: %w", err)
	}
	if _, err := term.MakeRaw(int(tty.Fd())); err != nil {
		master.Close()
		return nil, fmt.Errorf("making the pty raw: %w", err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		master.Close()
		return nil, fmt.Errorf("starting %s: %w", argv[0], err)
	}
	outR, outW := io.Pipe()
	child := &Child{Output: outR}
	pc := &ptyConn{f: master, secret: []byte(secret), out: outW}
	pc.refuse = func(why string, kill bool) {
		child.Refuse(why)
		if kill {
			cmd.Process.Kill()
		}
	}
	child.Conn = pc
	child.Proc = newProcess(func() (error, string) {
		err := cmd.Wait()
		return err, cmd.ProcessState.String()
	}, func() {
		cmd.Process.Kill()
		// Closing the master hangs up the terminal: whatever su started
		// in its session gets SIGHUP.
		master.Close()
	})
	return child, nil
}

// pollable returns a non-blocking duplicate of f, which Go's poller serves.
func pollable(f *os.File) (*os.File, error) {
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), "/dev/ptmx"), nil
}

// ptyConn is the master side of the pty as a stream. It answers the
// password prompt while stage 1 has not yet spoken, and reads the EIO of a
// terminal whose other side is closed as the end of the stream. Reads come
// from one goroutine at a time (stage 1, then the stream's reader).
type ptyConn struct {
	f      *os.File
	secret []byte
	refuse func(why string, kill bool)
	out    *io.PipeWriter // what was printed before stage 1 spoke

	mu      sync.Mutex
	line    []byte // the text since the last newline, until stage 1 speaks
	seen    int    // reads so far: a pending prompt is stale once it changes
	asked   int
	started bool // stage 1 has spoken: no more prompts, no more copying
}

// stage1Mark is how stage 1's first line begins.
var stage1Mark = []byte("MITOGO1")

// promptQuiet is how long a prompt-shaped line must stand with nothing
// after it to be taken for a prompt: tools print "su: " and the rest of an
// error in separate writes.
const promptQuiet = 40 * time.Millisecond

func (c *ptyConn) Read(p []byte) (int, error) {
	n, err := c.f.Read(p)
	if errors.Is(err, syscall.EIO) {
		err = io.EOF // every copy of the terminal is closed
	}
	if n > 0 {
		c.watch(p[:n])
	}
	if err == io.EOF {
		c.mu.Lock()
		if !c.started && c.asked > 0 && len(c.secret) > 0 {
			// The tool took the password and ended without starting
			// stage 1: it refused it, in whatever language it said so.
			c.refuse("password incorrect", false)
		}
		c.mu.Unlock()
		c.out.Close()
	}
	return n, err
}

// watch looks at what the far side printed before stage 1 started.
func (c *ptyConn) watch(b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started {
		return
	}
	c.seen++
	c.line = append(c.line, b...)
	if i := bytes.Index(c.line, stage1Mark); i >= 0 && (i == 0 || c.line[i-1] == '\n') {
		c.started = true
		c.out.Write(b[:max(0, len(b)-(len(c.line)-i))])
		c.out.Close()
		c.line = nil
		return
	}
	c.out.Write(b) // drained by the router as the output is
	if i := bytes.LastIndexByte(c.line, '\n'); i >= 0 {
		c.line = c.line[i+1:]
	}
	if isPrompt(c.line) {
		seen := c.seen
		time.AfterFunc(promptQuiet, func() { c.answer(seen) })
	}
}

// answer answers the prompt seen at read number seen, unless more came.
func (c *ptyConn) answer(seen int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started || c.seen != seen {
		return
	}
	c.line = c.line[:0]
	c.asked++
	switch {
	case len(c.secret) == 0:
		c.refuse("a password is required", true)
	case c.asked == 1:
		// One write, so that a reader of the terminal takes it whole.
		c.f.Write(append(append([]byte(nil), c.secret...), '\n'))
	default:
		c.refuse("password incorrect", true)
	}
}

// isPrompt reports whether line (text with no newline) looks like a
// password prompt: it ends in a colon, perhaps followed by spaces.
func isPrompt(line []byte) bool {
	t := bytes.TrimRight(line, " \t")
	return len(t) > 0 && len(t) < 512 && (t[len(t)-1] == ':' || bytes.HasSuffix(t, []byte("\uff1a")))
}

func (c *ptyConn) Write(b []byte) (int, error) {
	n, err := c.f.Write(b)
	if errors.Is(err, syscall.EIO) {
		err = io.ErrClosedPipe
	}
	return n, err
}

// Close closes the terminal. Before stage 1 has spoken, what the far side
// printed last (su's "Authentication failure") may still be unread: it
// goes to Output first.
func (c *ptyConn) Close() error {
	c.mu.Lock()
	started := c.started
	c.mu.Unlock()
	if !started {
		c.f.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		buf := make([]byte, 4096)
		for {
			n, err := c.f.Read(buf)
			if n > 0 {
				c.out.Write(buf[:n])
			}
			if err != nil {
				break
			}
		}
	}
	c.out.Close()
	return c.f.Close()
}

func (c *ptyConn) SetDeadline(t time.Time) error { return c.f.SetDeadline(t) }
