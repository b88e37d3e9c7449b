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
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"time"

	"github.com/mitogo/mitogo/test/peer/internal/peerkit"
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

// ---- benchmarks ------------------------------------------------------------

// started spawns a child and makes a first call to it; it exits on failure.
func started() *child {
	c, err := spawn()
	must(err)
	_, err = c.call(0)
	must(err)
	return c
}

func benchRSS(cfg peerkit.Config, res peerkit.Result) {
	c := started()
	defer c.close()
	time.Sleep(200 * time.Millisecond) // idle from here on
	peerkit.PutRSS(res, c.cmd.Process.Pid)
}

func benchStart(cfg peerkit.Config, res peerkit.Result) {
	var samples []float64
	for i := 0; i < cfg.Runs; i++ {
		t0 := time.Now()
		c := started()
		samples = append(samples, peerkit.US(time.Since(t0)))
		must(c.close())
	}
	logf("start_first_call samples (us): %.0f", samples)
	peerkit.PutMedian(res, "start_first_call", "us", samples)
}

func benchCall(cfg peerkit.Config, res peerkit.Result) {
	c, err := spawn()
	must(err)
	defer c.close()
	samples, total := peerkit.TimeCalls(cfg.Calls, c.call) // small int / small str, as the Python side
	peerkit.PutCalls(res, "call", samples, total)
}

func benchBytes64(cfg peerkit.Config, res peerkit.Result) {
	c := started()
	defer c.close()
	// Same byte distribution as the Python side; one untimed call first, as
	// mitogen_bench.py does (first touch of fresh pages costs ~1 ms/MiB on
	// this VM).
	rates := peerkit.Bytes64(cfg.BigRuns, func(p []byte) (any, error) { return c.call(p) })
	logf("bytes64 samples (MB/s): %.1f", rates)
	peerkit.PutSamples(res, "bytes64", "mbps", rates)
	res["bytes64_wire_bytes"] = 64*mib + 5 + 4 // bin32 header + frame header
}

func parallelOnce(n int) float64 {
	children := make([]*child, n)
	errs := make([]error, n)
	elapsed := peerkit.Gate(n, func(i int) {
		c, err := spawn()
		if err != nil {
			errs[i] = err
			return
		}
		children[i] = c
		_, errs[i] = c.call(0)
	})
	for _, c := range children {
		if c != nil {
			c.close()
		}
	}
	for _, err := range errs {
		must(err)
	}
	return peerkit.MS(elapsed)
}

func benchParallel20(cfg peerkit.Config, res peerkit.Result) {
	var samples []float64
	for i := 0; i < cfg.ParRuns; i++ {
		samples = append(samples, parallelOnce(20))
	}
	logf("parallel20 samples (ms): %.1f", samples)
	peerkit.PutSamples(res, "parallel20", "ms", samples)
}

// rss first, as in mitogen_bench.py: before the 64 MiB test grows the heap.
var benches = []peerkit.Bench[func(peerkit.Config, peerkit.Result)]{
	{Name: "rss", Fn: benchRSS},
	{Name: "start_first_call", Fn: benchStart},
	{Name: "call", Fn: benchCall},
	{Name: "bytes64", Fn: benchBytes64},
	{Name: "parallel20", Fn: benchParallel20},
}

var (
	must = peerkit.Must
	logf = peerkit.Logf
)

func main() {
	if os.Getenv(childEnv) == "1" {
		childMain()
		return
	}
	peerkit.Prog = "floor"
	o := peerkit.Flags("rss,start_first_call,call,bytes64,parallel20")
	flag.Parse()

	var err error
	self, err = os.Executable()
	must(err)

	cfg := peerkit.LocalConfig(o.Quick)
	want := peerkit.Pick(o.Only, "benchmark", peerkit.Names(benches), map[string]string{
		"start_first_call_us": "start_first_call", "call_us": "call",
		"bytes64_mbps": "bytes64", "parallel20_ms": "parallel20",
		"rss_child_kb": "rss", "rss_master_kb": "rss",
	})

	res := peerkit.Result{"impl": "floor", "go": runtime.Version(), "quick": o.Quick}
	for _, b := range benches {
		want.Run(b.Name, func() { b.Fn(cfg, res) })
	}
	peerkit.PrintJSON(res)
}
