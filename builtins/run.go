package builtins

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mitogo/mitogo/actors"
)

// RunRequest is proc.run's argument. Callers normally use Run, which fills
// in Reply and Stdin.
type RunRequest struct {
	Argv []string `msgpack:"argv" json:"argv"`
	Dir  string   `msgpack:"dir,omitempty" json:"dir,omitempty"`
	// Env holds NAME=value entries added to the context's own environment.
	Env []string `msgpack:"env,omitempty" json:"env,omitempty"`
	// Reply is the caller's channel end. The function sends its own end's
	// ChannelAddr first, then RunOutput items, and closes its end when the
	// command has exited and its output is drained.
	Reply actors.ChannelAddr `msgpack:"reply" json:"reply"`
	// Stdin: the caller sends []byte items to the function's end, written to
	// the command's standard input; closing the caller's end closes it. When
	// false the command's stdin is /dev/null.
	Stdin bool `msgpack:"stdin,omitempty" json:"stdin,omitempty"`
}

// RunOutput is one chunk of a command's output, as it was read.
type RunOutput struct {
	Stream int    `msgpack:"stream" json:"stream"` // 1 stdout, 2 stderr
	Data   []byte `msgpack:"data" json:"data"`
}

// RunResult is proc.run's result.
type RunResult struct {
	ExitCode int    `msgpack:"exit_code" json:"exit_code"` // 128+n when killed by signal n
	Signal   string `msgpack:"signal,omitempty" json:"signal,omitempty"`
}

// ErrCommandNotFound is matched (errors.Is) by Run's error when the command
// does not exist in the target: not in its PATH, or no file at the path
// given. It is the case a shell exits 127 for.
var ErrCommandNotFound = errors.New("command not found")

// commandNotFound is proc.run's error for a command that does not exist.
// Its Go type's name crosses the wire as the *actors.CallError's Type,
// which Run turns back into ErrCommandNotFound.
type commandNotFound struct{ err error }

// commandNotFoundType is commandNotFound's name as %T prints it.
const commandNotFoundType = "*builtins.commandNotFound"

func (e *commandNotFound) Error() string { return e.err.Error() }
func (e *commandNotFound) Unwrap() error { return e.err }

// notFoundError is Run's error for a command that does not exist: the
// *actors.CallError, which also matches ErrCommandNotFound.
type notFoundError struct{ *actors.CallError }

func (e *notFoundError) Unwrap() error { return e.CallError }

func (e *notFoundError) Error() string {
	return fmt.Sprintf("mitogo: %s in %s: %s", e.Function, e.Context, e.Message)
}

// Is matches ErrCommandNotFound.
func (e *notFoundError) Is(target error) bool { return target == ErrCommandNotFound }

// ProcRun is proc.run: run a command, streaming its output over a channel
// as it comes and feeding it stdin from the caller. Use Run to call it.
var ProcRun = actors.Register("proc.run", runCommand)

// outputChunk is the largest output item: reads return what the pipe holds,
// up to this much, so output travels as soon as it is written.
const outputChunk = 32 << 10

func runCommand(ctx context.Context, req RunRequest) (RunResult, error) {
	if len(req.Argv) == 0 {
		return RunResult{}, errors.New("proc.run: argv is empty")
	}
	r := actors.RouterFrom(ctx)
	if r == nil {
		return RunResult{}, errors.New("proc.run: must be called through a router")
	}
	ch := r.NewChannel()
	defer ch.Release()
	ch.Connect(req.Reply)
	defer ch.Close() // after the output; before the reply
	if err := ch.Send(ctx, ch.Addr()); err != nil {
		return RunResult{}, err
	}

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	cmd := command(runCtx, req.Argv, req.Dir, req.Env)
	var parentEnds, childEnds []*os.File
	closeAll := func(fs []*os.File) {
		for _, f := range fs {
			f.Close()
		}
	}
	pipe := func() (*os.File, *os.File, error) {
		pr, pw, err := os.Pipe()
		if err != nil {
			closeAll(parentEnds)
			closeAll(childEnds)
		}
		return pr, pw, err
	}
	outR, outW, err := pipe()
	if err != nil {
		return RunResult{}, err
	}
	parentEnds, childEnds = append(parentEnds, outR), append(childEnds, outW)
	errR, errW, err := pipe()
	if err != nil {
		return RunResult{}, err
	}
	parentEnds, childEnds = append(parentEnds, errR), append(childEnds, errW)
	cmd.Stdout, cmd.Stderr = outW, errW
	var inW *os.File
	if req.Stdin {
		inR, w, err := pipe()
		if err != nil {
			return RunResult{}, err
		}
		inW = w
		parentEnds, childEnds = append(parentEnds, inW), append(childEnds, inR)
		cmd.Stdin = inR
	}
	err = cmd.Start()
	closeAll(childEnds)
	if err != nil {
		closeAll(parentEnds)
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
			return RunResult{}, &commandNotFound{err}
		}
		return RunResult{}, err
	}

	// Output pumps: each read goes out at once, so output is live.
	var (
		exited  atomic.Bool
		pumps   sync.WaitGroup
		sendErr atomic.Pointer[error]
	)
	pump := func(f *os.File, stream int) {
		defer pumps.Done()
		defer f.Close()
		buf := make([]byte, outputChunk)
		for {
			n, err := f.Read(buf)
			if n > 0 {
				if err := ch.Send(ctx, RunOutput{Stream: stream, Data: buf[:n]}); err != nil {
					sendErr.CompareAndSwap(nil, &err)
					stop() // nobody listens: kill the command
					return
				}
				if exited.Load() {
					f.SetReadDeadline(time.Now().Add(lingerDelay))
				}
			}
			if err != nil {
				return
			}
		}
	}
	pumps.Add(2)
	go pump(outR, 1)
	go pump(errR, 2)

	// Stdin from the caller's channel end; its Close closes the command's stdin.
	stdinCtx, stopStdin := context.WithCancel(ctx)
	stdinDone := make(chan struct{})
	if inW != nil {
		go func() {
			defer close(stdinDone)
			defer inW.Close()
			for {
				var b []byte
				if err := ch.Recv(stdinCtx, &b); err != nil {
					return
				}
				if _, err := inW.Write(b); err != nil {
					return
				}
			}
		}()
	} else {
		close(stdinDone)
	}

	waitErr := cmd.Wait()
	// Something the command started in the background may still hold its
	// output: read what comes for a while, then stop. When the caller gave
	// up, stop at once.
	exited.Store(true)
	linger := time.Now().Add(lingerDelay)
	outR.SetReadDeadline(linger)
	errR.SetReadDeadline(linger)
	unwatch := context.AfterFunc(runCtx, func() {
		outR.SetReadDeadline(time.Unix(1, 0))
		errR.SetReadDeadline(time.Unix(1, 0))
	})
	pumps.Wait()
	unwatch()
	stopStdin()
	if inW != nil {
		inW.Close() // unblocks a write to a stdin nobody reads
	}
	<-stdinDone

	if cmd.ProcessState == nil {
		return RunResult{}, waitErr
	}
	if p := sendErr.Load(); p != nil {
		return RunResult{}, fmt.Errorf("proc.run: sending output: %w", *p)
	}
	var res RunResult
	res.ExitCode, res.Signal = exitStatus(cmd.ProcessState)
	return res, nil
}

// Run runs req.Argv in target with proc.run and copies the command's output
// to stdout and stderr as it arrives. When stdin is not nil, it is read and
// forwarded to the command until it ends, then the command's stdin is
// closed; when nil, the command's stdin is /dev/null. Run returns the
// command's exit status (128+n when signal n killed it). When ctx ends, the
// command is killed with its whole process group and Run returns ctx's
// error (a *actors.TimeoutError for a deadline), once the far side has
// reported that the command is gone (or after a few seconds if it does not).
// An error writing to stdout or stderr also kills the command, and is
// returned. A command that does not exist there gives an error matching
// ErrCommandNotFound (and still an *actors.CallError).
//
// Stdin is read by a goroutine that Run waits for before it returns, as
// exec.Cmd.Wait waits for its stdin copy. Once the command has ended (or
// ctx has), what stdin still holds has nowhere to go, so a Read still
// blocked then is interrupted:
//   - a stdin with read deadlines (a pollable *os.File such as an os.Pipe
//     end, a net.Conn) gets a deadline in the past, which ends the Read
//     without consuming anything, and its deadline is cleared again before
//     Run returns: the caller can go on reading it;
//   - any other stdin that is an io.Closer is closed;
//   - then Run waits up to StdinGrace for the Read to return. A Read that
//     neither of these ends (a reader that is not an io.Closer, or a
//     blocking *os.File such as a terminal, whose Close does not interrupt
//     a Read in progress) is abandoned after StdinGrace: Run returns, and
//     the goroutine ends when that Read returns, dropping what it read.
func Run(ctx context.Context, r *actors.Router, target *actors.Context, req RunRequest, stdin io.Reader, stdout, stderr io.Writer) (exit int, err error) {
	if len(req.Argv) == 0 {
		return -1, errors.New("proc.run: argv is empty")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := r.NewChannel()
	defer out.Release()
	req.Reply, req.Stdin = out.Addr(), stdin != nil
	call := ProcRun.Go(ctx, target, req)

	// Once the call has failed nothing more arrives: stop receiving then.
	// When it failed because the caller gave up, the far side kills the
	// command and closes its end when the command is gone: wait for that
	// (for a while), so that Run returns only once the command is dead.
	recvCtx, stopRecv := context.WithCancel(context.Background())
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		select {
		case <-call.Done():
			if _, err := call.Wait(); err != nil {
				if ctx.Err() != nil {
					t := time.NewTimer(cancelGrace)
					defer t.Stop()
					select {
					case <-t.C:
					case <-recvCtx.Done():
					}
				}
				stopRecv()
			}
		case <-recvCtx.Done():
		}
	}()
	defer func() {
		stopRecv()
		<-watchDone
	}()

	var peer actors.ChannelAddr
	var writeErr error
	recvErr := out.Recv(recvCtx, &peer)
	if recvErr == nil {
		out.Connect(peer)
		if stdin != nil {
			feed := startStdin(ctx, out, stdin)
			defer feed.finish()
		}
		for {
			var item RunOutput
			if recvErr = out.Recv(recvCtx, &item); recvErr != nil {
				break
			}
			if writeErr != nil {
				continue // draining until the command is gone
			}
			w := stdout
			if item.Stream == 2 {
				w = stderr
			}
			if _, err := w.Write(item.Data); err != nil {
				writeErr = fmt.Errorf("writing the output of %s: %w", req.Argv[0], err)
				cancel() // kill the command
			}
		}
	}
	res, err := call.Wait()
	var ce *actors.CallError
	switch {
	case writeErr != nil:
		return -1, writeErr
	case errors.As(err, &ce) && ce.Type == commandNotFoundType:
		return -1, &notFoundError{ce}
	case err != nil:
		return -1, err
	case recvErr != io.EOF:
		return -1, recvErr
	}
	return res.ExitCode, nil
}

// cancelGrace bounds how long Run waits, after its caller gave up, for the
// far side to confirm that the command is gone.
const cancelGrace = 5 * time.Second

// StdinGrace bounds how long Run waits, once the command has ended, for a
// Read of its stdin that it could not interrupt (see Run).
const StdinGrace = 2 * time.Second

// stdinFeed is the goroutine that forwards Run's stdin to the command;
// Run owns it and joins it with finish.
type stdinFeed struct {
	stdin io.Reader
	stop  context.CancelFunc // ends a Send in progress
	done  chan struct{}      // closed when the goroutine has returned
}

func startStdin(ctx context.Context, ch *actors.Channel, stdin io.Reader) *stdinFeed {
	ctx, stop := context.WithCancel(ctx)
	f := &stdinFeed{stdin: stdin, stop: stop, done: make(chan struct{})}
	go func() {
		defer close(f.done)
		forwardStdin(ctx, ch, stdin)
	}()
	return f
}

// finish ends the feed once the command has ended, interrupting a blocked
// Read where stdin allows it, and waits for it (see Run for the rules).
func (f *stdinFeed) finish() {
	f.stop()
	select {
	case <-f.done:
		return
	default:
	}
	type deadliner interface{ SetReadDeadline(time.Time) error }
	d, ok := f.stdin.(deadliner)
	if ok && d.SetReadDeadline(time.Unix(1, 0)) == nil {
		defer d.SetReadDeadline(time.Time{}) // after the Read has returned, or abandoned
	} else if c, ok := f.stdin.(io.Closer); ok {
		c.Close()
	}
	t := time.NewTimer(StdinGrace)
	defer t.Stop()
	select {
	case <-f.done:
	case <-t.C:
	}
}

// forwardStdin sends what stdin holds to the command, in chunks as they are
// read, and closes the channel (the command's stdin) at its end. Once ctx
// has ended it touches the channel no more: the command is gone, or going.
func forwardStdin(ctx context.Context, ch *actors.Channel, stdin io.Reader) {
	buf := make([]byte, outputChunk)
	for {
		n, err := stdin.Read(buf)
		if ctx.Err() != nil {
			return
		}
		if n > 0 {
			if ch.Send(ctx, buf[:n]) != nil {
				return
			}
		}
		if err != nil {
			ch.Close()
			return
		}
	}
}
