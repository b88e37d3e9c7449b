package builtins

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/mitogo/mitogo/actors"
	"golang.org/x/sys/unix"
)

// ExecRequest is proc.exec's argument.
type ExecRequest struct {
	Argv []string `msgpack:"argv" json:"argv"`
	Dir  string   `msgpack:"dir,omitempty" json:"dir,omitempty"`
	// Env holds NAME=value entries added to the context's own environment
	// (an entry replaces the variable of the same name).
	Env   []string `msgpack:"env,omitempty" json:"env,omitempty"`
	Stdin []byte   `msgpack:"stdin,omitempty" json:"stdin,omitempty"`
	// Timeout kills the command (its whole process group) when it runs
	// longer; the result then has TimedOut set and what it printed so far.
	// The call's own deadline also kills it.
	Timeout Duration `msgpack:"timeout,omitempty" json:"timeout,omitempty"`
}

// ExecResult is proc.exec's result. A command that ran is a result, whatever
// its exit status; one that could not start is an error.
type ExecResult struct {
	ExitCode int    `msgpack:"exit_code" json:"exit_code"` // 128+n when killed by signal n
	Signal   string `msgpack:"signal,omitempty" json:"signal,omitempty"`
	TimedOut bool   `msgpack:"timed_out,omitempty" json:"timed_out,omitempty"`
	Stdout   []byte `msgpack:"stdout" json:"stdout"`
	Stderr   []byte `msgpack:"stderr" json:"stderr"`
}

// ProcExec is proc.exec: run a command to completion and return its exit
// status and output. It is killed when the caller gives up.
var ProcExec = actors.Register("proc.exec", execCommand)

// lingerDelay is how long output pipes stay open after a command exited
// while something it started in the background still holds them.
const lingerDelay = 2 * time.Second

func execCommand(ctx context.Context, req ExecRequest) (ExecResult, error) {
	if len(req.Argv) == 0 {
		return ExecResult{}, errors.New("proc.exec: argv is empty")
	}
	if req.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(req.Timeout))
		defer cancel()
	}
	cmd := command(ctx, req.Argv, req.Dir, req.Env)
	var stdout, stderr bytes.Buffer
	cmd.Stdin = bytes.NewReader(req.Stdin)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = lingerDelay
	err := cmd.Run()
	if cmd.ProcessState == nil {
		return ExecResult{}, err // it did not start
	}
	res := ExecResult{Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
	res.ExitCode, res.Signal = exitStatus(cmd.ProcessState)
	res.TimedOut = req.Timeout > 0 && errors.Is(ctx.Err(), context.DeadlineExceeded) && res.Signal != ""
	return res, nil
}

// command prepares argv in its own process group, killed as a group when
// ctx ends.
func command(ctx context.Context, argv []string, dir string, env []string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return killGroup(cmd.Process) }
	return cmd
}

// killGroup kills the process group led by p: the command and whatever it
// started without leaving the group.
func killGroup(p *os.Process) error {
	if err := syscall.Kill(-p.Pid, syscall.SIGKILL); err != nil {
		return p.Kill()
	}
	return nil
}

// exitStatus returns the exit code of a finished process, 128+n and the
// signal's name when signal n killed it.
func exitStatus(ps *os.ProcessState) (int, string) {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		sig := ws.Signal()
		name := unix.SignalName(sig)
		if name == "" {
			name = fmt.Sprintf("signal %d", int(sig))
		}
		return 128 + int(sig), name
	}
	return ps.ExitCode(), ""
}
