package actors_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/mitogo/mitogo/actors"
)

// Benchmarks of the hot paths; compare them with the bare floor and with
// Mitogen using the harness in test/peer.

func BenchmarkCall(b *testing.B) {
	r := newRouterB(b)
	c, err := r.Local(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := echo.Call(ctx, c, "ping"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCallDeadline is BenchmarkCall with a deadline on every call, as
// most callers pass: one ctx for the whole run (shared), or a
// context.WithTimeout made for each call (per-call).
func BenchmarkCallDeadline(b *testing.B) {
	r := newRouterB(b)
	c, err := r.Local(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	b.Run("shared", func(b *testing.B) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		for i := 0; i < b.N; i++ {
			if _, err := echo.Call(ctx, c, "ping"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("per-call", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			_, err := echo.Call(ctx, c, "ping")
			cancel()
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkCallChain3(b *testing.B) {
	r := newRouterB(b)
	ctx := context.Background()
	var c *actors.Context
	for i := 0; i < 3; i++ {
		var opts []actors.ConnectOption
		if c != nil {
			opts = append(opts, actors.Via(c))
		}
		var err error
		if c, err = r.Local(ctx, opts...); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := echo.Call(ctx, c, "ping"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStartAndFirstCall(b *testing.B) {
	r := newRouterB(b)
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		c, err := r.Local(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := echo.Call(ctx, c, "ping"); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		c.Shutdown(ctx)
		b.StartTimer()
	}
}

func Benchmark64MiB(b *testing.B) {
	r := newRouterB(b)
	ctx := context.Background()
	c, err := r.Local(ctx)
	if err != nil {
		b.Fatal(err)
	}
	data := make([]byte, 64<<20)
	for i := range data {
		data[i] = byte(i)
	}
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if n, err := length.Call(ctx, c, data); err != nil || n != len(data) {
			b.Fatal(n, err)
		}
	}
}

func BenchmarkParallel20(b *testing.B) {
	r := newRouterB(b)
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		var wg sync.WaitGroup
		ctxs := make([]*actors.Context, 20)
		errs := make([]error, 20)
		for j := range ctxs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := r.Local(ctx)
				if err == nil {
					_, err = echo.Call(ctx, c, "ping")
				}
				ctxs[j], errs[j] = c, err
			}()
		}
		wg.Wait()
		b.StopTimer()
		for j, c := range ctxs {
			if errs[j] != nil {
				b.Fatal(errs[j])
			}
			c.Shutdown(ctx)
		}
		b.StartTimer()
	}
}

func newRouterB(b *testing.B) *actors.Router {
	r, err := actors.NewRouter(actors.WithLogger(discard()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Shutdown(context.Background()) })
	return r
}
