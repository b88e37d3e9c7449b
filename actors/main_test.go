package actors_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mitogo/mitogo/actors"
	"go.uber.org/goleak"
)

// The test binary is also the child: TestMain serves when started as one.
func TestMain(m *testing.M) {
	if os.Getenv(envForgetMain) == "" {
		forgetByMarker() // runs this process again with envForgetMain when marked
	}
	if os.Getenv(envForgetMain) != "" {
		forgetfulMain() // a program that does not call actors.Main first
	}
	actors.Main()
	// Children built with -race otherwise sleep 1s at exit; their race
	// reports still arrive as output lines, which raceWatch catches.
	if os.Getenv("GORACE") == "" {
		os.Setenv("GORACE", "atexit_sleep_ms=0")
	}
	code := m.Run()
	if raceSeen.Load() {
		fmt.Fprintln(os.Stderr, "a child context reported a DATA RACE; rerun with MITOGO_TEST_LOG=1 to see it")
		code = 1
	}
	if code == 0 {
		if err := goleak.Find(goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1")); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// raceSeen is set when a child's output, forwarded as a log record, holds
// a race detector report.
var raceSeen atomic.Bool

// raceWatch passes log output on and notes race reports from children.
type raceWatch struct{ w io.Writer }

func (r raceWatch) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("DATA RACE")) {
		raceSeen.Store(true)
		os.Stderr.Write(p)
	}
	return r.w.Write(p)
}

// Functions the tests call in children.
var (
	echo = actors.Register("test.echo", func(ctx context.Context, s string) (string, error) { return s, nil })
	fail = actors.Register("test.fail", func(ctx context.Context, s string) (string, error) {
		return "", &os.PathError{Op: "open", Path: s, Err: os.ErrNotExist}
	})
	boom = actors.Register("test.panic", func(ctx context.Context, s string) (string, error) {
		var m map[string]int
		//lint:ignore SA5000 a runtime panic, on purpose: the test reads its message
		m[s]++ // panics: assignment to entry in nil map
		return "", nil
	})
	whoami = actors.Register("test.whoami", func(ctx context.Context, _ struct{}) (ident, error) {
		r := actors.RouterFrom(ctx)
		if r.ID() != actors.ContextID() || r.ParentID() != actors.ParentID() || r.IsMaster() != actors.IsMaster() {
			return ident{}, fmt.Errorf("router and process identity disagree")
		}
		return ident{ID: r.ID(), Parent: r.ParentID(), Name: r.Name(), PID: os.Getpid(), Master: r.IsMaster()}, nil
	})
	sleepy = actors.Register("test.sleep", func(ctx context.Context, d time.Duration) (string, error) {
		cancelled.Lock()
		cancelled.running++
		cancelled.Unlock()
		defer func() {
			cancelled.Lock()
			cancelled.running--
			cancelled.Unlock()
		}()
		select {
		case <-time.After(d):
			return "slept", nil
		case <-ctx.Done():
			cancelled.Lock()
			cancelled.n++
			cancelled.Unlock()
			return "", ctx.Err()
		}
	})
	cancelCount = actors.Register("test.cancelled", func(ctx context.Context, _ struct{}) (int, error) {
		cancelled.Lock()
		defer cancelled.Unlock()
		return cancelled.n, nil
	})
	length    = actors.Register("test.len", func(ctx context.Context, b []byte) (int, error) { return len(b), nil })
	bigResult = actors.Register("test.big", func(ctx context.Context, n int) ([]byte, error) { return make([]byte, n), nil })
	printer   = actors.Register("test.print", func(ctx context.Context, s string) (bool, error) {
		fmt.Println(s)
		slog.Info("slog from child", "word", s)
		return true, nil
	})
	callOther = actors.Register("test.callOther", func(ctx context.Context, id int) (string, error) {
		r := actors.RouterFrom(ctx)
		return echo.Call(ctx, r.Context(id), fmt.Sprintf("via %s", r.Name()))
	})
)

// cancelled counts calls of test.sleep that saw their context cancelled,
// in the child process that ran them.
var cancelled struct {
	sync.Mutex
	n       int
	running int
}

// poked counts test.poke calls that arrived, for the no-reply form.
var poked struct {
	sync.Mutex
	words []string
}

var (
	poke = actors.Register("test.poke", func(ctx context.Context, w string) (struct{}, error) {
		poked.Lock()
		defer poked.Unlock()
		poked.words = append(poked.words, w)
		return struct{}{}, nil
	})
	pokes = actors.Register("test.pokes", func(ctx context.Context, _ struct{}) ([]string, error) {
		poked.Lock()
		defer poked.Unlock()
		return poked.words, nil
	})
)

var running = actors.Register("test.running", func(ctx context.Context, _ struct{}) (int, error) {
	cancelled.Lock()
	defer cancelled.Unlock()
	return cancelled.running, nil
})

type ident struct {
	ID     int
	Parent int
	Name   string
	PID    int
	Master bool
}

func newRouter(t *testing.T, opts ...actors.Option) *actors.Router {
	t.Helper()
	opts = append([]actors.Option{actors.WithLogger(slog.New(slog.NewTextHandler(logSink, &slog.HandlerOptions{Level: slog.LevelDebug})))}, opts...)
	r, err := actors.NewRouter(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := r.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return r
}

func local(t *testing.T, r *actors.Router, opts ...actors.ConnectOption) *actors.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := r.Local(ctx, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestCallLocal(t *testing.T) {
	r := newRouter(t)
	c := local(t, r)
	got, err := echo.Call(ctxT(t), c, "hello")
	if err != nil || got != "hello" {
		t.Fatalf("echo = %q, %v", got, err)
	}
	id, err := whoami.Call(ctxT(t), c, struct{}{})
	if err != nil {
		t.Fatal(err)
	}
	if id.ID != c.ID() || id.Parent != 0 || id.Name != c.Name() || id.PID != c.ProcessID() || id.Master || id.PID == os.Getpid() {
		t.Fatalf("whoami = %+v, context %d %q pid %d", id, c.ID(), c.Name(), c.ProcessID())
	}
}

var logSink io.Writer = raceWatch{io.Discard}

func init() {
	if os.Getenv("MITOGO_TEST_LOG") != "" {
		logSink = raceWatch{os.Stderr}
	}
}

func discard() *slog.Logger {
	return slog.New(slog.NewTextHandler(logSink, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
