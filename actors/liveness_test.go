package actors_test

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mitogo/mitogo/actors"
	"github.com/mitogo/mitogo/test/sshtest"
)

// procState is the state letter of process pid in /proc ("T" stopped,
// "Z" zombie), or "" when it is gone.
func procState(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	// pid (comm) state ...; comm may hold spaces and parentheses.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

// stop stops process pid until the test ends, then kills it.
func stop(t *testing.T, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(pid, syscall.SIGKILL)
		syscall.Kill(pid, syscall.SIGCONT)
	})
	waitFor(t, func() bool { return procState(pid) == "T" })
}

// A mitogo process stopped behind a live sshd answers no heartbeat, though
// sshd answers keepalives: a call to it fails with a *ChannelError matching
// ErrHeartbeat, not at its own deadline.
func TestHeartbeatStoppedChildBehindSSHD(t *testing.T) {
	s := sshtest.Start(t)
	r := newRouter(t)
	c, err := r.SSH(ctxT(t), s.Addr, sshTo(s, actors.Heartbeat(200*time.Millisecond, 3))...)
	if err != nil {
		t.Fatal(err)
	}
	id, err := whoami.Call(ctxT(t), c, struct{}{})
	if err != nil {
		t.Fatal(err)
	}
	stop(t, id.PID)
	_, err = echo.Call(ctxT(t), c, "anyone there?")
	var ce *actors.ChannelError
	if !errors.As(err, &ce) || !errors.Is(err, actors.ErrHeartbeat) || !errors.Is(err, actors.ErrMitogo) {
		t.Fatalf("call to a stopped child: %T %v; want a *ChannelError matching ErrHeartbeat", err, err)
	}
	if ce.Context != c.Name() {
		t.Fatalf("the error names %q, want %q", ce.Context, c.Name())
	}
	<-c.Done()
	if !errors.Is(c.Err(), actors.ErrHeartbeat) {
		t.Fatalf("the context ended with %v, want ErrHeartbeat", c.Err())
	}
}

// A child whose parent stops answering takes itself for orphaned and
// exits, while its parent is still stopped (so nothing else ended it).
func TestHeartbeatChildOfStoppedParentExits(t *testing.T) {
	r := newRouter(t)
	mid := local(t, r)
	leaf := local(t, r, actors.Via(mid), actors.Heartbeat(200*time.Millisecond, 3))
	id, err := whoami.Call(ctxT(t), leaf, struct{}{})
	if err != nil {
		t.Fatal(err)
	}
	stop(t, mid.ProcessID())
	// The stopped parent cannot reap it: gone or a zombie means exited.
	waitFor(t, func() bool { st := procState(id.PID); return st == "" || st == "Z" })
}

// The same over ssh: the child reads its stream from sshd's pipe, and a
// read that waited there for good kept it, and what it ran, alive while
// its parent was stopped.
func TestHeartbeatSSHChildOfStoppedParentExits(t *testing.T) {
	s := sshtest.Start(t)
	r := newRouter(t)
	mid := local(t, r)
	leaf, err := r.SSH(ctxT(t), s.Addr, sshTo(s, actors.Via(mid), actors.Heartbeat(200*time.Millisecond, 3))...)
	if err != nil {
		t.Fatal(err)
	}
	id, err := whoami.Call(ctxT(t), leaf, struct{}{})
	if err != nil {
		t.Fatal(err)
	}
	sleeper, err := spawnSleep.Call(ctxT(t), leaf, struct{}{})
	if err != nil {
		t.Fatal(err)
	}
	stop(t, mid.ProcessID())
	waitFor(t, func() bool { st := procState(id.PID); return st == "" || st == "Z" })
	waitGone(t, []int{sleeper})
}

// A context declared dead by its parent's heartbeat, one hop below the
// master: the cause crosses that hop, so the master's call fails with a
// *ChannelError matching ErrHeartbeat, as it would next to the loss.
func TestHeartbeatCauseCrossesAViaHop(t *testing.T) {
	r := newRouter(t)
	a := local(t, r)
	b := local(t, r, actors.Via(a), actors.Heartbeat(200*time.Millisecond, 3))
	p := sleepy.Go(ctxT(t), b, time.Hour)
	waitRunning(t, b)
	stop(t, b.ProcessID())
	_, err := p.Wait()
	var ce *actors.ChannelError
	if !errors.As(err, &ce) || !errors.Is(err, actors.ErrHeartbeat) || !errors.Is(err, actors.ErrMitogo) {
		t.Fatalf("call to a stopped grandchild: %T %v; want a *ChannelError matching ErrHeartbeat", err, err)
	}
	if ce.Context != b.Name() {
		t.Fatalf("the error names %q, want %q", ce.Context, b.Name())
	}
	// A call made after the loss fails with the same cause.
	_, err = echo.Call(ctxT(t), b, "anyone there?")
	if !errors.As(err, &ce) || !errors.Is(err, actors.ErrHeartbeat) {
		t.Fatalf("call after the loss: %T %v; want a *ChannelError matching ErrHeartbeat", err, err)
	}
}
