package actors_test

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mitogo/mitogo/actors"
	"github.com/mitogo/mitogo/test/containertest"
)

// probe is what a child sees of where it runs.
type probe struct {
	UID    int    `msgpack:"uid"`
	PID    int    `msgpack:"pid"`
	Exe    string `msgpack:"exe"`    // its binary: in the cache it was uploaded to
	Marker string `msgpack:"marker"` // /etc/mitogo-rootfs: the rootfs's token
}

var probeFn = actors.Register("test.container.probe", func(ctx context.Context, _ struct{}) (probe, error) {
	exe, err := os.Executable()
	if err != nil {
		return probe{}, err
	}
	marker, _ := os.ReadFile("/etc/mitogo-rootfs")
	return probe{UID: os.Getuid(), PID: os.Getpid(), Exe: exe, Marker: string(marker)}, nil
})

// connectFn starts one context by a container method.
type connectFn func(ctx context.Context, opts ...actors.ConnectOption) (*actors.Context, error)

// expectInside checks that c runs in rootfs as uid, from a binary that
// stage 1 uploaded into cache (a directory prefix).
func expectInside(t *testing.T, c *actors.Context, rootfs *containertest.Rootfs, uid int, cache string) probe {
	t.Helper()
	p, err := probeFn.Call(ctxT(t), c, struct{}{})
	if err != nil {
		t.Fatalf("probe in %s: %v", c.Name(), err)
	}
	if p.Marker != rootfs.Token || p.UID != uid || !strings.HasPrefix(p.Exe, cache) {
		t.Fatalf("%s runs as uid %d from %s in a rootfs marked %q; want uid %d from %s* in %q",
			c.Name(), p.UID, p.Exe, p.Marker, uid, cache, rootfs.Token)
	}
	return p
}

// expectCause asserts err is a *StreamError whose cause is want.
func expectCause(t *testing.T, err error, want error) {
	t.Helper()
	var se *actors.StreamError
	if !errors.As(err, &se) || !errors.Is(err, want) {
		t.Fatalf("want a *StreamError matching %v, got %T %v", want, err, err)
	}
}

// expectGoneWhenStopped starts a call in c that blocks, stops what c runs
// in, and checks that the call fails with *ChannelError naming c.
func expectGoneWhenStopped(t *testing.T, c *actors.Context, stop func()) {
	t.Helper()
	p := sleepy.Go(ctxT(t), c, time.Hour)
	waitRunning(t, c)
	stop()
	_, err := p.Wait()
	expectGone(t, err, c.Name())
	<-c.Done()
}

// The common checks of a method that enters a running container: as root
// and as the rootfs's user (whose HOME is "/": the cache falls back to
// /tmp), through a local child, a blocked call failed by the container's
// end; the error causes of a missing container, a missing tool and a
// container without /bin/sh.
type containerCase struct {
	r       *actors.Router
	rootfs  *containertest.Rootfs
	connect func(target string) connectFn // the method for a target
	target  string                        // a running container of rootfs
	noShell string                        // a running container without /bin/sh
	missing string                        // a target that does not exist ("": the tool cannot tell)
	user    bool                          // the method takes User
	tool    func(string) actors.ConnectOption
	stop    func(t *testing.T)        // stops target (nil: it has no end of its own)
	stopped func(t *testing.T) string // a target that exists and is not running ("": none)
}

func (cc containerCase) run(t *testing.T) {
	r := cc.r
	c, err := cc.connect(cc.target)(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	expectInside(t, c, cc.rootfs, 0, "/root/.cache/mitogo/")
	if cc.user {
		cu, err := cc.connect(cc.target)(ctxT(t), actors.User(containertest.User))
		if err != nil {
			t.Fatal(err)
		}
		expectInside(t, cu, cc.rootfs, 1000, "/tmp/mitogo-1000/")
		_, err = cc.connect(cc.target)(ctxT(t), actors.User("nobody-mitogo"))
		expectCause(t, err, actors.ErrUnknownUser)
	}
	// Through a local child: the method runs there, and its failures keep
	// their causes on the way back.
	l := local(t, r)
	cv, err := cc.connect(cc.target)(ctxT(t), actors.Via(l))
	if err != nil {
		t.Fatal(err)
	}
	expectInside(t, cv, cc.rootfs, 0, "/root/.cache/mitogo/")
	if !strings.HasPrefix(cv.Name(), l.Name()+"/") {
		t.Errorf("name %q, want it under %q", cv.Name(), l.Name())
	}
	if cc.missing != "" {
		_, err = cc.connect(cc.missing)(ctxT(t), actors.Via(l))
		expectCause(t, err, actors.ErrNoContainer)
		_, err = cc.connect(cc.missing)(ctxT(t))
		expectCause(t, err, actors.ErrNoContainer)
	}
	_, err = cc.connect(cc.noShell)(ctxT(t))
	expectCause(t, err, actors.ErrNoShell)
	_, err = cc.connect(cc.target)(ctxT(t), cc.tool("/nonexistent/tool"), actors.Via(l))
	expectCause(t, err, actors.ErrToolMissing)
	if cc.stop == nil {
		return
	}
	// The container ends under a blocked call: *ChannelError, for the
	// contexts made from here and through the local child.
	pv := sleepy.Go(ctxT(t), cv, time.Hour)
	waitRunning(t, cv)
	expectGoneWhenStopped(t, c, func() { cc.stop(t) })
	_, err = pv.Wait()
	expectGone(t, err, cv.Name())
	if cc.stopped != nil {
		_, err = cc.connect(cc.stopped(t))(ctxT(t))
		expectCause(t, err, actors.ErrContainerNotRunning)
	}
}

func TestChroot(t *testing.T) {
	rootfs := containertest.NewRootfs(t)
	bare := containertest.NewRootfs(t, containertest.NoShell())
	rootfs.MountProc(t)
	bare.MountProc(t)
	r := newRouter(t)
	// A chroot has no end of its own (stop is nil): its child shares this
	// host's processes, and is killed like any other.
	containerCase{r: r, rootfs: rootfs, target: rootfs.Dir, noShell: bare.Dir, missing: "/nonexistent-mitogo", user: true, tool: actors.Tool,
		connect: func(dir string) connectFn {
			return func(ctx context.Context, opts ...actors.ConnectOption) (*actors.Context, error) {
				return r.Chroot(ctx, dir, opts...)
			}
		}}.run(t)
	c, err := r.Chroot(ctxT(t), rootfs.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if name := c.Name(); name != "chroot:"+rootfs.Dir+"#"+strconv.Itoa(c.ID()) && name != "chroot:"+rootfs.Dir {
		t.Errorf("name %q", name)
	}
}

func TestNsenter(t *testing.T) {
	rootfs := containertest.NewRootfs(t)
	bare := containertest.NewRootfs(t, containertest.NoShell())
	ns := containertest.Unshare(t, rootfs)
	nsBare := containertest.Unshare(t, bare)
	r := newRouter(t)
	cc := containerCase{r: r, rootfs: rootfs, target: strconv.Itoa(ns.PID), noShell: strconv.Itoa(nsBare.PID), missing: "999999999",
		tool: actors.Tool, stop: func(t *testing.T) { ns.Kill(t) },
		connect: func(target string) connectFn {
			return func(ctx context.Context, opts ...actors.ConnectOption) (*actors.Context, error) {
				return r.Nsenter(ctx, target, opts...)
			}
		}}
	cc.run(t)
	// User does not apply: nsenter enters as the process's user.
	_, err := r.Nsenter(ctxT(t), "1", actors.User("bob"))
	expectCause(t, err, actors.ErrBadOption)
}

// engineCase is containerCase for podman or docker.
func engineCase(t *testing.T, r *actors.Router, e *containertest.Engine, method func(*actors.Router) func(context.Context, string, ...actors.ConnectOption) (*actors.Context, error)) containerCase {
	rootfs := containertest.NewRootfs(t)
	bare := containertest.NewRootfs(t, containertest.NoShell())
	name := e.Run(t, rootfs)
	return containerCase{r: r, rootfs: rootfs, target: name, noShell: e.Run(t, bare), missing: "mitogo-no-such-container", user: true,
		tool: actors.Tool,
		stop: func(t *testing.T) { e.Kill(t, name) },
		stopped: func(t *testing.T) string {
			other := e.Run(t, rootfs)
			e.Kill(t, other)
			return other
		},
		connect: func(target string) connectFn {
			return func(ctx context.Context, opts ...actors.ConnectOption) (*actors.Context, error) {
				return method(r)(ctx, target, append([]actors.ConnectOption{actors.Tool(e.Tool), actors.ToolEnv(e.Env...)}, opts...)...)
			}
		}}
}

// nsenterByName checks nsenter's KIND:NAME form on the engine's running
// container cc.target, a missing one and a stopped one.
func nsenterByName(t *testing.T, e *containertest.Engine, cc containerCase) {
	t.Helper()
	n, err := cc.r.Nsenter(ctxT(t), e.Name+":"+cc.target, actors.ToolEnv(e.Env...))
	if err != nil {
		t.Fatal(err)
	}
	expectInside(t, n, cc.rootfs, 0, "/root/.cache/mitogo/")
	if want := "nsenter:" + e.Name + ":" + cc.target; n.Name() != want {
		t.Errorf("name %q, want %q", n.Name(), want)
	}
	_, err = cc.r.Nsenter(ctxT(t), e.Name+":"+cc.missing, actors.ToolEnv(e.Env...))
	expectCause(t, err, actors.ErrNoContainer)
	_, err = cc.r.Nsenter(ctxT(t), e.Name+":"+cc.stopped(t), actors.ToolEnv(e.Env...))
	expectCause(t, err, actors.ErrContainerNotRunning)
}

func TestPodman(t *testing.T) {
	e := containertest.NeedPodman(t)
	r := newRouter(t)
	cc := engineCase(t, r, e, func(r *actors.Router) func(context.Context, string, ...actors.ConnectOption) (*actors.Context, error) {
		return r.Podman
	})
	nsenterByName(t, e, cc)
	cc.run(t)
}

func TestDocker(t *testing.T) {
	e := containertest.NeedDocker(t)
	r := newRouter(t)
	cc := engineCase(t, r, e, func(r *actors.Router) func(context.Context, string, ...actors.ConnectOption) (*actors.Context, error) {
		return r.Docker
	})
	nsenterByName(t, e, cc)
	cc.run(t)
}

// A container removed (not only stopped) under a blocked call fails it
// with *ChannelError too.
func TestPodmanRemoved(t *testing.T) {
	e := containertest.NeedPodman(t)
	r := newRouter(t)
	name := e.Run(t, containertest.NewRootfs(t))
	c, err := r.Podman(ctxT(t), name, actors.Tool(e.Tool))
	if err != nil {
		t.Fatal(err)
	}
	expectGoneWhenStopped(t, c, func() { e.Remove(t, name) })
}

func TestLXC(t *testing.T) {
	lxc := containertest.NeedLXC(t)
	r := newRouter(t)
	rootfs := containertest.NewRootfs(t)
	name := lxc.Run(t, rootfs)
	cc := containerCase{r: r, rootfs: rootfs, target: name, noShell: lxc.Run(t, containertest.NewRootfs(t, containertest.NoShell())),
		missing: "mitogo-no-such-container", tool: actors.Tool,
		stop: func(t *testing.T) { lxc.Kill(t, name) },
		connect: func(target string) connectFn {
			return func(ctx context.Context, opts ...actors.ConnectOption) (*actors.Context, error) {
				return r.LXC(ctx, target, opts...)
			}
		}}
	// lxc-attach cannot tell a container that does not exist from one that
	// is stopped: both are ErrContainerNotRunning.
	cc.missing = ""
	n, err := r.Nsenter(ctxT(t), "lxc:"+name)
	if err != nil {
		t.Fatal(err)
	}
	expectInside(t, n, rootfs, 0, "/root/.cache/mitogo/")
	_, err = r.LXC(ctxT(t), "mitogo-no-such-container")
	expectCause(t, err, actors.ErrContainerNotRunning)
	cc.run(t)
}

// Rootless podman is the podman of the user that runs it: the hop is made
// through a context of that user.
func TestPodmanRootless(t *testing.T) {
	u := needSudo(t)
	e := containertest.NeedRootlessPodman(t, u.Username)
	r := newRouter(t)
	rootfs := containertest.NewRootfs(t)
	name := e.Run(t, rootfs)
	s, err := r.Sudo(ctxT(t), actors.User(u.Username))
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.Podman(ctxT(t), name, actors.Via(s))
	if err != nil {
		t.Fatal(err)
	}
	// Root in the container, the user outside; the rootfs is the user's, so
	// root's HOME is its own there.
	expectInside(t, c, rootfs, 0, "/root/.cache/mitogo/")
	expectGoneWhenStopped(t, c, func() { e.Kill(t, name) })
	// root's podman does not see the user's containers.
	_, err = r.Podman(ctxT(t), name)
	expectCause(t, err, actors.ErrNoContainer)
}
