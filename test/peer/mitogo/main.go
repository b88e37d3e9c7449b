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
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mitogo/mitogo/actors"
)

const mib = 1 << 20

// Functions run in the children; registered at package init so that every
// copy of the binary knows them.
var (
	identity = actors.Register("peer.identity", func(_ context.Context, v any) (any, error) { return v, nil })
	length   = actors.Register("peer.length", func(_ context.Context, b []byte) (int, error) { return len(b), nil })
)

// ---- helpers ---------------------------------------------------------------

func toInt64(v any) (int64, bool) {
	switch x := v.(type) {
	case int8:
		return int64(x), true
	case int16:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case uint8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case uint64:
		return int64(x), true
	case int:
		return int64(x), true
	}
	return 0, false
}

func same(a, b any) bool {
	ai, aok := toInt64(a)
	bi, bok := toInt64(b)
	if aok && bok {
		return ai == bi
	}
	return a == b
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }

func roundAll(xs []float64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = round1(x)
	}
	return out
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "mitogo-bench:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	if *verbose {
		fmt.Fprintf(os.Stderr, format+"\n", args...)
	}
}

func procStatusKB(pid int, field string) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	must(err)
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, field+":") {
			fs := strings.Fields(line)
			n, _ := strconv.Atoi(fs[1])
			return n
		}
	}
	return -1
}

// shutdown stops c, bounded so that a stuck child cannot hang the run.
func shutdown(c *actors.Context) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Shutdown(ctx); err != nil {
		logf("shutdown %s: %v", c, err)
	}
}

// ---- benchmarks ------------------------------------------------------------

type config struct {
	runs, calls, bigRuns, parRuns int
}

type result map[string]any

var bg = context.Background()

func benchRSS(r *actors.Router, cfg config, res result) {
	c, err := r.Local(bg)
	must(err)
	defer shutdown(c)
	_, err = identity.Call(bg, c, 0)
	must(err)
	pid := c.ProcessID()
	if pid == 0 {
		must(fmt.Errorf("rss: no process id for %s", c))
	}
	time.Sleep(200 * time.Millisecond) // idle from here on
	res["rss_child_kb"] = procStatusKB(pid, "VmRSS")
	res["rss_child_hwm_kb"] = procStatusKB(pid, "VmHWM")
	res["rss_master_kb"] = procStatusKB(os.Getpid(), "VmRSS")
	res["rss_master_hwm_kb"] = procStatusKB(os.Getpid(), "VmHWM")
}

func benchStart(r *actors.Router, cfg config, res result) {
	var samples []float64
	for i := 0; i < cfg.runs; i++ {
		t0 := time.Now()
		c, err := r.Local(bg)
		must(err)
		_, err = identity.Call(bg, c, 0)
		must(err)
		samples = append(samples, us(time.Since(t0)))
		shutdown(c)
	}
	logf("start_first_call samples (us): %.0f", samples)
	res["start_first_call_us"] = round1(median(samples))
	res["start_first_call_n"] = len(samples)
}

// timeCalls makes n sequential identity calls to c, alternating a small int
// and a small string as the floor and the Python side do, after one warm-up.
func timeCalls(c *actors.Context, n int) (samples []float64, total time.Duration) {
	_, err := identity.Call(bg, c, 0) // warm-up
	must(err)
	samples = make([]float64, 0, n)
	tAll := time.Now()
	for i := 0; i < n; i++ {
		var arg any = i
		if i%2 == 0 {
			arg = fmt.Sprintf("x%d", i)
		}
		t0 := time.Now()
		got, err := identity.Call(bg, c, arg)
		samples = append(samples, us(time.Since(t0)))
		must(err)
		if !same(got, arg) {
			must(fmt.Errorf("echo mismatch: %v (%T) != %v", got, got, arg))
		}
	}
	return samples, time.Since(tAll)
}

func benchCall(r *actors.Router, cfg config, res result) {
	c, err := r.Local(bg)
	must(err)
	defer shutdown(c)
	samples, total := timeCalls(c, cfg.calls)
	res["call_us"] = round1(median(samples))
	res["call_n"] = len(samples)
	res["call_total_ms"] = round1(float64(total.Microseconds()) / 1e3)
}

func benchBytes64(r *actors.Router, cfg config, res result) {
	c, err := r.Local(bg)
	must(err)
	defer shutdown(c)
	_, err = identity.Call(bg, c, 0)
	must(err)
	payload := make([]byte, 64*mib)
	for i := range payload {
		payload[i] = byte(i) // same byte distribution as the other two
	}
	// One untimed call first, as the floor and mitogen_bench.py do.
	_, err = length.Call(bg, c, payload)
	must(err)
	var rates []float64
	for i := 0; i < cfg.bigRuns; i++ {
		t0 := time.Now()
		n, err := length.Call(bg, c, payload)
		secs := time.Since(t0).Seconds()
		must(err)
		if n != len(payload) {
			must(fmt.Errorf("bytes64: child replied %d", n))
		}
		rates = append(rates, 64/secs)
	}
	logf("bytes64 samples (MB/s): %.1f", rates)
	res["bytes64_mbps"] = round1(median(rates))
	res["bytes64_n"] = len(rates)
	res["bytes64_samples"] = roundAll(rates)
}

func benchChain3(r *actors.Router, cfg config, res result) {
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
	samples, total := timeCalls(chain[2], cfg.calls)
	res["chain3_call_us"] = round1(median(samples))
	res["chain3_call_n"] = len(samples)
	res["chain3_call_total_ms"] = round1(float64(total.Microseconds()) / 1e3)
}

func parallelOnce(r *actors.Router, n int) float64 {
	ctxs := make([]*actors.Context, n)
	errs := make([]error, n)
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	ready.Add(n)
	done.Add(n)
	for i := 0; i < n; i++ {
		go func(i int) {
			defer done.Done()
			ready.Done()
			<-start
			c, err := r.Local(bg)
			if err != nil {
				errs[i] = err
				return
			}
			ctxs[i] = c
			_, errs[i] = identity.Call(bg, c, 0)
		}(i)
	}
	ready.Wait()
	t0 := time.Now()
	close(start)
	done.Wait()
	elapsed := time.Since(t0)
	var wg sync.WaitGroup
	for _, c := range ctxs {
		if c != nil {
			wg.Add(1)
			go func() { defer wg.Done(); shutdown(c) }()
		}
	}
	wg.Wait()
	for _, err := range errs {
		must(err)
	}
	return float64(elapsed.Microseconds()) / 1e3
}

func benchParallel20(r *actors.Router, cfg config, res result) {
	var samples []float64
	for i := 0; i < cfg.parRuns; i++ {
		samples = append(samples, parallelOnce(r, 20))
	}
	logf("parallel20 samples (ms): %.1f", samples)
	res["parallel20_ms"] = round1(median(samples))
	res["parallel20_n"] = len(samples)
	res["parallel20_samples"] = roundAll(samples)
}

// rss first, as in the other two: before the 64 MiB test grows the heap.
var benches = []struct {
	name string
	fn   func(*actors.Router, config, result)
}{
	{"rss", benchRSS},
	{"start_first_call", benchStart},
	{"call", benchCall},
	{"bytes64", benchBytes64},
	{"chain3", benchChain3},
	{"parallel20", benchParallel20},
}

var verbose = flag.Bool("v", false, "log progress to stderr")

func main() {
	actors.Main() // never returns in a child

	quick := flag.Bool("quick", false, "fewer repetitions (200 calls, 3 runs)")
	only := flag.String("only", "", "comma-separated subset: rss,start_first_call,call,bytes64,chain3,parallel20")
	flag.Parse()
	if *sshMode {
		mainSSH(*quick, *only)
		return
	}

	cfg := config{runs: 15, calls: 2000, bigRuns: 3, parRuns: 3}
	if *quick {
		cfg = config{runs: 3, calls: 200, bigRuns: 1, parRuns: 1}
	}
	want := map[string]bool{}
	aliases := map[string]string{
		"start_first_call_us": "start_first_call", "call_us": "call",
		"bytes64_mbps": "bytes64", "chain3_call_us": "chain3", "chain3_call": "chain3",
		"parallel20_ms": "parallel20", "rss_child_kb": "rss", "rss_master_kb": "rss",
	}
	for _, n := range strings.Split(*only, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if a, ok := aliases[n]; ok {
			n = a
		}
		found := false
		for _, b := range benches {
			found = found || b.name == n
		}
		if !found {
			must(fmt.Errorf("unknown benchmark %q", n))
		}
		want[n] = true
	}

	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if *verbose {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	r, err := actors.NewRouter(actors.WithLogger(logger))
	must(err)

	res := result{"impl": "mitogo", "go": runtime.Version(), "quick": *quick}
	for _, b := range benches {
		if len(want) > 0 && !want[b.name] {
			continue
		}
		logf("running %s", b.name)
		t0 := time.Now()
		b.fn(r, cfg, res)
		logf("%s done in %s", b.name, time.Since(t0).Round(time.Millisecond))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Shutdown(ctx); err != nil {
		logf("router shutdown: %v", err)
	}
	out, err := json.Marshal(res)
	must(err)
	fmt.Println(string(out))
}
