package actors_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mitogo/mitogo/actors"
)

func TestRemoteErrorIsCallError(t *testing.T) {
	r := newRouter(t)
	c := local(t, r)
	_, err := fail.Call(ctxT(t), c, "/nonexistent")
	var ce *actors.CallError
	if !errors.As(err, &ce) {
		t.Fatalf("want *CallError, got %T %v", err, err)
	}
	if ce.Type != "*fs.PathError" || !strings.Contains(ce.Message, "/nonexistent") || ce.Context != c.Name() || ce.Function != "test.fail" {
		t.Fatalf("CallError = %+v", ce)
	}
	if !errors.Is(err, actors.ErrMitogo) || !strings.Contains(err.Error(), c.Name()) {
		t.Fatalf("error %q does not match ErrMitogo or name the context", err)
	}
}

func TestPanicKeepsChildServing(t *testing.T) {
	r := newRouter(t)
	c := local(t, r)
	_, err := boom.Call(ctxT(t), c, "x")
	var ce *actors.CallError
	if !errors.As(err, &ce) {
		t.Fatalf("want *CallError, got %T %v", err, err)
	}
	if ce.Code != "panic" || !strings.Contains(ce.Message, "nil map") {
		t.Fatalf("CallError = %+v", ce)
	}
	// The stack names the panicking function's file and line.
	src, _ := os.ReadFile("main_test.go")
	line := 0
	for i, l := range strings.Split(string(src), "\n") {
		if strings.Contains(l, "m[s]++ // panics") {
			line = i + 1
		}
	}
	if want := fmt.Sprintf("main_test.go:%d", line); line == 0 || !strings.Contains(ce.Stack, want) {
		t.Fatalf("stack does not name the panicking function:\n%s", ce.Stack)
	}
	if got, err := echo.Call(ctxT(t), c, "still here"); err != nil || got != "still here" {
		t.Fatalf("after panic: %q, %v", got, err)
	}
}

func TestUnknownFunctionAndBadArgs(t *testing.T) {
	r := newRouter(t)
	c := local(t, r)
	_, err := actors.Function[string, string]("no.such.function").Call(ctxT(t), c, "x")
	var ce *actors.CallError
	if !errors.As(err, &ce) || !errors.Is(err, actors.ErrUnknownFunction) || !strings.Contains(err.Error(), "no.such.function") {
		t.Fatalf("unknown function: got %T %v", err, err)
	}
	// test.len takes []byte; a map does not decode into it.
	_, err = actors.Function[map[string]int, int]("test.len").Call(ctxT(t), c, map[string]int{"a": 1})
	if !errors.As(err, &ce) || ce.Code != "args" || !strings.Contains(err.Error(), "[]uint8") {
		t.Fatalf("bad args: got %T %v", err, err)
	}
}

func TestDeadlineCancelsRemoteFunction(t *testing.T) {
	r := newRouter(t)
	c := local(t, r)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := sleepy.Call(ctx, c, time.Hour)
	var te *actors.TimeoutError
	if !errors.As(err, &te) || !errors.Is(err, context.DeadlineExceeded) || te.Context != c.Name() {
		t.Fatalf("want *TimeoutError naming %s, got %T %v", c.Name(), err, err)
	}
	// The remote side saw its context cancelled: poll its counter.
	waitFor(t, func() bool {
		n, err := cancelCount.Call(ctxT(t), c, struct{}{})
		return err == nil && n == 1
	})
}

func TestChainOfFive(t *testing.T) {
	r := newRouter(t)
	var chain []*actors.Context
	parent := (*actors.Context)(nil)
	for i := 0; i < 5; i++ {
		var opts []actors.ConnectOption
		if parent != nil {
			opts = append(opts, actors.Via(parent))
		}
		c := local(t, r, opts...)
		chain = append(chain, c)
		parent = c
	}
	last := chain[4]
	id, err := whoami.Call(ctxT(t), last, struct{}{})
	if err != nil {
		t.Fatal(err)
	}
	if id.Parent != chain[3].ID() || id.Name != last.Name() || strings.Count(last.Name(), "/") != 4 {
		t.Fatalf("5th context: %+v (handle %q)", id, last.Name())
	}
	for i := 0; i < 50; i++ {
		if got, err := echo.Call(ctxT(t), last, "x"); err != nil || got != "x" {
			t.Fatalf("call %d: %q %v", i, got, err)
		}
	}
}

func TestSidewaysRefusedByDefault(t *testing.T) {
	r := newRouter(t)
	a, b := local(t, r), local(t, r)
	_, err := callOther.Call(ctxT(t), a, b.ID())
	// callOther returns the refusal it got as its own error.
	if !strings.Contains(err.Error(), "refused by policy") || !strings.Contains(err.Error(), "sideways") {
		t.Fatalf("sideways call: want refused by policy, got %T %v", err, err)
	}
	// The refusal itself is a *CallError matching ErrRefused.
	_, err = echo.Call(ctxT(t), r.Context(b.ID()), "direct is fine")
	if err != nil {
		t.Fatal(err)
	}
	// Upward: a child calling the master is refused too.
	_, err = callOther.Call(ctxT(t), a, 0)
	if !strings.Contains(err.Error(), "refused by policy") || !strings.Contains(err.Error(), "not allowed upward") {
		t.Fatalf("upward call: want refused by policy, got %T %v", err, err)
	}
}

func TestSidewaysAllowedBetweenSubtrees(t *testing.T) {
	r := newRouter(t, actors.AllowSideways(), actors.AllowUpward("test.echo"))
	a := local(t, r)
	a2 := local(t, r, actors.Via(a))
	b := local(t, r)
	b2 := local(t, r, actors.Via(b))
	got, err := callOther.Call(ctxT(t), a2, b2.ID())
	if err != nil || got != "via "+a2.Name() {
		t.Fatalf("sideways call a2→b2: %q, %v", got, err)
	}
	got, err = callOther.Call(ctxT(t), b2, 0)
	if err != nil || got != "via "+b2.Name() {
		t.Fatalf("upward call b2→master: %q, %v", got, err)
	}
}

func TestOversizeMessageRefusedAtSender(t *testing.T) {
	r := newRouter(t, actors.MaxMessageSize(1<<20))
	c := local(t, r)
	_, err := length.Call(ctxT(t), c, make([]byte, 2<<20))
	if !errors.Is(err, actors.ErrTooLarge) || !strings.Contains(err.Error(), "1048576") || !strings.Contains(err.Error(), "2097") {
		t.Fatalf("oversize argument: got %v", err)
	}
	// The limit is inherited: the child refuses an oversize result at its side.
	_, err = bigResult.Call(ctxT(t), c, 2<<20)
	var ce *actors.CallError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "exceeds the maximum") {
		t.Fatalf("oversize result: got %T %v", err, err)
	}
	// The stream is still usable.
	if n, err := length.Call(ctxT(t), c, make([]byte, 1000)); err != nil || n != 1000 {
		t.Fatalf("after refusal: %d, %v", n, err)
	}
}

func TestSelfCall(t *testing.T) {
	r := newRouter(t)
	got, err := echo.Call(ctxT(t), r.Self(), "me")
	if err != nil || got != "me" {
		t.Fatalf("self call: %q %v", got, err)
	}
	if !r.IsMaster() || r.ID() != 0 || r.Name() != "master" || os.Getpid() == 0 {
		t.Fatal("master identity wrong")
	}
}

// waitFor polls cond until it holds, failing the test after 10 seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSendWithoutReply(t *testing.T) {
	r := newRouter(t)
	c := local(t, r)
	for _, w := range []string{"a", "b", "c"} {
		if err := poke.Send(c, w); err != nil {
			t.Fatal(err)
		}
	}
	// Sends are ordered; poll until all three arrived.
	waitFor(t, func() bool {
		got, err := pokes.Call(ctxT(t), c, struct{}{})
		return err == nil && strings.Join(got, "") == "abc"
	})
	if !actors.IsMaster() || actors.ContextID() != 0 || actors.ParentID() != 0 {
		t.Fatal("the test process should be the master")
	}
}

var echoBytes = actors.Register("test.echoBytes", func(ctx context.Context, b []byte) ([]byte, error) { return b, nil })

// Bytes cross a chain unchanged, both ways (they travel uncopied as bin).
func TestBytesRoundTripThroughChain(t *testing.T) {
	r := newRouter(t)
	c1 := local(t, r)
	c2 := local(t, r, actors.Via(c1))
	data := make([]byte, 3<<20+7)
	for i := range data {
		data[i] = byte(i*7 + i>>9)
	}
	for _, in := range [][]byte{data, {}, nil, data[:300], data[:70000]} {
		got, err := echoBytes.Call(ctxT(t), c2, in)
		if err != nil || !bytes.Equal(got, in) || (in != nil) != (got != nil) {
			t.Fatalf("round trip of %d bytes: %d bytes back, %v", len(in), len(got), err)
		}
	}
}

// A name identifies a context: a second live context asked to have the
// name of another gets "#<id>" after it; once the first is gone, the name
// is free again.
func TestDuplicateNamesGetTheID(t *testing.T) {
	r := newRouter(t)
	a := local(t, r, actors.Name("x"))
	b := local(t, r, actors.Name("x"))
	if a.Name() != "x" || b.Name() != "x#"+strconv.Itoa(b.ID()) {
		t.Fatalf("names %q and %q; want x and x#%d", a.Name(), b.Name(), b.ID())
	}
	if id, err := whoami.Call(ctxT(t), b, struct{}{}); err != nil || id.Name != b.Name() {
		t.Fatalf("whoami in %s: %+v %v", b.Name(), id, err)
	}
	// Below a context, too: a's child and a child made through a.
	c := local(t, r, actors.Via(a), actors.Name("y"))
	d := local(t, r, actors.Via(a), actors.Name("y"))
	if c.Name() != "x/y" || d.Name() != "x/y#"+strconv.Itoa(d.ID()) {
		t.Fatalf("names %q and %q", c.Name(), d.Name())
	}
	if err := a.Shutdown(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if e := local(t, r, actors.Name("x")); e.Name() != "x" {
		t.Fatalf("after x is gone, the name is %q", e.Name())
	}
}

// Errors name a context as the user's options did, hop by hop: a context
// that got "#<id>" to tell it from a live namesake is "x" in its errors,
// whether its connection failed, a call to it timed out, lost it or found
// it gone,
// or a context made through it failed to connect.
func TestErrorsNameContextsAsGiven(t *testing.T) {
	r := newRouter(t)
	local(t, r, actors.Name("x"))
	b := local(t, r, actors.Name("x"))
	if b.Name() == "x" {
		t.Fatalf("second context named x is %q; want a suffixed name", b.Name())
	}
	named := func(what string, err error, want string) {
		t.Helper()
		var se *actors.StreamError
		var te *actors.TimeoutError
		var ce *actors.ChannelError
		got := "(no context error)"
		switch {
		case errors.As(err, &se):
			got = se.Context
		case errors.As(err, &te):
			got = te.Context
		case errors.As(err, &ce):
			got = ce.Context
		}
		if got != want {
			t.Errorf("%s: the error names %q; want %q (error: %v)", what, got, want, err)
		}
	}
	_, err := r.Local(ctxT(t), actors.Name("x"), actors.Executable("/nonexistent/mitogo"))
	named("unreachable x", err, "x")
	_, err = r.Local(ctxT(t), actors.Via(b), actors.Name("y"), actors.Executable("/nonexistent/mitogo"))
	named("unreachable y through x", err, "x/y")
	ctx, cancel := context.WithTimeout(ctxT(t), 50*time.Millisecond)
	defer cancel()
	_, err = sleepy.Call(ctx, b, time.Minute)
	named("a call that timed out", err, "x")
	p := sleepy.Go(ctxT(t), b, time.Hour)
	waitRunning(t, b)
	if err := syscall.Kill(b.ProcessID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, err = p.Wait()
	named("a call whose context died", err, "x")
	_, err = echo.Call(ctxT(t), b, "hello")
	named("a call to a context that is gone", err, "x")
}

// Registered knows the functions this program registered, and no others.
func TestRegistered(t *testing.T) {
	if !actors.Registered("test.echo") || actors.Registered("test.no-such-function") {
		t.Fatalf("Registered: test.echo %v, test.no-such-function %v; want true, false",
			actors.Registered("test.echo"), actors.Registered("test.no-such-function"))
	}
}
