package builtins_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/mitogo/mitogo/builtins"
	"go.uber.org/goleak"
)

// Run joins the goroutine reading its stdin: a command that never reads a
// stdin that never ends leaves nothing behind once Run has returned.

// A stdin with read deadlines is interrupted without losing anything: the
// caller reads on after Run returns.
func TestRunStdinWithDeadlinesIsJoined(t *testing.T) {
	r, c := child(t)
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdinR.Close()
	defer stdinW.Close()
	before := goleak.IgnoreCurrent()
	var out bytes.Buffer
	exit, err := builtins.Run(ctxT(t), r, c, builtins.RunRequest{Argv: []string{"true"}}, stdinR, &out, &out)
	if err != nil || exit != 0 {
		t.Fatalf("run true = %d, %v", exit, err)
	}
	goleak.VerifyNone(t, before)
	stdinW.WriteString("after\n")
	stdinR.SetReadDeadline(time.Now().Add(20 * time.Second)) // a guard against a hang only
	buf := make([]byte, 16)
	n, err := stdinR.Read(buf)
	if err != nil || string(buf[:n]) != "after\n" {
		t.Fatalf("reading stdin after Run: %q %v", buf[:n], err)
	}
}

// A stdin without deadlines that is an io.Closer is closed.
func TestRunStdinCloserIsJoined(t *testing.T) {
	r, c := child(t)
	stdinR, stdinW := io.Pipe()
	before := goleak.IgnoreCurrent()
	var out bytes.Buffer
	exit, err := builtins.Run(ctxT(t), r, c, builtins.RunRequest{Argv: []string{"true"}}, stdinR, &out, &out)
	if err != nil || exit != 0 {
		t.Fatalf("run true = %d, %v", exit, err)
	}
	goleak.VerifyNone(t, before)
	if _, err := stdinW.Write([]byte("x")); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("write to the stdin Run was given: %v, want io.ErrClosedPipe", err)
	}
}

// blockedReader is a stdin Run cannot interrupt: its Read returns only when
// release is closed.
type blockedReader struct{ release chan struct{} }

func (b blockedReader) Read(p []byte) (int, error) {
	<-b.release
	return 0, io.EOF
}

// A stdin Run cannot interrupt is abandoned after StdinGrace: Run returns,
// and its goroutine ends when the Read does.
func TestRunStdinUninterruptibleIsAbandoned(t *testing.T) {
	r, c := child(t)
	stdin := blockedReader{release: make(chan struct{})}
	before := goleak.IgnoreCurrent()
	var out bytes.Buffer
	exit, err := builtins.Run(ctxT(t), r, c, builtins.RunRequest{Argv: []string{"echo", "done"}}, stdin, &out, &out)
	if err != nil || exit != 0 || out.String() != "done\n" {
		t.Fatalf("run echo = %d, %v, output %q", exit, err, out.String())
	}
	close(stdin.release)
	goleak.VerifyNone(t, before)
}
