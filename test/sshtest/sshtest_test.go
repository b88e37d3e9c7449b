package sshtest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runSSH runs the real ssh client with args and returns its stdout and
// stderr; it fails t if ssh takes longer than 30 seconds.
func runSSH(t *testing.T, env []string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ssh", args...)
	cmd.Env = append(os.Environ(), env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("ssh %v timed out; stderr:\n%s", args, e.String())
	}
	return o.String(), e.String(), err
}

func TestEcho(t *testing.T) {
	s := Start(t)
	if !strings.HasPrefix(s.Addr, "127.0.0.1:") || s.Host != "127.0.0.1" || s.Port == 0 {
		t.Fatalf("Addr %q Host %q Port %d", s.Addr, s.Host, s.Port)
	}
	if !strings.HasPrefix(s.HostKeyPub, "ssh-ed25519 ") {
		t.Fatalf("HostKeyPub = %q", s.HostKeyPub)
	}
	out, errOut, err := runSSH(t, nil, append(s.SSHArgs(), "echo hello")...)
	if err != nil || out != "hello\n" {
		t.Fatalf("ssh: %v, stdout %q, stderr:\n%s", err, out, errOut)
	}
	if !strings.Contains(s.Log(), "Accepted publickey for "+s.User) {
		t.Errorf("sshd log lacks the login:\n%s", s.Log())
	}
}

func TestTwoServers(t *testing.T) {
	a, b := Start(t), Start(t)
	if a.Addr == b.Addr || a.Dir == b.Dir {
		t.Fatalf("two servers share %s / %s", a.Addr, a.Dir)
	}
	for _, s := range []*Server{a, b} {
		out, errOut, err := runSSH(t, nil, append(s.SSHArgs(), "echo", s.Addr)...)
		if err != nil || out != s.Addr+"\n" {
			t.Fatalf("ssh to %s: %v, stdout %q, stderr:\n%s", s.Addr, err, out, errOut)
		}
	}
	// Each server's known_hosts names only its own key.
	args := a.SSHArgs()
	for i, arg := range args {
		if arg == "UserKnownHostsFile="+a.KnownHosts {
			args[i] = "UserKnownHostsFile=" + b.KnownHosts
		}
	}
	if _, errOut, err := runSSH(t, nil, append(args, "true")...); err == nil {
		t.Fatalf("ssh accepted server A with B's known_hosts; stderr:\n%s", errOut)
	}
}

func TestWrongKnownHosts(t *testing.T) {
	s := Start(t)
	if err := os.WriteFile(s.KnownHosts, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := runSSH(t, nil, append(s.SSHArgs(), "echo hello")...)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 255 {
		t.Fatalf("ssh with empty known_hosts: %v, stdout %q", err, out)
	}
	if !strings.Contains(errOut, "Host key verification failed") {
		t.Fatalf("stderr lacks host key verification failure:\n%s", errOut)
	}
}

func TestWrongClientKey(t *testing.T) {
	s := Start(t)
	other := filepath.Join(t.TempDir(), "other")
	keygen(t, other, "other")
	args := s.SSHArgs()
	for i, arg := range args {
		if arg == s.ClientKey {
			args[i] = other
		}
	}
	_, errOut, err := runSSH(t, nil, append(args, "true")...)
	if err == nil || !strings.Contains(errOut, "Permission denied") {
		t.Fatalf("ssh with an unknown key: %v, stderr:\n%s", err, errOut)
	}
}

func TestTestUser(t *testing.T) {
	NeedTestUser(t)
	s := Start(t, User(TestUser))
	out, errOut, err := runSSH(t, nil, append(s.SSHArgs(), "id -un")...)
	if err != nil || out != TestUser+"\n" {
		t.Fatalf("ssh as %s: %v, stdout %q, stderr:\n%s", TestUser, err, out, errOut)
	}
}

func TestPasswordAuth(t *testing.T) {
	NeedTestUser(t)
	s := Start(t, User(TestUser), PasswordAuth(true), MaxStartups("50"))
	// The client reads the password from an askpass program.
	askpass := filepath.Join(t.TempDir(), "askpass")
	script := "#!/bin/sh\necho '" + TestPassword + "'\n"
	if err := os.WriteFile(askpass, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	args := []string{
		"-F", "/dev/null", "-p", itoa(s.Port),
		"-o", "UserKnownHostsFile=" + s.KnownHosts,
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "StrictHostKeyChecking=yes",
		"-o", "PubkeyAuthentication=no",
		"-o", "PreferredAuthentications=password",
		"-o", "NumberOfPasswordPrompts=1",
		s.User + "@" + s.Host, "id -un",
	}
	env := []string{"SSH_ASKPASS=" + askpass, "SSH_ASKPASS_REQUIRE=force", "DISPLAY=none"}
	out, errOut, err := runSSH(t, env, args...)
	if err != nil || out != TestUser+"\n" {
		t.Fatalf("ssh by password: %v, stdout %q, stderr:\n%s", err, out, errOut)
	}
	if !strings.Contains(s.Log(), "Accepted password for "+TestUser) {
		t.Errorf("sshd log lacks the password login:\n%s", s.Log())
	}

	// A wrong password is refused.
	if err := os.WriteFile(askpass, []byte("#!/bin/sh\necho wrong\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, errOut, err := runSSH(t, env, args...); err == nil || !strings.Contains(errOut, "Permission denied") {
		t.Fatalf("ssh with a wrong password: %v, stderr:\n%s", err, errOut)
	}
}

func TestStop(t *testing.T) {
	s := Start(t)
	// A logged-in session dies with the server.
	cmd := exec.Command("ssh", append(s.SSHArgs(), "echo up; sleep 60")...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 3)
	if _, err := io.ReadFull(stdout, buf); err != nil || string(buf) != "up\n" {
		t.Fatalf("session: %q %v; stderr:\n%s", buf, err, errOut.String())
	}
	s.Stop()
	waited := make(chan error, 1)
	go func() { io.Copy(io.Discard, stdout); waited <- cmd.Wait() }()
	select {
	case err := <-waited:
		if err == nil {
			t.Fatalf("ssh exited 0 after the server stopped")
		}
	case <-time.After(20 * time.Second): // a guard against a hang only
		cmd.Process.Kill()
		t.Fatalf("ssh session survived Stop")
	}
	if _, err := net.DialTimeout("tcp", s.Addr, time.Second); err == nil {
		t.Fatalf("%s still accepts after Stop", s.Addr)
	}
	s.Stop() // a second Stop does nothing
}

func TestPause(t *testing.T) {
	s := Start(t)
	s.Pause()
	c, err := net.DialTimeout("tcp", s.Addr, 2*time.Second)
	if err != nil {
		t.Fatalf("dial paused server: %v", err) // the kernel still completes handshakes
	}
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := c.Read(make([]byte, 1)); !isTimeout(err) {
		t.Fatalf("paused server: read %d bytes, %v; want a timeout", n, err)
	}
	s.Resume()
	// The listener now greets the waiting connection.
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 8)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "SSH-2.0-" {
		t.Fatalf("resumed server: %q %v", buf, err)
	}
	c.Close()
	if out, errOut, err := runSSH(t, nil, append(s.SSHArgs(), "echo hello")...); err != nil || out != "hello\n" {
		t.Fatalf("ssh after Resume: %v, stdout %q, stderr:\n%s", err, out, errOut)
	}
}

func TestSilent(t *testing.T) {
	addr := Silent(t)
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, err := c.Read(make([]byte, 1)); !isTimeout(err) {
		t.Fatalf("Silent: read %d bytes, %v; want a timeout", n, err)
	}
	// ssh with a connect timeout gives up on it.
	_, errOut, err := runSSH(t, nil, "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "ConnectTimeout=1",
		"-p", strings.TrimPrefix(addr, "127.0.0.1:"), "nobody@127.0.0.1", "true")
	if err == nil || !strings.Contains(errOut, "timed out") {
		t.Fatalf("ssh to Silent: %v, stderr:\n%s", err, errOut)
	}
}

func TestClosedPort(t *testing.T) {
	addr := ClosedPort(t)
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err == nil {
		c.Close()
		t.Fatalf("%s accepted a connection", addr)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial %s: %v; want connection refused", addr, err)
	}
}

func TestListenAddr(t *testing.T) {
	s := Start(t, ListenAddr("127.0.0.2"))
	if s.Addr != "127.0.0.2:"+itoa(s.Port) {
		t.Fatalf("Addr %q", s.Addr)
	}
	if out, errOut, err := runSSH(t, nil, append(s.SSHArgs(), "echo hello")...); err != nil || out != "hello\n" {
		t.Fatalf("ssh: %v, stdout %q, stderr:\n%s", err, out, errOut)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func itoa(i int) string { return strconv.Itoa(i) }
