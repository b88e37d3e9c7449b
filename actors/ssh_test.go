package actors_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mitogo/mitogo/actors"
	"github.com/mitogo/mitogo/test/sshtest"
)

// sshTo is the options that reach s with its own key and known_hosts,
// ignoring the machine's ~/.ssh.
func sshTo(s *sshtest.Server, extra ...actors.ConnectOption) []actors.ConnectOption {
	return append([]actors.ConnectOption{actors.IdentityFile(s.ClientKey), actors.KnownHosts(s.KnownHosts), actors.SSHConfig("none")}, extra...)
}

func TestSSHKeyAuthAndCache(t *testing.T) {
	s := sshtest.Start(t)
	home, _ := os.UserHomeDir()
	os.RemoveAll(filepath.Join(home, ".cache", "mitogo"))
	rec := &recorder{}
	r := newRouter(t, actors.WithLogger(slog.New(rec)))
	c, err := r.SSH(ctxT(t), s.Addr, sshTo(s)...)
	if err != nil {
		t.Fatal(err)
	}
	id, err := whoami.Call(ctxT(t), c, struct{}{})
	if err != nil || id.Name != c.Name() || !strings.HasPrefix(c.Name(), "ssh:") {
		t.Fatalf("whoami = %+v, %v (name %q)", id, err, c.Name())
	}
	uploads := func() (n int) {
		for _, r := range rec.snapshot() {
			if r.Message == "binary uploaded" {
				n++
			}
		}
		return n
	}
	if uploads() != 1 {
		t.Fatalf("%d uploads on first contact, want 1", uploads())
	}
	c2, err := r.SSH(ctxT(t), s.Addr, sshTo(s, actors.Name("again"))...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := echo.Call(ctxT(t), c2, "x"); err != nil || uploads() != 1 {
		t.Fatalf("second contact: %v, %d uploads (want the cached binary, no upload)", err, uploads())
	}
	// The second found its build by the hash sent at once.
	if g := connectedAttr(rec, c2.Name(), "guessed"); g != "true" {
		t.Errorf("second contact: guessed=%q in its connected record, want true", g)
	}
	// The child starts in the login's home with the login shell's umask,
	// as a command run by ssh does, not in the binary cache: uploaded
	// (c) or found cached by the guess (c2).
	want := cwdAndUmask(t, s)
	for _, c := range []*actors.Context{c, c2} {
		got, err := cwdUmask.Call(ctxT(t), c, struct{}{})
		if err != nil || got != want {
			t.Fatalf("%s: child's cwd and umask %q, %v; ssh's own %q", c.Name(), got, err, want)
		}
	}
}

// connectedAttr is attribute key of the "connected" record of the context
// called name ("" when there is none).
func connectedAttr(rec *recorder, name, key string) string {
	for _, r := range rec.snapshot() {
		if r.Message != "connected" {
			continue
		}
		attrs := map[string]string{}
		r.Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value.String(); return true })
		if attrs["context"] == name {
			return attrs[key]
		}
	}
	return ""
}

var cwdUmask = actors.Register("test.cwdUmask", func(ctx context.Context, _ struct{}) (string, error) {
	wd, err := os.Getwd()
	old := syscall.Umask(0)
	syscall.Umask(old)
	return fmt.Sprintf("%s %04o", wd, old), err
})

// cwdAndUmask is what a command that OpenSSH runs on s sees.
func cwdAndUmask(t *testing.T, s *sshtest.Server) string {
	t.Helper()
	out, err := exec.Command("ssh", append(s.SSHArgs(), "pwd; umask")...).Output()
	if err != nil {
		t.Fatalf("ssh pwd; umask: %v", err)
	}
	f := strings.Fields(string(out))
	if len(f) != 2 {
		t.Fatalf("ssh pwd; umask: %q", out)
	}
	return f[0] + " " + f[1]
}

func TestSSHHostKeys(t *testing.T) {
	s := sshtest.Start(t)
	other := sshtest.Start(t)
	r := newRouter(t)
	dir := t.TempDir()

	// Unknown under strict: refused, showing the key's fingerprint.
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o600)
	_, err := r.SSH(ctxT(t), s.Addr, actors.IdentityFile(s.ClientKey), actors.KnownHosts(empty), actors.SSHConfig("none"))
	var se *actors.StreamError
	if !errors.As(err, &se) || !errors.Is(err, actors.ErrUnknownHostKey) || !strings.Contains(err.Error(), "SHA256:") {
		t.Fatalf("unknown host key: %T %v", err, err)
	}

	// Changed: known_hosts lists another key for this address.
	changed := filepath.Join(dir, "changed")
	data, _ := os.ReadFile(other.KnownHosts)
	os.WriteFile(changed, []byte(strings.ReplaceAll(string(data), other.Addr[strings.LastIndex(other.Addr, ":")+1:], s.Addr[strings.LastIndex(s.Addr, ":")+1:])), 0o600)
	_, err = r.SSH(ctxT(t), s.Addr, actors.IdentityFile(s.ClientKey), actors.KnownHosts(changed), actors.SSHConfig("none"), actors.HostKeyPolicy("accept-new"))
	if !errors.As(err, &se) || !errors.Is(err, actors.ErrChangedHostKey) || errors.Is(err, actors.ErrUnknownHostKey) {
		t.Fatalf("changed host key: %T %v", err, err)
	}

	// accept-new records the key, then strict accepts it.
	fresh := filepath.Join(dir, "fresh")
	c, err := r.SSH(ctxT(t), s.Addr, actors.IdentityFile(s.ClientKey), actors.KnownHosts(fresh), actors.SSHConfig("none"), actors.HostKeyPolicy("accept-new"))
	if err != nil {
		t.Fatal(err)
	}
	c.Shutdown(ctxT(t))
	if rec, _ := os.ReadFile(fresh); !strings.Contains(string(rec), strings.Fields(s.HostKeyPub)[1]) {
		t.Fatalf("accept-new recorded %q", rec)
	}
	if _, err := r.SSH(ctxT(t), s.Addr, actors.IdentityFile(s.ClientKey), actors.KnownHosts(fresh), actors.SSHConfig("none")); err != nil {
		t.Fatalf("strict after accept-new: %v", err)
	}
}

func TestSSHAuthFailures(t *testing.T) {
	sshtest.NeedTestUser(t)
	s := sshtest.Start(t, sshtest.User(sshtest.TestUser), sshtest.PasswordAuth(true))
	r := newRouter(t)
	base := []actors.ConnectOption{actors.KnownHosts(s.KnownHosts), actors.SSHConfig("none"), actors.User(sshtest.TestUser)}
	os.Unsetenv("SSH_AUTH_SOCK")

	c, err := r.SSH(ctxT(t), s.Addr, append(base, actors.Password(sshtest.TestPassword))...)
	if err != nil {
		t.Fatalf("password auth: %v", err)
	}
	if uid, err := uidOf.Call(ctxT(t), c, struct{}{}); err != nil || uid == 0 {
		t.Fatalf("uid over password auth: %d %v", uid, err)
	}
	var se *actors.StreamError
	_, err = r.SSH(ctxT(t), s.Addr, append(base, actors.Password("wrong"))...)
	if !errors.As(err, &se) || !errors.Is(err, actors.ErrAuthFailed) {
		t.Fatalf("wrong password: %T %v", err, err)
	}
	_, err = r.SSH(ctxT(t), s.Addr, append(base, actors.IdentityFile("/nonexistent/key"))...)
	if !errors.As(err, &se) || !errors.Is(err, actors.ErrAuthFailed) {
		t.Fatalf("no credentials: %T %v", err, err)
	}
	// The identity file named is not dropped in silence: the error says
	// which and why.
	if !errors.Is(err, actors.ErrIdentityUnusable) || !errors.Is(err, fs.ErrNotExist) ||
		!strings.Contains(err.Error(), "identity file /nonexistent/key: no such file or directory") {
		t.Fatalf("a missing identity file is not named: %v", err)
	}
}

func TestSSHDeadAndSilentHosts(t *testing.T) {
	r := newRouter(t)
	// A closed port fails at once with the refusal, not by retrying until
	// the connect timeout, which is far beyond the test's own deadline.
	_, err := r.SSH(ctxT(t), sshtest.ClosedPort(t), actors.SSHConfig("none"), actors.ConnectTimeout(5*time.Minute))
	var se *actors.StreamError
	if !errors.As(err, &se) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("closed port: %T %v", err, err)
	}
	_, err = r.SSH(ctxT(t), sshtest.Silent(t), actors.SSHConfig("none"), actors.ConnectTimeout(300*time.Millisecond))
	var te *actors.TimeoutError
	if !errors.As(err, &te) || te.Op != "connect" {
		t.Fatalf("silent listener: %T %v", err, err)
	}
}

func TestSSHKeepaliveNoticesAStoppedHost(t *testing.T) {
	s := sshtest.Start(t)
	r := newRouter(t)
	c, err := r.SSH(ctxT(t), s.Addr, sshTo(s, actors.Keepalive(100*time.Millisecond, 3))...)
	if err != nil {
		t.Fatal(err)
	}
	p := sleepy.Go(ctxT(t), c, time.Hour)
	waitRunning(t, c)
	s.Pause() // sshd and everything under it, the context included, stop answering
	defer s.Resume()
	_, err = p.Wait()
	expectGone(t, err, c.Name())
	if !strings.Contains(err.Error(), "keepalive") {
		t.Fatalf("reason does not name the keepalive: %v", err)
	}
}

func TestSSHThenSudoChainAndMiddleDeath(t *testing.T) {
	needSudo(t)
	s := sshtest.Start(t)
	r := newRouter(t)
	c1, err := r.SSH(ctxT(t), s.Addr, sshTo(s)...)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := r.Sudo(ctxT(t), actors.Via(c1), actors.User("mitogo-test"))
	if err != nil {
		t.Fatal(err)
	}
	if uid, err := uidOf.Call(ctxT(t), c2, struct{}{}); err != nil || uid == 0 {
		t.Fatalf("uid at the end of ssh → sudo: %d %v", uid, err)
	}
	p := sleepy.Go(ctxT(t), c2, time.Hour)
	waitRunning(t, c2)
	syscall.Kill(c1.ProcessID(), syscall.SIGKILL)
	_, err = p.Wait()
	expectGone(t, err, c2.Name())
}

func TestSSHThroughSSH(t *testing.T) {
	s1, s2 := sshtest.Start(t), sshtest.Start(t)
	r := newRouter(t)
	c1, err := r.SSH(ctxT(t), s1.Addr, sshTo(s1)...)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := r.SSH(ctxT(t), s2.Addr, sshTo(s2, actors.Via(c1))...)
	if err != nil {
		t.Fatal(err)
	}
	id, err := whoami.Call(ctxT(t), c2, struct{}{})
	if err != nil || id.Parent != c1.ID() {
		t.Fatalf("ssh → ssh: %+v %v", id, err)
	}
	if _, err := user.Lookup("mitogo-test"); err == nil {
		c3, err := r.Sudo(ctxT(t), actors.Via(c2), actors.User("mitogo-test"))
		if err != nil {
			t.Fatal(err)
		}
		if uid, err := uidOf.Call(ctxT(t), c3, struct{}{}); err != nil || uid == 0 {
			t.Fatalf("ssh → ssh → sudo: uid %d %v", uid, err)
		}
		p := sleepy.Go(ctxT(t), c3, time.Hour)
		waitRunning(t, c3)
		syscall.Kill(c2.ProcessID(), syscall.SIGKILL) // the middle hop dies
		_, err = p.Wait()
		expectGone(t, err, c3.Name())
	}
}

// A Host alias from an ssh config file supplies HostName, Port, User and
// IdentityFile, as OpenSSH would read them.
func TestSSHConfigAlias(t *testing.T) {
	s := sshtest.Start(t)
	cfg := filepath.Join(t.TempDir(), "config")
	host, port, _ := strings.Cut(s.Addr, ":")
	os.WriteFile(cfg, []byte("Host web1\n  HostName "+host+"\n  Port "+port+"\n  User "+s.User+"\n  IdentityFile "+s.ClientKey+"\n"), 0o600)
	r := newRouter(t)
	c, err := r.SSH(ctxT(t), "web1", actors.SSHConfig(cfg), actors.KnownHosts(s.KnownHosts))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := echo.Call(ctxT(t), c, "x"); err != nil || c.Name() != "ssh:web1" {
		t.Fatalf("%s: %v", c.Name(), err)
	}
}

// Twenty contexts to one host at once, against an sshd that drops all but
// three unauthenticated connections: pacing and retries lose none.
func TestSSHTwentyAtOnceUnderMaxStartups(t *testing.T) {
	s := sshtest.Start(t, sshtest.MaxStartups("3:100:3"))
	r := newRouter(t)
	errs := make(chan error, 20)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i := 0; i < 20; i++ {
		go func() {
			c, err := r.SSH(ctx, s.Addr, sshTo(s, actors.Name("p"+itoa(i)))...)
			if err == nil {
				_, err = echo.Call(ctx, c, "x")
			}
			errs <- err
		}()
	}
	for i := 0; i < 20; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// SSHArgs that ask the far side for a terminal (-tt): a cached build
// still connects, as the master then sends nothing before stage 1 has
// made the terminal raw (its line discipline would take the Hello's
// bytes for ^C and friends).
func TestOpenSSHWithATerminal(t *testing.T) {
	s := sshtest.Start(t)
	r := newRouter(t)
	c, err := r.OpenSSH(ctxT(t), s.User+"@"+s.Addr, sshTo(s)...) // caches the build
	if err != nil {
		t.Fatal(err)
	}
	c.Shutdown(ctxT(t))
	for i := 0; i < 3; i++ {
		c, err := r.OpenSSH(ctxT(t), s.User+"@"+s.Addr, sshTo(s, actors.SSHArgs("-tt"), actors.Name("tty"+itoa(i)))...)
		if err != nil {
			t.Fatalf("connect %d with -tt: %v", i, err)
		}
		if _, err := echo.Call(ctxT(t), c, "x"); err != nil {
			t.Fatalf("call %d with -tt: %v", i, err)
		}
		c.Shutdown(ctxT(t))
	}
}

// The OpenSSH client method: keys, known_hosts, a password through
// SSH_ASKPASS, and the refusals, each as a *StreamError saying which.
func TestOpenSSHMethod(t *testing.T) {
	s := sshtest.Start(t)
	r := newRouter(t)
	c, err := r.OpenSSH(ctxT(t), s.User+"@"+s.Addr, sshTo(s)...)
	if err != nil {
		t.Fatal(err)
	}
	if id, err := whoami.Call(ctxT(t), c, struct{}{}); err != nil || id.Name != c.Name() {
		t.Fatalf("whoami over openssh: %+v %v", id, err)
	}
	empty := filepath.Join(t.TempDir(), "empty")
	os.WriteFile(empty, nil, 0o600)
	_, err = r.OpenSSH(ctxT(t), s.User+"@"+s.Addr, actors.IdentityFile(s.ClientKey), actors.KnownHosts(empty), actors.SSHConfig("none"))
	var se *actors.StreamError
	if !errors.As(err, &se) || !errors.Is(err, actors.ErrUnknownHostKey) {
		t.Fatalf("unknown host key: %T %v", err, err)
	}

	sshtest.NeedTestUser(t)
	p := sshtest.Start(t, sshtest.User(sshtest.TestUser), sshtest.PasswordAuth(true))
	base := []actors.ConnectOption{actors.KnownHosts(p.KnownHosts), actors.SSHConfig("none"), actors.SSHArgs("-o", "PubkeyAuthentication=no")}
	c2, err := r.OpenSSH(ctxT(t), sshtest.TestUser+"@"+p.Addr, append(base, actors.Password(sshtest.TestPassword))...)
	if err != nil {
		t.Fatalf("password over openssh: %v", err)
	}
	if uid, err := uidOf.Call(ctxT(t), c2, struct{}{}); err != nil || uid == 0 {
		t.Fatalf("uid: %d %v", uid, err)
	}
	_, err = r.OpenSSH(ctxT(t), sshtest.TestUser+"@"+p.Addr, append(base, actors.Password("wrong"))...)
	if !errors.As(err, &se) || !errors.Is(err, actors.ErrAuthFailed) {
		t.Fatalf("wrong password: %T %v", err, err)
	}
}

// An identity file given that cannot be used is warned of, as OpenSSH
// does, when the connection goes on with another key that works.
func TestSSHWarnsOfUnusableIdentity(t *testing.T) {
	s := sshtest.Start(t)
	rec := &recorder{}
	r := newRouter(t, actors.WithLogger(slog.New(rec)))
	missing := filepath.Join(t.TempDir(), "nonexist_key")
	c, err := r.SSH(ctxT(t), s.Addr, sshTo(s, actors.IdentityFile(missing))...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := echo.Call(ctxT(t), c, "x"); err != nil {
		t.Fatal(err)
	}
	attrs, ok := rec.find("not used, connected without it")
	if want := "identity file " + missing + ": no such file or directory"; !ok || attrs["what"] != want || attrs["context"] != c.Name() {
		t.Fatalf("warning %v %v; want one for %s saying %q", ok, attrs, c.Name(), want)
	}
}
