package builtins_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mitogo/mitogo/actors"
	"github.com/mitogo/mitogo/builtins"
	"golang.org/x/sys/unix"
)

func TestExec(t *testing.T) {
	_, c := child(t)
	ctx := ctxT(t)
	res, err := builtins.ProcExec.Call(ctx, c, builtins.ExecRequest{Argv: []string{"sh", "-c", "echo out; echo err >&2; exit 3"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 3 || string(res.Stdout) != "out\n" || string(res.Stderr) != "err\n" || res.Signal != "" || res.TimedOut {
		t.Errorf("exec = %+v (stdout %q, stderr %q)", res, res.Stdout, res.Stderr)
	}

	dir := t.TempDir()
	res, err = builtins.ProcExec.Call(ctx, c, builtins.ExecRequest{
		Argv: []string{"sh", "-c", `cat; echo "$WORD"; pwd`}, Dir: dir, Env: []string{"WORD=bird"}, Stdin: []byte("in\n")})
	if err != nil {
		t.Fatal(err)
	}
	realDir, _ := filepath.EvalSymlinks(dir)
	if want := "in\nbird\n" + realDir + "\n"; res.ExitCode != 0 || string(res.Stdout) != want {
		t.Errorf("exec = %+v (stdout %q), want stdout %q", res, res.Stdout, want)
	}

	res, err = builtins.ProcExec.Call(ctx, c, builtins.ExecRequest{Argv: []string{"sh", "-c", "kill -TERM $$"}})
	if err != nil || res.ExitCode != 128+15 || res.Signal != "SIGTERM" {
		t.Errorf("exec of a command killed by SIGTERM = %+v, %v", res, err)
	}
}

func TestExecNotFound(t *testing.T) {
	_, c := child(t)
	_, err := builtins.ProcExec.Call(ctxT(t), c, builtins.ExecRequest{Argv: []string{"mitogo-no-such-command"}})
	var ce *actors.CallError
	if !errors.As(err, &ce) || !strings.Contains(ce.Message, "mitogo-no-such-command") || ce.Type != "*exec.Error" {
		t.Fatalf("exec of a missing command: %#v", err)
	}
}

// The request's own timeout kills the command; what it printed comes back.
func TestExecTimeout(t *testing.T) {
	_, c := child(t)
	res, err := builtins.ProcExec.Call(ctxT(t), c, builtins.ExecRequest{
		Argv: []string{"sh", "-c", "echo started; exec sleep 60"}, Timeout: builtins.Duration(50 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	if !res.TimedOut || res.Signal != "SIGKILL" || res.ExitCode != 137 || string(res.Stdout) != "started\n" {
		t.Errorf("exec = %+v (stdout %q)", res, res.Stdout)
	}
}

// A call deadline cancels the function on the far side, which kills the
// command with its process group (the shell and its sleep).
func TestExecCallDeadline(t *testing.T) {
	_, c := child(t)
	pidFile := filepath.Join(t.TempDir(), "pids")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := builtins.ProcExec.Call(ctx, c, builtins.ExecRequest{
		Argv: []string{"sh", "-c", `sleep 60 & echo $$ $! > "$0"; wait`, pidFile}})
	var te *actors.TimeoutError
	if !errors.As(err, &te) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("exec past the deadline: %v", err)
	}
	pids := readPids(t, pidFile)
	for _, pid := range pids {
		waitGone(t, pid)
	}
}

// readPids reads the process ids a command wrote.
func readPids(t *testing.T, path string) []int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("the deadline passed before the command started: %v", err)
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("pid file holds %q", b)
		}
		pids = append(pids, pid)
	}
	if len(pids) == 0 {
		t.Skipf("the deadline passed before the command wrote its pids")
	}
	return pids
}

// waitGone waits until process pid has exited, without polling: a pidfd
// becomes readable when its process exits.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return // gone and reaped already
	}
	if err != nil {
		t.Skipf("pidfd_open: %v", err)
	}
	defer unix.Close(fd)
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, 20_000)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			t.Fatalf("poll: %v", err)
		}
		if n == 0 {
			t.Fatalf("process %d is still running", pid)
		}
		return
	}
}

func TestRun(t *testing.T) {
	r, c := child(t)
	var stdout, stderr bytes.Buffer
	exit, err := builtins.Run(ctxT(t), r, c, builtins.RunRequest{Argv: []string{"sh", "-c", "echo out; echo err >&2; exit 3"}}, nil, &stdout, &stderr)
	if err != nil || exit != 3 || stdout.String() != "out\n" || stderr.String() != "err\n" {
		t.Errorf("run = %d, %v; stdout %q, stderr %q", exit, err, stdout.String(), stderr.String())
	}
	// Without stdin forwarding the command reads /dev/null.
	stdout.Reset()
	exit, err = builtins.Run(ctxT(t), r, c, builtins.RunRequest{Argv: []string{"wc", "-c"}}, nil, &stdout, &stderr)
	if err != nil || exit != 0 || strings.TrimSpace(stdout.String()) != "0" {
		t.Errorf("run wc -c = %d, %v; stdout %q", exit, err, stdout.String())
	}
	exit, err = builtins.Run(ctxT(t), r, c, builtins.RunRequest{Argv: []string{"sh", "-c", "kill -KILL $$"}}, nil, &stdout, &stderr)
	if err != nil || exit != 137 {
		t.Errorf("run of a command killed by SIGKILL = %d, %v", exit, err)
	}
}

func TestRunStdin(t *testing.T) {
	r, c := child(t)
	// More than the channel's window of chunks, so back-pressure works both ways.
	in := bytes.Repeat([]byte("0123456789abcdef"), 1<<17) // 2 MiB
	var stdout, stderr bytes.Buffer
	exit, err := builtins.Run(ctxT(t), r, c, builtins.RunRequest{Argv: []string{"cat"}}, bytes.NewReader(in), &stdout, &stderr)
	if err != nil || exit != 0 || !bytes.Equal(stdout.Bytes(), in) || stderr.Len() != 0 {
		t.Errorf("run cat = %d, %v; %d bytes out (want %d), stderr %q", exit, err, stdout.Len(), len(in), stderr.String())
	}
}

// Output arrives while the command runs: the command waits for input that
// the test sends only after it has seen the first line.
func TestRunLive(t *testing.T) {
	r, c := child(t)
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdinR.Close()
	out := &lineWriter{lines: make(chan string, 10)}
	done := make(chan error, 1)
	go func() {
		_, err := builtins.Run(ctxT(t), r, c, builtins.RunRequest{Argv: []string{"sh", "-c", "echo first; read x; echo second $x"}}, stdinR, out, out)
		done <- err
	}()
	if got := <-out.lines; got != "first\n" {
		t.Fatalf("first output %q", got)
	}
	stdinW.WriteString("go\n")
	stdinW.Close()
	if got := <-out.lines; got != "second go\n" {
		t.Fatalf("second output %q", got)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

type lineWriter struct{ lines chan string }

func (w *lineWriter) Write(p []byte) (int, error) {
	w.lines <- string(p)
	return len(p), nil
}

// Cancelling the caller's context kills the command and its process group.
func TestRunCancel(t *testing.T) {
	r, c := child(t)
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	out := &lineWriter{lines: make(chan string, 10)}
	done := make(chan error, 1)
	go func() {
		_, err := builtins.Run(ctx, r, c, builtins.RunRequest{Argv: []string{"sh", "-c", "sleep 60 & echo $$ $!; wait"}}, nil, out, out)
		done <- err
	}()
	var pids []int
	for _, f := range strings.Fields(<-out.lines) {
		pid, _ := strconv.Atoi(f)
		pids = append(pids, pid)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("run after cancel: %v", err)
	}
	for _, pid := range pids {
		waitGone(t, pid)
	}
}

// A call deadline stops Run with a *actors.TimeoutError and kills the command.
func TestRunDeadline(t *testing.T) {
	r, c := child(t)
	pidFile := filepath.Join(t.TempDir(), "pids")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var stdout bytes.Buffer
	_, err := builtins.Run(ctx, r, c, builtins.RunRequest{Argv: []string{"sh", "-c", `echo $$ > "$0"; exec sleep 60`, pidFile}}, nil, &stdout, &stdout)
	var te *actors.TimeoutError
	if !errors.As(err, &te) {
		t.Fatalf("run past the deadline: %v", err)
	}
	for _, pid := range readPids(t, pidFile) {
		waitGone(t, pid)
	}
}

func TestRunNotFound(t *testing.T) {
	r, c := child(t)
	var stdout bytes.Buffer
	_, err := builtins.Run(ctxT(t), r, c, builtins.RunRequest{Argv: []string{"mitogo-no-such-command"}}, strings.NewReader("x"), &stdout, &stdout)
	var ce *actors.CallError
	if !errors.As(err, &ce) || !strings.Contains(ce.Message, "mitogo-no-such-command") || !errors.Is(err, builtins.ErrCommandNotFound) {
		t.Fatalf("run of a missing command: %v", err)
	}
	_, err = builtins.Run(ctxT(t), r, c, builtins.RunRequest{Argv: []string{"/nonexistent-mitogo/prog"}}, nil, &stdout, &stdout)
	if !errors.Is(err, builtins.ErrCommandNotFound) {
		t.Fatalf("run of a missing path: %v; want ErrCommandNotFound", err)
	}
	_, err = builtins.Run(ctxT(t), r, c, builtins.RunRequest{Argv: []string{"/"}}, nil, &stdout, &stdout)
	if err == nil || errors.Is(err, builtins.ErrCommandNotFound) {
		t.Fatalf("run of a directory: %v; want an error other than ErrCommandNotFound", err)
	}
}

// Run works through a chain of contexts: output and stdin cross every hop.
func TestRunVia(t *testing.T) {
	r, c1 := child(t)
	ctx := ctxT(t)
	c2, err := r.Local(ctx, actors.Via(c1))
	if err != nil {
		t.Fatal(err)
	}
	c3, err := r.Local(ctx, actors.Via(c2))
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	exit, err := builtins.Run(ctx, r, c3, builtins.RunRequest{Argv: []string{"sh", "-c", `cat; echo $PPID >&2`}}, strings.NewReader("through\n"), &stdout, &stderr)
	if err != nil || exit != 0 || stdout.String() != "through\n" {
		t.Fatalf("run via = %d, %v; stdout %q", exit, err, stdout.String())
	}
	if got := strings.TrimSpace(stderr.String()); got != strconv.Itoa(c3.ProcessID()) {
		t.Errorf("the command's parent is %s, want the third context's pid %d", got, c3.ProcessID())
	}
}
