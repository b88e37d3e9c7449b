package bootstrap

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mitogo/mitogo/transport"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// Detect reports whether this process was started as a child context and
// returns how to find its stream. It removes the marker from the
// environment, so programs the child runs are not mistaken for children.
func Detect() (spec string, ok bool) {
	spec = os.Getenv(transport.EnvChild)
	if spec == "" {
		return "", false
	}
	os.Unsetenv(transport.EnvChild)
	return spec, true
}

// OpenStream opens the stream that spec names: "fd:N" is an inherited
// descriptor holding a socket; "stdio" is standard input and output, as
// stage 1 leaves them.
func OpenStream(spec string) (io.ReadWriteCloser, error) {
	if spec == "stdio" {
		return openStdio()
	}
	fdText, ok := strings.CutPrefix(spec, "fd:")
	if !ok {
		return nil, fmt.Errorf("unsupported %s=%q (want fd:N or stdio)", transport.EnvChild, spec)
	}
	fd, err := strconv.Atoi(fdText)
	if err != nil || fd < 3 {
		return nil, fmt.Errorf("bad %s=%q: want a descriptor number of 3 or more", transport.EnvChild, spec)
	}
	if typ, err := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_TYPE); err != nil || typ != syscall.SOCK_STREAM {
		if err == nil {
			err = fmt.Errorf("socket type %d", typ)
		}
		return nil, fmt.Errorf("descriptor %d is not the stream: %w", fd, err)
	}
	syscall.CloseOnExec(fd)
	c, err := parentConn(fd, fd, parentIdleAfter)
	if err != nil {
		return nil, fmt.Errorf("descriptor %d: %w", fd, err)
	}
	return c, nil
}

// parentConn is the stream to the parent on descriptors in and out (one
// socket, or stdin and stdout), an FDConn, which makes them non-blocking.
// That flag is the open file's, so the processes that share it see it too:
// for stdin and stdout, sudo's front end, or su and doas on their pty,
// which only wait for this process then (a message they print as they end
// may meet EAGAIN). Calls come on this stream: its reader
// waits for them in ppoll, then in the runtime poller once the stream has
// been quiet for a while. Close wakes that reader, which a blocking
// read(2) would not: a child whose parent went silent could not end its
// own stream.
func parentConn(in, out int, idleAfter time.Duration) (*transport.FDConn, error) {
	c, err := transport.NewFDConn(in, out, "stream to parent")
	if err != nil {
		return nil, err
	}
	c.SetIdleAfter(idleAfter)
	return c, nil
}

// parentIdleAfter is how long a child's reader of its parent's stream
// waits in ppoll before it waits in the runtime poller (see
// transport.FDConn.SetIdleAfter): calls back to back come well within it.
const parentIdleAfter = 200 * time.Microsecond

// stdioIdleAfter is parentIdleAfter for a child stage 1 started (over ssh,
// sudo, a container): its calls come a round trip through sshd or sudo's
// pipes apart, 100-250 µs, which 200 µs would often miss.
const stdioIdleAfter = 1 * time.Millisecond

// openStdio moves the stream off descriptors 0 and 1 at once: stdin
// becomes /dev/null and stdout joins stderr, so nothing a function prints
// can reach the stream. When the stream is a terminal (su and doas answer a
// password on a pty), stderr is that terminal too: then stdout and stderr
// both go to a pipe whose lines the stream's Output returns, for the child
// to forward as log records. It then announces itself with ReadyLine.
//
// A fresh upload first checks itself against its expected hash (while its
// stderr still reaches the master, which shows what went wrong), then
// renames itself into the cache, or removes itself when nothing is to be
// cached: an upload that is not whole never lands in the cache. A build
// made from a delta is in the cache already (stage 1 renamed it there once
// the patcher had checked its hash). Once a new build is in the cache,
// builds there that are no longer used are removed: after the child
// announced itself, while the master's first message is on its way.
func openStdio() (io.ReadWriteCloser, error) {
	want := os.Getenv(EnvVerify)
	install := os.Getenv(envInstall)
	os.Unsetenv(EnvVerify)
	os.Unsetenv(envInstall)
	var prune string // the cache a new build entered
	switch {
	case want != "":
		cached, err := installSelf(want, install)
		if err != nil {
			return nil, err
		}
		prune = cached
	case install == installed:
		if exe, err := os.Executable(); err == nil {
			prune = filepath.Dir(exe)
		}
	}
	in, err := syscall.Dup(0)
	if err != nil {
		return nil, fmt.Errorf("dup stdin: %w", err)
	}
	out, err := syscall.Dup(1)
	if err != nil {
		return nil, fmt.Errorf("dup stdout: %w", err)
	}
	syscall.CloseOnExec(in)
	syscall.CloseOnExec(out)
	growPipe(in)
	growPipe(out)
	null, err := syscall.Open(os.DevNull, syscall.O_RDONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", os.DevNull, err)
	}
	if err := syscall.Dup3(null, 0, 0); err != nil {
		return nil, fmt.Errorf("stdin to %s: %w", os.DevNull, err)
	}
	syscall.Close(null)
	rwc, err := newStdioConn(in, out)
	if err != nil {
		return nil, err
	}
	if term.IsTerminal(out) {
		detachTerminal(in)
		pr, pw, err := os.Pipe()
		if err != nil {
			return nil, fmt.Errorf("output pipe: %w", err)
		}
		for _, fd := range []int{1, 2} {
			if err := syscall.Dup3(int(pw.Fd()), fd, 0); err != nil {
				return nil, fmt.Errorf("output to a pipe: %w", err)
			}
		}
		pw.Close()
		rwc.output = pr
	} else if err := syscall.Dup3(2, 1, 0); err != nil {
		return nil, fmt.Errorf("stdout to stderr: %w", err)
	}
	if _, err := io.WriteString(rwc, ReadyLine+"\n"); err != nil {
		return nil, fmt.Errorf("announcing the child: %w", err)
	}
	if prune != "" {
		PruneCache(prune, time.Now())
	}
	return rwc, nil
}

// envInstall says what a fresh upload does once verified: "cache" renames
// it to its hash in its directory, "nocache" removes it (the running
// process keeps its inode). Without EnvVerify, "installed" says that stage
// 1 has just renamed this build into the cache after the patcher checked
// its hash (a delta): it only prunes the cache.
const envInstall = "MITOGO_INSTALL"

// installed is envInstall's value for a build that a delta made.
const installed = "installed"

// installSelf verifies this freshly uploaded executable and puts it in
// place (or removes it), as install says. It returns the cache directory
// it entered ("" for nocache), to be pruned.
func installSelf(hash, install string) (string, error) {
	if err := verifySelf(hash); err != nil {
		return "", err
	}
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("finding the executable: %w", err)
	}
	if install == "nocache" {
		os.Remove(exe)
		return "", nil
	}
	// Parallel uploads each rename their own copy; all are the same bytes.
	if err := os.Rename(exe, filepath.Join(filepath.Dir(exe), hash)); err != nil {
		return "", fmt.Errorf("caching the uploaded binary: %w", err)
	}
	// A new build entered the cache: older ones may go (see cachedir.go).
	return filepath.Dir(exe), nil
}

// verifySelf checks this executable's sha256 (of the file as it is: the
// image that was sent); a corrupt upload removes itself so that the next
// bootstrap sends it again.
func verifySelf(want string) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding the executable to verify: %w", err)
	}
	got, err := hashFile(exe)
	if err != nil {
		return err
	}
	if got != want {
		os.Remove(exe)
		return fmt.Errorf("uploaded binary %s is corrupt: sha256 %s, want %s; removed", exe, got, want)
	}
	return nil
}

// detachTerminal gives up fd as this process's controlling terminal, so
// that nothing it runs can open /dev/tty and read or write the stream (a
// prompt from ssh, sudo or git would corrupt it). A session leader's
// TIOCNOTTY hangs up its foreground group, this process included: SIGHUP
// is ignored meanwhile.
func detachTerminal(fd int) {
	signal.Ignore(syscall.SIGHUP)
	defer signal.Reset(syscall.SIGHUP)
	_ = unix.IoctlSetInt(fd, unix.TIOCNOTTY, 0)
}

// stdioConn is the stream on the descriptors stage 1 left as stdin and
// stdout (see parentConn; its Writev sends a frame's header and payload in
// one writev(2), which an SSH session's sshd then sends in one packet),
// with what this process prints when the stream took the place of its
// stdout and stderr.
type stdioConn struct {
	*transport.FDConn
	output *os.File // this process's stdout and stderr, when they could not stay where they were
}

// newStdioConn makes the stream on descriptors in and out.
func newStdioConn(in, out int) (*stdioConn, error) {
	c, err := parentConn(in, out, stdioIdleAfter)
	if err != nil {
		return nil, fmt.Errorf("the stream on stdin and stdout: %w", err)
	}
	return &stdioConn{FDConn: c}, nil
}

// Output returns what this process prints on stdout and stderr when the
// stream took the place they had (a terminal), or nil.
func (c *stdioConn) Output() io.ReadCloser {
	if c.output == nil {
		return nil
	}
	return c.output
}
