package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mitogo/mitogo/actors"
	"go.uber.org/goleak"
)

// The test binary is also the program the contexts run.
func TestMain(m *testing.M) {
	actors.Main()
	if os.Getenv("GORACE") == "" {
		os.Setenv("GORACE", "atexit_sleep_ms=0") // children built with -race otherwise sleep 1s at exit
	}
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"))
}

// Three local targets and one ssh target where nothing listens: the three
// report their facts, the fourth is reported unreachable on its own line,
// and the run's status says something failed. Then a file is pushed (to
// one local target: local children share this machine and its paths).
func TestFleetExample(t *testing.T) {
	var out bytes.Buffer
	status := run(&out, []string{"local", "local", "local", "127.0.0.1:1"}, "", "", 4, 20*time.Second)
	text := out.String()
	t.Log(text)
	if status != 1 {
		t.Errorf("status %d, want 1 (one target unreachable)", status)
	}
	if n := len(regexp.MustCompile(`(?m)^local\.\d+ +\S+ as \S+, pid \d+, `).FindAllString(text, -1)); n != 3 {
		t.Errorf("%d local targets reported their facts, want 3", n)
	}
	if !regexp.MustCompile(`(?m)^127\.0\.0\.1:1 +unreachable: `).MatchString(text) {
		t.Error("the unreachable target is not reported as such")
	}

	src := filepath.Join(t.TempDir(), "motd")
	if err := os.WriteFile(src, []byte("hello, fleet\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "motd")
	out.Reset()
	if status := run(&out, []string{"local"}, src, dst, 4, 20*time.Second); status != 0 {
		t.Errorf("push run: status %d, want 0:\n%s", status, out.String())
	}
	if got, err := os.ReadFile(dst); err != nil || string(got) != "hello, fleet\n" {
		t.Errorf("pushed file: %q, %v", got, err)
	}
	if !strings.Contains(out.String(), dst+" written (13 bytes sent)") {
		t.Errorf("push not reported:\n%s", out.String())
	}
}
