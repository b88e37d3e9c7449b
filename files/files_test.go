package files_test

import (
	"context"
	"encoding/binary"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/mitogo/mitogo/actors"
	"github.com/mitogo/mitogo/files"
)

// roundTrip pushes a tree to c, checks it, pushes again (nothing sent,
// not changed), then pulls it back and checks that too.
func roundTrip(t *testing.T, c *actors.Context, remoteDir, owner string) {
	t.Helper()
	src := filepath.Join(t.TempDir(), "tree")
	makeTree(t, src)
	dst := filepath.Join(remoteDir, "copy")
	res, err := files.Push(ctxT(t), c, src, dst, files.Recursive())
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || res.Files != 5 || res.Entries != 11 {
		t.Fatalf("first push: %+v", res)
	}
	sameTree(t, src, dst, owner)

	res, err = files.Push(ctxT(t), c, src, dst, files.Recursive())
	if err != nil {
		t.Fatal(err)
	}
	if res.Changed || res.Bytes != 0 || res.Files != 0 {
		t.Fatalf("second push of the same tree: %+v, want nothing changed or sent", res)
	}

	back := filepath.Join(t.TempDir(), "back")
	res, err = files.Pull(ctxT(t), c, dst, back, files.Recursive())
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || res.Files != 5 {
		t.Fatalf("pull: %+v", res)
	}
	sameTree(t, src, back, owner)
}

func TestPushPullTreeLocal(t *testing.T) {
	r := newRouter(t)
	c, err := r.Local(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, t.TempDir(), "")
}

func TestPushFileIntoDirectoryAndErrors(t *testing.T) {
	r := newRouter(t)
	c, err := r.Local(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "tree")
	makeTree(t, src)
	dir := t.TempDir()
	if _, err := files.Push(ctxT(t), c, filepath.Join(src, "a.txt"), dir+"/"); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "a.txt")); err != nil || string(b) != "hello\n" {
		t.Fatalf("a.txt pushed into %s/: %q %v", dir, b, err)
	}
	if _, err := files.Push(ctxT(t), c, src, filepath.Join(dir, "x")); !errors.Is(err, files.ErrIsDirectory) {
		t.Fatalf("a directory without Recursive: %v, want ErrIsDirectory", err)
	}
	if _, err := files.Pull(ctxT(t), c, filepath.Join(dir, "missing"), filepath.Join(dir, "y")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("pull of a missing file: %v, want not exist", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "y")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a failed pull left something: %v", err)
	}
}

// Through sudo to another account: the copies belong to that account
// (it is not root); pulled back by root, they keep that owner by name.
func TestPushPullThroughSudo(t *testing.T) {
	u := needSudo(t)
	r := newRouter(t)
	c, err := r.Sudo(ctxT(t), actors.User(u.Username))
	if err != nil {
		t.Fatal(err)
	}
	dir := sharedDir(t, u)
	src := filepath.Join(t.TempDir(), "tree")
	makeTree(t, src)
	dst := filepath.Join(dir, "copy")
	if _, err := files.Push(ctxT(t), c, src, dst, files.Recursive()); err != nil {
		t.Fatal(err)
	}
	sameTree(t, src, dst, u.Username)
	back := filepath.Join(t.TempDir(), "back")
	if _, err := files.Pull(ctxT(t), c, dst, back, files.Recursive()); err != nil {
		t.Fatal(err)
	}
	sameTree(t, src, back, u.Username)
	if res, err := files.Push(ctxT(t), c, src, dst, files.Recursive()); err != nil || res.Changed || res.Bytes != 0 {
		t.Fatalf("second push: %+v %v", res, err)
	}
}

// An owner whose name does not exist here is kept by number.
func TestOwnerByNumberWithoutName(t *testing.T) {
	needRoot(t)
	r := newRouter(t)
	c, err := r.Local(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "f")
	os.WriteFile(src, []byte("x"), 0o644)
	if err := os.Chown(src, 54321, 54322); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "g")
	if _, err := files.Push(ctxT(t), c, src, dst); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dst)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 54321 || st.Gid != 54322 {
		t.Fatalf("owner %d:%d, want 54321:54322", st.Uid, st.Gid)
	}
	if _, err := files.Push(ctxT(t), c, src, filepath.Join(t.TempDir(), "h"), files.PreserveOwner(false)); err != nil {
		t.Fatal(err)
	}
}

// A transfer cut short keeps its partial file; the next one checks its
// prefix by hash and sends only the rest.
func TestResumeAfterInterruption(t *testing.T) {
	r := newRouter(t)
	c, err := r.Local(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	const size = 24 << 20
	src := filepath.Join(t.TempDir(), "big")
	writeRandom(t, src, size, 7)
	dst := filepath.Join(t.TempDir(), "big")

	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	_, err = files.Push(ctx, c, src, dst, files.Progress(func(done, total int64) {
		if done >= 8<<20 {
			cancel()
		}
	}))
	if err == nil {
		t.Fatal("a push cancelled half way succeeded")
	}
	part := filepath.Join(filepath.Dir(dst), ".big.mitogo-part")
	fi, err := os.Stat(part)
	if err != nil {
		t.Fatalf("no partial file after the interruption: %v", err)
	}
	if _, err := os.Stat(dst); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the destination exists after an interrupted push: %v", err)
	}
	had := fi.Size()
	if had == 0 || had >= size {
		t.Fatalf("partial file of %d bytes", had)
	}
	// Corrupting nothing: the prefix matches, only the rest travels.
	res, err := files.Push(ctxT(t), c, src, dst)
	if err != nil {
		t.Fatal(err)
	}
	if res.Bytes != size-had || !res.Changed {
		t.Fatalf("resumed push sent %d bytes, want %d (partial had %d): %+v", res.Bytes, size-had, had, res)
	}
	if hashFile(t, src) != hashFile(t, dst) {
		t.Fatal("resumed copy differs")
	}
	if _, err := os.Stat(part); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("partial file still there: %v", err)
	}

	// A partial file that does not match is not trusted: all is sent.
	ctx, cancel = context.WithCancel(ctxT(t))
	dst2 := filepath.Join(t.TempDir(), "big")
	files.Push(ctx, c, src, dst2, files.Progress(func(done, total int64) {
		if done >= 4<<20 {
			cancel()
		}
	}))
	part2 := filepath.Join(filepath.Dir(dst2), ".big.mitogo-part")
	f, err := os.OpenFile(part2, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("garbage"), 100)
	f.Close()
	res, err = files.Push(ctxT(t), c, src, dst2)
	if err != nil || res.Bytes != size {
		t.Fatalf("push over a corrupt partial file: %+v %v, want all %d bytes sent", res, err, size)
	}
	if hashFile(t, src) != hashFile(t, dst2) {
		t.Fatal("copy over a corrupt partial file differs")
	}
}

// A file larger than the largest message (128 MiB by default) travels in
// chunks, and arrives whole.
func TestPushLargerThanMaxFrame(t *testing.T) {
	if testing.Short() {
		t.Skip("200 MB")
	}
	r := newRouter(t)
	c, err := r.Local(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	const size = 200_000_000
	src := filepath.Join(t.TempDir(), "huge")
	writeRandom(t, src, size, 9)
	dst := filepath.Join(t.TempDir(), "huge")
	res, err := files.Push(ctxT(t), c, src, dst)
	if err != nil {
		t.Fatal(err)
	}
	if res.Bytes != size || hashFile(t, src) != hashFile(t, dst) {
		t.Fatalf("200 MB push: %+v, hashes differ or short", res)
	}
	res, err = files.Push(ctxT(t), c, src, dst)
	if err != nil || res.Changed || res.Bytes != 0 {
		t.Fatalf("second push: %+v %v", res, err)
	}
	back := filepath.Join(t.TempDir(), "back")
	if _, err := files.Pull(ctxT(t), c, dst, back); err != nil {
		t.Fatal(err)
	}
	if hashFile(t, src) != hashFile(t, back) {
		t.Fatal("pulled copy differs")
	}
}

func writeRandom(t *testing.T, path string, size int, seed byte) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rnd := rand.New(rand.NewChaCha8([32]byte{seed}))
	buf := make([]byte, 1<<20)
	for left := size; left > 0; left -= len(buf) {
		for i := 0; i < len(buf); i += 8 {
			binary.LittleEndian.PutUint64(buf[i:], rnd.Uint64())
		}
		if _, err := f.Write(buf[:min(left, len(buf))]); err != nil {
			t.Fatal(err)
		}
	}
}

// A pull whose local destination cannot be written reports why, naming
// the local path, not that its sender was cut off; nothing is left.
func TestPullIntoMissingDirectory(t *testing.T) {
	r := newRouter(t)
	c, err := r.Local(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "tree")
	makeTree(t, src)
	dir := t.TempDir()
	for _, pull := range []struct {
		src, dst string
		opts     []files.Option
	}{
		{filepath.Join(src, "a.txt"), filepath.Join(dir, "missing") + "/", nil},
		{filepath.Join(src, "a.txt"), filepath.Join(dir, "missing", "a.txt"), nil},
		{src, filepath.Join(dir, "missing", "tree"), []files.Option{files.Recursive()}},
	} {
		_, err := files.Pull(ctxT(t), c, pull.src, pull.dst, pull.opts...)
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), filepath.Join(dir, "missing")) {
			t.Errorf("pull %s to %s: %v, want a not-exist error naming %s", pull.src, pull.dst, err, filepath.Join(dir, "missing"))
		}
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("failed pulls left %v in %s", left, dir)
	}
}

// A file copied to an existing directory goes into it, as with cp, both
// ways; a second copy finds it there. A directory in the way of a file
// is an error that leaves no partial file.
func TestCopyFileIntoExistingDirectory(t *testing.T) {
	r := newRouter(t)
	c, err := r.Local(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "tree")
	makeTree(t, src)
	a := filepath.Join(src, "a.txt")
	dir := t.TempDir()
	edir := filepath.Join(dir, "edir")
	if err := os.Mkdir(edir, 0o755); err != nil {
		t.Fatal(err)
	}
	linked := filepath.Join(dir, "linked")
	if err := os.Symlink("edir", linked); err != nil {
		t.Fatal(err)
	}
	if res, err := files.Push(ctxT(t), c, a, edir); err != nil || !res.Changed {
		t.Fatalf("push a.txt to the directory %s: %+v %v", edir, res, err)
	}
	if res, err := files.Push(ctxT(t), c, a, linked); err != nil || res.Changed {
		t.Fatalf("push a.txt again, through a link to the directory: %+v %v, want unchanged", res, err)
	}
	if res, err := files.Pull(ctxT(t), c, a, edir); err != nil || res.Changed {
		t.Fatalf("pull a.txt into the directory that has it: %+v %v, want unchanged", res, err)
	}
	back := t.TempDir()
	if _, err := files.Pull(ctxT(t), c, a, back); err != nil {
		t.Fatalf("pull a.txt to the directory %s: %v", back, err)
	}
	for _, p := range []string{filepath.Join(edir, "a.txt"), filepath.Join(back, "a.txt")} {
		if b, err := os.ReadFile(p); err != nil || string(b) != "hello\n" {
			t.Errorf("%s: %q %v", p, b, err)
		}
	}
	noParts(t, dir)
	noParts(t, back)

	// A directory where the file's copy goes is not replaced.
	if err := os.MkdirAll(filepath.Join(dir, "busy", "a.txt", "inside"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := files.Push(ctxT(t), c, a, filepath.Join(dir, "busy")+"/"); err == nil {
		t.Error("a file pushed over a directory succeeded")
	}
	if _, err := files.Push(ctxT(t), c, src, filepath.Join(dir, "busy"), files.Recursive()); err == nil {
		t.Error("a tree pushed over a tree with a directory in the place of its file succeeded")
	}
	if _, err := os.Stat(filepath.Join(dir, "busy", "a.txt", "inside")); err != nil {
		t.Errorf("the directory in the way: %v", err)
	}
	noParts(t, dir)
}

// A transfer whose data arrived whole but could not be put in place (the
// owner cannot be given by an account that is not root) leaves no partial
// file: there is nothing to resume.
func TestFailureAfterTheDataLeavesNoPartialFile(t *testing.T) {
	u := needSudo(t)
	r := newRouter(t)
	c, err := r.Sudo(ctxT(t), actors.User(u.Username))
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(src, []byte("root's"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := sharedDir(t, u)
	if _, err := files.Push(ctxT(t), c, src, filepath.Join(dir, "f"), files.PreserveOwner(true)); !errors.Is(err, fs.ErrPermission) {
		t.Fatalf("push keeping root as the owner, as %s: %v, want a permission error", u.Username, err)
	}
	noParts(t, dir)
}

// noParts fails the test if a partial file is under dir.
func noParts(t *testing.T, dir string) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".mitogo-part") {
			t.Errorf("partial file left: %s", p)
		}
		return nil
	})
}

// A target's error is a *files.Error that says "files:", the operation
// and the target once, then the cause.
func TestErrorSaysEachThingOnce(t *testing.T) {
	r := newRouter(t)
	c, err := r.Local(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "tree")
	makeTree(t, src)
	missing := filepath.Join(t.TempDir(), "missing")
	for _, err := range []error{
		files.PushMany(ctxT(t), []*actors.Context{c}, filepath.Join(src, "a.txt"), missing+"/")[0].Err,
		func() error { _, err := files.Pull(ctxT(t), c, filepath.Join(src, "a.txt"), missing+"/"); return err }(),
		func() error { _, err := files.Pull(ctxT(t), c, src, missing); return err }(),
	} {
		var fe *files.Error
		if !errors.As(err, &fe) || fe.Target != c.Name() {
			t.Errorf("%v: not a *files.Error for %s", err, c.Name())
			continue
		}
		if s := err.Error(); strings.Count(s, "files:") != 1 || strings.Count(s, c.Name()) != 1 || strings.Count(s, fe.Op) != 1 {
			t.Errorf("%q: want files:, %s and %s once each", s, fe.Op, c.Name())
		}
	}
}

// A push into a directory the account cannot enter says which file could
// not go where, and is a permission error.
func TestPushIntoADirectoryNotAllowed(t *testing.T) {
	u := needSudo(t)
	r := newRouter(t)
	c, err := r.Sudo(ctxT(t), actors.User(u.Username))
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(src, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	closed := t.TempDir() // root's, 0700
	_, err = files.Push(ctxT(t), c, src, filepath.Join(closed, "f"))
	if !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), "cannot write f into the directory "+closed) {
		t.Fatalf("push into %s as %s: %v; want a permission error naming the file and the directory", closed, u.Username, err)
	}
}
