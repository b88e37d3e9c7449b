package transport

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
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
// far side's language does not matter: text after a newline that ends in a
// colon (and optional spaces), before stage 1 has spoken, with nothing after
// it for a moment. It is answered once; a second prompt means the password
// was wrong, and the child is killed and refused with ErrPasswordIncorrect.
// A tool that takes the password and ends is suspected of refusing it.
// Any line that looks so is taken for a prompt: a banner ending in a colon
// before a rule that needs no password would get the password.
// What is printed before stage 1 speaks is also copied to Output.
func StartPty(argv []string, env []string, secret string) (*Child, error) {
	if len(argv) == 0 {
		return nil, errors.New("empty command")
	}
	if strings.ContainsAny(secret, "\r\n") {
		return nil, errors.New("a password cannot contain a newline")
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
	child := &Child{Output: outR, Terminal: true}
	pc := &ptyConn{f: master, secret: []byte(secret), out: outW, child: child, kill: func() { cmd.Process.Kill() }}
	child.Conn = pc
	child.Proc = newProcess(func() (string, error) {
		awaitExit(cmd.Process.Pid) // without holding a thread
		err := cmd.Wait()
		return cmd.ProcessState.String(), err
	}, func() {
		cmd.Process.Kill()
		// Closing the master hangs up the terminal: what su started in
		// its session reads EOF (and SIGHUP, when it is attached to it).
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
	child  *Child
	kill   func()
	out    *io.PipeWriter // what was printed before stage 1 spoke

	mu      sync.Mutex
	line    []byte // the text since the last newline, until stage 1 speaks
	written int    // how much of line is in out already
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
			// stage 1: most likely it refused it, in whatever language
			// it said so. What it printed, when recognised, says better.
			c.child.Suspect(ErrPasswordIncorrect)
		}
		c.mu.Unlock()
		c.out.Close()
	}
	return n, err
}

// refuse ends the child for why, at once: the terminal is closed, which
// wakes its reader (what su started may hold the terminal open).
func (c *ptyConn) refuse(cause error) {
	c.child.Refuse(cause)
	c.kill()
	c.f.Close()
}

// watch looks at what the far side printed before stage 1 started. Output
// goes on to the router's log as it comes, except a line that may be the
// start of stage 1's, which is held until it is known.
func (c *ptyConn) watch(b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started {
		return
	}
	c.seen++
	data := append(c.line, b...)
	for i := 0; i < len(data); {
		j := bytes.Index(data[i:], stage1Mark)
		if j < 0 {
			break
		}
		if at := i + j; at == 0 || data[at-1] == '\n' {
			c.out.Write(data[c.written:at])
			c.out.Close()
			c.started, c.line = true, nil
			return
		}
		i += j + 1
	}
	if nl := bytes.LastIndexByte(data, '\n'); nl >= 0 {
		c.out.Write(data[c.written : nl+1]) // drained by the router as the output is
		data, c.written = data[nl+1:], 0
	}
	if !bytes.HasPrefix(stage1Mark, data) {
		c.out.Write(data[c.written:])
		c.written = len(data)
	}
	c.line = append(c.line[:0], data...)
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
	c.line, c.written = c.line[:0], 0
	c.asked++
	switch {
	case len(c.secret) == 0:
		c.refuse(ErrPasswordRequired)
	case c.asked == 1:
		// One write, so that a reader of the terminal takes it whole.
		c.f.Write(append(append([]byte(nil), c.secret...), '\n'))
	default:
		c.refuse(ErrPasswordIncorrect)
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
