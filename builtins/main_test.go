package builtins_test

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/mitogo/mitogo/actors"
	"go.uber.org/goleak"
)

// The test binary is also the child: TestMain serves when started as one.
func TestMain(m *testing.M) {
	actors.Main()
	// Under -race a process sleeps a second at exit (atexit_sleep_ms) for
	// late reports; every shutdown would wait for it in the children.
	os.Setenv("GORACE", "atexit_sleep_ms=0 "+os.Getenv("GORACE"))
	goleak.VerifyTestMain(m,
		// protoactor's dead-letter throttle lingers for up to a second.
		goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"))
}

// child starts a router with one local child, shut down when the test ends.
func child(t *testing.T, opts ...actors.ConnectOption) (*actors.Router, *actors.Context) {
	t.Helper()
	level := slog.LevelWarn
	if os.Getenv("MITOGO_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	r, err := actors.NewRouter(actors.WithLogger(logger), actors.WithLogLevel(level))
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
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := r.Local(ctx, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return r, c
}

// ctxT is a context bound to the test: a liveness bound, not a timing check.
func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
