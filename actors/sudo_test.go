package actors_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mitogo/mitogo/actors"
	"github.com/mitogo/mitogo/bootstrap"
)

// testPassword is mitogo-test's password (test/run.sh sets it).
const testPassword = "mitogo-test-pw"

var uidOf = actors.Register("test.uid", func(ctx context.Context, _ struct{}) (int, error) { return os.Getuid(), nil })

// needSudo returns the test user, or skips (fails when MITOGO_REQUIRE_PARTS
// is set: CI must not pass by skipping a real part).
func needSudo(t testing.TB) *user.User {
	t.Helper()
	missing := func(why string) {
		if os.Getenv("MITOGO_REQUIRE_PARTS") != "" {
			t.Fatalf("%s (bash test/run.sh installs sudo and creates the user)", why)
		}
		t.Skip(why)
	}
	if os.Getuid() != 0 {
		missing("sudo tests run as root")
	}
	if _, err := exec.LookPath("sudo"); err != nil {
		missing("sudo is not installed")
	}
	u, err := user.Lookup("mitogo-test")
	if err != nil {
		missing("test user mitogo-test does not exist")
	}
	return u
}

func TestSudoUploadsOnceThenCaches(t *testing.T) {
	u := needSudo(t)
	os.RemoveAll(u.HomeDir + "/.cache/mitogo")
	rec := &recorder{}
	r := newRouter(t, actors.WithLogger(slog.New(rec)))
	c, err := r.Sudo(ctxT(t), actors.User("mitogo-test"))
	if err != nil {
		t.Fatal(err)
	}
	uid, err := uidOf.Call(ctxT(t), c, struct{}{})
	if err != nil || strings.TrimSpace(u.Uid) != itoa(uid) {
		t.Fatalf("uid in %s = %d, %v; want %s", c.Name(), uid, err, u.Uid)
	}
	if c.Name() != "sudo:mitogo-test" {
		t.Fatalf("name %q", c.Name())
	}
	uploads := func() int {
		n := 0
		for _, r := range rec.snapshot() {
			if r.Message == "binary uploaded" {
				n++
			}
		}
		return n
	}
	if uploads() != 1 {
		t.Fatalf("%d uploads for the first contact, want 1", uploads())
	}
	// The binary is cached now: a second context sends nothing.
	c2, err := r.Sudo(ctxT(t), actors.User("mitogo-test"), actors.Name("again"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := echo.Call(ctxT(t), c2, "x"); err != nil {
		t.Fatal(err)
	}
	if uploads() != 1 {
		t.Fatalf("%d uploads after the second contact, want still 1", uploads())
	}
	if g := connectedAttr(rec, c2.Name(), "guessed"); g != "true" {
		t.Errorf("second contact: guessed=%q in its connected record, want true (the hash sent at once)", g)
	}
}

func TestSudoViaLocalChild(t *testing.T) {
	needSudo(t)
	r := newRouter(t)
	c1 := local(t, r)
	c2, err := r.Sudo(ctxT(t), actors.Via(c1), actors.User("mitogo-test"))
	if err != nil {
		t.Fatal(err)
	}
	id, err := whoami.Call(ctxT(t), c2, struct{}{})
	if err != nil || id.Parent != c1.ID() || id.Name != c1.Name()+"/sudo:mitogo-test" {
		t.Fatalf("whoami = %+v, %v", id, err)
	}
}

func TestSudoRefusals(t *testing.T) {
	needSudo(t)
	r := newRouter(t)
	_, err := r.Sudo(ctxT(t), actors.User("no-such-user-mitogo"))
	var se *actors.StreamError
	if !errors.As(err, &se) || !errors.Is(err, actors.ErrUnknownUser) {
		t.Fatalf("unknown user: %T %v", err, err)
	}
	// mitogo-test may not sudo at all: a refusal, never a hang.
	c, err := r.Sudo(ctxT(t), actors.User("mitogo-test"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Sudo(ctxT(t), actors.Via(c), actors.User("root"))
	if !errors.As(err, &se) || !(errors.Is(err, actors.ErrPasswordRequired) || errors.Is(err, actors.ErrNotAllowed)) {
		t.Fatalf("sudo without rights: %T %v", err, err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// Twenty contexts bootstrapped at once to one account with an empty cache:
// each upload lands under its own temporary name and is renamed, so every
// child runs a whole binary.
func TestParallelSudoBootstraps(t *testing.T) {
	u := needSudo(t)
	os.RemoveAll(u.HomeDir + "/.cache/mitogo")
	r := newRouter(t)
	errs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		go func() {
			c, err := r.Sudo(ctxT(t), actors.User("mitogo-test"), actors.Name("p"+strconv.Itoa(i)))
			if err == nil {
				_, err = echo.Call(ctxT(t), c, "x")
			}
			errs <- err
		}()
	}
	for i := 0; i < 20; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	ents, _ := os.ReadDir(u.HomeDir + "/.cache/mitogo")
	if len(ents) != 1 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Fatalf("cache holds %v, want exactly one binary", names)
	}
}

// sudo with a password, behind a sudoers passprompt that overrides sudo's
// -p and in another language: answered through askpass, no prompt matching.
func TestSudoWithPassword(t *testing.T) {
	needSudo(t)
	if _, err := user.Lookup("mitogo-test2"); err != nil {
		if os.Getenv("MITOGO_REQUIRE_PARTS") != "" {
			t.Fatal("user mitogo-test2 is missing (bash test/run.sh creates it)")
		}
		t.Skip("user mitogo-test2 is missing")
	}
	t.Setenv("LANG", "de_DE.UTF-8")
	t.Setenv("LC_ALL", "de_DE.UTF-8")
	r := newRouter(t)
	c, err := r.Sudo(ctxT(t), actors.User("mitogo-test"))
	if err != nil {
		t.Fatal(err)
	}
	c2, err := r.Sudo(ctxT(t), actors.Via(c), actors.User("mitogo-test2"), actors.Password(testPassword))
	if err != nil {
		t.Fatal(err)
	}
	u2, _ := user.Lookup("mitogo-test2")
	if uid, err := uidOf.Call(ctxT(t), c2, struct{}{}); err != nil || strconv.Itoa(uid) != u2.Uid {
		t.Fatalf("uid after sudo with password: %d %v, want %s", uid, err, u2.Uid)
	}
	var se *actors.StreamError
	// The refusal is read from sudo, not waited out: the connect timeout is
	// far beyond the test's own deadline.
	_, err = r.Sudo(ctxT(t), actors.Via(c), actors.User("mitogo-test2"), actors.Password("wrong"), actors.ConnectTimeout(5*time.Minute))
	if !errors.As(err, &se) || !errors.Is(err, actors.ErrPasswordIncorrect) || strings.Contains(err.Error(), "MITOGO") {
		t.Fatalf("wrong password: %T %v", err, err)
	}
	_, err = r.Sudo(ctxT(t), actors.Via(c), actors.User("mitogo-test2"))
	if !errors.As(err, &se) || !errors.Is(err, actors.ErrPasswordRequired) {
		t.Fatalf("no password: %T %v", err, err)
	}
}

// needDoas skips t (fails it with MITOGO_REQUIRE_PARTS=1) without doas.
func needDoas(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("doas"); err != nil {
		if os.Getenv("MITOGO_REQUIRE_PARTS") != "" {
			t.Fatal("doas is not installed (bash test/run.sh installs opendoas)")
		}
		t.Skip("doas is not installed")
	}
}

// su and doas from root to the test user, and their refusals.
func TestSuAndDoas(t *testing.T) {
	u := needSudo(t)
	needDoas(t)
	r := newRouter(t)
	for _, start := range []func(context.Context, ...actors.ConnectOption) (*actors.Context, error){r.Su, r.Doas} {
		c, err := start(ctxT(t), actors.User("mitogo-test"))
		if err != nil {
			t.Fatal(err)
		}
		if uid, err := uidOf.Call(ctxT(t), c, struct{}{}); err != nil || strconv.Itoa(uid) != u.Uid {
			t.Fatalf("%s: uid %d %v, want %s", c.Name(), uid, err, u.Uid)
		}
	}
	var se *actors.StreamError
	_, err := r.Su(ctxT(t), actors.User("no-such-user-mitogo"))
	if !errors.As(err, &se) || !errors.Is(err, actors.ErrUnknownUser) {
		t.Fatalf("su to an unknown user: %T %v", err, err)
	}
	// doas.conf lets root become mitogo-test only.
	_, err = r.Doas(ctxT(t), actors.User("mitogo-test2"))
	if !errors.As(err, &se) || !(errors.Is(err, actors.ErrNotAllowed) || errors.Is(err, actors.ErrPasswordRequired)) {
		t.Fatalf("doas without a rule: %T %v", err, err)
	}
}

// NoCache: the child runs from a temporary file it removes at once, so the
// account's cache is left as it was.
func TestSudoNoCache(t *testing.T) {
	u := needSudo(t)
	dir := u.HomeDir + "/.cache/mitogo"
	os.RemoveAll(dir)
	r := newRouter(t)
	c, err := r.Sudo(ctxT(t), actors.User("mitogo-test"), actors.NoCache())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := echo.Call(ctxT(t), c, "x"); err != nil {
		t.Fatal(err)
	}
	// No build, whole or part: the exe-hashes file a context of this
	// account that reached further (an earlier test's) may write is no
	// build.
	ents, _ := os.ReadDir(dir)
	var left []string
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "exe-hashes") {
			left = append(left, e.Name())
		}
	}
	if len(left) != 0 {
		t.Fatalf("no-cache left %v in %s", left, dir)
	}
}

// su and doas with passwords run on a pty: the prompt is answered once, a
// wrong password is refused as soon as the tool says so (not at the connect
// timeout), and no password is refused.
// su: mitogo-test2 becomes mitogo-test with mitogo-test's password; doas:
// mitogo-test becomes mitogo-test2 with its own (doas asks the caller's).
func TestSuAndDoasWithPassword(t *testing.T) {
	u := needSudo(t)
	u2, err := user.Lookup("mitogo-test2")
	if err != nil {
		t.Fatal("no user mitogo-test2 (bash test/run.sh creates it)")
	}
	rec := &recorder{}
	r := newRouter(t, actors.WithLogger(slog.New(rec)))
	// root may sudo to anyone (Debian's default sudoers).
	as2, err := r.Sudo(ctxT(t), actors.User("mitogo-test2"))
	if err != nil {
		t.Fatal(err)
	}
	as1, err := r.Sudo(ctxT(t), actors.User("mitogo-test"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		method string
		start  func(context.Context, ...actors.ConnectOption) (*actors.Context, error)
		via    *actors.Context
		target *user.User
	}{
		{"su", r.Su, as2, u},
		{"doas", r.Doas, as1, u2},
	}
	// su in German: the prompt is "Passwort:" and the refusal "Fehler bei
	// Authentifizierung" (Linux-PAM's catalogue; LANGUAGE works with C.UTF-8).
	de, err := r.Sudo(ctxT(t), actors.User("mitogo-test2"), actors.Name("de"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := setenv.Call(ctxT(t), de, []string{"LANGUAGE", "de", "LANG", "C.UTF-8", "LC_ALL", ""}); err != nil {
		t.Fatal(err)
	}
	cases = append(cases, struct {
		method string
		start  func(context.Context, ...actors.ConnectOption) (*actors.Context, error)
		via    *actors.Context
		target *user.User
	}{"su-german", r.Su, de, u})
	for _, tc := range cases {
		t.Run(tc.method, func(t *testing.T) {
			c, err := tc.start(ctxT(t), actors.Via(tc.via), actors.User(tc.target.Username), actors.Password(testPassword))
			if err != nil {
				t.Fatal(err)
			}
			if uid, err := uidOf.Call(ctxT(t), c, struct{}{}); err != nil || strconv.Itoa(uid) != tc.target.Uid {
				t.Fatalf("%s: uid %d %v, want %s", c.Name(), uid, err, tc.target.Uid)
			}
			// The stream is a terminal, but not the child's controlling
			// terminal: nothing it runs can open /dev/tty and write a
			// prompt into the stream.
			if msg, err := openTTY.Call(ctxT(t), c, struct{}{}); err != nil || msg == "" {
				t.Fatalf("%s: /dev/tty opened (%q, %v): the stream is exposed", c.Name(), msg, err)
			}
			// What the child prints must not reach it either (a call still
			// works after a noisy one).
			if _, err := noisy.Call(ctxT(t), c, 500); err != nil {
				t.Fatal(err)
			}
			if got, err := echo.Call(ctxT(t), c, "after the noise"); err != nil || got != "after the noise" {
				t.Fatalf("echo after output: %q %v", got, err)
			}
			// and what it printed reached the master's log, named.
			for _, msg := range []string{"noise line 499 on stdout", "noise line 499 on stderr"} {
				waitFor(t, func() bool {
					for _, r := range rec.snapshot() {
						if r.Message == msg && attrOf(r, "context") == c.Name() {
							return true
						}
					}
					return false
				})
			}
			for _, r := range rec.snapshot() {
				if attrOf(r, "context") == c.Name() && strings.HasPrefix(r.Message, "MITOGO") {
					t.Fatalf("stage 1's protocol leaked into the log: %q", r.Message)
				}
			}
			c.Shutdown(ctxT(t))

			var se *actors.StreamError
			_, err = tc.start(ctxT(t), actors.Via(tc.via), actors.User(tc.target.Username), actors.Password("wrong-password"), actors.ConnectTimeout(5*time.Minute))
			if !errors.As(err, &se) || !errors.Is(err, actors.ErrPasswordIncorrect) {
				t.Fatalf("wrong password: %T %v", err, err)
			}
			t.Logf("wrong password refused: %v", err)
			_, err = tc.start(ctxT(t), actors.Via(tc.via), actors.User(tc.target.Username))
			if !errors.As(err, &se) || !errors.Is(err, actors.ErrPasswordRequired) {
				t.Fatalf("no password: %T %v", err, err)
			}
		})
	}
}

// setenv sets environment variables (name, value pairs) in a context, for
// the processes it starts after.
var setenv = actors.Register("test.setenv", func(ctx context.Context, kv []string) (bool, error) {
	for i := 0; i+1 < len(kv); i += 2 {
		if err := os.Setenv(kv[i], kv[i+1]); err != nil {
			return false, err
		}
	}
	return true, nil
})

// openTTY tries /dev/tty and returns why it could not be opened ("" if it
// could).
var openTTY = actors.Register("test.openTTY", func(ctx context.Context, _ struct{}) (string, error) {
	f, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return err.Error(), nil
	}
	f.Close()
	return "", nil
})

// noisy prints n lines on stdout and stderr.
var noisy = actors.Register("test.noisy", func(ctx context.Context, n int) (int, error) {
	for i := range n {
		fmt.Printf("noise line %d on stdout\n", i)
		fmt.Fprintf(os.Stderr, "noise line %d on stderr\n", i)
	}
	return n, nil
})

func attrOf(r slog.Record, key string) (v string) {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v = a.Value.String()
			return false
		}
		return true
	})
	return v
}

var getenv = actors.Register("test.getenv", func(ctx context.Context, name string) (string, error) { return os.Getenv(name), nil })

// PreserveEnv keeps the caller's environment through sudo (-E) and su (-m);
// LoginShell runs the target's login profile first (sudo -i, su -l).
func TestPreserveEnvAndLoginShell(t *testing.T) {
	u := needSudo(t)
	t.Setenv("MITOGO_PRESERVED", "kept")
	profile := u.HomeDir + "/.profile"
	old, hadProfile := os.ReadFile(profile)
	t.Cleanup(func() {
		if hadProfile == nil {
			os.WriteFile(profile, old, 0o644)
		} else {
			os.Remove(profile)
		}
	})
	if err := os.WriteFile(profile, []byte("MITOGO_LOGIN_MARK=profile-read; export MITOGO_LOGIN_MARK\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := newRouter(t)
	cases := []struct {
		name        string
		start       func(context.Context, ...actors.ConnectOption) (*actors.Context, error)
		opts        []actors.ConnectOption
		preserved   string
		loginMarker string
	}{
		{"sudo", r.Sudo, nil, "", ""},
		{"sudo-E", r.Sudo, []actors.ConnectOption{actors.PreserveEnv()}, "kept", ""},
		{"sudo-i", r.Sudo, []actors.ConnectOption{actors.LoginShell()}, "", "profile-read"},
		{"su-m", r.Su, []actors.ConnectOption{actors.PreserveEnv()}, "kept", ""},
		{"su-l", r.Su, []actors.ConnectOption{actors.LoginShell()}, "", "profile-read"},
	}
	for _, tc := range cases {
		opts := append([]actors.ConnectOption{actors.User("mitogo-test"), actors.Name(tc.name)}, tc.opts...)
		c, err := tc.start(ctxT(t), opts...)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got, err := getenv.Call(ctxT(t), c, "MITOGO_PRESERVED"); err != nil || got != tc.preserved {
			t.Errorf("%s: MITOGO_PRESERVED = %q, %v; want %q", tc.name, got, err, tc.preserved)
		}
		if got, err := getenv.Call(ctxT(t), c, "MITOGO_LOGIN_MARK"); err != nil || got != tc.loginMarker {
			t.Errorf("%s: MITOGO_LOGIN_MARK = %q, %v; want %q", tc.name, got, err, tc.loginMarker)
		}
	}
	var se *actors.StreamError
	if _, err := r.Doas(ctxT(t), actors.User("mitogo-test"), actors.LoginShell()); !errors.As(err, &se) || !errors.Is(err, actors.ErrBadOption) {
		t.Fatalf("doas with LoginShell: %T %v", err, err)
	}
}

// A cached build damaged in the far side's cache (cut short, as a crash
// before its data reached the disk leaves it) would fail every connect;
// the connect sends it again, warns, and the cache holds it whole again.
func TestSudoReplacesADamagedCachedBuild(t *testing.T) {
	u := needSudo(t)
	rec := &recorder{}
	r := newRouter(t, actors.WithLogger(slog.New(rec)))
	c, err := r.Sudo(ctxT(t), actors.User("mitogo-test"))
	if err != nil {
		t.Fatal(err)
	}
	c.Shutdown(ctxT(t))
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	self, err := bootstrap.NewBinary(exe)
	if err != nil {
		t.Fatal(err)
	}
	cached := u.HomeDir + "/.cache/mitogo/" + self.Hash
	fi, err := os.Stat(cached)
	if err != nil {
		t.Fatalf("the build is not in the cache: %v", err)
	}
	if err := os.Truncate(cached, fi.Size()/3); err != nil {
		t.Fatal(err)
	}
	c, err = r.Sudo(ctxT(t), actors.User("mitogo-test"), actors.Name("repaired"))
	if err != nil {
		t.Fatalf("connect with a damaged cached build: %v", err)
	}
	if _, err := echo.Call(ctxT(t), c, "x"); err != nil {
		t.Fatal(err)
	}
	if _, ok := rec.find("the cached build did not start; checking it, and sending it again if damaged"); !ok {
		t.Error("no warning that the cached build was sent again")
	}
	if fi2, err := os.Stat(cached); err != nil || fi2.Size() != fi.Size() {
		t.Fatalf("the cache holds %v, %v; want the build whole (%d bytes)", fi2, err, fi.Size())
	}
}
