package actors_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mitogo/mitogo/actors"
)

// fanName answers with the name of the context it runs in; in a context
// whose name ends in "hang" it blocks until its call is cancelled.
var fanName = actors.Register("test.fanName", func(ctx context.Context, _ struct{}) (string, error) {
	self := actors.CurrentContext(ctx).Name()
	if strings.HasSuffix(self, "hang") {
		<-ctx.Done()
		hangCancelled.Add(1)
		return "", ctx.Err()
	}
	return self, nil
})

// hangCancelled counts, in a child, the hung test.fanName calls that were
// cancelled.
var hangCancelled atomic.Int64

var hangCancels = actors.Register("test.hangCancels", func(ctx context.Context, _ struct{}) (int64, error) {
	return hangCancelled.Load(), nil
})

// fanGate counts the calls of test.fanGate running at once in this
// process (the master calls itself) and lets them end when released.
var fanGate = struct {
	sync.Mutex
	running, max int
	release      chan struct{}
}{}

var gated = actors.Register("test.fanGate", func(ctx context.Context, _ struct{}) (int, error) {
	fanGate.Lock()
	fanGate.running++
	fanGate.max = max(fanGate.max, fanGate.running)
	release := fanGate.release
	fanGate.Unlock()
	defer func() {
		fanGate.Lock()
		fanGate.running--
		fanGate.Unlock()
	}()
	select {
	case <-release:
		return 1, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
})

func startLocals(t *testing.T, r *actors.Router, names []string) []*actors.Context {
	t.Helper()
	targets := make([]actors.ConnectTarget, len(names))
	for i, name := range names {
		targets[i] = actors.ConnectTarget{Name: name, Connect: func(ctx context.Context, r *actors.Router) (*actors.Context, error) {
			return r.Local(ctx, actors.Name(name))
		}}
	}
	conns := r.ConnectAll(ctxT(t), targets, actors.Limit(8))
	if err := conns.Err(); err != nil {
		t.Fatal(err)
	}
	ctxs := conns.Contexts()
	for i, c := range ctxs {
		if c.Name() != names[i] {
			t.Fatalf("ConnectAll result %d is %s, want %s", i, c.Name(), names[i])
		}
	}
	return ctxs
}

// A fan-out to 50 children, one killed before the call and one whose call
// hangs: every other result arrives while the hung call is still
// outstanding (its per-target deadline is far off), the dead one's as a
// *ChannelError; leaving the loop then ends the hung call in its child.
func TestFanOutUnreachableAndHung(t *testing.T) {
	r := newRouter(t)
	names := make([]string, 50)
	for i := range names {
		names[i] = fmt.Sprintf("n%02d", i)
	}
	names[7], names[23] = "hang", "dead"
	ctxs := startLocals(t, r, names)
	hang, dead := ctxs[7], ctxs[23]
	if err := syscall.Kill(dead.ProcessID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-dead.Done()

	seen := map[int]bool{}
	for res := range fanName.Fan(ctxT(t), ctxs, struct{}{}, actors.Limit(10), actors.TargetTimeout(time.Hour)) {
		if seen[res.Index] || res.Target != ctxs[res.Index] {
			t.Fatalf("result %d (%v) twice or for the wrong target", res.Index, res.Target)
		}
		seen[res.Index] = true
		switch res.Target {
		case hang:
			t.Fatalf("the hung call gave a result before the others: %v", res.Err)
		case dead:
			var ce *actors.ChannelError
			if !errors.As(res.Err, &ce) || ce.Context != "dead" {
				t.Fatalf("dead target: want *ChannelError naming it, got %T %v", res.Err, res.Err)
			}
		default:
			if res.Err != nil || res.Value != res.Target.Name() {
				t.Fatalf("%s: got %q, %v", res.Target, res.Value, res.Err)
			}
		}
		if len(seen) == len(ctxs)-1 {
			break // all but the hung one: it still runs
		}
	}
	if len(seen) != len(ctxs)-1 || seen[7] {
		t.Fatalf("got %d results, want every target's but the hung one", len(seen))
	}
	// Leaving the loop cancelled the hung call: the child says so.
	waitFor(t, func() bool {
		n, err := hangCancels.Call(ctxT(t), hang, struct{}{})
		return err == nil && n == 1
	})

	// Its per-target deadline ends a hung call, as that target's result.
	var got []actors.Result[string]
	for res := range fanName.Fan(ctxT(t), []*actors.Context{hang}, struct{}{}, actors.TargetTimeout(50*time.Millisecond)) {
		got = append(got, res)
	}
	var te *actors.TimeoutError
	if len(got) != 1 || !errors.As(got[0].Err, &te) || te.Context != "hang" || !errors.Is(got[0].Err, context.DeadlineExceeded) {
		t.Fatalf("hung target: want one *TimeoutError naming it, got %+v", got)
	}
}

// Limit bounds the calls running at once; every target still gets one
// result.
func TestFanOutLimit(t *testing.T) {
	r := newRouter(t)
	self := r.Self()
	fanGate.Lock()
	fanGate.running, fanGate.max, fanGate.release = 0, 0, make(chan struct{})
	release := fanGate.release
	fanGate.Unlock()
	targets := make([]*actors.Context, 12)
	for i := range targets {
		targets[i] = self
	}
	// The gate opens once as many calls run as the limit allows.
	gateDone := make(chan struct{})
	go func() {
		defer close(gateDone)
		defer close(release)
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			fanGate.Lock()
			full := fanGate.running == 3
			fanGate.Unlock()
			if full {
				return
			}
		}
	}()
	n := 0
	for res := range gated.Fan(ctxT(t), targets, struct{}{}, actors.Limit(3)) {
		if res.Err != nil || res.Value != 1 || res.Target != self {
			t.Fatalf("target %d: %d, %v", res.Index, res.Value, res.Err)
		}
		n++
	}
	<-gateDone
	fanGate.Lock()
	defer fanGate.Unlock()
	if n != len(targets) || fanGate.max != 3 {
		t.Fatalf("%d results, at most %d calls at once; want %d and 3", n, fanGate.max, len(targets))
	}
}

// A fan-out's calls wait in no goroutine of the caller: 200 calls
// outstanding at once (to a child where they hang) do not add a goroutine
// each, and leaving the loop still cancels every one of them.
func TestFanOutNoGoroutinePerCall(t *testing.T) {
	r := newRouter(t)
	ctxs := startLocals(t, r, []string{"hang", "quick"})
	hang, quick := ctxs[0], ctxs[1]
	const n = 200
	targets := make([]*actors.Context, 0, n+1)
	for range n {
		targets = append(targets, hang)
	}
	targets = append(targets, quick) // its result comes while the others hang
	before := runtime.NumGoroutine()
	during := 0
	for res := range fanName.Fan(ctxT(t), targets, struct{}{}) {
		if res.Target != quick || res.Err != nil || res.Value != "quick" {
			t.Fatalf("first result: %s (index %d): %q, %v; want quick's name", res.Target, res.Index, res.Value, res.Err)
		}
		during = runtime.NumGoroutine()
		break
	}
	if during-before >= n/2 {
		t.Fatalf("%d goroutines with %d calls outstanding, %d before: a goroutine per call", during, n, before)
	}
	waitFor(t, func() bool {
		got, err := hangCancels.Call(ctxT(t), hang, struct{}{})
		return err == nil && got == n
	})
}

// fanStep ends each call of test.fanStep once the test sends a token;
// fanStepEntered counts the calls that started (the master calls itself).
var (
	fanStep        = make(chan struct{})
	fanStepEntered atomic.Int64
)

var stepped = actors.Register("test.fanStep", func(ctx context.Context, _ struct{}) (int, error) {
	fanStepEntered.Add(1)
	select {
	case <-fanStep:
		return 1, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
})

// Once ctx ends, a fan-out under a limit calls no further target: the
// call running ends with ctx's error, and those not started yet give a
// result with that error without being called.
func TestFanOutCancelled(t *testing.T) {
	const n = 10
	fanStepEntered.Store(0)
	r := newRouter(t)
	targets := make([]*actors.Context, n)
	for i := range targets {
		targets[i] = r.Self()
	}
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	go func() { // one call at a time ends, three in all
		for range 3 {
			select {
			case fanStep <- struct{}{}:
			case <-ctx.Done():
				return
			}
		}
	}()
	var ok, cancelled int
	for res := range stepped.Fan(ctx, targets, struct{}{}, actors.Limit(1)) {
		switch {
		case res.Err == nil:
			ok++
			if ok == 3 {
				cancel()
			}
		case errors.Is(res.Err, context.Canceled):
			cancelled++
		default:
			t.Fatalf("result %+v", res)
		}
	}
	// The fourth call may have started before the cancel, and then ended
	// with ctx's error; no later one started.
	if entered := fanStepEntered.Load(); ok != 3 || cancelled != n-3 || entered > 4 {
		t.Fatalf("%d ok, %d with ctx's error, %d calls made; want 3, %d, at most 4", ok, cancelled, entered, n-3)
	}
}
