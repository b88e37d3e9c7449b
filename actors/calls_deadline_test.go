package actors_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// Many callers with deadlines on one context, some cancelled half-way,
// each get their own reply or (if cancelled) their ctx's error: no reply
// is lost or goes to another caller, whichever of them reads the stream.
func TestConcurrentDeadlineCallersGetTheirOwnReplies(t *testing.T) {
	r := newRouter(t)
	c := local(t, r)
	const callers, calls = 16, 50
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for g := 0; g < callers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < calls; i++ {
				want := fmt.Sprintf("caller %d call %d", g, i)
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				if g%4 == 0 && i%3 == 0 {
					// Cancelled as the call goes: it may end either way,
					// but never with another call's reply.
					time.AfterFunc(time.Duration(i)*time.Microsecond, cancel)
				}
				got, err := echo.Call(ctx, c, want)
				cancel()
				switch {
				case err != nil && errors.Is(err, context.Canceled) && g%4 == 0 && i%3 == 0:
				case err != nil:
					errs <- fmt.Errorf("%s: %w", want, err)
					return
				case got != want:
					errs <- fmt.Errorf("%s: got the reply %q", want, got)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// The context is still served, by a caller with a deadline and by one
	// without.
	for _, ctx := range []context.Context{ctxT(t), context.Background()} {
		if got, err := echo.Call(ctx, c, "after"); err != nil || got != "after" {
			t.Fatalf("call after: %q, %v", got, err)
		}
	}
}
