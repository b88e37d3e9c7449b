package files_test

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mitogo/mitogo/actors"
	"github.com/mitogo/mitogo/files"
	"github.com/mitogo/mitogo/test/sshtest"
)

// readBytes is what process pid has read so far (rchar of /proc/PID/io).
func readBytes(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "rchar: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	t.Fatal("no rchar in /proc/PID/io")
	return 0
}

// A via of several targets receives the data once and relays it: it
// reads the file's bytes from its parent once, not once per target. A
// target that is gone fails alone.
func TestPushManyRelaysThroughTheVia(t *testing.T) {
	needRoot(t) // /proc/PID/io of the children
	r := newRouter(t)
	via, err := r.Local(ctxT(t), actors.Name("via"))
	if err != nil {
		t.Fatal(err)
	}
	targets := []*actors.Context{via}
	for i := range 4 {
		c, err := r.Local(ctxT(t), actors.Via(via), actors.Name(fmt.Sprint("leaf", i)))
		if err != nil {
			t.Fatal(err)
		}
		targets = append(targets, c)
	}
	gone, err := r.Local(ctxT(t), actors.Name("gone"))
	if err != nil {
		t.Fatal(err)
	}
	if err := gone.Shutdown(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	targets = append(targets, gone)
	dirs := map[int]string{}
	for _, c := range targets[:5] {
		dirs[c.ID()] = t.TempDir()
		if _, err := chdir.Call(ctxT(t), c, dirs[c.ID()]); err != nil {
			t.Fatal(err)
		}
	}
	src := filepath.Join(t.TempDir(), "tree")
	makeTree(t, src)
	const size = 16 << 20
	writeRandom(t, filepath.Join(src, "sub", "large"), size, 3)
	os.Chtimes(filepath.Join(src, "sub"), fixedTime, fixedTime)

	before := readBytes(t, via.ProcessID())
	results := files.PushMany(ctxT(t), targets, src, "copy", files.Recursive())
	read := readBytes(t, via.ProcessID()) - before
	for i, res := range results {
		if res.Target != targets[i] {
			t.Fatalf("result %d is for %v, want %v", i, res.Target, targets[i])
		}
		if i == len(results)-1 {
			if res.Err == nil {
				t.Fatalf("push to a context that is gone: %+v", res)
			}
			continue
		}
		if res.Err != nil || !res.Changed {
			t.Fatalf("push to %s: %+v", res.Target, res)
		}
		sameTree(t, src, filepath.Join(dirs[res.Target.ID()], "copy"), "")
	}
	// Five targets below it; it read the data about once.
	if read < size || read > size*3/2 {
		t.Fatalf("the via read %d bytes for a tree of %d: want it once, not once per target", read, size)
	}
	for _, res := range files.PushMany(ctxT(t), targets[:5], src, "copy", files.Recursive()) {
		if res.Err != nil || res.Changed || res.Bytes != 0 {
			t.Fatalf("second push to %s: %+v", res.Target, res)
		}
	}
}

// Over the real sshd, then sudo to another account.
func TestPushPullOverSSHThenSudo(t *testing.T) {
	u := needSudo(t)
	s := sshtest.Start(t)
	r := newRouter(t)
	c1, err := r.SSH(ctxT(t), s.Addr, actors.IdentityFile(s.ClientKey), actors.KnownHosts(s.KnownHosts), actors.SSHConfig("none"))
	if err != nil {
		t.Fatal(err)
	}
	c2, err := r.Sudo(ctxT(t), actors.Via(c1), actors.User(u.Username))
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c2, sharedDir(t, u), u.Username)
}

// A push to many targets, two vias with eleven targets below each: every
// target gets the file, and its result is its own.
func TestPushManyToTwentyFourTargets(t *testing.T) {
	r := newRouter(t)
	var targets []*actors.Context
	for v := range 2 {
		via, err := r.Local(ctxT(t), actors.Name(fmt.Sprint("via", v)))
		if err != nil {
			t.Fatal(err)
		}
		targets = append(targets, via)
		for i := range 11 {
			c, err := r.Local(ctxT(t), actors.Via(via), actors.Name(fmt.Sprintf("leaf%d.%d", v, i)))
			if err != nil {
				t.Fatal(err)
			}
			targets = append(targets, c)
		}
	}
	dirs := map[int]string{}
	for _, c := range targets {
		dirs[c.ID()] = t.TempDir()
		if _, err := chdir.Call(ctxT(t), c, dirs[c.ID()]); err != nil {
			t.Fatal(err)
		}
	}
	src := filepath.Join(t.TempDir(), "data")
	writeRandom(t, src, 3<<20, 5)
	results := files.PushMany(ctxT(t), targets, src, "copy")
	if len(results) != len(targets) {
		t.Fatalf("%d results for %d targets", len(results), len(targets))
	}
	want := hashFile(t, src)
	for i, res := range results {
		if res.Target != targets[i] {
			t.Fatalf("result %d is for %v, want %v", i, res.Target, targets[i])
		}
		if res.Err != nil || !res.Changed || res.Files != 1 {
			t.Fatalf("push to %s: %+v", res.Target, res)
		}
		if got := hashFile(t, filepath.Join(dirs[res.Target.ID()], "copy")); got != want {
			t.Fatalf("%s holds a copy with hash %s, want %s", res.Target, got, want)
		}
	}
}
