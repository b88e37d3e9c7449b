package actors

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mitogo/mitogo/bootstrap"
	"github.com/mitogo/mitogo/messages"
	"github.com/mitogo/mitogo/transport"
)

// Local starts a child context on this machine: a copy of this program
// (which must call Main first) connected over a socketpair. With Via(c) the
// child is started by c and becomes c's child.
func (r *Router) Local(ctx context.Context, opts ...ConnectOption) (*Context, error) {
	return r.connect(ctx, "local", opts)
}

// Sudo starts a child context as another user through sudo, on the
// machine of the context it is made from (Via; this one by default). The
// binary is started by a short sh stage 1, which copies it into the user's
// cache first when it is not there. Options: User (default root), Tool
// (the path of sudo). Without a password sudo is run with -n, so a sudoers
// entry that wants one fails at once with a *StreamError saying so.
func (r *Router) Sudo(ctx context.Context, opts ...ConnectOption) (*Context, error) {
	return r.connect(ctx, "sudo", opts)
}

// connect starts a supervised child with the given method.
func (r *Router) connect(ctx context.Context, method string, opts []ConnectOption) (*Context, error) {
	cc := defaultConnectConfig()
	for _, o := range opts {
		o(&cc)
	}
	spec := methodSpec{Method: method, Path: cc.path, Args: cc.args, User: cc.user, Tool: cc.tool, SSH: cc.ssh}
	if method == "sudo" || method == "openssh" || method == "su" || method == "doas" {
		spec.Secret = cc.password
	}
	spec.SSHArgs, spec.NoCache, spec.BinaryOwner = cc.sshArgs, cc.noCache, r.id
	spec.PreserveEnv, spec.Login = cc.preserveEnv, cc.login
	if (method == "ssh" || method == "openssh") && cc.user != "" {
		spec.SSH.User = cc.user
	}
	if (method == "sudo" || method == "su" || method == "doas") && spec.User == "" {
		spec.User = "root"
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
		last = spec.defaultName(id)
	}
	via := cc.via
	if via != nil && via.id == r.id {
		via = nil
	}
	name := r.childName(last)
	if via != nil {
		name = via.name + "/" + last
	}
	hb := cc.heartbeat.resolve(method, cc.heartbeatSet)
	c := &Context{r: r, id: id, name: name, up: make(chan struct{}), done: make(chan struct{})}
	spec.BinaryToken = r.addBinarySource(binarySource{paths: cc.binaries, fn: cc.binaryFunc}, c)
	c.sup = &supervision{c: c, strategy: cc.strategy, connect: func(ctx context.Context) (int, error) {
		ctx, cancel := context.WithTimeout(ctx, cc.timeout)
		defer cancel()
		ctx, stop := r.unlessStopping(ctx)
		defer stop()
		if via == nil {
			_, pid, err := r.startChild(ctx, id, name, spec, cc.timeout, hb)
			return pid, err
		}
		rep, err := connectFunc.Call(ctx, via, connectRequest{ID: id, Name: name, Spec: spec, Timeout: cc.timeout, Heartbeat: hb})
		if err != nil && stoppedBy(ctx) {
			return 0, shutdownError(name, method)
		}
		return rep.PID, connectError(name, method, err, cc.timeout)
	}}
	r.mu.Lock()
	r.contexts[id] = c
	r.mu.Unlock()
	if err := c.sup.start(ctx); err != nil {
		r.mu.Lock()
		delete(r.contexts, id)
		r.mu.Unlock()
		c.sup.stop()
		return nil, err
	}
	return c, nil
}

// connectError turns the failure of a connection made by another context
// back into the error type it had there.
func connectError(name, method string, err error, timeout time.Duration) error {
	var ce *CallError
	if !errors.As(err, &ce) {
		return err
	}
	switch ce.Type {
	case "*actors.TimeoutError":
		return &TimeoutError{Context: name, Op: "connect", After: timeout}
	case "*actors.StreamError":
		reason := strings.TrimPrefix(ce.Message, fmt.Sprintf("mitogo: connecting %s (%s): ", name, method))
		output := ""
		if i := strings.LastIndex(reason, "; it printed: "); i >= 0 {
			if s, err := strconv.Unquote(reason[i+len("; it printed: "):]); err == nil {
				reason, output = reason[:i], s
			}
		}
		return &StreamError{Context: name, Method: method, Reason: reason, Output: output}
	}
	return &StreamError{Context: name, Method: method, Reason: err.Error(), Err: err}
}

type connectRequest struct {
	ID      uint32        `msgpack:"id"`
	Name    string        `msgpack:"name"`
	Spec    methodSpec    `msgpack:"spec"`
	Timeout time.Duration `msgpack:"timeout"`

	Heartbeat heartbeatConfig `msgpack:"heartbeat"`
}

type connectReply struct {
	PID int `msgpack:"pid"`
}

const fnAllocateID = "mitogo.allocate_id"

// System functions: a context asked to start a child for another, and the
// master handing out context ids.
var (
	connectFunc = Register("mitogo.connect", func(ctx context.Context, req connectRequest) (connectReply, error) {
		r := RouterFrom(ctx)
		_, pid, err := r.startChild(ctx, req.ID, req.Name, req.Spec, req.Timeout, req.Heartbeat)
		return connectReply{PID: pid}, err
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
func (r *Router) startChild(ctx context.Context, id uint32, name string, spec methodSpec, timeout time.Duration, hb heartbeatConfig) (*conn, int, error) {
	child, err := spec.start(ctx, r)
	if err != nil {
		if stoppedBy(ctx) {
			return nil, 0, shutdownError(name, spec.Method)
		}
		if ctx.Err() == context.DeadlineExceeded || errors.Is(err, context.DeadlineExceeded) {
			return nil, 0, &TimeoutError{Context: name, Op: "connect", After: timeout}
		}
		return nil, 0, &StreamError{Context: name, Method: spec.Method, Reason: err.Error(), Err: err}
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
		exited := "it"
		p := child.Proc
		if p.Status() != "" || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, ErrMainNotCalled) {
			// Gone already, or going: let it finish to learn its status.
			select {
			case <-p.Done():
			case <-time.After(500 * time.Millisecond):
				p.Kill()
				<-p.Done()
			}
			exited = "it (" + p.Status() + ")"
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
			return nil, 0, shutdownError(name, spec.Method)
		}
		refused := child.Refusal()
		if refused == "" && (errors.Is(err, os.ErrDeadlineExceeded) || ctx.Err() == context.DeadlineExceeded) {
			return nil, 0, &TimeoutError{Context: name, Op: "connect", After: timeout}
		}
		reason := err.Error()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) {
			reason = "EOF during bootstrap: " + exited + " exited before its handshake"
			if spec.Method == "local" {
				reason += " (does its main call actors.Main first?)"
			}
		}
		// From weakest to strongest: a suspicion (a password taken, then
		// the tool ended), what the far side printed, a refusal seen.
		if why := child.Suspicion(); why != "" {
			reason = fmt.Sprintf("%s to %s: %s", spec.Method, spec.User, why)
		}
		if why := spec.explain(c.output.String()); why != "" {
			reason = why
		}
		if refused != "" {
			reason = fmt.Sprintf("%s to %s: %s", spec.Method, spec.User, refused)
		}
		if errors.Is(err, ErrMainNotCalled) {
			reason = "the child program does not call actors.Main() first"
		}
		return nil, 0, &StreamError{Context: name, Method: spec.Method, Reason: reason, Output: c.output.String(), Err: err}
	}
	deadline, _ := ctx.Deadline()
	child.Conn.SetDeadline(deadline)
	stopWatch := context.AfterFunc(ctx, func() { child.Conn.SetDeadline(time.Unix(1, 0)) })
	if spec.shell() {
		self, err := r.selfBinary()
		if err != nil {
			return fail(fmt.Errorf("reading this program's binary to send: %w", err))
		}
		res, err := bootstrap.Run(child.Conn, self, r.provider(ctx, spec), bootstrap.Options{NoCache: spec.NoCache,
			Sending: func(platform, cacheDir string, size int64) {
				r.logger.Info("sending this program (first contact)", "context", name, "platform", platform,
					"cache", cacheDir, "mib", float64(size*10>>20)/10)
			}})
		if err != nil {
			var pe *bootstrap.PlatformError
			if errors.As(err, &pe) {
				return fail(pe)
			}
			return fail(fmt.Errorf("bootstrap: %w", err))
		}
		if res.Uploaded {
			r.logger.Debug("binary uploaded", "context", name, "bytes", res.Sent, "cache", res.CacheDir)
		}
	}
	hello := &messages.Hello{Version: messages.MinProtocolVersion, MaxVersion: messages.ProtocolVersion, ID: id, ParentID: r.id,
		Name: name, MaxFrame: r.cfg.maxFrame, LogLevel: int(r.cfg.logLevel), Upward: r.cfg.upward, Sideways: r.cfg.sideways}
	hello.HeartbeatMS, hello.HeartbeatMisses = hb.hello()
	var rep messages.HelloReply
	err = s.WriteValue(hello)
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
	if rep.Refusal == messages.RefusalNoMain {
		return fail(fmt.Errorf("the child refused the stream: %w", ErrMainNotCalled))
	}
	if rep.ID != id {
		return fail(fmt.Errorf("the child answered as context %d, not %d", rep.ID, id))
	}
	if rep.Error != "" {
		return fail(fmt.Errorf("the child refused the stream: %s", rep.Error))
	}
	if rep.Version < messages.MinProtocolVersion || rep.Version > messages.ProtocolVersion {
		return fail(fmt.Errorf("protocol version mismatch: this side speaks %d to %d, the child chose %d",
			messages.MinProtocolVersion, messages.ProtocolVersion, rep.Version))
	}
	if r.isClosing() {
		return fail(ErrShutdown)
	}
	if err := r.ask(&addRoutes{c: c, ids: []uint32{id}, names: []string{name}}); err != nil {
		return fail(err)
	}
	if spec.Method == "local" || spec.Method == "sudo" || spec.Method == "su" || spec.Method == "doas" {
		c.session = rep.PID // on this host: the child leads a session (see session.go)
	}
	r.mu.Lock()
	r.conns[c] = struct{}{}
	r.mu.Unlock()
	c.startHeartbeatVersion(hb, rep.Version)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		c.serve()
	}()
	return c, rep.PID, nil
}
