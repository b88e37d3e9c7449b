package actors_test

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mitogo/mitogo/actors"
	"github.com/mitogo/mitogo/bootstrap"
	"github.com/mitogo/mitogo/messages"
)

// expectGone asserts err is a *ChannelError naming ctxName.
func expectGone(t *testing.T, err error, ctxName string) {
	t.Helper()
	var ce *actors.ChannelError
	if !errors.As(err, &ce) || ce.Context != ctxName {
		t.Fatalf("want *ChannelError naming %s, got %T %v", ctxName, err, err)
	}
}

func TestKilledChildFailsPendingCall(t *testing.T) {
	r := newRouter(t)
	c := local(t, r)
	p := sleepy.Go(ctxT(t), c, time.Hour)
	waitRunning(t, c)
	if err := syscall.Kill(c.ProcessID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, err := p.Wait()
	expectGone(t, err, c.Name())
	// The user learns how it ended, not only that its stream closed.
	if !strings.Contains(err.Error(), "signal: killed") {
		t.Errorf("the error does not say the process was killed: %v", err)
	}
	<-c.Done()
	expectGone(t, c.Err(), c.Name())
	// Later calls fail at once, naming the context.
	_, err = echo.Call(ctxT(t), c, "x")
	expectGone(t, err, c.Name())
}

func TestMiddleOfChainKilled(t *testing.T) {
	r := newRouter(t)
	c1 := local(t, r)
	c2 := local(t, r, actors.Via(c1))
	c3 := local(t, r, actors.Via(c2))
	p3 := sleepy.Go(ctxT(t), c3, time.Hour)
	p2 := sleepy.Go(ctxT(t), c2, time.Hour)
	waitRunning(t, c3)
	waitRunning(t, c2)
	if err := syscall.Kill(c2.ProcessID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, err := p3.Wait()
	expectGone(t, err, c3.Name())
	_, err = p2.Wait()
	expectGone(t, err, c2.Name())
	// Through a hop too, the error says how the middle process ended.
	if !strings.Contains(err.Error(), "signal: killed") {
		t.Errorf("the error does not say %s was killed: %v", c2.Name(), err)
	}
	// No route to the dead subtree: fail at once, never hang.
	for _, c := range []*actors.Context{c2, c3} {
		_, err = echo.Call(ctxT(t), c, "x")
		expectGone(t, err, c.Name())
	}
	_, err = echo.Call(ctxT(t), r.Context(999), "x")
	if !errors.Is(err, actors.ErrNoRoute) {
		t.Fatalf("call to an unknown context id: want ErrNoRoute, got %v", err)
	}
	// The first hop is unharmed, and c3's process exited with its parent.
	if got, err := echo.Call(ctxT(t), c1, "alive"); err != nil || got != "alive" {
		t.Fatalf("c1: %q %v", got, err)
	}
	waitFor(t, func() bool { return syscall.Kill(c3.ProcessID(), 0) != nil })
}

func TestRestartStrategy(t *testing.T) {
	r := newRouter(t)
	c := local(t, r, actors.Supervise(actors.Restart(10*time.Millisecond, time.Second, 5, time.Minute)))
	before := c.ProcessID()
	if err := syscall.Kill(before, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// The same handle serves calls again, from a new process.
	waitFor(t, func() bool { return c.ProcessID() != before })
	id, err := whoami.Call(ctxT(t), c, struct{}{})
	if err != nil {
		t.Fatal(err)
	}
	if id.PID == before || id.PID != c.ProcessID() || id.ID != c.ID() {
		t.Fatalf("after restart: %+v, old pid %d", id, before)
	}
	select {
	case <-c.Done():
		t.Fatal("restarted context reports Done")
	default:
	}
}

func TestRestartedViaChild(t *testing.T) {
	r := newRouter(t)
	c1 := local(t, r)
	c2 := local(t, r, actors.Via(c1), actors.Supervise(actors.Restart(10*time.Millisecond, time.Second, 5, time.Minute)))
	before := c2.ProcessID()
	syscall.Kill(before, syscall.SIGKILL)
	waitFor(t, func() bool { return c2.ProcessID() != before })
	if got, err := echo.Call(ctxT(t), c2, "back"); err != nil || got != "back" {
		t.Fatalf("after restart: %q %v", got, err)
	}
}

func TestOversizeFrameFromChildClosesOnlyItsStream(t *testing.T) {
	r := newRouter(t, actors.MaxMessageSize(1<<20))
	bad, good := local(t, r), local(t, r)
	_, err := actors.RawLength.Call(ctxT(t), bad, 1<<30)
	expectGone(t, err, bad.Name())
	<-bad.Done()
	if !strings.Contains(bad.Err().Error(), "exceeds the maximum") {
		t.Fatalf("reason: %v", bad.Err())
	}
	if got, err := echo.Call(ctxT(t), good, "fine"); err != nil || got != "fine" {
		t.Fatalf("other child: %q %v", got, err)
	}
}

func TestMalformedFrameClosesStream(t *testing.T) {
	r := newRouter(t)
	c := local(t, r)
	_, err := actors.RawFrame.Call(ctxT(t), c, []byte{0x93, 0xff, 0x01})
	expectGone(t, err, c.Name())
	<-c.Done()
	if !strings.Contains(c.Err().Error(), "malformed frame") {
		t.Fatalf("reason: %v", c.Err())
	}
}

func TestForgedSourceClosesStream(t *testing.T) {
	r := newRouter(t)
	liar, other := local(t, r), local(t, r)
	_, err := actors.ForgedCall.Call(ctxT(t), liar, uint32(other.ID()))
	expectGone(t, err, liar.Name())
	<-liar.Done()
	if !strings.Contains(liar.Err().Error(), "forged source") {
		t.Fatalf("reason: %v", liar.Err())
	}
	if got, err := echo.Call(ctxT(t), other, "ok"); err != nil || got != "ok" {
		t.Fatalf("other child: %q %v", got, err)
	}
}

func TestEnvelopeOfUnknownKindIsDropped(t *testing.T) {
	r := newRouter(t)
	c := local(t, r)
	body := actors.EncodeEnvelope(messages.Header{Kind: 99, Dst: 0, Src: uint32(c.ID())}, nil)
	if _, err := actors.RawFrame.Call(ctxT(t), c, body); err != nil {
		t.Fatal(err)
	}
	if got, err := echo.Call(ctxT(t), c, "ok"); err != nil || got != "ok" {
		t.Fatalf("after unknown kind: %q %v", got, err)
	}
}

func TestConnectTimeoutAndBadExecutable(t *testing.T) {
	r := newRouter(t)
	ctx := context.Background()
	// A program that never speaks: the connect times out and is killed.
	_, err := r.Local(ctx, actors.Executable("/bin/sleep", "60"), actors.ConnectTimeout(200*time.Millisecond))
	var te *actors.TimeoutError
	if !errors.As(err, &te) || te.Op != "connect" || !errors.Is(err, actors.ErrConnectTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want *TimeoutError for connect, got %T %v", err, err)
	}
	// A program that exits at once: EOF during bootstrap, with what it printed.
	_, err = r.Local(ctx, actors.Executable("/bin/sh", "-c", "echo no mitogo here; exit 3"))
	var se *actors.StreamError
	if !errors.As(err, &se) || !errors.Is(err, actors.ErrHandshake) || !strings.Contains(se.Output, "no mitogo here") {
		t.Fatalf("want *StreamError with output, got %T %v", err, err)
	}
	// A program that does not exist.
	// A far side that prints stage 1 back (a shell that cannot parse it)
	// does not put the program into the error.
	_, err = r.Local(ctx, actors.Executable("/bin/sh", "-c", `printf '%s\n' "$0" >&2; echo "sh: syntax error: $0" >&2; exit 2`, bootstrap.Stage1()))
	if !errors.As(err, &se) || strings.Contains(err.Error(), bootstrap.Stage1()[:40]) || !strings.Contains(se.Output, "<stage 1>") {
		t.Fatalf("stage 1 printed back: %T %v", err, err)
	}
	_, err = r.Local(ctx, actors.Executable("/nonexistent/prog"))
	if !errors.As(err, &se) || !errors.Is(err, actors.ErrMitogo) {
		t.Fatalf("want *StreamError, got %T %v", err, err)
	}
}

// waitRunning waits until c has a test.sleep call running.
func waitRunning(t *testing.T, c *actors.Context) {
	t.Helper()
	waitFor(t, func() bool {
		n, err := running.Call(ctxT(t), c, struct{}{})
		return err == nil && n > 0
	})
}

// A child cannot shut down its sibling by addressing a control message to
// it: router messages from below stop at the first router.
func TestChildCannotShutDownSibling(t *testing.T) {
	r := newRouter(t)
	a, b := local(t, r), local(t, r)
	body := actors.EncodeEnvelope(messages.Header{Kind: messages.KindControl, Dst: uint32(b.ID()), Src: uint32(a.ID()), Type: messages.ControlShutdown}, nil)
	if _, err := actors.RawFrame.Call(ctxT(t), a, body); err != nil {
		t.Fatal(err)
	}
	// Ordered after the forged frame on a's stream: by now the master has
	// handled it.
	if _, err := echo.Call(ctxT(t), a, "sync"); err != nil {
		t.Fatal(err)
	}
	if got, err := echo.Call(ctxT(t), b, "alive"); err != nil || got != "alive" {
		t.Fatalf("sibling after a forged shutdown: %q %v", got, err)
	}
	select {
	case <-b.Done():
		t.Fatal("sibling was shut down")
	default:
	}
}

// sleepIn makes the context it runs in call test.sleep in another.
var sleepIn = actors.Register("test.sleepIn", func(ctx context.Context, id int) (string, error) {
	return sleepy.Call(ctx, actors.RouterFrom(ctx).Context(id), time.Hour)
})

// A call between sibling subtrees fails as soon as the callee dies, not at
// its deadline: the loss travels up as a route deletion and down the other
// subtrees as a gone notice.
func TestSidewaysCallFailsWhenCalleeDies(t *testing.T) {
	r := newRouter(t, actors.AllowSideways())
	a, b := local(t, r), local(t, r)
	a2 := local(t, r, actors.Via(a)) // the caller is a grandchild: the notice goes two levels down
	p := sleepIn.Go(ctxT(t), a2, b.ID())
	waitRunning(t, b)
	if err := syscall.Kill(b.ProcessID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, err := p.Wait()
	var te *actors.TimeoutError
	if err == nil || errors.As(err, &te) || !strings.Contains(err.Error(), b.Name()) || !strings.Contains(err.Error(), "stream closed") {
		t.Fatalf("sideways call to a killed context: want its loss reported, got %T %v", err, err)
	}
	// The caller's subtree is intact.
	if got, err := echo.Call(ctxT(t), a2, "still here"); err != nil || got != "still here" {
		t.Fatalf("a2 after b died: %q %v", got, err)
	}
}

// A context in another subtree cannot end the master's call with a forged
// refusal: refusals are taken only from routers on the way to the callee.
func TestForgedRefusalFromAnotherSubtreeIgnored(t *testing.T) {
	r := newRouter(t)
	a, b := local(t, r), local(t, r)
	p := sleepy.Go(ctxT(t), a, time.Hour)
	waitRunning(t, a)
	// Refusals for every call made so far, the pending one to a among
	// them; not for the calls to b that follow, which b may answer.
	if _, err := actors.ForgeRefusals.Call(ctxT(t), b, actors.LastRequestID(r)); err != nil {
		t.Fatal(err)
	}
	// b sent its forged frames before its reply on its stream: the master
	// has handled every one of them.
	select {
	case <-p.Done():
		_, err := p.Wait()
		t.Fatalf("the call to %s ended by a refusal from %s: %v", a.Name(), b.Name(), err)
	default:
	}
}

// A child that announces a context under another subtree's name (to have
// its log records pass for that context's) has its stream closed.
func TestChildCannotNameAContextOutsideItsSubtree(t *testing.T) {
	r := newRouter(t)
	a, b := local(t, r), local(t, r)
	// Its own subtree's names are fine.
	if _, err := actors.ClaimRoute.Call(ctxT(t), a, a.Name()+"/mine"); err != nil {
		t.Fatal(err)
	}
	if _, err := echo.Call(ctxT(t), a, "still up"); err != nil {
		t.Fatal(err)
	}
	actors.ClaimRoute.Call(ctxT(t), a, b.Name())
	select {
	case <-a.Done():
	case <-ctxT(t).Done():
		t.Fatal("the stream of a child that named a context outside its subtree is still open")
	}
	if _, err := echo.Call(ctxT(t), b, "b is fine"); err != nil {
		t.Fatal(err)
	}
}
