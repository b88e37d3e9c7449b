package actors

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/mitogo/mitogo/messages"
	"github.com/mitogo/mitogo/transport"
)

// Attaching to a running tree (Mitogen's mitogen.unix): a context listens
// on a Unix socket (Router.Listen), and another process of the same user
// on the same machine connects to it (Attach) and becomes a context of
// the tree, the listener's child. The listener plays the parent's part of
// the handshake (messages.Hello, HelloReply) and gets the id from the
// master, as for a child it starts; the attached process's stream is a
// conn like a child's, whose loss removes its route, with heartbeats if
// the listener asks for them. What the attached process may call is the
// listener's policy (ListenAllow, ListenDescendants) and, beyond the
// listener, the tree's (AllowUpward, AllowSideways).

// Sentinels of attaching.
var (
	// ErrUnsafeSocket: the socket, its directory or the process at its
	// other end is not private to this user: the directory must be this
	// user's and closed to others (mode 0700), the socket this user's, and
	// the peer (SO_PEERCRED) of this user.
	ErrUnsafeSocket = errors.New("attach socket not private to this user")
	// ErrDetached: the listener of an attached router went away (it shut
	// down, closed the stream, or its heartbeat went silent): calls into
	// its tree fail with a *ChannelError matching it.
	ErrDetached = errors.New("detached from the tree")
)

// ListenOption configures a Listener.
type ListenOption func(*listenConfig)

type listenConfig struct {
	policy    attachPolicy
	timeout   time.Duration
	heartbeat heartbeatConfig
}

// attachPolicy is what processes attached through one listener may reach
// beyond what the tree allows every descendant (AllowUpward, AllowSideways).
type attachPolicy struct {
	functions   map[string]bool // in the listener's context
	descendants bool            // every context below the listener
}

func (p *attachPolicy) allows(fn string) bool {
	return p != nil && (p.functions[fn] || p.functions["*"] || (p.descendants && fn == ContextsFunction))
}

// ListenAllow lets attached processes call the named functions in the
// listener's own context, as AllowUpward lets descendants (what the
// router allows upward is allowed to them too). "*" allows every function.
// Actor messages are named "actor:<name>", as for AllowUpward. Debugging
// the listener (Debug) is DebugFunction.
func ListenAllow(functions ...string) ListenOption {
	return func(c *listenConfig) {
		if c.policy.functions == nil {
			c.policy.functions = map[string]bool{}
		}
		for _, f := range functions {
			c.policy.functions[f] = true
		}
	}
}

// ListenDescendants lets attached processes call any function in every
// context below the listener (and debug them), as the listener itself
// may, and list the listener's contexts ("mitogo.contexts"). Those
// contexts may answer them (replies, channel items) but not call them.
// Contexts outside the listener's subtree are reached as the tree's policy
// says: an ancestor's functions with its AllowUpward, other subtrees with
// AllowSideways.
func ListenDescendants() ListenOption {
	return func(c *listenConfig) { c.policy.descendants = true }
}

// ListenTimeout bounds each attach's handshake (default 30s).
func ListenTimeout(d time.Duration) ListenOption {
	return func(c *listenConfig) { c.timeout = d }
}

// ListenHeartbeat makes the listener and each attached process watch each
// other as Heartbeat does for a connection (default: none: the end of the
// socket tells either side of the other's death).
func ListenHeartbeat(interval time.Duration, misses int) ListenOption {
	return func(c *listenConfig) {
		c.heartbeat = heartbeatConfig{Interval: interval, Misses: misses}
		if c.heartbeat.Interval <= 0 {
			c.heartbeat = heartbeatConfig{}
		} else if c.heartbeat.Misses <= 0 {
			c.heartbeat.Misses = defaultHeartbeatMisses
		}
	}
}

// Listener accepts processes that attach to its router's tree. Close it,
// or shut the router down, to stop accepting; processes attached stay
// until they leave or the router shuts down.
type Listener struct {
	r    *Router
	path string
	ln   *net.UnixListener
	cfg  listenConfig

	ctx    context.Context // cancelled by Close: handshakes in flight end
	cancel context.CancelFunc
	once   sync.Once
	wg     sync.WaitGroup // the accept loop and the handshakes in flight
}

// listeners are the Listeners of a router, closed by its Shutdown.
type listeners struct {
	mu  sync.Mutex
	set map[*Listener]struct{}
}

func (ls *listeners) add(l *Listener) {
	ls.mu.Lock()
	if ls.set == nil {
		ls.set = map[*Listener]struct{}{}
	}
	ls.set[l] = struct{}{}
	ls.mu.Unlock()
}

func (ls *listeners) remove(l *Listener) {
	ls.mu.Lock()
	delete(ls.set, l)
	ls.mu.Unlock()
}

// closeAll closes every listener and waits for their handshakes.
func (ls *listeners) closeAll() {
	ls.mu.Lock()
	var all []*Listener
	for l := range ls.set {
		all = append(all, l)
	}
	ls.mu.Unlock()
	for _, l := range all {
		l.Close()
	}
}

// Listen accepts processes of this user that attach to this context's
// tree (Attach) on a Unix socket at path. The socket's directory is made
// (mode 0700) if it does not exist; an existing one must be this user's
// and closed to others (mode 0700 or stricter), or Listen fails with an
// error matching ErrUnsafeSocket. A stale socket at path (nobody listens)
// is replaced. Each process that attaches becomes a child of this
// context, named "attach.<id>" below it, with the id the master allocates;
// a process of another user is refused (SO_PEERCRED). What it may call is
// what the tree lets this context's descendants call, plus what opts allow
// (ListenAllow, ListenDescendants). The router's Shutdown closes the
// listener and stops the attached processes' streams.
func (r *Router) Listen(path string, opts ...ListenOption) (*Listener, error) {
	cfg := listenConfig{timeout: 30 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	if r.isClosing() {
		return nil, fmt.Errorf("mitogo: listen %s: %w", path, ErrShutdown)
	}
	dir := filepath.Dir(path)
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("mitogo: listen %s: %w", path, err)
	}
	if err := checkPrivateDir(dir); err != nil {
		return nil, fmt.Errorf("mitogo: listen %s: %w", path, err)
	}
	if err := removeStale(path); err != nil {
		return nil, fmt.Errorf("mitogo: listen %s: %w", path, err)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("mitogo: listen %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("mitogo: listen %s: %w", path, err)
	}
	l := &Listener{r: r, path: path, ln: ln, cfg: cfg}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	r.listeners.add(l)
	l.wg.Add(1)
	go l.accept()
	return l, nil
}

// Path is the socket's path.
func (l *Listener) Path() string { return l.path }

// Close stops accepting, ends the handshakes in flight, removes the
// socket and waits for the listener's goroutines. Processes attached
// already stay attached. It is idempotent.
func (l *Listener) Close() error {
	var err error
	l.once.Do(func() {
		l.cancel()
		err = l.ln.Close()
		l.wg.Wait()
		l.r.listeners.remove(l)
	})
	return err
}

func (l *Listener) accept() {
	defer l.wg.Done()
	for {
		nc, err := l.ln.AcceptUnix()
		if err != nil {
			if l.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors, say: wait a moment rather than spin.
			l.r.logger.Warn("accepting an attach", "socket", l.path, "error", err)
			select {
			case <-l.ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			if err := l.serve(nc); err != nil {
				nc.Close()
				l.r.logger.Warn("attach refused", "socket", l.path, "error", err)
			}
		}()
	}
}

// serve checks the peer, allocates its id and performs the handshake.
func (l *Listener) serve(nc *net.UnixConn) error {
	r := l.r
	uid, pid, err := peerCred(nc)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnsafeSocket, err)
	}
	if uid != os.Getuid() {
		return fmt.Errorf("%w: process %d is of uid %d, not %d", ErrUnsafeSocket, pid, uid, os.Getuid())
	}
	ctx, cancel := context.WithTimeout(l.ctx, l.cfg.timeout)
	defer cancel()
	ctx, stop := r.unlessStopping(ctx)
	defer stop()
	id, err := r.allocateID(ctx, r.id)
	if err != nil {
		return fmt.Errorf("allocating a context id: %w", err)
	}
	name := r.childName("attach." + itoa(id))
	s := transport.NewStream(nc, r.cfg.maxFrame)
	c := newConn(r, s, id, name, false)
	c.attach = &l.cfg.policy
	deadline, _ := ctx.Deadline()
	nc.SetDeadline(deadline)
	stopWatch := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	hello := &messages.Hello{Version: messages.MinProtocolVersion, MaxVersion: messages.ProtocolVersion, ID: id, ParentID: r.id,
		Name: name, MaxFrame: r.cfg.maxFrame, LogLevel: int(r.cfg.logLevel), Upward: r.cfg.upward, Sideways: r.cfg.sideways, Ancestors: r.ancestors}
	hello.HeartbeatMS, hello.HeartbeatMisses = l.cfg.heartbeat.hello()
	var rep messages.HelloReply
	err = s.WriteValue(hello)
	if err == nil {
		err = s.ReadValue(&rep)
	}
	if !stopWatch() && err == nil {
		err = os.ErrDeadlineExceeded
	}
	nc.SetDeadline(time.Time{})
	switch {
	case err != nil:
		return fmt.Errorf("%w: process %d: %w", ErrHandshake, pid, err)
	case rep.Error != "":
		return fmt.Errorf("%w: process %d refused the stream: %q", ErrHandshake, pid, rep.Error)
	case rep.ID != id:
		return fmt.Errorf("%w: process %d answered as context %d, not %d", ErrHandshake, pid, rep.ID, id)
	case rep.Version < messages.MinProtocolVersion || rep.Version > messages.ProtocolVersion:
		return fmt.Errorf("%w: process %d chose protocol version %d", ErrHandshake, pid, rep.Version)
	case r.isClosing() || l.ctx.Err() != nil:
		return ErrShutdown
	}
	if err := r.ask(&addRoutes{c: c, ids: []uint32{id}, names: []string{name}}); err != nil {
		return err
	}
	if err := r.startStream(c, l.cfg.heartbeat, rep.Version); err != nil {
		r.ask(&dropConn{c: c, err: err})
		return err
	}
	r.logger.Info("process attached", "context", name, "pid", pid)
	return nil
}

// Attach connects to the Listener at path (Router.Listen, in another
// process of this user on this machine) and returns a router that is a
// context of that tree: the listener's child, with the id the tree's
// master gave it. Calls to the listener (Router.Parent), to the master
// (Router.Context(0)) and to other contexts of the tree by id go through
// the listener, as its policy allows. The router may start children of its
// own, which join the tree below it. opts configure it as for NewRouter
// (WithLogger: records stay in this process; AllowUpward, AllowSideways
// add to what the tree allows).
//
// Attach returns once it has answered the listener's handshake: the
// listener adds the route to it a moment later, and the contexts above
// the listener later still, as the route travels up. A call to the
// attached router from elsewhere in the tree made at once may fail with
// ErrNoRoute; calls from it work at once.
//
// Attach makes a new router: a router that already has children cannot
// join another tree (their ids were given by its own master and could
// collide), so there is no form for it. The socket's directory must be
// this user's with mode 0700, the socket this user's, and the listener of
// this user (SO_PEERCRED), or Attach fails with an error matching
// ErrUnsafeSocket.
//
// When the listener goes away, what waits on the tree fails with a
// *ChannelError matching ErrDetached, and Detached is closed; the router
// itself goes on until Shutdown, which also leaves the tree.
func Attach(ctx context.Context, path string, opts ...Option) (*Router, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.logger == nil {
		cfg.logger = slog.Default()
	}
	if err := checkPrivateDir(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("mitogo: attach %s: %w", path, err)
	}
	if err := checkOwnSocket(path); err != nil {
		return nil, fmt.Errorf("mitogo: attach %s: %w", path, err)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("mitogo: attach %s: %w", path, err)
	}
	nc := c.(*net.UnixConn)
	r, err := attachOver(ctx, nc, cfg)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("mitogo: attach %s: %w", path, err)
	}
	return r, nil
}

// attachOver is the attaching side of the handshake on nc.
func attachOver(ctx context.Context, nc *net.UnixConn, cfg config) (*Router, error) {
	uid, pid, err := peerCred(nc)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnsafeSocket, err)
	}
	if uid != os.Getuid() {
		return nil, fmt.Errorf("%w: the listener (process %d) is of uid %d, not %d", ErrUnsafeSocket, pid, uid, os.Getuid())
	}
	if deadline, ok := ctx.Deadline(); ok {
		nc.SetDeadline(deadline)
	}
	stopWatch := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	defer stopWatch()
	s := transport.NewStream(nc, 0)
	var hello messages.Hello
	if err := s.ReadValue(&hello); err != nil {
		return nil, fmt.Errorf("%w: reading the listener's hello: %w", ErrHandshake, err)
	}
	version, err := messages.ChooseVersion(hello.Versions())
	if err != nil {
		s.WriteValue(&messages.HelloReply{Version: messages.ProtocolVersion, Error: err.Error()})
		return nil, fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	s.SetMaxFrame(hello.MaxFrame)
	cfg.maxFrame = s.MaxFrame()
	cfg.upward = append(cfg.upward, hello.Upward...)
	cfg.sideways = cfg.sideways || hello.Sideways
	r := newRouter(hello.ID, hello.ParentID, hello.Name, cfg, cfg.logger)
	r.ancestors = append(hello.Ancestors[:len(hello.Ancestors):len(hello.Ancestors)], hello.ParentID)
	r.parent = newConn(r, s, hello.ParentID, "listener", true)
	r.detached = make(chan struct{})
	t := r.table.Load().clone()
	t.parent = r.parent
	r.table.Store(t)
	if err := s.WriteValue(&messages.HelloReply{Version: version, ID: r.id, PID: os.Getpid(), Platform: platform()}); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	if !stopWatch() {
		return nil, fmt.Errorf("%w: %w", ErrHandshake, ctx.Err())
	}
	nc.SetDeadline(time.Time{})
	r.ensureSystem()
	r.parent.startHeartbeatVersion(heartbeatFromHello(&hello), version)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.parent.serve()
	}()
	return r, nil
}

// Detached is closed when an attached router (Attach) has left its tree:
// its listener went away, or Shutdown. It is nil for other routers.
func (r *Router) Detached() <-chan struct{} { return r.detached }

// detach is an attached router's loss of its listener: the default route
// goes, and every call waiting on a context that was reached through it
// fails.
func (r *Router) detach(err error) {
	reason := "the tree it was reached through is gone"
	if err != nil {
		reason += ": " + err.Error()
	}
	r.ask(&detachParent{reason: reason})
	close(r.detached)
}

// detachParent: the attached router's stream to its listener is gone.
type detachParent struct {
	replyTo
	reason string
}

// detachParent drops the default route and fails the calls that took it.
func (a *routerActor) detachParent(m *detachParent) {
	r := a.r
	t := r.table.Load().clone()
	t.parent = nil
	r.table.Store(t)
	for _, p := range r.pending.takeUnrouted(t, r.id) {
		p.give(callResult{err: &ChannelError{Context: p.name, Reason: m.reason, Err: ErrDetached}})
	}
}

// leaveTree is Shutdown's last step in an attached router: its stream to
// the listener is closed and its reader joined, while the router actor
// still runs (the reader's loss is a message to it).
func (r *Router) leaveTree() {
	if r.detached == nil {
		return
	}
	r.parent.close(ErrShutdown)
	<-r.parent.done
}

// checkPrivateDir returns an error matching ErrUnsafeSocket unless dir is
// a directory (not a symbolic link) of this user, closed to others.
func checkPrivateDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	uid, ok := ownerOf(fi)
	switch {
	case !fi.IsDir():
		return fmt.Errorf("%w: %s is not a directory (%v)", ErrUnsafeSocket, dir, fi.Mode().Type())
	case !ok || uid != os.Getuid():
		return fmt.Errorf("%w: directory %s is owned by uid %d, not %d", ErrUnsafeSocket, dir, uid, os.Getuid())
	case fi.Mode().Perm()&0o077 != 0:
		return fmt.Errorf("%w: directory %s has mode %04o: others may reach the socket (want 0700)", ErrUnsafeSocket, dir, fi.Mode().Perm())
	}
	return nil
}

// checkOwnSocket returns an error matching ErrUnsafeSocket unless path is
// a socket of this user.
func checkOwnSocket(path string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	uid, ok := ownerOf(fi)
	switch {
	case fi.Mode().Type() != fs.ModeSocket:
		return fmt.Errorf("%w: %s is not a socket", ErrUnsafeSocket, path)
	case !ok || uid != os.Getuid():
		return fmt.Errorf("%w: socket %s is owned by uid %d, not %d", ErrUnsafeSocket, path, uid, os.Getuid())
	}
	return nil
}

func ownerOf(fi fs.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return -1, false
	}
	return int(st.Uid), true
}

// removeStale removes a socket at path that nobody listens on: one left
// by a process that did not close its listener. A live one is left, and
// listening then fails with "address already in use".
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return nil
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return os.Remove(path)
	}
	return nil
}
