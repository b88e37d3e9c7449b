package actors_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mitogo/mitogo/actors"
	"github.com/mitogo/mitogo/bootstrap"
)

// fakeArm64 makes a directory whose uname says Linux aarch64, and a stand-in
// "arm64 build" of this test binary (a copy with bytes appended, so it runs
// here but has a hash of its own: that of its image, as it is sent). Both
// are readable by the test users.
func fakeArm64(t *testing.T) (pathDir, build, hash string) {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} { // t.TempDir makes both 0700
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	pathDir = filepath.Join(dir, "bin")
	os.Mkdir(pathDir, 0o755)
	uname := "#!/bin/sh\ncase \"$*\" in -s) echo Linux;; -m) echo aarch64;; \"-s -m\") echo Linux aarch64;; *) exec /bin/uname \"$@\";; esac\n"
	if err := os.WriteFile(filepath.Join(pathDir, "uname"), []byte(uname), 0o755); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	data = append(data, "\nmitogo test: a stand-in for an arm64 build\n"...)
	build = filepath.Join(dir, "prog-linux-arm64")
	if err := os.WriteFile(build, data, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := bootstrap.NewBinary(build)
	if err != nil {
		t.Fatal(err)
	}
	return pathDir, build, b.Hash
}

var exeOf = actors.Register("test.executable", func(ctx context.Context, _ struct{}) (string, error) { return os.Executable() })

// A far side of another platform gets the build Binaries or BinaryFunc
// names, from this machine, also when stage 1 runs in a context Via
// another; without one, the error says which platform lacks a binary.
func TestBinariesForOtherPlatforms(t *testing.T) {
	u := needSudo(t)
	fakePath, build, hash := fakeArm64(t)
	r := newRouter(t)

	// Via a local child whose PATH has the fake uname; su -m keeps PATH.
	via := local(t, r)
	if _, err := setenv.Call(ctxT(t), via, []string{"PATH", fakePath + ":" + os.Getenv("PATH")}); err != nil {
		t.Fatal(err)
	}
	var se *actors.StreamError
	_, err := r.Su(ctxT(t), actors.Via(via), actors.User("mitogo-test"), actors.PreserveEnv())
	if !errors.As(err, &se) || !errors.Is(err, actors.ErrBootstrap) || !strings.Contains(err.Error(), "remote is linux/arm64; no binary for it") {
		t.Fatalf("no binary for arm64: %T %v", err, err)
	}
	c, err := r.Su(ctxT(t), actors.Via(via), actors.User("mitogo-test"), actors.PreserveEnv(),
		actors.Binaries(map[string]string{"linux/arm64": build}))
	if err != nil {
		t.Fatal(err)
	}
	if uid, err := uidOf.Call(ctxT(t), c, struct{}{}); err != nil || strconv.Itoa(uid) != u.Uid {
		t.Fatalf("uid %d %v", uid, err)
	}
	// su -m keeps HOME, which is root's: the cache is the /tmp fallback.
	if exe, err := exeOf.Call(ctxT(t), c, struct{}{}); err != nil || filepath.Base(exe) != hash {
		t.Fatalf("the child runs %s (%v), want the arm64 build, cached as %s", exe, err, hash)
	}

	// From here, with the fake uname in this process's PATH, by a function.
	t.Setenv("PATH", fakePath+":"+os.Getenv("PATH"))
	asked := ""
	c2, err := r.Su(ctxT(t), actors.User("mitogo-test"), actors.PreserveEnv(), actors.Name("fn"),
		actors.BinaryFunc(func(platform string) (string, error) { asked = platform; return build, nil }))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := echo.Call(ctxT(t), c2, "arm64?"); err != nil || got != "arm64?" || asked != "linux/arm64" {
		t.Fatalf("echo %q %v; BinaryFunc asked for %q", got, err, asked)
	}
}
