package main

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestPushPullCLI(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.MkdirAll(filepath.Join(src, "d"), 0o755)
	os.WriteFile(filepath.Join(src, "d", "x"), []byte("hi\n"), 0o640)
	os.Symlink("d/x", filepath.Join(src, "l"))

	// The copy's own path, then nothing sent again.
	r := mitogo(t, "", "push", "-r", "-t", "local,local", src, filepath.Join(dir, "dst"))
	if r.exit != 0 {
		t.Fatalf("push: exit %d", r.exit)
	}
	r = mitogo(t, "", "push", "-v", "-r", "-t", "local,local", src, filepath.Join(dir, "dst"))
	if r.exit != 0 || !strings.Contains(r.stdout, ": unchanged") {
		t.Fatalf("second push: exit %d, stdout %q", r.exit, r.stdout)
	}
	// Of two targets one is unreachable: the other is served, and the
	// status says so.
	r = mitogo(t, "", "push", "-t", "local", "-t", "ssh://127.0.0.1:1", filepath.Join(src, "d", "x"), filepath.Join(dir, "one"))
	if r.exit != 255 || !strings.Contains(r.stdout, "local: changed") {
		t.Fatalf("push with an unreachable target: exit %d, stdout %q", r.exit, r.stdout)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "dst", "d", "x")); err != nil || string(b) != "hi\n" {
		t.Fatalf("pushed file: %q %v", b, err)
	}
	if l, err := os.Readlink(filepath.Join(dir, "dst", "l")); err != nil || l != "d/x" {
		t.Fatalf("pushed link: %q %v", l, err)
	}

	r = mitogo(t, "", "pull", "-v", "-t", "local,local", filepath.Join(dir, "dst", "d", "x"), dir+"/")
	if r.exit != 0 || r.stdout != "local,local: changed (1 file, 3 B sent)\n" {
		t.Fatalf("pull: exit %d, stdout %q", r.exit, r.stdout)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "x")); err != nil || string(b) != "hi\n" {
		t.Fatalf("pulled file: %q %v", b, err)
	}

	// Targets are named as run names them: by their inventory names.
	inv := filepath.Join(dir, "hosts.txt")
	os.WriteFile(inv, []byte("l1 local\nl2 local,local\n"), 0o644)
	for _, want := range []string{"l2: changed (1 file, 3 B sent)\n", "l1: unchanged\n"} {
		r = mitogo(t, "", "push", "-v", "-i", inv, "-t", want[:2], filepath.Join(src, "d", "x"), filepath.Join(dir, "two"))
		if r.exit != 0 || r.stdout != want {
			t.Fatalf("push to %s: exit %d, stdout %q, want %q", want[:2], r.exit, r.stdout, want)
		}
	}

	for _, c := range []struct {
		args []string
		exit int
	}{
		{[]string{"push", src}, 2},                                                                 // one argument
		{[]string{"push", "--owner", "maybe", src, dir + "/y"}, 2},                                 // bad flag value
		{[]string{"push", src, dir + "/y"}, 1},                                                     // a directory without -r
		{[]string{"push", "-t", "ssh://127.0.0.1:1", filepath.Join(src, "d", "x"), "/tmp/y"}, 255}, // unreachable
	} {
		if r := mitogo(t, "", c.args...); r.exit != c.exit {
			t.Errorf("mitogo %q: exit %d, want %d", c.args, r.exit, c.exit)
		}
	}
	if r := mitogo(t, "", "push", src); !strings.Contains(r.stderr, "got 1 argument ") {
		t.Errorf("mitogo push with one argument: stderr %q; want it to say got 1 argument", r.stderr)
	}
}

// needSudoUser returns the test user mitogo-test, or skips (fails with
// MITOGO_REQUIRE_PARTS=1).
func needSudoUser(t *testing.T) *user.User {
	t.Helper()
	if os.Getuid() != 0 || exec.Command("id", "mitogo-test").Run() != nil {
		if os.Getenv("MITOGO_REQUIRE_PARTS") != "" {
			t.Fatal("needs root, sudo and the user mitogo-test (bash test/run.sh sets them up)")
		}
		t.Skip("needs root, sudo and the user mitogo-test")
	}
	u, err := user.Lookup("mitogo-test")
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// sharedDir is a fresh directory that u owns, under directories everyone
// may traverse.
func sharedDir(t *testing.T, u *user.User) string {
	t.Helper()
	base := t.TempDir()
	dir := filepath.Join(base, "shared")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	for d := base; d != "/"; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o001 == 0 {
			os.Chmod(d, fi.Mode().Perm()|0o001)
		}
	}
	return dir
}

// A pull to a local directory that does not exist says so and names it,
// for a file and a tree, from a child and through sudo; it leaves nothing.
func TestPullIntoMissingDirectoryCLI(t *testing.T) {
	shared := sharedDir(t, needSudoUser(t))
	os.MkdirAll(filepath.Join(shared, "tree", "d"), 0o755)
	for _, f := range []string{"x.txt", "tree/d/y.txt"} {
		if err := os.WriteFile(filepath.Join(shared, f), []byte("hi\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	for _, target := range []string{"local", "sudo://mitogo-test"} {
		for _, args := range [][]string{
			{filepath.Join(shared, "x.txt"), missing + "/"},
			{filepath.Join(shared, "x.txt"), filepath.Join(missing, "x.txt")},
			{"-r", filepath.Join(shared, "tree"), missing + "/"},
		} {
			r := mitogo(t, "", append([]string{"pull", "-t", target}, args...)...)
			if r.exit != 1 || !strings.Contains(r.stderr, missing) || !strings.Contains(r.stderr, "no such file or directory") {
				t.Errorf("pull -t %s %q: exit %d, stderr %q; want 1 and why, naming %s", target, args, r.exit, r.stderr, missing)
			}
		}
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("failed pulls left %v in %s", left, dir)
	}
}

// A file pushed or pulled to an existing directory goes into it, as with
// cp, through sudo too, and leaves no partial file beside it.
func TestCopyIntoExistingDirectoryCLI(t *testing.T) {
	shared := sharedDir(t, needSudoUser(t))
	src := filepath.Join(t.TempDir(), "src")
	os.MkdirAll(src, 0o755)
	os.Chmod(filepath.Dir(src), 0o755)
	if err := os.WriteFile(filepath.Join(src, "a.txt"), []byte("hi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	edir := filepath.Join(shared, "edir")
	r := mitogo(t, "", "push", "-t", "sudo://mitogo-test", filepath.Join(src, "a.txt"), shared+"/")
	if r.exit != 0 {
		t.Fatalf("push into %s/: exit %d", shared, r.exit)
	}
	r = mitogo(t, "", "run", "-t", "sudo://mitogo-test", "--", "mkdir", edir)
	if r.exit != 0 {
		t.Fatalf("mkdir as mitogo-test: exit %d", r.exit)
	}
	r = mitogo(t, "", "push", "-t", "sudo://mitogo-test", filepath.Join(src, "a.txt"), edir)
	if r.exit != 0 {
		t.Errorf("push a.txt to the directory %s: exit %d", edir, r.exit)
	}
	local := t.TempDir()
	r = mitogo(t, "", "pull", "-t", "sudo://mitogo-test", filepath.Join(shared, "a.txt"), local)
	if r.exit != 0 {
		t.Errorf("pull a.txt to the directory %s: exit %d", local, r.exit)
	}
	for _, p := range []string{filepath.Join(edir, "a.txt"), filepath.Join(local, "a.txt")} {
		if b, err := os.ReadFile(p); err != nil || string(b) != "hi\n" {
			t.Errorf("%s: %q %v", p, b, err)
		}
	}
	for _, d := range []string{shared, edir, local} {
		if parts, _ := filepath.Glob(filepath.Join(d, ".*.mitogo-part")); len(parts) > 0 {
			t.Errorf("partial files left: %v", parts)
		}
	}
}

// --timeout ends a push or pull with 124, as it ends run, whether it
// passes while connecting or while the data is written.
func TestPushPullTimeoutCLI(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "a.txt")
	os.WriteFile(src, []byte("hi\n"), 0o644)
	// The receiver hangs opening its partial file, a FIFO nobody reads.
	if err := syscall.Mkfifo(filepath.Join(dir, ".hung.mitogo-part"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"push", "--timeout", "400ms", "-t", "local", src, filepath.Join(dir, "hung")}, "mitogo push: local: --timeout 400ms passed\n"},
		{[]string{"push", "--timeout", "1ms", "-t", "local", "-t", "local,local", src, filepath.Join(dir, "b.txt")},
			"mitogo push: local: --timeout 1ms passed\nmitogo push: local,local: --timeout 1ms passed\n"},
		{[]string{"pull", "--timeout", "1ms", "-t", "local", src, filepath.Join(dir, "c.txt")}, "mitogo pull: local: --timeout 1ms passed\n"},
	} {
		r := mitogo(t, "", c.args...)
		if r.exit != 124 || !strings.Contains(r.stderr, c.want) || strings.Contains(r.stderr, "deadline exceeded") {
			t.Errorf("mitogo %q: exit %d, stderr %q; want 124, %q", c.args, r.exit, r.stderr, c.want)
		}
	}
	for _, cmd := range []string{"push", "pull"} {
		if r := mitogo(t, "", cmd, "--help"); !strings.Contains(r.stdout, "124 when --timeout passed") {
			t.Errorf("%s --help does not give the status of --timeout: %q", cmd, r.stdout)
		}
	}
}

// A failure is one line that names the target once and says why in the
// CLI's terms (-r, not the Go option).
func TestPushPullErrorLinesCLI(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "a.txt"), []byte("hi\n"), 0o644)
	missing := filepath.Join(dir, "missing")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"push", "-t", "local", filepath.Join(src, "a.txt"), missing + "/"},
			"mitogo push: local: cannot write a.txt into the directory " + missing + "/: no such file or directory\n"},
		{[]string{"pull", "-t", "local", filepath.Join(src, "a.txt"), missing + "/"},
			"mitogo pull: local: cannot write a.txt into the directory " + missing + "/: no such file or directory\n"},
		{[]string{"pull", "-t", "local", src, missing}, "mitogo pull: local: " + src + " is a directory (copy it with -r)\n"},
		{[]string{"push", src, missing}, "mitogo push: " + src + " is a directory (copy it with -r)\n"},
		{[]string{"push", missing, dir}, "mitogo push: " + missing + " cannot be read: no such file or directory\n"},
	} {
		if r := mitogo(t, "", c.args...); r.exit != 1 || r.stderr != c.want {
			t.Errorf("mitogo %q: exit %d, stderr %q; want 1, %q", c.args, r.exit, r.stderr, c.want)
		}
	}
}
