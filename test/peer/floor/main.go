// Command floor measures the "bare floor" for mitogo: what a Go parent gets
// from nothing but exec, a socketpair and msgpack frames, with no runtime in
// between. The same binary re-execs itself as the child (FLOOR_CHILD=1 in the
// environment), which gets one end of an AF_UNIX SOCK_STREAM socketpair as
// fd 3 and answers 4-byte big-endian length-prefixed msgpack frames: a bin
// value is answered with its length, anything else is echoed back.
//
//	go run ./test/peer/floor [--quick] [--only NAME[,NAME]]
//
// It prints ONE JSON object on stdout; everything else goes to stderr.
package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

const (
	childEnv = "FLOOR_CHILD"
	maxFrame = 1 << 30
	mib      = 1 << 20
)

// ---- framing ---------------------------------------------------------------

// encodeFrame returns v as one frame: a 4-byte big-endian length, then the
// msgpack encoding of v, in a single buffer (so one write per message).
func encodeFrame(v any) ([]byte, error) {
	buf := new(bytes.Buffer)
	if b, ok := v.([]byte); ok {
		buf.Grow(4 + 5 + len(b)) // avoid repeated doubling for big payloads
	}
	buf.Write([]byte{0, 0, 0, 0})
	if err := msgpack.NewEncoder(buf).Encode(v); err != nil {
		return nil, err
	}
	frame := buf.Bytes()
	binary.BigEndian.PutUint32(frame[:4], uint32(len(frame)-4))
	return frame, nil
}

func writeFrame(w io.Writer, v any) error {
	frame, err := encodeFrame(v)
	if err != nil {
		return err
	}
	_, err = w.Write(frame)
	return err
}

func readFrame(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > maxFrame {
		return nil, fmt.Errorf("frame too large: %d", n)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// ---- child -----------------------------------------------------------------

func childMain() {
	f := os.NewFile(3, "floor-sock")
	conn, err := net.FileConn(f)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: FileConn:", err)
		os.Exit(2)
	}
	f.Close()
	r := bufio.NewReaderSize(conn, 64<<10)
	for {
		frame, err := readFrame(r)
		if err != nil {
			if errors.Is(err, io.EOF) {
				os.Exit(0)
			}
			fmt.Fprintln(os.Stderr, "child: read:", err)
			os.Exit(2)
		}
		var v any
		if err := msgpack.Unmarshal(frame, &v); err != nil {
			fmt.Fprintln(os.Stderr, "child: decode:", err)
			os.Exit(2)
		}
		if b, ok := v.([]byte); ok {
			v = len(b)
		}
		if err := writeFrame(conn, v); err != nil {
			fmt.Fprintln(os.Stderr, "child: write:", err)
			os.Exit(2)
		}
	}
}

// ---- parent side -----------------------------------------------------------

type child struct {
	cmd  *exec.Cmd
	conn net.Conn
	r    *bufio.Reader
}

var self string

func spawn() (*child, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	parentF := os.NewFile(uintptr(fds[0]), "floor-parent")
	childF := os.NewFile(uintptr(fds[1]), "floor-child")
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, nil, os.Stderr
	cmd.ExtraFiles = []*os.File{childF} // becomes fd 3
	err = cmd.Start()
	childF.Close()
	if err != nil {
		parentF.Close()
		return nil, err
	}
	conn, err := net.FileConn(parentF)
	parentF.Close()
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, err
	}
	return &child{cmd: cmd, conn: conn, r: bufio.NewReaderSize(conn, 64<<10)}, nil
}

func (c *child) call(v any) (any, error) {
	if err := writeFrame(c.conn, v); err != nil {
		return nil, err
	}
	frame, err := readFrame(c.r)
	if err != nil {
		return nil, err
	}
	var res any
	err = msgpack.Unmarshal(frame, &res)
	return res, err
}

// close shuts the socket (the child sees EOF and exits) and reaps the child.
func (c *child) close() error {
	c.conn.Close()
	return c.cmd.Wait()
}

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
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	if *verbose {
		fmt.Fprintf(os.Stderr, format+"\n", args...)
	}
}

// ---- benchmarks ------------------------------------------------------------

type config struct {
	runs, calls, bigRuns, parRuns int
}

type result map[string]any

func benchRSS(cfg config, res result) {
	c, err := spawn()
	must(err)
	defer c.close()
	_, err = c.call(0)
	must(err)
	time.Sleep(200 * time.Millisecond) // idle from here on
	res["rss_child_kb"] = procStatusKB(c.cmd.Process.Pid, "VmRSS")
	res["rss_child_hwm_kb"] = procStatusKB(c.cmd.Process.Pid, "VmHWM")
	res["rss_master_kb"] = procStatusKB(os.Getpid(), "VmRSS")
	res["rss_master_hwm_kb"] = procStatusKB(os.Getpid(), "VmHWM")
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

func benchStart(cfg config, res result) {
	var samples []float64
	for i := 0; i < cfg.runs; i++ {
		t0 := time.Now()
		c, err := spawn()
		must(err)
		_, err = c.call(0)
		must(err)
		samples = append(samples, us(time.Since(t0)))
		must(c.close())
	}
	logf("start_first_call samples (us): %.0f", samples)
	res["start_first_call_us"] = round1(median(samples))
	res["start_first_call_n"] = len(samples)
}

func benchCall(cfg config, res result) {
	c, err := spawn()
	must(err)
	defer c.close()
	_, err = c.call(0) // warm-up
	must(err)
	samples := make([]float64, 0, cfg.calls)
	tAll := time.Now()
	for i := 0; i < cfg.calls; i++ {
		var arg any = i
		if i%2 == 0 {
			arg = fmt.Sprintf("x%d", i) // small int / small str, as the Python side
		}
		t0 := time.Now()
		r, err := c.call(arg)
		samples = append(samples, us(time.Since(t0)))
		must(err)
		if !same(r, arg) {
			must(fmt.Errorf("echo mismatch: %v != %v", r, arg))
		}
	}
	total := time.Since(tAll)
	res["call_us"] = round1(median(samples))
	res["call_n"] = len(samples)
	res["call_total_ms"] = round1(float64(total.Microseconds()) / 1e3)
}

func benchBytes64(cfg config, res result) {
	c, err := spawn()
	must(err)
	defer c.close()
	_, err = c.call(0)
	must(err)
	payload := make([]byte, 64*mib)
	for i := range payload {
		payload[i] = byte(i) // same byte distribution as the Python side
	}
	// One untimed 64 MiB call first, as mitogen_bench.py does: it grows both
	// heaps, so the timed runs measure transfer rather than first touch of
	// fresh pages (which costs ~1 ms/MiB on this VM).
	_, err = c.call(payload)
	must(err)
	var rates []float64
	for i := 0; i < cfg.bigRuns; i++ {
		t0 := time.Now()
		r, err := c.call(payload)
		secs := time.Since(t0).Seconds()
		must(err)
		if n, ok := toInt64(r); !ok || n != int64(len(payload)) {
			must(fmt.Errorf("bytes64: child replied %v", r))
		}
		rates = append(rates, 64/secs)
	}
	logf("bytes64 samples (MB/s): %.1f", rates)
	res["bytes64_mbps"] = round1(median(rates))
	res["bytes64_n"] = len(rates)
	res["bytes64_samples"] = roundAll(rates)
	res["bytes64_wire_bytes"] = 64*mib + 5 + 4 // bin32 header + frame header
}

func parallelOnce(n int) float64 {
	children := make([]*child, n)
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
			c, err := spawn()
			if err != nil {
				errs[i] = err
				return
			}
			children[i] = c
			_, errs[i] = c.call(0)
		}(i)
	}
	ready.Wait()
	t0 := time.Now()
	close(start)
	done.Wait()
	elapsed := time.Since(t0)
	for _, c := range children {
		if c != nil {
			c.close()
		}
	}
	for _, err := range errs {
		must(err)
	}
	return float64(elapsed.Microseconds()) / 1e3
}

func benchParallel20(cfg config, res result) {
	var samples []float64
	for i := 0; i < cfg.parRuns; i++ {
		samples = append(samples, parallelOnce(20))
	}
	logf("parallel20 samples (ms): %.1f", samples)
	res["parallel20_ms"] = round1(median(samples))
	res["parallel20_n"] = len(samples)
	res["parallel20_samples"] = roundAll(samples)
}

// rss first, as in mitogen_bench.py: before the 64 MiB test grows the heap.
var benches = []struct {
	name string
	fn   func(config, result)
}{
	{"rss", benchRSS},
	{"start_first_call", benchStart},
	{"call", benchCall},
	{"bytes64", benchBytes64},
	{"parallel20", benchParallel20},
}

var verbose = flag.Bool("v", false, "log progress to stderr")

func main() {
	if os.Getenv(childEnv) == "1" {
		childMain()
		return
	}
	quick := flag.Bool("quick", false, "fewer repetitions (200 calls, 3 runs)")
	only := flag.String("only", "", "comma-separated subset: rss,start_first_call,call,bytes64,parallel20")
	flag.Parse()

	var err error
	self, err = os.Executable()
	must(err)

	cfg := config{runs: 15, calls: 2000, bigRuns: 3, parRuns: 3}
	if *quick {
		cfg = config{runs: 3, calls: 200, bigRuns: 1, parRuns: 1}
	}
	want := map[string]bool{}
	aliases := map[string]string{
		"start_first_call_us": "start_first_call", "call_us": "call",
		"bytes64_mbps": "bytes64", "parallel20_ms": "parallel20",
		"rss_child_kb": "rss", "rss_master_kb": "rss",
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

	res := result{"impl": "floor", "go": runtime.Version(), "quick": *quick}
	for _, b := range benches {
		if len(want) > 0 && !want[b.name] {
			continue
		}
		logf("running %s", b.name)
		t0 := time.Now()
		b.fn(cfg, res)
		logf("%s done in %s", b.name, time.Since(t0).Round(time.Millisecond))
	}
	out, err := json.Marshal(res)
	must(err)
	fmt.Println(string(out))
}
