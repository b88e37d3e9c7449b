package cluster_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mitogo/mitogo/builtins"
	"github.com/mitogo/mitogo/cluster"
)

// lineWaiter is a writer that hands each complete line to a channel as it
// arrives, so a test sees output while the command still runs.
type lineWaiter struct {
	mu    sync.Mutex
	buf   []byte
	all   bytes.Buffer
	lines chan string
}

func newLineWaiter() *lineWaiter { return &lineWaiter{lines: make(chan string, 1000)} }

func (w *lineWaiter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.all.Write(b)
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		select {
		case w.lines <- string(w.buf[:i]):
		default:
		}
		w.buf = w.buf[i+1:]
	}
}

func (w *lineWaiter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.all.String()
}

// next waits for the next line, or fails when done ends first or after a
// minute (a guard against a hang).
func (w *lineWaiter) next(t *testing.T, done <-chan error) string {
	t.Helper()
	select {
	case line := <-w.lines:
		return line
	case err := <-done:
		t.Fatalf("the run ended (%v) before the line came; output so far %q", err, w.String())
	case <-time.After(time.Minute):
		t.Fatalf("no line within a minute; output so far %q", w.String())
	}
	return ""
}

// waitPIDGone waits until process pid no longer exists.
func waitPIDGone(t *testing.T, pid int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still runs %v later", pid, within)
		}
		time.Sleep(50 * time.Millisecond) // polling the process table, bounded by the deadline
	}
}

// Streamed runs through the cluster, with a controller process owning
// the hosts: output arrives while the command runs, stdin reaches it,
// exit statuses and errors are the command's, big output and input
// arrive whole and in order through the bounded window, and a caller
// that cancels or goes away without a word has its command killed.
func TestStreamedRun(t *testing.T) {
	tc := newTestCluster(t, "h1 local\nh2 local\n", 3*time.Second)
	tc.start("a")
	tc.waitLeases([]string{"h1", "h2"}, "a")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	t.Run("live", func(t *testing.T) {
		// The command prints a line, then waits for stdin the test writes
		// only once it has seen that line: output that came only at the
		// end would hang this (until the guard's deadline).
		out, errOut := newLineWaiter(), newLineWaiter()
		inR, inW := io.Pipe()
		done := make(chan error, 1)
		var exit int
		go func() {
			var err error
			exit, err = tc.client.Run(ctx, "h1", builtins.RunRequest{Argv: []string{"sh", "-c", "echo first; read x; echo got $x; echo oops >&2; exit 3"}}, inR, out, errOut)
			done <- err
		}()
		if line := out.next(t, done); line != "first" {
			t.Fatalf("first line %q, want first", line)
		}
		io.WriteString(inW, "abc\n")
		inW.Close()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if exit != 3 || out.String() != "first\ngot abc\n" || errOut.String() != "oops\n" {
			t.Fatalf("exit %d, stdout %q, stderr %q; want 3, first/got abc, oops", exit, out.String(), errOut.String())
		}
	})

	t.Run("errors", func(t *testing.T) {
		var he *cluster.HostError
		_, err := tc.client.Run(ctx, "h2", builtins.RunRequest{Argv: []string{"no-such-command-mitogo"}}, nil, io.Discard, io.Discard)
		if !errors.Is(err, builtins.ErrCommandNotFound) || !errors.As(err, &he) || he.Host != "h2" || he.Controller != "a" {
			t.Fatalf("missing command: %v; want ErrCommandNotFound naming host h2 and controller a", err)
		}
		_, err = tc.client.Run(ctx, "nowhere", builtins.RunRequest{Argv: []string{"true"}}, nil, io.Discard, io.Discard)
		if !errors.Is(err, cluster.ErrNoOwner) {
			t.Fatalf("host outside the inventory: %v; want ErrNoOwner", err)
		}
	})

	t.Run("big", func(t *testing.T) {
		// Far more output than the window holds, in order, and stdin
		// larger than its window, whole.
		var out bytes.Buffer
		exit, err := tc.client.Run(ctx, "h1", builtins.RunRequest{Argv: []string{"seq", "1", "300000"}}, nil, &out, io.Discard)
		if err != nil || exit != 0 {
			t.Fatalf("seq: exit %d, %v", exit, err)
		}
		var want strings.Builder
		for i := 1; i <= 300000; i++ {
			fmt.Fprintf(&want, "%d\n", i)
		}
		if out.String() != want.String() {
			t.Fatalf("seq 1 300000: got %d bytes, want %d, not the same", out.Len(), want.Len())
		}
		in := strings.Repeat("0123456789abcdef", 300000) // 4.8 MB
		out.Reset()
		exit, err = tc.client.Run(ctx, "h2", builtins.RunRequest{Argv: []string{"sha256sum"}}, strings.NewReader(in), &out, io.Discard)
		if err != nil || exit != 0 {
			t.Fatalf("sha256sum: exit %d, %v", exit, err)
		}
		sum := sha256.Sum256([]byte(in))
		if want := hex.EncodeToString(sum[:]) + "  -\n"; out.String() != want {
			t.Fatalf("stdin of %d bytes: sha256sum printed %q, want %q", len(in), out.String(), want)
		}
	})

	t.Run("cancel", func(t *testing.T) {
		rctx, rcancel := context.WithCancel(ctx)
		defer rcancel()
		out := newLineWaiter()
		done := make(chan error, 1)
		go func() {
			_, err := tc.client.Run(rctx, "h1", builtins.RunRequest{Argv: []string{"sh", "-c", "echo $$; exec sleep 600"}}, nil, out, io.Discard)
			done <- err
		}()
		pid, err := strconv.Atoi(out.next(t, done))
		if err != nil {
			t.Fatal(err)
		}
		rcancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled run: %v, want context.Canceled", err)
		}
		waitPIDGone(t, pid, time.Minute)
	})

	t.Run("caller gone", func(t *testing.T) {
		// A caller whose connection ends without a word (a killed
		// process) has its command killed once it has been silent.
		cl, err := cluster.Dial(tc.srv.URL(), tc.token, tc.name)
		if err != nil {
			t.Fatal(err)
		}
		out := newLineWaiter()
		done := make(chan error, 1)
		go func() {
			_, err := cl.Run(ctx, "h2", builtins.RunRequest{Argv: []string{"sh", "-c", "echo $$; exec sleep 600"}}, nil, out, io.Discard)
			done <- err
		}()
		pid, err := strconv.Atoi(out.next(t, done))
		if err != nil {
			t.Fatal(err)
		}
		cl.Close()
		if err := <-done; err == nil {
			t.Fatal("a run whose connection closed returned no error")
		}
		waitPIDGone(t, pid, time.Minute)
	})
}
