package transport

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// StartCommand starts argv (e.g. sudo -u user -- sh -c STAGE1) with pipes
// as its standard input and output, which become the stream once the far
// side execs the child binary on them; its stderr goes to a pipe whose
// lines the caller forwards. This is the shape of every method whose far
// end is a shell: sudo, su, doas, the OpenSSH client, container exec.
// The stream's pipes are an FDConn if direct has room (see DirectLimit).
func StartCommand(argv []string, env []string, direct *DirectLimit) (*Child, error) {
	if len(argv) == 0 {
		return nil, errors.New("empty command")
	}
	childIn, childOut, conn, err := streamPipes(direct)
	if err != nil {
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		childIn.Close()
		childOut.Close()
		conn.Close()
		return nil, fmt.Errorf("stderr pipe: %w", err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = childIn, childOut, errW
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Start()
	childIn.Close()
	childOut.Close()
	errW.Close()
	if err != nil {
		conn.Close()
		errR.Close()
		return nil, fmt.Errorf("starting %s: %w", argv[0], err)
	}
	return &Child{Conn: conn, Proc: execProcess(cmd), Output: errR}, nil
}

// streamPipes makes the two pipes of a command's stream: the ends the
// command gets as its stdin and stdout (blocking, as a program expects),
// and the connection of this side's ends: an FDConn (see fdconn_linux.go)
// if direct has room, else the runtime poller's files.
func streamPipes(direct *DirectLimit) (childIn, childOut *os.File, conn Conn, err error) {
	if !direct.take() {
		inR, inW, err := os.Pipe()
		if err != nil {
			return nil, nil, nil, fmt.Errorf("stdin pipe: %w", err)
		}
		outR, outW, err := os.Pipe()
		if err != nil {
			inR.Close()
			inW.Close()
			return nil, nil, nil, fmt.Errorf("stdout pipe: %w", err)
		}
		return inR, outW, &pipeConn{r: outR, w: inW}, nil
	}
	var in, out [2]int
	if err := syscall.Pipe2(in[:], syscall.O_CLOEXEC); err != nil {
		return nil, nil, nil, fmt.Errorf("stdin pipe: %w", err)
	}
	if err := syscall.Pipe2(out[:], syscall.O_CLOEXEC); err != nil {
		syscall.Close(in[0])
		syscall.Close(in[1])
		return nil, nil, nil, fmt.Errorf("stdout pipe: %w", err)
	}
	fc, err := NewFDConn(out[0], in[1], "pipes to child")
	if err != nil { // NewFDConn closed its two
		direct.release()
		syscall.Close(in[0])
		syscall.Close(out[1])
		return nil, nil, nil, err
	}
	fc.release = direct.release
	return os.NewFile(uintptr(in[0]), "|0"), os.NewFile(uintptr(out[1]), "|1"), fc, nil
}

// pipeConn joins the two pipes to a child into one connection.
type pipeConn struct {
	r *os.File // the child's stdout
	w *os.File // the child's stdin
}

func (p *pipeConn) Read(b []byte) (int, error)  { return p.r.Read(b) }
func (p *pipeConn) Write(b []byte) (int, error) { return p.w.Write(b) }

func (p *pipeConn) Close() error {
	err := p.w.Close()
	if rerr := p.r.Close(); err == nil {
		err = rerr
	}
	return err
}

// SetReadDeadline bounds reads from the child's stdout.
func (p *pipeConn) SetReadDeadline(t time.Time) error { return p.r.SetReadDeadline(t) }

func (p *pipeConn) SetDeadline(t time.Time) error {
	err := p.r.SetDeadline(t)
	if werr := p.w.SetDeadline(t); err == nil {
		err = werr
	}
	return err
}
