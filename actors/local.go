package actors

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/mitogo/mitogo/bootstrap"
	"github.com/mitogo/mitogo/connect"
	"github.com/mitogo/mitogo/messages"
	"github.com/mitogo/mitogo/transport"
)

// Local starts a child context on this machine: a copy of this program
// (which must call Main first) connected over a socketpair. With Via(c) the
// child is started by c and becomes c's child.
func (r *Router) Local(ctx context.Context, opts ...ConnectOption) (*Context, error) {
	return r.connect(ctx, connect.Local, opts)
}

// Sudo starts a child context as another user through sudo, on the
// machine of the context it is made from (Via; this one by default). The
// binary is started by a short sh stage 1, which copies it into the user's
// cache first when it is not there. Options: User (default root), Tool
// (the path of sudo). Without a password sudo is run with -n, so a sudoers
// entry that wants one fails at once with a *StreamError saying so.
func (r *Router) Sudo(ctx context.Context, opts ...ConnectOption) (*Context, error) {
	return r.connect(ctx, connect.Sudo, opts)
}

// connect starts a supervised child with the method registered as method.
func (r *Router) connect(ctx context.Context, method string, opts []ConnectOption) (*Context, error) {
	m, ok := connect.Lookup(method)
	if !ok {
		err := fmt.Errorf("%w: unknown connection method %q", ErrBadOption, method)
		return nil, &StreamError{Context: method, Method: method, Reason: err.Error(), Cause: ErrBadOption, Err: err}
	}
	cc := defaultConnectConfig()
	for _, o := range opts {
		o(&cc)
	}
	spec := connect.Spec{Method: method, Path: cc.path, Args: cc.args, Tool: cc.tool, SSH: cc.ssh,
		SSHArgs: cc.sshArgs, NoCache: cc.noCache, BinaryOwner: r.id, PreserveEnv: cc.preserveEnv, Login: cc.login,
		Target: cc.target, ToolEnv: cc.toolEnv, Namespace: cc.namespace, KubeContext: cc.kubeContext}
	m.SetAccount(&spec, cc.user, cc.password)
	if err := m.Validate(spec, cc.given); err != nil {
		name := cc.name
		if name == "" {
			name = m.DefaultName(spec, 0)
		}
		return nil, &StreamError{Context: name, Method: method, Reason: err.Error(), Cause: ErrBadOption, Err: err}
	}
	if r.isClosing() {
		return nil, &StreamError{Context: method, Method: method, Reason: "the router is shut down", Err: ErrShutdown}
	}
	starter := r.id
	if cc.via != nil {
		starter = cc.via.id
	}
	id, err := r.allocateID(ctx, starter)
	if err != nil {
		return nil, &StreamError{Context: method, Method: method, Reason: "allocating a context id: " + err.Error(), Err: err}
	}
	last := cc.name
	if last == "" {
		last = m.DefaultName(spec, id)
	}
	via := cc.via
	if via != nil && via.id == r.id {
		via = nil
	}
	name := r.childName(last)
	label := name
	if via != nil {
		name, label = via.name+"/"+last, via.label+"/"+last
	}
	hb := cc.heartbeat.resolve(method, cc.heartbeatSet)
	c := &Context{r: r, id: id, label: label, up: make(chan struct{}), done: make(chan struct{})}
	r.mu.Lock()
	c.name = r.uniqueName(name, id)
	r.contexts[id] = c
	r.mu.Unlock()
	name = c.name
	spec.BinaryToken = r.addBinarySource(binarySource{paths: cc.binaries, fn: cc.binaryFunc}, c)
	dial := func(ctx context.Context) (int, error) {
		// The wait a timeout names: the connect's own, or what is left
		// of the caller's deadline when that comes first.
		wait := cc.timeout
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			wait = max(time.Until(dl), 0)
		}
		ctx, cancel := context.WithTimeout(ctx, cc.timeout)
		defer cancel()
		ctx, stop := r.unlessStopping(ctx)
		defer stop()
		if via == nil {
			_, pid, err := r.startChild(ctx, id, name, label, spec, wait, hb)
			return pid, err
		}
		rep, err := connectFunc.Call(ctx, via, connectRequest{ID: id, Name: name, Spec: spec, Timeout: wait, Heartbeat: hb})
		if err != nil && stoppedBy(ctx) {
			return 0, shutdownError(label, method)
		}
		if err == nil && rep.Failure != nil {
			return 0, rep.Failure.error(label, method, wait)
		}
		return rep.PID, connectError(label, method, err, wait)
	}
	if s := r.claimedBy(ctx); s != nil {
		// A ContextProps actor's connector: the handle is that actor's,
		// and stays with it whether this first connection works or not.
		s.mu.Lock()
		s.c, s.dial = c, dial
		s.mu.Unlock()
		c.sup = s
		pid, err := dial(ctx)
		s.mu.Lock()
		s.firstPID = pid
		s.mu.Unlock()
		if err != nil {
			return nil, err
		}
		return c, nil
	}
	s := newSupervision(r)
	s.c, s.dial, s.strategy = c, dial, cc.strategy
	if s.strategy == nil {
		s.strategy = Stop()
	}
	c.sup = s
	if err := s.start(ctx); err != nil {
		r.forgetHandle(c)
		if errors.Is(err, ErrShutdown) && !isConnectError(err) {
			return nil, shutdownError(label, method)
		}
		return nil, err
	}
	return c, nil
}

// isConnectError reports whether err is already a connection's error.
func isConnectError(err error) bool {
	var se *StreamError
	var te *TimeoutError
	return errors.As(err, &se) || errors.As(err, &te)
}

// uniqueName returns name, or name#id when a live context (one started
// from here and not gone for good, or one routed through this context)
// already has that name. r.mu is held.
func (r *Router) uniqueName(name string, id uint32) string {
	taken := false
	for _, c := range r.contexts {
		if c.name != name {
			continue
		}
		select {
		case <-c.done:
		default:
			taken = true
		}
	}
	t := r.table.Load()
	for id, n := range t.names {
		if _, routed := t.routes[id]; routed && n == name {
			taken = true
		}
	}
	if taken {
		return name + "#" + itoa(id)
	}
	return name
}

// connectError turns the failure of the call that asked another context
// to connect into the error of the connection.
func connectError(name, method string, err error, timeout time.Duration) error {
	if err == nil {
		return nil
	}
	var te *TimeoutError
	if errors.As(err, &te) {
		return &TimeoutError{Context: name, Op: "connect", After: timeout, Cause: ErrConnectTimeout}
	}
	return &StreamError{Context: name, Method: method, Reason: err.Error(), Err: err}
}

// connectFailure is a failed connection as the context that made it
// reports it to the one that asked: the cause as its connect.Code.
type connectFailure struct {
	Cause   string `msgpack:"cause"`   // connect.Code of the cause, "" when unknown
	Reason  string `msgpack:"reason"`  // StreamError.Reason
	Output  string `msgpack:"output"`  // StreamError.Output
	Timeout bool   `msgpack:"timeout"` // the connect timed out: a *TimeoutError
	Phase   string `msgpack:"phase"`   // TimeoutError.Phase
}

// newConnectFailure describes err, the failure of startChild.
func newConnectFailure(err error) *connectFailure {
	var se *StreamError
	var te *TimeoutError
	switch {
	case errors.As(err, &te):
		return &connectFailure{Cause: connect.Code(ErrConnectTimeout), Reason: te.Error(), Timeout: true, Phase: te.Phase}
	case errors.As(err, &se):
		return &connectFailure{Cause: connect.Code(se.Cause), Reason: se.Reason, Output: se.Output}
	}
	return &connectFailure{Cause: connect.Code(err), Reason: err.Error()}
}

// error rebuilds the error startChild returned in the other context.
func (f *connectFailure) error(name, method string, timeout time.Duration) error {
	if f.Timeout {
		return &TimeoutError{Context: name, Op: "connect", After: timeout, Cause: ErrConnectTimeout, Phase: f.Phase}
	}
	return &StreamError{Context: name, Method: method, Reason: f.Reason, Output: f.Output, Cause: connect.FromCode(f.Cause)}
}

type connectRequest struct {
	ID      uint32        `msgpack:"id"`
	Name    string        `msgpack:"name"`
	Spec    connect.Spec  `msgpack:"spec"`
	Timeout time.Duration `msgpack:"timeout"`

	Heartbeat heartbeatConfig `msgpack:"heartbeat"`
}

type connectReply struct {
	PID     int             `msgpack:"pid"`
	Failure *connectFailure `msgpack:"failure"` // nil when the child started
}

const fnAllocateID = "mitogo.allocate_id"

// System functions: a context asked to start a child for another, and the
// master handing out context ids.
var (
	connectFunc = Register("mitogo.connect", func(ctx context.Context, req connectRequest) (connectReply, error) {
		r := RouterFrom(ctx)
		_, pid, err := r.startChild(ctx, req.ID, req.Name, req.Name, req.Spec, req.Timeout, req.Heartbeat)
		if err != nil {
			return connectReply{Failure: newConnectFailure(err)}, nil
		}
		return connectReply{PID: pid}, nil
	})
	_ = Register(fnAllocateID, func(ctx context.Context, _ struct{}) (uint32, error) {
		r := RouterFrom(ctx)
		if !r.IsMaster() {
			return 0, errors.New("only the master allocates context ids")
		}
		return r.allocateID(ctx, uint32(Caller(ctx).ID()))
	})
)

// startChild starts a child with context id and name by the method spec
// names, runs stage 1 when the method ends in a shell, performs the
// handshake and adds its route. The child's stream belongs to this router;
// both ends watch it with heartbeat hb (if the child speaks version 2).
// Its errors name the child label (see Context.label).
func (r *Router) startChild(ctx context.Context, id uint32, name, label string, spec connect.Spec, timeout time.Duration, hb heartbeatConfig) (*conn, int, error) {
	c, pid, err := r.startChildOnce(ctx, id, name, label, spec, timeout, hb, false)
	var cbe *bootstrap.CachedBuildError
	if errors.As(err, &cbe) && ctx.Err() == nil {
		// Damaged in the far side's cache (a crash cut it short), it
		// would fail every connect: once more, and stage 1 replaces it
		// if its hash says so (else it fails again, for its own cause).
		r.logger.Warn("the cached build did not start; checking it, and sending it again if damaged",
			"context", name, "file", cbe.Path, "error", cbe.Err)
		return r.startChildOnce(ctx, id, name, label, spec, timeout, hb, true)
	}
	return c, pid, err
}

// startChildOnce is startChild's one attempt; fresh replaces the far
// side's cached build of this program (bootstrap.Options.Fresh).
func (r *Router) startChildOnce(ctx context.Context, id uint32, name, label string, spec connect.Spec, timeout time.Duration, hb heartbeatConfig, fresh bool) (*conn, int, error) {
	m, ok := connect.Lookup(spec.Method)
	if !ok {
		err := fmt.Errorf("%w: unknown connection method %q", ErrBadOption, spec.Method)
		return nil, 0, &StreamError{Context: label, Method: spec.Method, Reason: err.Error(), Cause: ErrBadOption, Err: err}
	}
	timedOut := func(phase string) error {
		return &TimeoutError{Context: label, Op: "connect", After: timeout, Cause: ErrConnectTimeout, Phase: phase}
	}
	// Each step at Debug (-v -v): the "connected" record sums them up
	// (logPhases, at Info for a method that runs stage 1), and a connect
	// that times out names the step it was in.
	progress := newConnectProgress(r, name)
	began := time.Now()
	child, err := m.Start(ctx, spec, connect.Env{Pacer: &r.pacer, Phase: progress.transportStep, Direct: r.direct})
	started := time.Since(began)
	if err != nil {
		if stoppedBy(ctx) {
			return nil, 0, shutdownError(label, spec.Method)
		}
		if ctx.Err() == context.DeadlineExceeded || errors.Is(err, context.DeadlineExceeded) {
			var stalled *transport.StalledError
			if errors.As(err, &stalled) {
				return nil, 0, timedOut(stalled.Phase)
			}
			return nil, 0, timedOut("starting " + spec.Method)
		}
		reason, cause := m.Explain(spec, connect.Attempt{Err: err})
		return nil, 0, &StreamError{Context: label, Method: spec.Method, Reason: reason, Cause: cause, Err: err}
	}
	for _, w := range child.Warnings {
		r.logger.Warn("not used, connected without it", "context", name, "what", w.Error())
	}
	s := transport.NewStream(child.Conn, r.cfg.maxFrame)
	c := newConn(r, s, id, name, false)
	c.child, c.output = child, &tail{}
	drained := make(chan struct{})
	c.drained = drained
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer close(drained)
		r.drainOutput(name, child.Output, c.output)
	}()
	if child.Cleanup != nil {
		defer child.Cleanup()
	}
	fail := func(err error) (*conn, int, error) {
		p := child.Proc
		gone := p.Status() != "" || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, ErrMainNotCalled)
		if gone {
			// Gone already, or going: let it finish to learn its status.
			select {
			case <-p.Done():
			case <-time.After(500 * time.Millisecond):
				p.Kill()
				<-p.Done()
			}
		} else {
			p.Kill()
			<-p.Done()
		}
		child.Conn.Close()
		select { // let the last lines it printed arrive
		case <-drained:
		case <-time.After(500 * time.Millisecond):
			child.Output.Close() // something it started holds the pipe open
		}
		if stoppedBy(ctx) || errors.Is(err, ErrShutdown) {
			return nil, 0, shutdownError(label, spec.Method)
		}
		refused := child.Refusal()
		// The stream's deadline may end a write as EOF a hair before ctx
		// itself ends: a deadline passed is a timeout either way.
		dl, ok := ctx.Deadline()
		passed := ok && !time.Now().Before(dl)
		if refused == nil && (errors.Is(err, os.ErrDeadlineExceeded) || ctx.Err() == context.DeadlineExceeded || passed) {
			return nil, 0, timedOut(progress.where())
		}
		a := connect.Attempt{Err: err, Refusal: refused, Suspicion: child.Suspicion(), Output: connect.Elide(c.output.String())}
		if gone {
			a.Status = p.Status()
		}
		if errors.Is(err, ErrMainNotCalled) {
			return nil, 0, &StreamError{Context: label, Method: spec.Method, Reason: "the child program does not call actors.Main() first",
				Output: a.Output, Cause: ErrMainNotCalled, Err: err}
		}
		reason, cause := m.Explain(spec, a)
		return nil, 0, &StreamError{Context: label, Method: spec.Method, Reason: reason, Output: a.Output, Cause: cause, Err: err}
	}
	deadline, _ := ctx.Deadline()
	child.Conn.SetDeadline(deadline)
	stopWatch := context.AfterFunc(ctx, func() { child.Conn.SetDeadline(time.Unix(1, 0)) })
	hello := &messages.Hello{Version: messages.MinProtocolVersion, MaxVersion: messages.ProtocolVersion, ID: id, ParentID: r.id,
		Name: name, MaxFrame: r.cfg.maxFrame, LogLevel: int(r.cfg.logLevel), Upward: r.cfg.upward, Sideways: r.cfg.sideways, Ancestors: r.ancestors}
	hello.HeartbeatMS, hello.HeartbeatMisses = hb.hello()
	helloSent := false // with stage 1's guess, ahead of the child
	var stage1 *bootstrap.Result
	if m.Shell {
		if len(child.Phases) > 0 {
			progress.startStage1("in stage 1 (the far shell did not answer)")
		} else {
			progress.startStage1("in stage 1 (nothing came back from " + spec.Method + ", or from the shell it starts)")
		}
		self, err := r.selfBinary()
		if err != nil {
			return fail(fmt.Errorf("reading this program's binary to send: %w", err))
		}
		// Where nothing but the shell reads the child's input, this
		// program's hash goes at once, and the Hello with it: a cached
		// build then starts and answers without a round trip for each.
		var early []byte
		if !child.Terminal {
			if early, err = transport.ValueFrame(hello); err != nil {
				return fail(err)
			}
		}
		reportUpload, uploaded := r.uploadReporter(name)
		rw := &firstReadWriter{ReadWriter: child.Conn, first: progress.answered}
		res, err := bootstrap.Run(ctx, rw, self, r.provider(ctx, spec), bootstrap.Options{NoCache: spec.NoCache,
			Guess: !child.Terminal, Early: early, Fresh: fresh,
			Sending: func(platform, cacheDir string, size int64) {
				progress.upload(0, size)
				r.logger.Info("sending this program (first contact)", "context", name, "platform", platform,
					"cache", cacheDir, "mib", float64(size*10>>20)/10)
			},
			Progress: func(sent, total int64) {
				progress.upload(sent, total)
				if reportUpload != nil {
					reportUpload(sent, total)
				}
			}})
		uploaded()
		stage1 = &res
		if res.Guessed {
			s.Counted(early)
			helloSent = true
		}
		if err == nil {
			progress.stage1Done(res.Probe, res.Transfer, res.Uploaded, res.Sent)
		}
		if err != nil {
			var pe *bootstrap.PlatformError
			if errors.As(err, &pe) {
				return fail(fmt.Errorf("%w: %w", ErrBootstrap, pe))
			}
			return fail(fmt.Errorf("%w: %w", ErrBootstrap, err))
		}
		if res.Uploaded {
			r.logger.Debug("binary uploaded", "context", name, "bytes", res.Sent, "cache", res.CacheDir, "delta_from", res.Delta, "form", res.Form, "rtt", res.RTT)
		}
	}
	if !m.Shell {
		progress.set("in the handshake (the child did not answer)")
	}
	var rep messages.HelloReply
	shaking := time.Now()
	if !helloSent {
		err = s.WriteValue(hello)
	}
	if err == nil {
		err = s.ReadValue(&rep)
	}
	if !stopWatch() && err == nil {
		err = os.ErrDeadlineExceeded // the deadline fired as the handshake ended
	}
	child.Conn.SetDeadline(time.Time{})
	if err != nil {
		return fail(err)
	}
	r.logPhases(name, started, child.Phases, stage1, time.Since(shaking), time.Since(began))
	if rep.Refusal == messages.RefusalNoMain {
		return fail(fmt.Errorf("the child refused the stream: %w", ErrMainNotCalled))
	}
	if rep.ID != id {
		return fail(fmt.Errorf("%w: the child answered as context %d, not %d", ErrHandshake, rep.ID, id))
	}
	if rep.Error != "" {
		return fail(fmt.Errorf("%w: the child refused the stream: %q", ErrHandshake, rep.Error))
	}
	if rep.Version < messages.MinProtocolVersion || rep.Version > messages.ProtocolVersion {
		return fail(fmt.Errorf("%w: protocol version mismatch: this side speaks %d to %d, the child chose %d",
			ErrHandshake, messages.MinProtocolVersion, messages.ProtocolVersion, rep.Version))
	}
	if r.isClosing() {
		return fail(ErrShutdown)
	}
	if err := r.ask(&addRoutes{c: c, ids: []uint32{id}, names: []string{name}}); err != nil {
		return fail(err)
	}
	if !m.Remote {
		c.session = rep.PID // on this host: the child leads a session (see session.go)
	}
	// Routed first, then read: its first frames come from a known source.
	if err := r.startStream(c, hb, rep.Version); err != nil {
		r.ask(&dropConn{c: c, err: err})
		return fail(err)
	}
	return c, rep.PID, nil
}
