package files_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/mitogo/mitogo/actors"
	"go.uber.org/goleak"
)

// The test binary is also the child: TestMain serves when started as one.
func TestMain(m *testing.M) {
	actors.Main()
	os.Setenv("GORACE", "atexit_sleep_ms=0 "+os.Getenv("GORACE"))
	goleak.VerifyTestMain(m,
		// protoactor's dead-letter throttle lingers for up to a second.
		goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"))
}

// chdir moves a child context into a directory, so that relative
// destinations differ between contexts on this one machine.
var chdir = actors.Register("test.chdir", func(ctx context.Context, dir string) (struct{}, error) {
	return struct{}{}, os.Chdir(dir)
})

func newRouter(t *testing.T) *actors.Router {
	t.Helper()
	level := slog.LevelWarn
	if os.Getenv("MITOGO_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	r, err := actors.NewRouter(actors.WithLogger(logger), actors.WithLogLevel(level))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := r.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return r
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// needRoot skips (fails with MITOGO_REQUIRE_PARTS=1) tests that need root.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Getuid() == 0 {
		return
	}
	if os.Getenv("MITOGO_REQUIRE_PARTS") != "" {
		t.Fatal("this test runs as root (bash test/run.sh)")
	}
	t.Skip("this test runs as root")
}

// needSudo returns the test user mitogo-test, or skips (fails with
// MITOGO_REQUIRE_PARTS=1).
func needSudo(t *testing.T) *user.User {
	t.Helper()
	needRoot(t)
	missing := func(why string) {
		if os.Getenv("MITOGO_REQUIRE_PARTS") != "" {
			t.Fatalf("%s (bash test/run.sh installs sudo and creates the user)", why)
		}
		t.Skip(why)
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

// sharedDir is a fresh directory that u may write in (under a directory
// everyone may traverse).
func sharedDir(t *testing.T, u *user.User) string {
	t.Helper()
	base := t.TempDir()
	os.Chmod(base, 0o755)
	dir := filepath.Join(base, "shared")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	for d := filepath.Dir(base); d != "/"; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o001 == 0 {
			os.Chmod(d, fi.Mode().Perm()|0o001)
		}
	}
	return dir
}

// makeTree writes a tree with files of several modes, a file larger than
// a chunk, a symbolic link and an empty directory, with times in the past.
func makeTree(t *testing.T, dir string) {
	t.Helper()
	rnd := rand.New(rand.NewChaCha8([32]byte{1}))
	big := make([]byte, 300<<10+17)
	for i := range big {
		big[i] = byte(rnd.Uint32())
	}
	files := []struct {
		path string
		mode fs.FileMode
		data []byte
	}{
		{"a.txt", 0o644, []byte("hello\n")},
		{"bin/run.sh", 0o755, []byte("#!/bin/sh\necho hi\n")},
		{"secret", 0o600, []byte("s3cret")},
		{"empty-file", 0o640, nil},
		{"sub/deep/big.bin", 0o644, big},
	}
	for _, f := range files {
		p := filepath.Join(dir, f.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.data, f.mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, f.mode)
	}
	if err := os.Mkdir(filepath.Join(dir, "empty"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("a.txt", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	// Times in the past, deepest first so that a parent's is kept.
	when := fixedTime
	var paths []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if d.Type()&fs.ModeSymlink == 0 {
			paths = append(paths, p)
		}
		return err
	})
	for i := len(paths) - 1; i >= 0; i-- {
		os.Chtimes(paths[i], when, when.Add(time.Duration(i)*time.Hour))
	}
}

// fixedTime is a time in the past for test files.
var fixedTime = time.Date(2020, 1, 2, 3, 4, 5, 600000000, time.UTC)

// sameTree fails the test unless got holds what want holds: types,
// contents, modes, times of files and directories, and link targets.
// owner, when not empty, is the user that must own everything in got.
func sameTree(t *testing.T, want, got, owner string) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(want, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		n++
		rel, _ := filepath.Rel(want, p)
		q := filepath.Join(got, rel)
		wi, _ := os.Lstat(p)
		gi, err := os.Lstat(q)
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			return nil
		}
		if wi.Mode() != gi.Mode() {
			t.Errorf("%s: mode %v, want %v", rel, gi.Mode(), wi.Mode())
		}
		switch {
		case wi.Mode()&fs.ModeSymlink != 0:
			wl, _ := os.Readlink(p)
			gl, _ := os.Readlink(q)
			if wl != gl {
				t.Errorf("%s: link to %q, want %q", rel, gl, wl)
			}
		case !wi.ModTime().Equal(gi.ModTime()):
			t.Errorf("%s: mtime %v, want %v", rel, gi.ModTime(), wi.ModTime())
		}
		if wi.Mode().IsRegular() && hashFile(t, p) != hashFile(t, q) {
			t.Errorf("%s: content differs", rel)
		}
		if owner != "" {
			st := gi.Sys().(*syscall.Stat_t)
			if u, err := user.LookupId(strconv.Itoa(int(st.Uid))); err != nil || u.Username != owner {
				t.Errorf("%s: owned by uid %d, want %s", rel, st.Uid, owner)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 2 {
		t.Fatalf("only %d entries compared", n)
	}
	// Nothing left behind: no partial files.
	filepath.WalkDir(got, func(p string, d fs.DirEntry, err error) error {
		if err == nil && filepath.Ext(p) == ".mitogo-part" {
			t.Errorf("partial file left: %s", p)
		}
		return nil
	})
}

func hashFile(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}
