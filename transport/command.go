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
func StartCommand(argv []string, env []string) (*Child, error) {
	if len(argv) == 0 {
		return nil, errors.New("empty command")
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("stdin pipe: %w", err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, fmt.Errorf("stdout pipe: %w", err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		outR.Close()
		outW.Close()
		return nil, fmt.Errorf("stderr pipe: %w", err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Start()
	inR.Close()
	outW.Close()
	errW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		errR.Close()
		return nil, fmt.Errorf("starting %s: %w", argv[0], err)
	}
	return &Child{Conn: &pipeConn{r: outR, w: inW}, Proc: execProcess(cmd), Output: errR}, nil
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
