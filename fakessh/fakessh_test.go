package fakessh_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mitogo/mitogo/actors"
	"github.com/mitogo/mitogo/fakessh"
	"github.com/mitogo/mitogo/test/sshtest"
	"go.uber.org/goleak"
)

// The test binary is the child and the ssh stand-in: TestMain serves as
// either when started as one.
func TestMain(m *testing.M) {
	actors.Main()
	os.Setenv("GORACE", "atexit_sleep_ms=0 "+os.Getenv("GORACE"))
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"))
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// need fails (with MITOGO_REQUIRE_PARTS, as in CI) or skips without a part.
func need(t *testing.T, why string, ok bool) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("MITOGO_REQUIRE_PARTS") != "" {
		t.Fatalf("%s (bash test/run.sh installs and sets it up)", why)
	}
	t.Skip(why)
}

func have(cmd string) bool { _, err := exec.LookPath(cmd); return err == nil }

// serve starts a router, a context by start, and a Server whose default
// host is that context; all end with the test.
func serve(t *testing.T, start func(*actors.Router) (*actors.Context, error)) (*actors.Router, *actors.Context, *fakessh.Server) {
	t.Helper()
	r, err := actors.NewRouter()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		r.Shutdown(ctx)
	})
	c, err := start(r)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := fakessh.Serve(r, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return r, c, srv
}

func local(r *actors.Router) (*actors.Context, error) { return r.Local(context.Background()) }

// The stand-in relays stdin, stdout, stderr and the exit status, as ssh.
func TestStandInRelaysLikeSSH(t *testing.T) {
	_, _, srv := serve(t, local)
	cmd := srv.Command(srv.Program(), "-o", "BatchMode=yes", "-l", "nobody", "anyhost", "tr a-z A-Z; echo err >&2; exit 3")
	cmd.Stdin = strings.NewReader("hello\n")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if cmd.ProcessState.ExitCode() != 3 || stdout.String() != "HELLO\n" || stderr.String() != "err\n" {
		t.Fatalf("exit %d (%v), stdout %q, stderr %q", cmd.ProcessState.ExitCode(), err, stdout.String(), stderr.String())
	}
	// Without a remote command there is nothing to run: ssh's 255, and why.
	out, err := srv.Command(srv.Program(), "anyhost").CombinedOutput()
	if code := exitCode(err); code != 255 || !strings.Contains(string(out), "no remote command") {
		t.Fatalf("no command: exit %d, %q", code, out)
	}
	// A stand-in started with no server behind it says so.
	cmd = exec.Command(srv.Program(), "anyhost", "true")
	cmd.Env = append(os.Environ(), fakessh.EnvSocket+"="+filepath.Join(filepath.Dir(srv.Program()), "gone.sock"))
	out, err = cmd.CombinedOutput()
	if code := exitCode(err); code != 255 || !strings.Contains(string(out), "mitogo fakessh") {
		t.Fatalf("no server: exit %d, %q", code, out)
	}
}

func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// A host name no context answers to is refused, naming it.
func TestUnknownHost(t *testing.T) {
	r, c, _ := serve(t, local)
	srv, err := fakessh.Serve(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.Add("known", c)
	if out, err := srv.Command(srv.Program(), "known", "echo yes").Output(); err != nil || string(out) != "yes\n" {
		t.Fatalf("known host: %q %v", out, err)
	}
	out, err := srv.Command(srv.Program(), "web9", "true").CombinedOutput()
	if exitCode(err) != 255 || !strings.Contains(string(out), `no context is named "web9"`) {
		t.Fatalf("unknown host: %v %q", err, out)
	}
}

// tree writes a small tree of files: text, a few MiB of random bytes, an
// empty file, a symlink and a subdirectory with a mode of its own.
func tree(t *testing.T, dir string) {
	t.Helper()
	big := make([]byte, 3<<20+7)
	rand.Read(big)
	files := map[string][]byte{"a.txt": []byte("alpha\n"), "big.bin": big, "empty": nil, "sub/b.txt": []byte("beta\n")}
	for name, data := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(dir, "sub"), 0o750)
	os.Symlink("a.txt", filepath.Join(dir, "link"))
}

// sameTree fails unless the regular files, links and modes under a and b
// match.
func sameTree(t *testing.T, a, b string) {
	t.Helper()
	n := 0
	filepath.Walk(a, func(p string, ai os.FileInfo, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(a, p)
		bi, err := os.Lstat(filepath.Join(b, rel))
		if err != nil {
			t.Fatalf("%s missing in the copy: %v", rel, err)
		}
		if ai.Mode() != bi.Mode() {
			t.Fatalf("%s: mode %v, copy %v", rel, ai.Mode(), bi.Mode())
		}
		if ai.Mode().IsRegular() {
			x, _ := os.ReadFile(p)
			y, _ := os.ReadFile(filepath.Join(b, rel))
			if !bytes.Equal(x, y) {
				t.Fatalf("%s differs in the copy", rel)
			}
			n++
		}
		return nil
	})
	if n != 4 {
		t.Fatalf("%d files compared, want 4", n)
	}
}

// testUser is the account test/run.sh makes, which root may sudo to.
func testUser(t *testing.T) *user.User {
	t.Helper()
	need(t, "needs root", os.Getuid() == 0)
	need(t, "sudo is not installed", have("sudo"))
	u, err := user.Lookup("mitogo-test")
	need(t, "the user mitogo-test does not exist", err == nil)
	return u
}

// Real rsync into another account (through real sudo) and back: the files
// arrive whole, owned by that account, with their modes and links.
func TestRsyncThroughSudo(t *testing.T) {
	need(t, "rsync is not installed", have("rsync"))
	u := testUser(t)
	_, _, srv := serve(t, func(r *actors.Router) (*actors.Context, error) {
		return r.Sudo(context.Background(), actors.User("mitogo-test"))
	})
	src := t.TempDir()
	tree(t, src)
	dst := "mitogo-fakessh-rsync-" + strconv.Itoa(os.Getpid())
	home := filepath.Join(u.HomeDir, dst)
	t.Cleanup(func() { os.RemoveAll(home) })
	out, err := srv.Command("rsync", "-a", "-e", srv.Program(), src+"/", "target:"+dst+"/").CombinedOutput()
	if err != nil {
		t.Fatalf("rsync to the context: %v\n%s", err, out)
	}
	sameTree(t, src, home) // a relative path lands in the account's home, as with ssh
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(home, "big.bin"), &st); err != nil || strconv.Itoa(int(st.Uid)) != u.Uid {
		t.Fatalf("big.bin owned by uid %d (%v), want %s", st.Uid, err, u.Uid)
	}
	back := t.TempDir()
	out, err = srv.Command("rsync", "-a", "-e", srv.Program(), "target:"+dst+"/", back+"/").CombinedOutput()
	if err != nil {
		t.Fatalf("rsync from the context: %v\n%s", err, out)
	}
	sameTree(t, src, back)
}

// Real scp, in its SFTP mode (the default: it runs the far side's
// sftp-server) and its legacy mode (scp -O runs scp -t there).
func TestScp(t *testing.T) {
	need(t, "scp is not installed (openssh-client)", have("scp"))
	u := testUser(t)
	_, _, srv := serve(t, func(r *actors.Router) (*actors.Context, error) {
		return r.Sudo(context.Background(), actors.User("mitogo-test"))
	})
	src := filepath.Join(t.TempDir(), "file.bin")
	data := make([]byte, 1<<20+3)
	rand.Read(data)
	os.WriteFile(src, data, 0o644)
	for _, mode := range [][]string{nil, {"-O"}} {
		name := "mitogo-fakessh-scp-" + strconv.Itoa(os.Getpid()) + strings.Join(mode, "")
		dst := filepath.Join(u.HomeDir, name)
		t.Cleanup(func() { os.Remove(dst) })
		args := append(append([]string{"-q", "-S", srv.Program()}, mode...), src, "target:"+name)
		if out, err := srv.Command("scp", args...).CombinedOutput(); err != nil {
			t.Fatalf("scp %v: %v\n%s", mode, err, out)
		}
		if got, err := os.ReadFile(dst); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("scp %v: %d bytes arrived (%v), want %d", mode, len(got), err, len(data))
		}
		back := filepath.Join(t.TempDir(), "back")
		args = append(append([]string{"-q", "-S", srv.Program()}, mode...), "target:"+name, back)
		if out, err := srv.Command("scp", args...).CombinedOutput(); err != nil {
			t.Fatalf("scp %v back: %v\n%s", mode, err, out)
		}
		if got, _ := os.ReadFile(back); !bytes.Equal(got, data) {
			t.Fatalf("scp %v back: %d bytes, want %d", mode, len(got), len(data))
		}
	}
}

// A tool killed mid-command (its ssh stand-in gone) kills the command in
// the context, also while it has more stdin for a command that does not
// read it.
func TestKilledStandInKillsCommand(t *testing.T) {
	_, _, srv := serve(t, local)
	pidFile := filepath.Join(t.TempDir(), "pid")
	cmd := srv.Command(srv.Program(), "target", "echo $$ >"+pidFile+"; exec sleep 600")
	cmd.Stdin = bytes.NewReader(make([]byte, 40<<20))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pid int
	waitFor(t, func() bool {
		b, err := os.ReadFile(pidFile)
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && pid > 0
	})
	cmd.Process.Kill()
	cmd.Wait()
	waitFor(t, func() bool { return syscall.Kill(pid, 0) != nil })
}

// waitFor polls cond until it holds, failing the test after 20 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 20s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The use it is for: rsync into an account reached ssh → sudo, through a
// real sshd.
func TestRsyncOverSSHThenSudo(t *testing.T) {
	need(t, "rsync is not installed", have("rsync"))
	u := testUser(t)
	s := sshtest.Start(t)
	_, c, srv := serve(t, func(r *actors.Router) (*actors.Context, error) {
		host, err := r.SSH(ctxT(t), s.Addr, actors.IdentityFile(s.ClientKey), actors.KnownHosts(s.KnownHosts), actors.SSHConfig("none"))
		if err != nil {
			return nil, err
		}
		return r.Sudo(ctxT(t), actors.Via(host), actors.User("mitogo-test"))
	})
	if !strings.HasPrefix(c.Name(), "ssh:") || !strings.HasSuffix(c.Name(), "/sudo:mitogo-test") {
		t.Fatalf("context %q", c.Name())
	}
	src := t.TempDir()
	tree(t, src)
	dst := "mitogo-fakessh-ssh-" + strconv.Itoa(os.Getpid())
	t.Cleanup(func() { os.RemoveAll(filepath.Join(u.HomeDir, dst)) })
	out, err := srv.Command("rsync", "-a", "--stats", "-e", srv.Program(), src+"/", "web:"+dst+"/").CombinedOutput()
	if err != nil {
		t.Fatalf("rsync: %v\n%s", err, out)
	}
	sameTree(t, src, filepath.Join(u.HomeDir, dst))
	// A second run sends nothing: rsync's own delta protocol runs end to end.
	out, err = srv.Command("rsync", "-a", "--stats", "-e", srv.Program(), src+"/", "web:"+dst+"/").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Number of regular files transferred: 0") {
		t.Fatalf("second rsync: %v\n%s", err, out)
	}
}

// Real git: push to a bare repository in another account and clone it
// back, with GIT_SSH from the Server's environment.
func TestGit(t *testing.T) {
	need(t, "git is not installed", have("git"))
	u := testUser(t)
	_, _, srv := serve(t, func(r *actors.Router) (*actors.Context, error) {
		return r.Sudo(context.Background(), actors.User("mitogo-test"))
	})
	name := "mitogo-fakessh-" + strconv.Itoa(os.Getpid()) + ".git"
	t.Cleanup(func() { os.RemoveAll(filepath.Join(u.HomeDir, name)) })
	git := func(dir string, args ...string) string {
		t.Helper()
		cmd := srv.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(cmd.Env, "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.org", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.org", "HOME="+dir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	if out, err := srv.Command(srv.Program(), "target", "git init -q --bare "+name).CombinedOutput(); err != nil {
		t.Fatalf("git init over the stand-in: %v\n%s", err, out)
	}
	work := t.TempDir()
	git(work, "init", "-q", "-b", "main")
	os.WriteFile(filepath.Join(work, "README"), []byte("through fakessh\n"), 0o644)
	git(work, "add", "README")
	git(work, "commit", "-q", "-m", "first")
	git(work, "push", "-q", "target:"+name, "main")
	clone := t.TempDir()
	git(clone, "clone", "-q", "-b", "main", "target:"+name, "c")
	if got, err := os.ReadFile(filepath.Join(clone, "c", "README")); err != nil || string(got) != "through fakessh\n" {
		t.Fatalf("cloned README: %q %v", got, err)
	}
}

// A program that inherits MITOGO_FAKESSH but was not started by the
// stand-in's name (a git hook running another mitogo program) is itself:
// here, this test binary listing its tests.
func TestInheritedVariableIsDeclined(t *testing.T) {
	_, _, srv := serve(t, local)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := srv.Command(exe, "-test.list", "^TestInheritedVariableIsDeclined$")
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "TestInheritedVariableIsDeclined" {
		t.Fatalf("%v: %q", err, out)
	}
}
