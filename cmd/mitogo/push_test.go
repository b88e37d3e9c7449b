package main

import (
	"os"
	"path/filepath"
	"strings"
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
	if r.exit != 255 || !strings.Contains(r.stdout, "local.1: changed") {
		t.Fatalf("push with an unreachable target: exit %d, stdout %q", r.exit, r.stdout)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "dst", "d", "x")); err != nil || string(b) != "hi\n" {
		t.Fatalf("pushed file: %q %v", b, err)
	}
	if l, err := os.Readlink(filepath.Join(dir, "dst", "l")); err != nil || l != "d/x" {
		t.Fatalf("pushed link: %q %v", l, err)
	}

	r = mitogo(t, "", "pull", "-t", "local,local", filepath.Join(dir, "dst", "d", "x"), dir+"/")
	if r.exit != 0 {
		t.Fatalf("pull: exit %d", r.exit)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "x")); err != nil || string(b) != "hi\n" {
		t.Fatalf("pulled file: %q %v", b, err)
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
}
