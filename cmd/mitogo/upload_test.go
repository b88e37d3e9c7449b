package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"os/user"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/mitogo/mitogo/test/sshtest"
)

// needTestUser returns mitogo-test, or skips (fails under
// MITOGO_REQUIRE_PARTS).
func needTestUser(t *testing.T) *user.User {
	t.Helper()
	u, err := user.Lookup("mitogo-test")
	if os.Getuid() != 0 || err != nil {
		if os.Getenv("MITOGO_REQUIRE_PARTS") != "" {
			t.Fatal("needs root, sudo and the user mitogo-test (bash test/run.sh sets them up)")
		}
		t.Skip("needs root, sudo and the user mitogo-test")
	}
	return u
}

// First contact on a terminal shows the upload's progress on one line of
// stderr (bytes, rate, time left), erased when it is done.
func TestUploadProgressOnTerminal(t *testing.T) {
	u := needTestUser(t)
	os.RemoveAll(u.HomeDir + "/.cache/mitogo")
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatalf("no pty: %v", err)
	}
	defer ptmx.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "run", "-t", "sudo://mitogo-test", "--", "echo", "ran")
	cmd.Stdout, cmd.Stderr = tty, tty
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close()
	var screen bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(&screen, ptmx) // ends with EIO when the last writer closes
	}()
	err = cmd.Wait()
	<-done
	text := screen.String()
	if err != nil {
		t.Fatalf("%v; output %q", err, text)
	}
	line := regexp.MustCompile(`\r\x1b\[Ksending mitogo to sudo:mitogo-test: [0-9.]+ [KM]iB of [0-9.]+ MiB`)
	if !line.MatchString(text) {
		t.Errorf("no progress line: %q", text)
	}
	if !strings.HasSuffix(text, "\r\x1b[Kran\r\n") {
		t.Errorf("the progress line is not erased before the output: %q", text)
	}
}

// -v logs how long each phase of a connect took: for ssh the TCP connect,
// the SSH handshake and authentication, then stage 1, the upload (or the
// exec of the cached build) and the handshake.
func TestVerboseConnectPhases(t *testing.T) {
	s := sshtest.Start(t)
	target := "ssh://" + s.User + "@" + s.Addr
	r := mitogo(t, "", "-v", "run", "-t", target, "--identity", s.ClientKey, "--known-hosts", s.KnownHosts, "--", "true")
	if r.exit != 0 {
		t.Fatalf("exit %d, stderr %q", r.exit, r.stderr)
	}
	var connected string
	for _, l := range strings.Split(r.stderr, "\n") {
		if strings.Contains(l, "msg=connected") {
			connected = l
		}
	}
	for _, phase := range []string{"tcp", "ssh_handshake", "auth", "session", "stage1", "handshake", "total"} {
		if !regexp.MustCompile(` ` + phase + `=[0-9.]+[µnm]?s`).MatchString(connected) {
			t.Errorf("no %s time in %q (stderr %q)", phase, connected, r.stderr)
		}
	}
	if !regexp.MustCompile(` (upload|exec)=[0-9.]+[µnm]?s`).MatchString(connected) {
		t.Errorf("no upload or exec time in %q", connected)
	}
}
