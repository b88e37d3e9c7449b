package bootstrap

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
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

// applyDelta is patchTo into memory.
func applyDelta(base, delta []byte, want string) ([]byte, error) {
	var out bytes.Buffer
	_, err := patchTo(&out, base, bytes.NewReader(delta), want)
	return out.Bytes(), err
}

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

// changed returns a copy of b with n bytes of its padding (see
// patchingChild) changed: a delta to it from b is some n bytes.
func changed(t *testing.T, b *Binary, n int) *Binary {
	t.Helper()
	data, err := os.ReadFile(b.Path)
	if err != nil {
		t.Fatal(err)
	}
	rand.NewChaCha8([32]byte{5}).Read(data[1<<20 : 1<<20+n])
	path := filepath.Join(t.TempDir(), "child")
	if err := os.WriteFile(path, data, 0o755); err != nil {
		t.Fatal(err)
	}
	nb, err := NewBinary(path)
	if err != nil {
		t.Fatal(err)
	}
	return nb
}

// A base that fails to apply the delta (before it read any of it, also
// when the delta is larger than a pipe holds), one that cannot (no patcher
// in it), and a stage 1 that lists no builds all get the whole binary.
func TestStage1DeltaFallsBack(t *testing.T) {
	v2 := patchingChild(t, "two", false)
	for _, c := range []struct {
		name   string
		base   *Binary
		script string
		target *Binary
	}{
		{"broken base", patchingChild(t, "one", true), Stage1(), v2},
		{"broken base, large delta", patchingChild(t, "one", true), Stage1(), changed(t, v2, 512<<10)},
		{"no patcher", fakeChild(t), Stage1(), v2},
		{"no list", patchingChild(t, "one", false), strings.Replace(Stage1(), `echo "builds$L"`, `echo builds`, 1), v2},
	} {
		t.Run(c.name, func(t *testing.T) {
			v2 := c.target
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

// firstWrite is a buffer that closes started at its first write.
type firstWrite struct {
	bytes.Buffer
	once    sync.Once
	started chan struct{}
}

func (w *firstWrite) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.started) })
	return w.Buffer.Write(p)
}

// The patcher applies a delta as it arrives: it writes the start of the
// new image before the end of the delta came (over a slow link the
// transfer and the patching overlap), and checks the whole at the end.
func TestPatcherAppliesTheDeltaAsItArrives(t *testing.T) {
	base := make([]byte, 4<<20)
	rand.NewChaCha8([32]byte{4}).Read(base)
	basePath := filepath.Join(t.TempDir(), "base")
	if err := os.WriteFile(basePath, base, 0o700); err != nil {
		t.Fatal(err)
	}
	target := append([]byte(nil), base...)
	copy(target[1000:], "a change at the start")
	copy(target[len(target)-1000:], "a change at the end")
	d, err := makeDelta(context.Background(), base, target)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(target)
	t.Setenv(EnvVerify, hex.EncodeToString(sum[:]))
	pr, pw := io.Pipe()
	out := &firstWrite{started: make(chan struct{})}
	var stderr bytes.Buffer
	status := make(chan int, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		status <- runPatcher(basePath, pr, out, &stderr)
	}()
	t.Cleanup(func() {
		pw.Close()
		wg.Wait()
	})
	// All but the last bytes of the delta: the end of the image waits for
	// them, its start does not.
	head, tail := d[:len(d)-8], d[len(d)-8:]
	if _, err := pw.Write(head); err != nil {
		t.Fatal(err)
	}
	select {
	case <-out.started:
	case code := <-status:
		t.Fatalf("the patcher ended (%d: %s) before the end of the delta", code, stderr.String())
	case <-time.After(30 * time.Second): // only against a hang
		t.Fatal("nothing of the image written before the end of the delta came")
	}
	pw.Write(tail)
	pw.Close()
	if code := <-status; code != 0 || !bytes.Equal(out.Bytes(), target) {
		t.Fatalf("patcher: status %d, %s; image equal: %v", code, stderr.String(), bytes.Equal(out.Bytes(), target))
	}
}

// A build that stage 1 renamed into the cache once the patcher checked it
// starts without hashing itself again (no MITOGO_VERIFY), and prunes the
// cache it entered, as a fresh upload does.
func TestPatchedChildPrunesTheCache(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	hash := func(c byte) string { return strings.Repeat(string(c), 64) }
	old := time.Now().Add(-6 * time.Hour)
	for i, c := range []byte("1234") {
		p := filepath.Join(dir, hash(c))
		os.WriteFile(p, []byte("an old build"), 0o700)
		at := old.Add(-time.Duration(i) * time.Hour) // 1 the newest
		os.Chtimes(p, at, at)
	}
	child := filepath.Join(dir, hash('f'))
	if err := os.WriteFile(child, exe, 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(child)
	cmd.Env = append(os.Environ(), envTestStdio+"=1", envInstall+"="+installed)
	out, err := cmd.Output()
	if err != nil || !strings.HasPrefix(string(out), ReadyLine+"\n") {
		t.Fatalf("the child: %v, printed %q", err, out)
	}
	for _, c := range []byte("f12") {
		if _, err := os.Stat(filepath.Join(dir, hash(c))); err != nil {
			t.Errorf("build %c: %v; want it kept (among the newest %d)", c, err, KeepBuilds)
		}
	}
	for _, c := range []byte("34") {
		if _, err := os.Stat(filepath.Join(dir, hash(c))); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("build %c: %v; want it pruned", c, err)
		}
	}
}

// events records, in order, the lines the master reads and the delta's
// line it writes.
type events struct {
	mu   sync.Mutex
	list []string
	line []byte
}

func (e *events) add(ev string) {
	e.mu.Lock()
	e.list = append(e.list, ev)
	e.mu.Unlock()
}

// reader returns r, recording each line the master reads through it.
func (e *events) reader(r io.Reader) io.Reader {
	return readFunc(func(p []byte) (int, error) {
		n, err := r.Read(p)
		for _, b := range p[:n] {
			if b != '\n' {
				e.line = append(e.line, b)
				continue
			}
			e.add("read " + strings.Fields(string(e.line) + " .")[0])
			e.line = e.line[:0]
		}
		return n, err
	})
}

type readFunc func([]byte) (int, error)

func (f readFunc) Read(p []byte) (int, error) { return f(p) }

type writeFunc func([]byte) (int, error)

func (f writeFunc) Write(p []byte) (int, error) { return f(p) }

// After a rebuild a delta at hand goes with the hash, which follows the
// list of builds stage 1 has: no round trip more than a cached connect,
// and it is on its way while stage 1 finds out what it unpacks (xz,
// head).
func TestDeltaSentWithTheHash(t *testing.T) {
	v1 := patchingChild(t, "early-one", false)
	v2 := patchingChild(t, "early-two", false)
	env := []string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}
	if _, err := runStage1(t, []string{"/bin/sh"}, env, v1, nil); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/bin/sh", "-c", Stage1())
	cmd.Env = env
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ev := &events{}
	w := writeFunc(func(p []byte) (int, error) {
		if deltaLine.Match(p) {
			ev.add("wrote the delta")
		}
		return in.Write(p)
	})
	res, err := Run(context.Background(), shellConn{ev.reader(out), w}, v2, nil, Options{NoForms: true})
	in.Close()
	cmd.Wait()
	if err != nil || res.Delta != v1.Hash {
		t.Fatalf("%+v %v; want a delta against v1", res, err)
	}
	got := strings.Join(ev.list, ", ")
	if want := "read MITOGO1, read builds, wrote the delta, read got, read need, read patched, read " + ReadyLine; got != want {
		t.Fatalf("the master: %s; want %s", got, want)
	}
}

// A delta sent with the hash to a far side that has the build after all
// (another connect put it there between its listing and the hash) is
// drained: the build runs, and the stream is in step.
func TestDeltaDrainedWhenTheBuildCameMeanwhile(t *testing.T) {
	v1 := patchingChild(t, "came-one", false)
	v2 := patchingChild(t, "came-two", false)
	env := []string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}
	res, err := runStage1(t, []string{"/bin/sh"}, env, v1, nil)
	if err != nil {
		t.Fatal(err)
	}
	img, err := os.ReadFile(v2.Path)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/bin/sh", "-c", Stage1())
	cmd.Env = env
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	dir := res.CacheDir
	r, stop := onLine(out, func(l string) {
		if strings.HasPrefix(l, "builds") { // stage 1 waits for the hash
			if err := os.WriteFile(filepath.Join(dir, v2.Hash), img, 0o700); err != nil {
				t.Error(err)
			}
		}
	})
	ev := &events{}
	w := writeFunc(func(p []byte) (int, error) {
		if deltaLine.Match(p) {
			ev.add("wrote the delta")
		}
		return in.Write(p)
	})
	res, err = Run(context.Background(), shellConn{ev.reader(r), w}, v2, nil, Options{NoForms: true})
	if err == nil {
		io.WriteString(in, "in step\n") // the fake child is cat now
		var line []byte
		var b [1]byte
		for len(line) < 64 {
			if n, err := r.Read(b[:]); n == 0 || err != nil || b[0] == '\n' {
				break
			}
			line = append(line, b[0])
		}
		if string(line) != "in step" {
			t.Errorf("the child echoed %q; want %q", line, "in step")
		}
	}
	in.Close()
	stop()
	cmd.Wait()
	if err != nil || res.Uploaded {
		t.Fatalf("%+v %v; want the cached build run", res, err)
	}
	if got, want := strings.Join(ev.list, ", "), "read MITOGO1, read builds, wrote the delta, read got, read have, read "+ReadyLine; got != want {
		t.Fatalf("the master: %s; want %s", got, want)
	}
}

// withoutAnyID returns a copy of b whose patcher reads only makeDelta's
// deltas (as builds before the zstd tool's deltas did): its patchAnyID
// mark is spoilt.
func withoutAnyID(t *testing.T, b *Binary) *Binary {
	t.Helper()
	data, err := os.ReadFile(b.Path)
	if err != nil {
		t.Fatal(err)
	}
	data = bytes.Replace(data, []byte(patchAnyID), bytes.Repeat([]byte("x"), len(patchAnyID)), 1)
	path := filepath.Join(t.TempDir(), "child")
	if err := os.WriteFile(path, data, 0o755); err != nil {
		t.Fatal(err)
	}
	nb, err := NewBinary(path)
	if err != nil {
		t.Fatal(err)
	}
	return nb
}

// A delta only the in-process encoder can make for the base (its patcher
// reads no other) is worth it on a far link only, which the round trip
// tells: it goes after need, not with the hash.
func TestDeltaForAnOldBaseWaitsForTheRoundTrip(t *testing.T) {
	// Builds of their own in each run: a delta kept by an earlier run
	// would be at hand.
	run := strconv.FormatUint(rand.Uint64(), 16)
	v1 := withoutAnyID(t, patchingChild(t, "old-one-"+run, false))
	v2 := patchingChild(t, "old-two-"+run, false)
	env := []string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}
	if _, err := runStage1(t, []string{"/bin/sh"}, env, v1, nil); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/bin/sh", "-c", Stage1())
	cmd.Env = env
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ev := &events{}
	w := writeFunc(func(p []byte) (int, error) {
		if deltaLine.Match(p) {
			ev.add("wrote the delta")
		}
		return in.Write(p)
	})
	res, err := Run(context.Background(), shellConn{ev.reader(out), w}, v2, nil, Options{NoForms: true, nearRTT: -1})
	in.Close()
	cmd.Wait()
	if err != nil || res.Delta != v1.Hash {
		t.Fatalf("%+v %v; want a delta against v1", res, err)
	}
	if got, want := strings.Join(ev.list, ", "), "read MITOGO1, read builds, read got, read need, wrote the delta, read patched, read "+ReadyLine; got != want {
		t.Fatalf("the master: %s; want %s", got, want)
	}
}
