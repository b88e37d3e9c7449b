package bootstrap

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// patchingChild is a fake child like fakeChild's that can also serve as a
// delta's base: it carries patchCapability and patchAnyID (it reads the
// zstd tool's deltas as well as makeDelta's), and run as the patcher it has
// this test binary patch from it (see TestMain). Every variant has the same
// 3 MiB of padding; variant is a word in its script. A base that is
// broken fails as the patcher.
func patchingChild(t *testing.T, variant string, broken bool) *Binary {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	patch := "MITOGO_CHILD= " + envTestBase + "=\"$0\" MITOGO_CHILD=patch exec " + shellQuoteTest(self)
	if broken {
		patch = "exit 1"
	}
	script := "#!/bin/sh\n# " + patchCapability + " " + patchAnyID + " " + variant + "\n" +
		"if [ \"$MITOGO_CHILD\" = patch ]; then " + patch + "; fi\n" +
		"[ \"$MITOGO_CHILD\" = stdio ] || exit 9\n" +
		"if [ -n \"$MITOGO_VERIFY\" ]; then\n" +
		"  [ \"$(sha256sum <\"$0\" | cut -d' ' -f1)\" = \"$MITOGO_VERIFY\" ] || { rm -f \"$0\"; echo corrupt >&2; exit 8; }\n" +
		"  if [ \"$MITOGO_INSTALL\" = nocache ]; then rm -f \"$0\"; else mv -f \"$0\" \"${0%/*}/$MITOGO_VERIFY\"; fi\n" +
		"fi\necho " + ReadyLine + "\nexec cat\n"
	pad := make([]byte, 3<<20)
	rand.NewChaCha8([32]byte{2}).Read(pad)
	path := filepath.Join(t.TempDir(), "child")
	if err := os.WriteFile(path, append([]byte(script), pad...), 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := NewBinary(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func shellQuoteTest(s string) string { return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'" }

func TestDeltaRoundTrip(t *testing.T) {
	base := make([]byte, 1<<20)
	rand.NewChaCha8([32]byte{3}).Read(base)
	target := append(append([]byte(nil), base[:500000]...), append([]byte("a change"), base[500000:]...)...)
	sum := sha256.Sum256(target)
	want := hex.EncodeToString(sum[:])
	d, err := makeDelta(context.Background(), base, target)
	if err != nil {
		t.Fatal(err)
	}
	if len(d) > 4096 {
		t.Errorf("delta of an 8-byte insertion in 1 MiB is %d bytes", len(d))
	}
	got, err := applyDelta(base, d, want)
	if err != nil || !bytes.Equal(got, target) {
		t.Fatalf("applying: %v (equal %v)", err, bytes.Equal(got, target))
	}
	other := append([]byte(nil), base...)
	other[600000] ^= 1
	if _, err := applyDelta(other, d, want); !errors.Is(err, ErrPatch) {
		t.Errorf("against another base: %v, want ErrPatch", err)
	}
	if _, err := applyDelta(base, d[:len(d)/2], want); !errors.Is(err, ErrPatch) {
		t.Errorf("a truncated delta: %v, want ErrPatch", err)
	}
}

// After a rebuild, the far side that holds the earlier build receives a
// delta, which the earlier build applies; the result is the new build,
// cached, and runs.
func TestStage1SendsADeltaUnderEveryShell(t *testing.T) {
	v1 := patchingChild(t, "one", false)
	v2 := patchingChild(t, "two", false)
	for _, sh := range shells(t) {
		t.Run(filepath.Base(sh[0]), func(t *testing.T) {
			home := t.TempDir()
			env := []string{"HOME=" + home, "PATH=" + os.Getenv("PATH")}
			res, err := runStage1(t, sh, env, v1, nil)
			if err != nil || !res.Uploaded || res.Delta != "" {
				t.Fatalf("first contact: %+v %v", res, err)
			}
			res, err = runStage1(t, sh, env, v2, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !res.Uploaded || res.Delta != v1.Hash || res.Sent > 64<<10 {
				t.Fatalf("after a rebuild: %+v; want a delta against %s of less than 64 KiB", res, v1.Hash)
			}
			cached, err := os.ReadFile(filepath.Join(res.CacheDir, v2.Hash))
			want, _ := os.ReadFile(v2.Path)
			if err != nil || !bytes.Equal(cached, want) {
				t.Fatalf("cached build differs from the new one: %v", err)
			}
			if left, _ := filepath.Glob(filepath.Join(res.CacheDir, "*.*")); len(left) != 0 {
				t.Errorf("left behind: %v", left)
			}
			if res, err = runStage1(t, sh, env, v2, nil); err != nil || res.Uploaded {
				t.Fatalf("third contact: %+v %v (want no upload)", res, err)
			}
		})
	}
}

// A base that fails to apply the delta, one that cannot (no patcher in
// it), and a stage 1 that lists no builds all get the whole binary.
func TestStage1DeltaFallsBack(t *testing.T) {
	v2 := patchingChild(t, "two", false)
	for _, c := range []struct {
		name   string
		base   *Binary
		script string
	}{
		{"broken base", patchingChild(t, "one", true), Stage1()},
		{"no patcher", fakeChild(t), Stage1()},
		{"no list", patchingChild(t, "one", false), strings.Replace(Stage1(), `echo "need $Z $P$L"`, `echo "need $Z $P"`, 1)},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.script == Stage1() && c.name == "no list" {
				t.Fatal("the stage 1 script changed: the reply without a list is not simulated")
			}
			home := t.TempDir()
			env := []string{"HOME=" + home, "PATH=" + os.Getenv("PATH")}
			if _, err := runStage1(t, []string{"/bin/sh"}, env, c.base, nil); err != nil {
				t.Fatal(err)
			}
			res, err := runScript(t, c.script, []string{"/bin/sh"}, env, v2)
			if err != nil || !res.Uploaded || res.Delta != "" {
				t.Fatalf("%+v %v; want a whole upload", res, err)
			}
			cached, err := os.ReadFile(filepath.Join(res.CacheDir, v2.Hash))
			want, _ := os.ReadFile(v2.Path)
			if err != nil || !bytes.Equal(cached, want) {
				t.Fatalf("cached build differs from the new one: %v", err)
			}
		})
	}
}

// runScript is runStage1 with another stage 1 program.
func runScript(t *testing.T, script string, shell, env []string, bin *Binary) (Result, error) {
	t.Helper()
	cmd := exec.Command(shell[0], append(shell[1:], "-c", script)...)
	cmd.Env = env
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		in.Close()
		cmd.Wait()
	}()
	return Run(context.Background(), shellConn{out, in}, bin, nil, Options{NoForms: true})
}

// A delta is computed once per pair of builds: kept in the master's cache,
// it is what the next process sends to another holder of the same base,
// without computing it; one that does not match its name is computed again.
func TestDeltaKeptAcrossProcesses(t *testing.T) {
	v1 := patchingChild(t, "kept-one", false) // builds no other test sends
	v2path := patchingChild(t, "kept-two", false).Path
	env := func() []string { return []string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")} }
	sh := []string{"/bin/sh"}
	homeA, homeB, homeC := env(), env(), env()
	for _, h := range [][]string{homeA, homeB, homeC} {
		if _, err := runStage1(t, sh, h, v1, nil); err != nil {
			t.Fatal(err)
		}
	}
	// The first process computes the delta, once.
	v2, _ := NewBinary(v2path)
	res, err := runStage1(t, sh, homeA, v2, nil)
	if err != nil || res.Delta != v1.Hash {
		t.Fatalf("first process: %+v %v; want a delta against v1", res, err)
	}
	if n := v2.sent.deltaRuns.Load(); n != 1 {
		t.Fatalf("first process computed %d deltas, want 1", n)
	}
	dir := masterCache(t)
	kept, _ := filepath.Glob(filepath.Join(dir, deltaName(v2.Hash, v1.Hash)+".*"))
	if len(kept) != 1 {
		t.Fatalf("deltas kept: %v, want one", kept)
	}
	// The next process finds it.
	v2, _ = NewBinary(v2path)
	if res, err := runStage1(t, sh, homeB, v2, nil); err != nil || res.Delta != v1.Hash {
		t.Fatalf("second process: %+v %v; want a delta against v1", res, err)
	}
	if n := v2.sent.deltaRuns.Load(); n != 0 {
		t.Fatalf("second process computed %d deltas, want 0 (the kept one)", n)
	}
	// A spoilt one is not sent, but computed again.
	os.WriteFile(kept[0], []byte("spoilt"), 0o600)
	v2, _ = NewBinary(v2path)
	if res, err := runStage1(t, sh, homeC, v2, nil); err != nil || res.Delta != v1.Hash {
		t.Fatalf("with a spoilt delta kept: %+v %v; want a delta against v1", res, err)
	}
	if n := v2.sent.deltaRuns.Load(); n != 1 {
		t.Fatalf("with a spoilt delta kept, %d computed, want 1", n)
	}
}

// A delta that does not pay is remembered too: the next process does not
// compute it again.
func TestDeltaThatDoesNotPayIsRemembered(t *testing.T) {
	dir := masterCache(t)
	os.MkdirAll(dir, 0o700)
	write := func(seed byte) string {
		data := make([]byte, 1<<20)
		rand.NewChaCha8([32]byte{seed, 9}).Read(data)
		p := filepath.Join(t.TempDir(), "exe")
		os.WriteFile(p, append([]byte(patchCapability+"\n"), data...), 0o755)
		return p
	}
	base, err := NewBinary(write(1))
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(base.Path)
	os.WriteFile(filepath.Join(dir, base.Hash), data, 0o700)
	target := write(2)
	for i, want := range []int32{1, 0} {
		bin, _ := NewBinary(target)
		if d := bin.computeDelta(context.Background(), dir, base.Hash, true); d != nil {
			t.Fatalf("a delta of %d bytes between unrelated random files", len(d))
		}
		if n := bin.sent.deltaRuns.Load(); n != want {
			t.Fatalf("process %d computed %d deltas, want %d", i+1, n, want)
		}
	}
}

// Which encoder makes a delta depends on the base and the link: a base
// whose patcher reads the zstd tool's deltas gets one from the tool, on
// any link (fast, and out of this process); a base that reads only
// makeDelta's gets one from the in-process encoder, and only over a far
// link, where its cost in time and memory pays. Each delta applies to its
// base and gives the new image.
func TestDeltaEncoderByBaseAndLink(t *testing.T) {
	needTools(t)
	dir := masterCache(t)
	os.MkdirAll(dir, 0o700)
	data := make([]byte, 2<<20)
	rand.NewChaCha8([32]byte{7, 7}).Read(data)
	write := func(marks, change string) string {
		body := append([]byte(nil), data...)
		copy(body[1<<20:], change)
		p := filepath.Join(t.TempDir(), "exe")
		os.WriteFile(p, append([]byte(marks+"\n"), body...), 0o755)
		return p
	}
	for _, c := range []struct {
		name        string
		marks       string
		far         bool
		wantDict    uint32
		wantNoDelta bool
	}{
		{"old base, near link", patchCapability, false, 0, true},
		{"old base, far link", patchCapability, true, 1, false},
		{"new base, near link", patchCapability + " " + patchAnyID, false, 0, false},
		{"new base, far link", patchCapability + " " + patchAnyID, true, 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			base, err := NewBinary(write(c.marks, "base "+c.name))
			if err != nil {
				t.Fatal(err)
			}
			baseImg, _ := os.ReadFile(base.Path)
			os.WriteFile(filepath.Join(dir, base.Hash), baseImg, 0o700)
			bin, _ := NewBinary(write(c.marks, "target "+c.name))
			d := bin.computeDelta(context.Background(), dir, base.Hash, c.far)
			if c.wantNoDelta {
				if d != nil || bin.sent.deltaRuns.Load() != 0 {
					t.Fatalf("a delta of %d bytes computed (%d runs); want none", len(d), bin.sent.deltaRuns.Load())
				}
				return
			}
			if d == nil || len(d) > 64<<10 {
				t.Fatalf("delta of %d bytes; want one under 64 KiB", len(d))
			}
			if id, err := frameDict(d); err != nil || id != c.wantDict {
				t.Fatalf("the delta's frame names dictionary %d (%v); want %d", id, err, c.wantDict)
			}
			if _, err := applyDelta(baseImg, d, bin.Hash); err != nil {
				t.Fatal(err)
			}
		})
	}
}
