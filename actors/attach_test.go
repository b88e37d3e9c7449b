package actors_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/mitogo/mitogo/actors"
)

// attachJob asks a process to attach to the socket at Path and call
// test.echo in context Target of the tree it joined.
type attachJob struct {
	Path   string
	Target int
	Word   string
}

type attachOutcome struct {
	ID, ParentID int
	Name         string
	Echo         string
	Err          string
	Unsafe       bool // the error matches ErrUnsafeSocket
	Refused      bool // the error matches ErrRefused
}

// attachCall runs in a child of another tree: a process that attaches.
var attachCall = actors.Register("test.attachCall", func(ctx context.Context, j attachJob) (attachOutcome, error) {
	a, err := actors.Attach(ctx, j.Path, actors.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		return attachOutcome{Err: err.Error(), Unsafe: errors.Is(err, actors.ErrUnsafeSocket)}, nil
	}
	defer a.Shutdown(context.Background())
	out := attachOutcome{ID: a.ID(), ParentID: a.ParentID(), Name: a.Name()}
	out.Echo, err = echo.Call(ctx, a.Context(j.Target), j.Word)
	if err != nil {
		out.Err, out.Refused = err.Error(), errors.Is(err, actors.ErrRefused)
	}
	return out, nil
})

// dialRaw runs as another user: it connects to the socket and reports
// whether the listener sent anything (a hello) before closing.
var dialRaw = actors.Register("test.dialRaw", func(ctx context.Context, path string) (string, error) {
	c, err := net.Dial("unix", path)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		return "", err
	}
	return string(b), nil
})

// listenIn makes the context it runs in listen at a path (for tests of a
// listener that is not the master).
var listenIn = actors.Register("test.listen", func(ctx context.Context, path string) (bool, error) {
	_, err := actors.RouterFrom(ctx).Listen(path, actors.ListenAllow("test.echo"))
	return err == nil, err
})

func socketPath(t *testing.T) string {
	return filepath.Join(t.TempDir(), "run", "mitogo.sock")
}

// A process of another tree attaches, gets an id from the master and a
// name below the listener, and calls what the listener allows: functions
// of the listener (ListenAllow) and of its descendants (ListenDescendants).
func TestAttachCallsIntoTheTree(t *testing.T) {
	r := newRouter(t)
	path := socketPath(t)
	if _, err := r.Listen(path, actors.ListenAllow("test.echo"), actors.ListenDescendants()); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Dir(path))
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("socket directory: %v, %v; want mode 0700", fi.Mode(), err)
	}
	worker := local(t, r, actors.Name("worker"))

	other := newRouter(t) // the attaching process belongs to another tree
	p := local(t, other)
	got, err := attachCall.Call(ctxT(t), p, attachJob{Path: path, Target: 0, Word: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Err != "" || got.Echo != "hi" {
		t.Fatalf("echo in the listener from an attached process: %+v", got)
	}
	if got.ID == 0 || got.ID == worker.ID() || got.ParentID != 0 || got.Name != "attach."+itoa(got.ID) {
		t.Fatalf("attached as %+v; want a fresh id below the master", got)
	}
	got2, err := attachCall.Call(ctxT(t), p, attachJob{Path: path, Target: worker.ID(), Word: "down"})
	if err != nil {
		t.Fatal(err)
	}
	if got2.Err != "" || got2.Echo != "down" || got2.ID == got.ID {
		t.Fatalf("echo in the listener's child from an attached process: %+v (first attach %d)", got2, got.ID)
	}
}

// Without the listener's leave, an attached process may call nothing.
func TestAttachPolicyRefuses(t *testing.T) {
	r := newRouter(t)
	path := socketPath(t)
	if _, err := r.Listen(path); err != nil {
		t.Fatal(err)
	}
	worker := local(t, r)
	p := local(t, newRouter(t))
	for _, target := range []int{0, worker.ID()} {
		got, err := attachCall.Call(ctxT(t), p, attachJob{Path: path, Target: target, Word: "x"})
		if err != nil {
			t.Fatal(err)
		}
		if !got.Refused {
			t.Fatalf("call in context %d from an attached process: %+v; want refused by policy", target, got)
		}
	}
}

// A listener that is not the master gets the id from the master, and the
// master learns the route: it can call the attached router's functions.
func TestAttachToChildListener(t *testing.T) {
	r := newRouter(t)
	worker := local(t, r, actors.Name("worker"))
	path := socketPath(t)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := listenIn.Call(ctxT(t), worker, path); err != nil {
		t.Fatal(err)
	}
	a, err := actors.Attach(ctxT(t), path, actors.WithLogger(discard()))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown(context.Background())
	if a.ParentID() != worker.ID() || a.ID() <= worker.ID() || a.Name() != "worker/attach."+itoa(a.ID()) {
		t.Fatalf("attached as %d %q below %d; want a fresh id below %d", a.ID(), a.Name(), a.ParentID(), worker.ID())
	}
	if got, err := echo.Call(ctxT(t), a.Parent(), "up"); err != nil || got != "up" {
		t.Fatalf("echo in the listener = %q, %v", got, err)
	}
	// The master learns the route as the listener's route update travels
	// up; a call from the attached process would come after it.
	waitFor(t, func() bool {
		routes, err := actors.Contexts(ctxT(t), r.Self())
		return err == nil && slices.ContainsFunc(routes, func(ri actors.RouteInfo) bool { return ri.ID == a.ID() })
	})
	if got, err := echo.Call(ctxT(t), r.Context(a.ID()), "from the master"); err != nil || got != "from the master" {
		t.Fatalf("echo from the master in the attached router = %q, %v", got, err)
	}
}

// When the attached process leaves, its route goes; when the listener
// shuts down, the attached router is detached and its calls fail.
func TestAttachLeaveAndDetach(t *testing.T) {
	r, err := actors.NewRouter(actors.WithLogger(discard()))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Shutdown(context.Background())
	path := socketPath(t)
	if _, err := r.Listen(path, actors.ListenAllow("test.echo", actors.ContextsFunction)); err != nil {
		t.Fatal(err)
	}
	routed := func(id int) bool {
		routes, err := actors.Contexts(ctxT(t), r.Self())
		if err != nil {
			t.Fatal(err)
		}
		return slices.ContainsFunc(routes, func(ri actors.RouteInfo) bool { return ri.ID == id })
	}
	a, err := actors.Attach(ctxT(t), path, actors.WithLogger(discard()))
	if err != nil {
		t.Fatal(err)
	}
	// The listener adds the route once it has the attached side's reply,
	// which Attach does not wait for (see Attach).
	waitFor(t, func() bool { return routed(a.ID()) })
	if err := a.Shutdown(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return !routed(a.ID()) })

	b, err := actors.Attach(ctxT(t), path, actors.WithLogger(discard()))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Shutdown(context.Background())
	if b.ID() == a.ID() {
		t.Fatalf("a second attach got id %d again", b.ID())
	}
	if err := r.Shutdown(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.Detached():
	case <-ctxT(t).Done():
		t.Fatal("the attached router was not detached when its listener shut down")
	}
	_, err = echo.Call(ctxT(t), b.Parent(), "x")
	var ce *actors.ChannelError
	if !errors.As(err, &ce) {
		t.Fatalf("call after the listener went: %v; want a *ChannelError", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket after Shutdown: %v; want it removed", err)
	}
}

// A directory open to others is refused on both sides.
func TestAttachRefusesOpenDirectory(t *testing.T) {
	r := newRouter(t)
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Listen(filepath.Join(dir, "s")); !errors.Is(err, actors.ErrUnsafeSocket) {
		t.Fatalf("Listen in a 0755 directory: %v; want ErrUnsafeSocket", err)
	}
	path := socketPath(t)
	if _, err := r.Listen(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Dir(path), 0o711); err != nil {
		t.Fatal(err)
	}
	if _, err := actors.Attach(ctxT(t), path, actors.WithLogger(discard())); !errors.Is(err, actors.ErrUnsafeSocket) {
		t.Fatalf("Attach through a 0711 directory: %v; want ErrUnsafeSocket", err)
	}
}

// A process of another user is refused by the listener (SO_PEERCRED),
// and refuses a socket whose directory is not its own.
func TestAttachRefusesAnotherUser(t *testing.T) {
	needSudo(t)
	r := newRouter(t)
	path := socketPath(t)
	if _, err := r.Listen(path, actors.ListenAllow("test.echo")); err != nil {
		t.Fatal(err)
	}
	// Opened on purpose, after Listen checked it, so that the other user
	// reaches the socket at all.
	run := filepath.Dir(path) // in t.TempDir(), in a directory of the test's own
	for _, p := range []string{filepath.Dir(filepath.Dir(run)), filepath.Dir(run), run} {
		if err := os.Chmod(p, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	c, err := r.Sudo(ctxT(t), actors.User("mitogo-test"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := dialRaw.Call(ctxT(t), c, path)
	if err != nil || got != "" {
		t.Fatalf("the listener sent %q (%v) to a process of another user; want nothing", got, err)
	}
	out, err := attachCall.Call(ctxT(t), c, attachJob{Path: path, Word: "x"})
	if err != nil || !out.Unsafe {
		t.Fatalf("Attach as another user: %+v, %v; want ErrUnsafeSocket", out, err)
	}
}

// attachStay attaches the process it runs in and stays attached until the
// process exits; it returns the attached context's id.
var attachStay = actors.Register("test.attachStay", func(ctx context.Context, path string) (int, error) {
	a, err := actors.Attach(ctx, path, actors.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		return 0, err
	}
	return a.ID(), nil // kept until the process exits
})

// With ListenHeartbeat, an attached process that stops answering is
// declared dead and its route removed, though its socket stays open.
func TestAttachHeartbeat(t *testing.T) {
	r := newRouter(t)
	path := socketPath(t)
	if _, err := r.Listen(path, actors.ListenHeartbeat(100*time.Millisecond, 2)); err != nil {
		t.Fatal(err)
	}
	p := local(t, newRouter(t))
	id, err := attachStay.Call(ctxT(t), p, path)
	if err != nil {
		t.Fatal(err)
	}
	routed := func() bool {
		routes, err := actors.Contexts(ctxT(t), r.Self())
		if err != nil {
			t.Fatal(err)
		}
		return slices.ContainsFunc(routes, func(ri actors.RouteInfo) bool { return ri.ID == id })
	}
	if !routed() {
		t.Fatalf("context %d attached but not routed", id)
	}
	rep, err := actors.Debug(ctxT(t), r.Self(), actors.DebugRequest{Streams: true})
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(rep.Streams, func(s actors.StreamInfo) bool { return s.Peer == id }); i < 0 || !rep.Streams[i].Attached || !rep.Streams[i].Heartbeat {
		t.Fatalf("streams %+v; want the attached one, with a heartbeat", rep.Streams)
	}
	stop(t, p.ProcessID())
	waitFor(t, func() bool { return !routed() })
}
