// Command mitogo measures mitogo itself on the workloads of the peer
// benchmarks (see ../README.md), with the same flags and JSON keys as
// ../floor and ../mitogen_bench.py. The binary re-execs itself for every
// child context, so actors.Main is the first statement of main.
//
//	go build -o /tmp/mitogo-bench ./test/peer/mitogo && /tmp/mitogo-bench [--quick] [--only NAME[,NAME]] [-v]
//
// With --ssh it measures mitogo over a real sshd instead (ssh.go; the sshd
// comes from ../sshd.sh, whose PEER_SSH_* variables it reads):
//
//	eval "$(bash test/peer/sshd.sh start)"; /tmp/mitogo-bench --ssh [--quick] [--only NAME[,NAME]] [-v]
//
// It prints ONE JSON object on stdout; everything else goes to stderr.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/mitogo/mitogo/actors"
	"github.com/mitogo/mitogo/test/peer/internal/peerkit"
)

// Functions run in the children; registered at package init so that every
// copy of the binary knows them.
var (
	identity = actors.Register("peer.identity", func(_ context.Context, v any) (any, error) { return v, nil })
	length   = actors.Register("peer.length", func(_ context.Context, b []byte) (int, error) { return len(b), nil })
)

// ---- helpers ---------------------------------------------------------------

var (
	must = peerkit.Must
	logf = peerkit.Logf
)

// stop shuts s down, bounded so that a stuck child cannot hang the run.
func stop(s interface{ Shutdown(context.Context) error }) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.Shutdown(ctx)
}

// shutdown stops c, logging a failure under -v.
func shutdown(c *actors.Context) {
	if err := stop(c); err != nil {
		logf("shutdown %s: %v", c, err)
	}
}

// shutdownRouter stops r, logging a failure under -v.
func shutdownRouter(r *actors.Router) {
	if err := stop(r); err != nil {
		logf("router shutdown: %v", err)
	}
}

// ---- benchmarks ------------------------------------------------------------

var bg = context.Background()

// started starts a local child and makes a first call to it; it exits on
// failure.
func started(r *actors.Router) *actors.Context {
	c, err := r.Local(bg)
	must(err)
	_, err = identity.Call(bg, c, 0)
	must(err)
	return c
}

func benchRSS(r *actors.Router, cfg peerkit.Config, res peerkit.Result) {
	c := started(r)
	defer shutdown(c)
	pid := c.ProcessID()
	if pid == 0 {
		must(fmt.Errorf("rss: no process id for %s", c))
	}
	time.Sleep(200 * time.Millisecond) // idle from here on
	peerkit.PutRSS(res, pid)
}

func benchStart(r *actors.Router, cfg peerkit.Config, res peerkit.Result) {
	var samples []float64
	for i := 0; i < cfg.Runs; i++ {
		t0 := time.Now()
		c := started(r)
		samples = append(samples, peerkit.US(time.Since(t0)))
		shutdown(c)
	}
	logf("start_first_call samples (us): %.0f", samples)
	peerkit.PutMedian(res, "start_first_call", "us", samples)
}

// timeCalls makes n sequential identity calls to c, alternating a small int
// and a small string as the floor and the Python side do, after one warm-up.
func timeCalls(c *actors.Context, n int) (samples []float64, total time.Duration) {
	return peerkit.TimeCalls(n, func(v any) (any, error) { return identity.Call(bg, c, v) })
}

func benchCall(r *actors.Router, cfg peerkit.Config, res peerkit.Result) {
	c, err := r.Local(bg)
	must(err)
	defer shutdown(c)
	samples, total := timeCalls(c, cfg.Calls)
	peerkit.PutCalls(res, "call", samples, total)
	// The same with a deadline on each call's ctx, as most callers pass.
	samples, total = peerkit.TimeCalls(cfg.Calls, func(v any) (any, error) {
		ctx, cancel := context.WithTimeout(bg, 10*time.Second)
		defer cancel()
		return identity.Call(ctx, c, v)
	})
	peerkit.PutCalls(res, "call_deadline", samples, total)
}

func benchBytes64(r *actors.Router, cfg peerkit.Config, res peerkit.Result) {
	c := started(r)
	defer shutdown(c)
	// Same byte distribution as the other two, and one untimed call first,
	// as the floor and mitogen_bench.py do.
	rates := peerkit.Bytes64(cfg.BigRuns, func(p []byte) (any, error) { return length.Call(bg, c, p) })
	logf("bytes64 samples (MB/s): %.1f", rates)
	peerkit.PutSamples(res, "bytes64", "mbps", rates)
}

func benchChain3(r *actors.Router, cfg peerkit.Config, res peerkit.Result) {
	var chain []*actors.Context
	defer func() {
		for i := len(chain) - 1; i >= 0; i-- {
			shutdown(chain[i])
		}
	}()
	for i := 0; i < 3; i++ {
		var opts []actors.ConnectOption
		if i > 0 {
			opts = append(opts, actors.Via(chain[i-1]))
		}
		c, err := r.Local(bg, opts...)
		must(err)
		chain = append(chain, c)
	}
	samples, total := timeCalls(chain[2], cfg.Calls)
	peerkit.PutCalls(res, "chain3_call", samples, total)
}

// parallelOnce opens n contexts with connect(i) at once, calls each once,
// and returns the wall time until all are done or failed, and the failures.
// The contexts are shut down afterwards, at once and untimed.
func parallelOnce(n int, connect func(i int) (*actors.Context, error)) (float64, []error) {
	ctxs := make([]*actors.Context, n)
	errs := make([]error, n)
	elapsed := peerkit.Gate(n, func(i int) {
		c, err := connect(i)
		if err != nil {
			errs[i] = err
			return
		}
		ctxs[i] = c
		_, errs[i] = identity.Call(bg, c, 0)
	})
	var wg sync.WaitGroup
	for _, c := range ctxs {
		if c != nil {
			wg.Add(1)
			go func() { defer wg.Done(); shutdown(c) }()
		}
	}
	wg.Wait()
	var failed []error
	for _, err := range errs {
		if err != nil {
			failed = append(failed, err)
		}
	}
	return peerkit.MS(elapsed), failed
}

func benchParallel20(r *actors.Router, cfg peerkit.Config, res peerkit.Result) {
	var samples []float64
	for i := 0; i < cfg.ParRuns; i++ {
		ms, failed := parallelOnce(20, func(int) (*actors.Context, error) { return r.Local(bg) })
		for _, err := range failed {
			must(err)
		}
		samples = append(samples, ms)
	}
	logf("parallel20 samples (ms): %.1f", samples)
	peerkit.PutSamples(res, "parallel20", "ms", samples)
}

// rss first, as in the other two: before the 64 MiB test grows the heap.
var benches = []peerkit.Bench[func(*actors.Router, peerkit.Config, peerkit.Result)]{
	{Name: "rss", Fn: benchRSS},
	{Name: "start_first_call", Fn: benchStart},
	{Name: "call", Fn: benchCall},
	{Name: "bytes64", Fn: benchBytes64},
	{Name: "chain3", Fn: benchChain3},
	{Name: "parallel20", Fn: benchParallel20},
}

func main() {
	actors.Main() // never returns in a child

	peerkit.Prog = "mitogo-bench"
	o := peerkit.Flags("rss,start_first_call,call,bytes64,chain3,parallel20")
	flag.Parse()
	if *sshMode {
		mainSSH(o)
		return
	}

	cfg := peerkit.LocalConfig(o.Quick)
	want := peerkit.Pick(o.Only, "benchmark", peerkit.Names(benches), map[string]string{
		"start_first_call_us": "start_first_call", "call_us": "call",
		"bytes64_mbps": "bytes64", "chain3_call_us": "chain3", "chain3_call": "chain3",
		"parallel20_ms": "parallel20", "rss_child_kb": "rss", "rss_master_kb": "rss",
	})

	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if peerkit.Verbose {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	r, err := actors.NewRouter(actors.WithLogger(logger))
	must(err)

	res := peerkit.Result{"impl": "mitogo", "go": runtime.Version(), "quick": o.Quick}
	for _, b := range benches {
		want.Run(b.Name, func() { b.Fn(r, cfg, res) })
	}
	shutdownRouter(r)
	peerkit.PrintJSON(res)
}
