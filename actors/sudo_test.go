package actors_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mitogo/mitogo/actors"
)

var uidOf = actors.Register("test.uid", func(ctx context.Context, _ struct{}) (int, error) { return os.Getuid(), nil })

// needSudo returns the test user, or skips (fails when MITOGO_REQUIRE_PARTS
// is set: CI must not pass by skipping a real part).
func needSudo(t *testing.T) *user.User {
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
	if !errors.As(err, &se) || !strings.Contains(se.Reason, "user unknown") {
		t.Fatalf("unknown user: %T %v", err, err)
	}
	// mitogo-test may not sudo at all: a refusal, never a hang.
	c, err := r.Sudo(ctxT(t), actors.User("mitogo-test"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Sudo(ctxT(t), actors.Via(c), actors.User("root"))
	if !errors.As(err, &se) || !(strings.Contains(se.Reason, "password is required") || strings.Contains(se.Reason, "not allowed")) {
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
	c2, err := r.Sudo(ctxT(t), actors.Via(c), actors.User("mitogo-test2"), actors.Password("mitogo-test-pw"))
	if err != nil {
		t.Fatal(err)
	}
	u2, _ := user.Lookup("mitogo-test2")
	if uid, err := uidOf.Call(ctxT(t), c2, struct{}{}); err != nil || strconv.Itoa(uid) != u2.Uid {
		t.Fatalf("uid after sudo with password: %d %v, want %s", uid, err, u2.Uid)
	}
	var se *actors.StreamError
	start := time.Now()
	_, err = r.Sudo(ctxT(t), actors.Via(c), actors.User("mitogo-test2"), actors.Password("wrong"))
	if !errors.As(err, &se) || !strings.Contains(se.Reason, "password incorrect") {
		t.Fatalf("wrong password: %T %v", err, err)
	}
	if time.Since(start) > 15*time.Second {
		t.Fatalf("wrong password took %v", time.Since(start))
	}
	_, err = r.Sudo(ctxT(t), actors.Via(c), actors.User("mitogo-test2"))
	if !errors.As(err, &se) || !strings.Contains(se.Reason, "password is required") {
		t.Fatalf("no password: %T %v", err, err)
	}
}

// su and doas from root to the test user, and their refusals.
func TestSuAndDoas(t *testing.T) {
	u := needSudo(t)
	if _, err := exec.LookPath("doas"); err != nil {
		if os.Getenv("MITOGO_REQUIRE_PARTS") != "" {
			t.Fatal("doas is not installed (bash test/run.sh installs opendoas)")
		}
		t.Skip("doas is not installed")
	}
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
	if !errors.As(err, &se) || !strings.Contains(se.Reason, "user unknown") {
		t.Fatalf("su to an unknown user: %T %v", err, err)
	}
	// doas.conf lets root become mitogo-test only.
	_, err = r.Doas(ctxT(t), actors.User("mitogo-test2"))
	if !errors.As(err, &se) || !(strings.Contains(se.Reason, "not allowed") || strings.Contains(se.Reason, "password is required")) {
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
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("no-cache left %d files in %s", len(ents), dir)
	}
}
