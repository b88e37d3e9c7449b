package peerkit

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Prog starts Must's message; each program sets it to its own name.
var Prog = "peer"

// Verbose is the -v flag, registered by Flags: Logf writes only with it.
var Verbose bool

// Result is the one JSON object a program prints.
type Result = map[string]any

// Must exits with status 1 after "Prog: err" on stderr if err is not nil.
func Must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, Prog+":", err)
		os.Exit(1)
	}
}

// Logf writes one line to stderr under -v.
func Logf(format string, args ...any) {
	if Verbose {
		fmt.Fprintf(os.Stderr, format+"\n", args...)
	}
}

// PrintJSON prints res as one line of JSON on stdout.
func PrintJSON(res Result) {
	out, err := json.Marshal(res)
	Must(err)
	fmt.Println(string(out))
}

// ---- flags -----------------------------------------------------------------

// Options are the flags every program takes.
type Options struct {
	Quick bool   // --quick: fewer repetitions
	Only  string // --only: comma-separated subset of the benchmarks
}

// Flags registers --quick, --only and -v on flag.CommandLine and returns
// where --quick and --only land after flag.Parse; names is the list of
// benchmarks shown in --only's help.
func Flags(names string) *Options {
	o := &Options{}
	flag.BoolVar(&Verbose, "v", false, "log progress to stderr")
	flag.BoolVar(&o.Quick, "quick", false, "fewer repetitions (200 calls, 3 runs)")
	flag.StringVar(&o.Only, "only", "", "comma-separated subset: "+names)
	return o
}

// Bench is a named benchmark; F is the program's own signature for them.
type Bench[F any] struct {
	Name string
	Fn   F
}

// Names returns the benchmarks' names in order.
func Names[F any](benches []Bench[F]) []string {
	names := make([]string, len(benches))
	for i, b := range benches {
		names[i] = b.Name
	}
	return names
}

// Picked is the set of benchmarks --only asked for; empty means all.
type Picked map[string]bool

// Pick reads only (--only): names or, through aliases, result keys, comma
// separated. It exits with `unknown KIND "NAME"` on a name not in names.
func Pick(only, kind string, names []string, aliases map[string]string) Picked {
	want := Picked{}
	for _, n := range strings.Split(only, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if a, ok := aliases[n]; ok {
			n = a
		}
		found := false
		for _, name := range names {
			found = found || name == n
		}
		if !found {
			Must(fmt.Errorf("unknown %s %q", kind, n))
		}
		want[n] = true
	}
	return want
}

// Run runs fn if name is picked, logging its start and duration under -v.
func (p Picked) Run(name string, fn func()) {
	if len(p) > 0 && !p[name] {
		return
	}
	Logf("running %s", name)
	t0 := time.Now()
	fn()
	Logf("%s done in %s", name, time.Since(t0).Round(time.Millisecond))
}

// Config is how often the local benchmarks repeat.
type Config struct {
	Runs, Calls, BigRuns, ParRuns int
}

// LocalConfig returns the repetitions of floor and mitogo's local mode:
// fewer with --quick.
func LocalConfig(quick bool) Config {
	if quick {
		return Config{Runs: 3, Calls: 200, BigRuns: 1, ParRuns: 1}
	}
	return Config{Runs: 15, Calls: 2000, BigRuns: 3, ParRuns: 3}
}

// ---- numbers ---------------------------------------------------------------

// ToInt64 returns v as an int64 if it is an integer of any Go type.
func ToInt64(v any) (int64, bool) {
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

// Same compares an echo with what was sent: integers by value whatever
// their types, anything else with ==.
func Same(a, b any) bool {
	ai, aok := ToInt64(a)
	bi, bok := ToInt64(b)
	if aok && bok {
		return ai == bi
	}
	return a == b
}

// Median returns the median of xs (0 for none), leaving xs as it is.
func Median(xs []float64) float64 {
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

// US returns d in microseconds.
func US(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

// MS returns d in milliseconds, to the microsecond.
func MS(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 }

// Round1 rounds f to one decimal.
func Round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }

// RoundAll rounds each of xs to one decimal.
func RoundAll(xs []float64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = Round1(x)
	}
	return out
}

// PutMedian sets res[name_unit] to the median of samples and res[name_n] to
// their number.
func PutMedian(res Result, name, unit string, samples []float64) {
	res[name+"_"+unit] = Round1(Median(samples))
	res[name+"_n"] = len(samples)
}

// PutSamples is PutMedian plus res[name_samples], every sample.
func PutSamples(res Result, name, unit string, samples []float64) {
	PutMedian(res, name, unit, samples)
	res[name+"_samples"] = RoundAll(samples)
}

// PutCalls sets res[name_us], res[name_n] and res[name_total_ms] from
// TimeCalls' results.
func PutCalls(res Result, name string, samples []float64, total time.Duration) {
	PutMedian(res, name, "us", samples)
	res[name+"_total_ms"] = Round1(MS(total))
}

// ---- loops -----------------------------------------------------------------

// TimeCalls makes one untimed warm-up call(0), then n sequential calls,
// alternating a small int and a small string as all the peers do, and checks
// each echo. It returns each call's time in microseconds and the total.
func TimeCalls(n int, call func(any) (any, error)) (samples []float64, total time.Duration) {
	_, err := call(0) // warm-up
	Must(err)
	samples = make([]float64, 0, n)
	tAll := time.Now()
	for i := 0; i < n; i++ {
		var arg any = i
		if i%2 == 0 {
			arg = fmt.Sprintf("x%d", i)
		}
		t0 := time.Now()
		got, err := call(arg)
		samples = append(samples, US(time.Since(t0)))
		Must(err)
		if !Same(got, arg) {
			Must(fmt.Errorf("echo mismatch: %v (%T) != %v", got, got, arg))
		}
	}
	return samples, time.Since(tAll)
}

// Bytes64 sends 64 MiB (the byte pattern all the peers use) through call,
// which returns the length the far side got: once untimed, as all the peers
// do (it grows both heaps, so the timed runs measure transfer rather than
// first touch of fresh pages), then runs times. It returns the MB/s of each.
func Bytes64(runs int, call func([]byte) (any, error)) []float64 {
	payload := make([]byte, 64<<20)
	for i := range payload {
		payload[i] = byte(i)
	}
	_, err := call(payload)
	Must(err)
	var rates []float64
	for i := 0; i < runs; i++ {
		t0 := time.Now()
		r, err := call(payload)
		secs := time.Since(t0).Seconds()
		Must(err)
		if n, ok := ToInt64(r); !ok || n != int64(len(payload)) {
			Must(fmt.Errorf("bytes64: child replied %v", r))
		}
		rates = append(rates, 64/secs)
	}
	return rates
}

// Gate runs fn(0) to fn(n-1) in n goroutines released at the same moment and
// returns the time from their release until the last returned.
func Gate(n int, fn func(i int)) time.Duration {
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	ready.Add(n)
	done.Add(n)
	for i := 0; i < n; i++ {
		go func(i int) {
			defer done.Done()
			ready.Done()
			<-start
			fn(i)
		}(i)
	}
	ready.Wait()
	t0 := time.Now()
	close(start)
	done.Wait()
	return time.Since(t0)
}

// ---- memory ----------------------------------------------------------------

// RSSKB returns the VmRSS and VmHWM of process pid, in KiB (-1 if missing).
func RSSKB(pid int) (rss, hwm int) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	Must(err)
	return statusKB(data, "VmRSS"), statusKB(data, "VmHWM")
}

func statusKB(data []byte, field string) int {
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, field+":") {
			fs := strings.Fields(line)
			n, _ := strconv.Atoi(fs[1])
			return n
		}
	}
	return -1
}

// PutRSS sets rss_child_kb, rss_child_hwm_kb, rss_master_kb and
// rss_master_hwm_kb: the child's (pid) and this process's memory.
func PutRSS(res Result, pid int) {
	res["rss_child_kb"], res["rss_child_hwm_kb"] = RSSKB(pid)
	res["rss_master_kb"], res["rss_master_hwm_kb"] = RSSKB(os.Getpid())
}
