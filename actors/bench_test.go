package actors_test

import (
	"context"
	"os/exec"
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
	for i := 0; i < b.N; i++ {
		c, _ := startAndCall(b, r.Local)
		b.StopTimer()
		c.Shutdown(context.Background())
		b.StartTimer()
	}
}

// startAndCall starts a context with start and calls it once; it returns
// the context and how long that took.
func startAndCall(b *testing.B, start func(context.Context, ...actors.ConnectOption) (*actors.Context, error), opts ...actors.ConnectOption) (*actors.Context, time.Duration) {
	ctx := context.Background()
	t0 := time.Now()
	c, err := start(ctx, opts...)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := echo.Call(ctx, c, "ping"); err != nil {
		b.Fatal(err)
	}
	return c, time.Since(t0)
}

// BenchmarkSudoStartAndFirstCall is a sudo hop to the test user (cached
// build) and a first call, beside its floor measured in the same loop:
// `sudo -n -u mitogo-test true`, then a local child's start and first
// call. It reports ns/op for the hop and the floor's parts, and their ratio.
func BenchmarkSudoStartAndFirstCall(b *testing.B) {
	needSudo(b)
	r := newRouterB(b)
	ctx := context.Background()
	warm, err := r.Sudo(ctx, actors.User("mitogo-test")) // uploads the build once
	if err != nil {
		b.Fatal(err)
	}
	warm.Shutdown(ctx)
	var sudoTrue, local time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c, _ := startAndCall(b, r.Sudo, actors.User("mitogo-test"))
		b.StopTimer()
		c.Shutdown(ctx)
		t0 := time.Now()
		if err := exec.Command("sudo", "-n", "-u", "mitogo-test", "true").Run(); err != nil {
			b.Fatal(err)
		}
		sudoTrue += time.Since(t0)
		lc, took := startAndCall(b, r.Local)
		local += took
		lc.Shutdown(ctx)
		b.StartTimer()
	}
	floor := float64(sudoTrue+local) / float64(b.N)
	b.ReportMetric(float64(sudoTrue)/float64(b.N), "sudo-true-ns")
	b.ReportMetric(float64(local)/float64(b.N), "local-start-ns")
	b.ReportMetric(float64(b.Elapsed())/float64(b.N)/floor, "x-floor")
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
