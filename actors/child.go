package actors

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mitogo/mitogo/bootstrap"
	"github.com/mitogo/mitogo/messages"
	"github.com/mitogo/mitogo/transport"
)

// Main must be the first statement of a mitogo program's main. When the
// process was started as a child context it serves its parent until the
// parent goes away or asks it to stop, then exits; it never returns then.
// When a helper registered with RegisterHelper is selected by the
// environment (fakessh's ssh stand-in), it runs that and exits. Started by
// stage 1 as the patcher of a delta (bootstrap.PatchSpec), it applies the
// delta and exits. Otherwise it returns at once.
func Main() {
	spec, ok := bootstrap.Detect()
	if !ok {
		if code, ran := runHelper(); ran {
			os.Exit(code)
		}
		return
	}
	if spec == bootstrap.PatchSpec { // stage 1 runs this cached build to apply a delta
		os.Exit(bootstrap.RunPatcher(os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(serveChild(spec))
}

func serveChild(spec string) int {
	rwc, err := bootstrap.OpenStream(spec)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mitogo child:", err)
		return 2
	}
	leader := leadSession()
	s := transport.NewStream(rwc, 0)
	var hello messages.Hello
	if err := s.ReadValue(&hello); err != nil {
		fmt.Fprintln(os.Stderr, "mitogo child: reading the handshake:", err)
		return 2
	}
	version, err := messages.ChooseVersion(hello.Versions())
	if err != nil {
		s.WriteValue(&messages.HelloReply{Version: messages.ProtocolVersion, Error: err.Error()})
		return 2
	}
	setProcessTitle(hello.Name)
	s.SetMaxFrame(hello.MaxFrame)
	cfg := defaultConfig()
	cfg.maxFrame, cfg.logLevel, cfg.upward, cfg.sideways = s.MaxFrame(), slog.Level(hello.LogLevel), hello.Upward, hello.Sideways
	setIdentity(hello.ID, hello.ParentID)
	r := newRouter(hello.ID, hello.ParentID, hello.Name, cfg, nil)
	r.ancestors = append(hello.Ancestors[:len(hello.Ancestors):len(hello.Ancestors)], hello.ParentID)
	if leader {
		r.session = os.Getpid()
	}
	r.logger = slog.New(&forwardHandler{r: r, level: cfg.logLevel})
	slog.SetDefault(r.logger)
	r.parent = newConn(r, s, hello.ParentID, "parent", true)
	if o, ok := rwc.(interface{ Output() io.ReadCloser }); ok {
		if out := o.Output(); out != nil {
			// Started on a terminal: what this process prints goes up as
			// log records, as a parent forwards a child's output.
			go r.drainOutput(hello.Name, out, &tail{})
		}
	}
	t := r.table.Load().clone()
	t.parent = r.parent
	r.table.Store(t)
	// The actor system is built on first use (see ensureSystem).
	if err := s.WriteValue(&messages.HelloReply{Version: version, ID: r.id, PID: os.Getpid(), Platform: platform()}); err != nil {
		return 2
	}
	// A child's stdout and stderr are often pipes to its parent (an ssh
	// session's, a local parent's): once the parent is gone, Go's default
	// for a write to such a pipe on fd 1 or 2 is death by SIGPIPE, before
	// childExit could end what this context's functions started (a
	// context stopped past its heartbeats and continued after its parent
	// left died at its first write, and left its command running). Caught,
	// SIGPIPE turns those writes into EPIPE errors. A caught signal is not
	// inherited across exec: commands started here get the default.
	//
	// Caught before anything is served, but after the reply: the first
	// Notify starts a goroutine locked to a thread of its own and waits for
	// it (tens of microseconds), time spent while the reply travels and the
	// parent routes this context rather than before the reply.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	// The parent's pace: a parent that goes silent is taken for gone.
	r.parent.startHeartbeatVersion(heartbeatFromHello(&hello), version)
	r.parent.serve()
	select {} // serve ends in childExit, which exits the process
}

// startedWithoutMain is set in a process started as a child context once
// NewRouter found that Main was not called; every later NewRouter refuses
// too, though the marker is gone from the environment by then.
var startedWithoutMain atomic.Bool

// refuseWithoutMain returns an error matching ErrMainNotCalled when this
// process was started as a child context and Main did not consume the
// marker. The parent is answered first: its handshake gets a refusal, so
// its connect fails at once rather than at its timeout.
func refuseWithoutMain() error {
	if spec, ok := bootstrap.Detect(); ok {
		startedWithoutMain.Store(true)
		if err := refuseParent(spec); err != nil {
			fmt.Fprintln(os.Stderr, "mitogo: refusing the parent's stream:", err)
		}
	}
	if startedWithoutMain.Load() {
		return fmt.Errorf("mitogo: this process was started as a child context and may not start its own: %w", ErrMainNotCalled)
	}
	return nil
}

// refuseParent opens the stream spec names and answers the parent's Hello
// with a refusal saying Main was not called.
func refuseParent(spec string) error {
	rwc, err := bootstrap.OpenStream(spec)
	if err != nil {
		return err
	}
	defer rwc.Close()
	s := transport.NewStream(rwc, 0)
	var hello messages.Hello
	if err := s.ReadValue(&hello); err != nil {
		return fmt.Errorf("reading the handshake: %w", err)
	}
	return s.WriteValue(&messages.HelloReply{Version: messages.ProtocolVersion, ID: hello.ID, PID: os.Getpid(), Platform: platform(),
		Error: ErrMainNotCalled.Error(), Refusal: messages.RefusalNoMain})
}

// childExit ends a child whose parent went away: its calls are cancelled,
// its own children are told to stop, what its functions started is ended,
// and the process exits.
func (r *Router) childExit(err error) {
	var left *leftTree
	switch {
	case errors.As(err, &left):
		fmt.Fprintf(os.Stderr, "mitogo: %s: %v; exiting\n", r.Name(), left.cause)
	case errors.Is(err, ErrHeartbeat):
		fmt.Fprintf(os.Stderr, "mitogo: %s: orphaned: the parent went silent (%v); exiting\n", r.Name(), err)
	case err != nil && !errors.Is(err, io.EOF):
		fmt.Fprintf(os.Stderr, "mitogo: %s: stream to the parent failed: %v\n", r.Name(), err)
	}
	r.plain.closeAll("the stream to the parent is lost", err)
	r.listeners.closeAll()
	r.stopBase()
	r.shutdownChildren(2 * time.Second)
	r.waitCalls(time.Second)
	r.endStarted()
	r.watch.stop()
	os.Exit(0)
}

// ErrNotChild: the router is not a child context's (a master's, or one
// attached with Attach), so it cannot leave its tree as an orphan does.
var ErrNotChild = errors.New("not a child context")

// leftTree is the error a child's stream to its parent is closed with by
// ExitOrphaned: childExit prints its cause.
type leftTree struct{ cause error }

func (e *leftTree) Error() string { return e.cause.Error() }
func (e *leftTree) Unwrap() error { return e.cause }

// ExitOrphaned ends the child context running the function that was given
// ctx as if its parent were lost: its stream to the parent is closed, its
// calls (the caller's among them) are cancelled and given a moment to
// return, its own children are stopped, what its functions started (the
// processes of the session it leads, as a command of proc.run) is ended,
// and the process exits, printing cause on its standard error. A function
// calls it when it finds that this context must not go on (a newer owner
// fenced it out) but its parent cannot be asked to stop it. It returns at
// once; the exit follows. It returns an error matching ErrNotChild, and
// does nothing, outside a called function or in a master or an attached
// router.
func ExitOrphaned(ctx context.Context, cause error) error {
	r := RouterFrom(ctx)
	if r == nil || r.parent == nil || r.detached != nil {
		return fmt.Errorf("mitogo: exit as an orphan: %w", ErrNotChild)
	}
	r.parent.close(&leftTree{cause: cause})
	return nil
}

// childShutdown is the orderly stop the parent asked for: descendants
// first, then what this process's functions started, then this process.
func (r *Router) childShutdown() {
	r.beginStopping(ErrShutdown) // before calls are cancelled: their streams' ends say why
	r.listeners.closeAll()
	r.stopBase()
	r.shutdownChildren(5 * time.Second)
	r.waitCalls(2 * time.Second)
	r.stopServices(time.Second)
	r.endStarted()
	r.parent.s.Flush()
	r.watch.stop()
	os.Exit(0)
}

// endStarted ends the processes this child's functions started and left
// running: those still in the session it leads (see session.go).
func (r *Router) endStarted() {
	if r.session != 0 {
		endSession(r.session, sessionGrace, nil, r.logger)
	}
}

// waitCalls gives cancelled calls up to grace to return, so that what they
// clean up on cancellation (a killed subprocess, a removed file) is done
// before the process exits.
func (r *Router) waitCalls(grace time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	r.waitCallsCtx(ctx)
}
