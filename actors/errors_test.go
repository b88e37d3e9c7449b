package actors_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mitogo/mitogo/actors"
)

// Every error the package returns about another context matches
// ErrMitogo, whatever its kind, and keeps its own cause.
func TestEveryErrorAboutAContextMatchesErrMitogo(t *testing.T) {
	r := newRouter(t, actors.MaxMessageSize(1<<20))
	c := local(t, r)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	short, stop := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer stop()
	gone := local(t, r)
	if err := gone.Shutdown(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	ch := r.NewChannel()
	defer ch.Close()
	cases := []struct {
		name  string
		err   error
		cause error // also matched, when set
	}{
		{"oversize argument", func() error { _, err := length.Call(ctxT(t), c, make([]byte, 2<<20)); return err }(), actors.ErrTooLarge},
		{"oversize result", func() error { _, err := bigResult.Call(ctxT(t), c, 2<<20); return err }(), nil},
		{"unknown function", func() error {
			_, err := actors.Function[string, string]("no.such.function").Call(ctxT(t), c, "")
			return err
		}(), actors.ErrUnknownFunction},
		{"arguments that do not decode", func() error {
			_, err := actors.Function[map[string]int, string]("test.echo").Call(ctxT(t), c, map[string]int{"a": 1})
			return err
		}(), nil},
		{"result that does not decode", func() error {
			_, err := actors.Function[string, int]("test.echo").Call(ctxT(t), c, "x")
			return err
		}(), nil},
		{"function error", func() error { _, err := fail.Call(ctxT(t), c, "/nonexistent"); return err }(), nil},
		{"panic", func() error { _, err := boom.Call(ctxT(t), c, ""); return err }(), nil},
		{"call cancelled", func() error { _, err := echo.Call(cancelled, c, "x"); return err }(), context.Canceled},
		{"call timed out", func() error { _, err := sleepy.Call(short, c, time.Minute); return err }(), context.DeadlineExceeded},
		{"context gone", func() error { _, err := echo.Call(ctxT(t), gone, "x"); return err }(), nil},
		{"send to a context gone", echo.Send(gone, "x"), nil},
		{"failed connect", func() error { _, err := r.Local(ctxT(t), actors.Executable("/nonexistent/prog")); return err }(), nil},
		{"connect timed out", func() error {
			_, err := r.Local(ctxT(t), actors.Executable("/bin/sleep", "60"), actors.ConnectTimeout(100*time.Millisecond))
			return err
		}(), actors.ErrConnectTimeout},
		{"option that does not apply", func() error { _, err := r.Local(ctxT(t), actors.Password("x")); return err }(), actors.ErrBadOption},
		{"shutdown through a plain handle", r.Context(999).Shutdown(ctxT(t)), nil},
		{"channel send, not connected", ch.Send(ctxT(t), 1), nil},
		{"channel receive cancelled", ch.Recv(cancelled, new(int)), context.Canceled},
	}
	for _, tc := range cases {
		if tc.err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		if !errors.Is(tc.err, actors.ErrMitogo) {
			t.Errorf("%s: %T %v does not match ErrMitogo", tc.name, tc.err, tc.err)
		}
		if tc.cause != nil && !errors.Is(tc.err, tc.cause) {
			t.Errorf("%s: %v does not match %v", tc.name, tc.err, tc.cause)
		}
	}
}

// A call whose ctx has already ended fails with ctx's error every time,
// even when the reply could have come first.
func TestCallWithEndedContextAlwaysFails(t *testing.T) {
	r := newRouter(t)
	c := local(t, r)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, stop := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer stop()
	for i := 0; i < 200; i++ {
		if _, err := echo.Call(cancelled, c, "x"); !errors.Is(err, context.Canceled) {
			t.Fatalf("call %d with a cancelled ctx: %v; want context.Canceled", i, err)
		}
		var te *actors.TimeoutError
		if _, err := echo.Call(expired, c, "x"); !errors.As(err, &te) {
			t.Fatalf("call %d with an expired ctx: %v; want *TimeoutError", i, err)
		}
	}
}
