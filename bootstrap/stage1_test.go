package bootstrap

import (
	"bufio"
	"context"
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
)

// fakeChild is a "binary" for stage 1 to upload and exec: a script that,
// as a child does, checks a fresh upload's hash, caches or removes itself,
// announces itself, then echoes its input. After its last line come 3 MiB
// of incompressible bytes, so the upload takes several gzip pieces.
func fakeChild(t *testing.T) *Binary {
	t.Helper()
	return fakeChildWith(t, "")
}

// fakeChildWith is fakeChild with first, shell lines, run first.
func fakeChildWith(t *testing.T, first string) *Binary {
	t.Helper()
	path := filepath.Join(t.TempDir(), "child")
	script := "#!/bin/sh\n" + first + "[ \"$MITOGO_CHILD\" = stdio ] || exit 9\n" +
		"if [ -n \"$MITOGO_VERIFY\" ]; then\n" +
		"  [ \"$(sha256sum <\"$0\" | cut -d' ' -f1)\" = \"$MITOGO_VERIFY\" ] || { rm -f \"$0\"; echo corrupt >&2; exit 8; }\n" +
		"  if [ \"$MITOGO_INSTALL\" = nocache ]; then rm -f \"$0\"; else mv -f \"$0\" \"${0%/*}/$MITOGO_VERIFY\"; fi\n" +
		"fi\necho " + ReadyLine + "\nexec cat\n"
	pad := make([]byte, 3<<20)
	rand.NewChaCha8([32]byte{1}).Read(pad)
	if err := os.WriteFile(path, append([]byte(script), pad...), 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := NewBinary(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type shellConn struct {
	io.Reader
	io.Writer
}

// runStage1 runs stage 1 under shell with env and speaks to it; the
// upload makes no compressed form (see runStage1With).
func runStage1(t *testing.T, shell []string, env []string, bin *Binary, provider Provider) (Result, error) {
	t.Helper()
	return runStage1With(t, append(shell[:len(shell):len(shell)], "-c", Stage1()), env, bin, provider, Options{NoForms: true})
}

// runStage1With runs the command argv, which runs stage 1, with env and
// speaks to it with opts.
func runStage1With(t *testing.T, argv []string, env []string, bin *Binary, provider Provider, opts Options) (Result, error) {
	t.Helper()
	p := startStage1(t, argv, env)
	defer p.stop()
	res, err := Run(context.Background(), shellConn{p.out, p.in}, bin, provider, opts)
	if err != nil {
		return res, err
	}
	// The stream is now the exec'd child: it echoes.
	io.WriteString(p.in, "ping\n")
	line, err := bufio.NewReader(p.out).ReadString('\n')
	if line != "ping\n" {
		t.Fatalf("after stage 1: read %q, %v (stderr %q)", line, err, p.stderr.String())
	}
	return res, nil
}

// stage1Proc is a command that runs stage 1, started, with its pipes.
type stage1Proc struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    io.ReadCloser
	stderr strings.Builder
}

// startStage1 starts argv, which runs stage 1, with env.
func startStage1(t *testing.T, argv []string, env []string) *stage1Proc {
	t.Helper()
	p := &stage1Proc{cmd: exec.Command(argv[0], argv[1:]...)}
	p.cmd.Env = env
	p.in, _ = p.cmd.StdinPipe()
	p.out, _ = p.cmd.StdoutPipe()
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return p
}

// stop closes stage 1's input and waits for it to end.
func (p *stage1Proc) stop() {
	p.in.Close()
	p.cmd.Wait()
}

// busyboxHeadEnv is an environment whose head is busybox's (it reads
// ahead through stdio), home in a temporary directory.
func busyboxHeadEnv(t *testing.T) []string {
	t.Helper()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		if os.Getenv("MITOGO_REQUIRE_PARTS") != "" {
			t.Fatal("busybox is not installed (bash test/run.sh installs it)")
		}
		t.Skip("busybox is not installed")
	}
	tools := t.TempDir()
	if err := os.Symlink(bb, filepath.Join(tools, "head")); err != nil {
		t.Fatal(err)
	}
	return []string{"HOME=" + t.TempDir(), "PATH=" + tools + ":" + os.Getenv("PATH")}
}

func shells(t *testing.T) [][]string {
	var out [][]string
	for _, s := range [][]string{{"/bin/dash"}, {"/bin/bash", "--posix"}, {"busybox", "ash"}} {
		if _, err := exec.LookPath(s[0]); err == nil {
			out = append(out, s)
		}
	}
	if len(out) < 3 && os.Getenv("MITOGO_REQUIRE_PARTS") != "" {
		t.Fatalf("stage 1 must be tried under dash, bash and busybox ash; found %v (bash test/run.sh installs them)", out)
	}
	if len(out) == 0 {
		t.Fatal("no POSIX shell found")
	}
	return out
}

func TestStage1UploadsOnceUnderEveryShell(t *testing.T) {
	bin := fakeChild(t)
	for _, sh := range shells(t) {
		t.Run(filepath.Base(sh[0]), func(t *testing.T) {
			home := t.TempDir()
			env := []string{"HOME=" + home, "PATH=" + os.Getenv("PATH")}
			res, err := runStage1(t, sh, env, bin, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !res.Uploaded || res.Sent == 0 || res.CacheDir != filepath.Join(home, ".cache", "mitogo") {
				t.Fatalf("first contact: %+v", res)
			}
			cached, err := os.ReadFile(filepath.Join(res.CacheDir, bin.Hash))
			want, _ := os.ReadFile(bin.Path)
			if err != nil || string(cached) != string(want) {
				t.Fatalf("cached binary differs: %v", err)
			}
			res, err = runStage1(t, sh, env, bin, nil)
			if err != nil || res.Uploaded {
				t.Fatalf("second contact: %+v %v (want no upload)", res, err)
			}
		})
	}
}

func TestStage1ParallelUploadsDoNotRace(t *testing.T) {
	bin := fakeChild(t)
	home := t.TempDir()
	env := []string{"HOME=" + home, "PATH=" + os.Getenv("PATH")}
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := runStage1(t, []string{"/bin/sh"}, env, bin, nil); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	ents, _ := os.ReadDir(filepath.Join(home, ".cache", "mitogo"))
	if len(ents) != 1 || ents[0].Name() != bin.Hash {
		t.Fatalf("cache holds %v", ents)
	}
}

func TestStage1OtherPlatformNeedsAProvider(t *testing.T) {
	bin := fakeChild(t)
	fakeBin := t.TempDir()
	os.WriteFile(filepath.Join(fakeBin, "uname"), []byte("#!/bin/sh\ncase \"$*\" in -s) echo Linux;; -m) echo aarch64;; \"-s -m\") echo Linux aarch64;; esac\n"), 0o755)
	env := []string{"HOME=" + t.TempDir(), "PATH=" + fakeBin + ":" + os.Getenv("PATH")}
	_, err := runStage1(t, []string{"/bin/sh"}, env, bin, nil)
	var pe *PlatformError
	if !errors.As(err, &pe) || pe.Platform != "linux/arm64" || !strings.Contains(err.Error(), "remote is linux/arm64; no binary for it") {
		t.Fatalf("want PlatformError for linux/arm64, got %v", err)
	}
	res, err := runStage1(t, []string{"/bin/sh"}, env, bin, func(p string) (*Binary, error) {
		if p == "linux/arm64" {
			return bin, nil
		}
		return nil, nil
	})
	if err != nil || res.Platform != "linux/arm64" || !res.Uploaded {
		t.Fatalf("with a provider: %+v %v", res, err)
	}
}

// A home the user cannot write: the cache falls back to a private
// directory under /tmp.
func TestStage1ReadOnlyHome(t *testing.T) {
	if os.Getuid() != 0 || exec.Command("id", "mitogo-test").Run() != nil {
		if os.Getenv("MITOGO_REQUIRE_PARTS") != "" {
			t.Fatal("needs root and the user mitogo-test (bash test/run.sh creates it)")
		}
		t.Skip("needs root and the user mitogo-test")
	}
	bin := fakeChild(t)
	os.Chmod(filepath.Dir(bin.Path), 0o755)
	os.Chmod(filepath.Dir(filepath.Dir(bin.Path)), 0o755)
	res, err := runStage1(t, []string{"sudo", "-n", "-u", "mitogo-test", "env", "HOME=/", "/bin/sh"}, os.Environ(), bin, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(res.CacheDir, "/tmp/mitogo-") {
		t.Fatalf("cache dir %q, want the /tmp fallback", res.CacheDir)
	}
}

// A symlink planted at the /tmp fallback is refused, even when it points
// at a directory the user owns.
func TestStage1RefusesSymlinkedFallback(t *testing.T) {
	if os.Getuid() != 0 || exec.Command("id", "mitogo-test").Run() != nil {
		if os.Getenv("MITOGO_REQUIRE_PARTS") != "" {
			t.Fatal("needs root and the user mitogo-test (bash test/run.sh creates it)")
		}
		t.Skip("needs root and the user mitogo-test")
	}
	out, err := exec.Command("id", "-u", "mitogo-test").Output()
	if err != nil {
		t.Fatal(err)
	}
	fallback := "/tmp/mitogo-" + strings.TrimSpace(string(out))
	os.RemoveAll(fallback)
	target := t.TempDir()
	exec.Command("chown", "mitogo-test", target).Run()
	if err := os.Symlink(target, fallback); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(fallback)
	bin := fakeChild(t)
	os.Chmod(filepath.Dir(bin.Path), 0o755)
	_, err = runStage1(t, []string{"sudo", "-n", "-u", "mitogo-test", "env", "HOME=/", "/bin/sh"}, os.Environ(), bin, nil)
	if err == nil || !strings.Contains(err.Error(), "is not ours") {
		t.Fatalf("symlinked cache directory: %v", err)
	}
}

// No cache: the binary is sent every time, runs from a temporary file, and
// nothing stays behind.
func TestStage1NoCache(t *testing.T) {
	bin := fakeChild(t)
	home := t.TempDir()
	env := []string{"HOME=" + home, "PATH=" + os.Getenv("PATH")}
	for i := 0; i < 2; i++ {
		cmd := exec.Command("/bin/sh", "-c", Stage1())
		cmd.Env = env
		in, _ := cmd.StdinPipe()
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		res, err := Run(context.Background(), shellConn{out, in}, bin, nil, Options{NoCache: true})
		if err != nil || !res.Uploaded {
			t.Fatalf("run %d: %+v %v", i, res, err)
		}
		in.Close()
		cmd.Wait()
	}
	ents, _ := os.ReadDir(filepath.Join(home, ".cache", "mitogo"))
	if len(ents) != 0 {
		t.Fatalf("no-cache run left %v behind", ents)
	}
}

// Stage1Plain carries nothing a login shell would expand or a newline
// would split, and prints stage 1 exactly under every shell.
func TestStage1PlainUnderEveryShell(t *testing.T) {
	plain := Stage1Plain()
	if strings.ContainsAny(plain, "$\n") || strings.Count(plain, "'") != 2 {
		t.Fatalf("Stage1Plain has $, a newline or a quote of its own: %.80q", plain)
	}
	for _, sh := range shells(t) {
		show := strings.Replace(plain, "eval ", "printf %s ", 1)
		out, err := exec.Command(sh[0], append(sh[1:], "-c", show)...).Output()
		if err != nil || string(out) != Stage1() {
			t.Fatalf("%v: printed %.80q, %v; want stage 1", sh, out, err)
		}
	}
}

// The binary is compressed in pieces at once; gzip -d (and Go's reader)
// read the joined members back as the file, and a binary that came as
// gzip'd bytes unpacks for a far side without gzip.
func TestGzipPiecesRoundTrip(t *testing.T) {
	data := make([]byte, 5<<20+12345)
	for i := range data {
		data[i] = byte(i * 7 / 3)
	}
	path := filepath.Join(t.TempDir(), "bin")
	if err := os.WriteFile(path, data, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := NewBinary(path)
	if err != nil {
		t.Fatal(err)
	}
	gz, err := b.Bytes(true)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("gzip", "-dc")
	cmd.Stdin = strings.NewReader(string(gz))
	out, err := cmd.Output()
	if err != nil || string(out) != string(data) {
		t.Fatalf("gzip -dc: %d bytes, %v; want the %d bytes written", len(out), err, len(data))
	}
	plain, err := NewBinaryGzip(b.Hash, gz).Bytes(false)
	if err != nil || string(plain) != string(data) {
		t.Fatalf("unpacked %d bytes, %v", len(plain), err)
	}
	if len(b.pieces) != 6 {
		t.Fatalf("%d pieces of 1 MiB for 5 MiB and a bit, want 6", len(b.pieces))
	}
}

// A far side whose head is busybox's (it reads ahead): the gzip stream goes
// whole, and the upload of a binary of several pieces arrives intact.
func TestStage1BusyboxHead(t *testing.T) {
	env := busyboxHeadEnv(t)
	bin := fakeChild(t)
	res, err := runStage1(t, []string{"busybox", "ash"}, env, bin, nil)
	if err != nil || !res.Uploaded {
		t.Fatalf("upload with busybox head: %+v %v", res, err)
	}
	got, _ := os.ReadFile(filepath.Join(res.CacheDir, bin.Hash))
	want, _ := os.ReadFile(bin.Path)
	if string(got) != string(want) {
		t.Fatalf("cached %d bytes, want %d", len(got), len(want))
	}
}

// An upload cut between two pieces (the master killed mid-way) leaves
// nothing in the cache: gzip sees a whole stream, but the child's hash
// check fails, and only a verified binary is renamed into place.
func TestStage1TruncatedUploadNotCached(t *testing.T) {
	bin := fakeChild(t)
	if err := bin.compress(); err != nil {
		t.Fatal(err)
	}
	for _, sh := range shells(t) {
		home := t.TempDir()
		cmd := exec.Command(sh[0], append(sh[1:], "-c", Stage1())...)
		cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH")}
		in, _ := cmd.StdinPipe()
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(out)
		if l, _ := br.ReadString('\n'); !strings.HasPrefix(l, "MITOGO1 ") {
			t.Fatalf("%v: %q", sh, l)
		}
		if l, _ := br.ReadString('\n'); l != "builds\n" {
			t.Fatalf("%v: %q", sh, l)
		}
		io.WriteString(in, bin.Hash+"\n")
		if l, _ := br.ReadString('\n'); l != "got\n" {
			t.Fatalf("%v: %q", sh, l)
		}
		// A shell whose head is busybox's (busybox-static's ash runs its
		// own applets) takes the stream whole: it is cut after the first
		// piece's bytes, short of the length announced.
		l, _ := br.ReadString('\n')
		f := strings.Fields(l)
		if len(f) != 3 || f[0] != "need" || (f[2] != "whole" && f[2] != "pieces") {
			t.Fatalf("%v: %q", sh, l)
		}
		whole := f[2] == "whole"
		p := bin.pieces[0]
		<-p.done
		n := len(p.gz)
		if whole {
			n = 0
			for _, q := range bin.pieces {
				<-q.done
				n += len(q.gz)
			}
			n++ // also when the stream is one piece
		}
		io.WriteString(in, strconv.Itoa(n)+"\n")
		in.Write(p.gz)
		in.Close() // cut before the next piece
		io.ReadAll(br)
		cmd.Wait()
		ents, _ := os.ReadDir(filepath.Join(home, ".cache", "mitogo"))
		for _, e := range ents {
			if e.Name() == bin.Hash {
				t.Fatalf("%v: a truncated upload was cached as %s", sh, e.Name())
			}
		}
	}
}

// A connect that finds its build cached runs no tool that only an upload
// needs (xz --version, head --version | grep, mkdir -p of a cache that is
// there): each is a process, some 1 ms, on every connect. An upload runs
// them.
func TestStage1CachedRunsNoProbe(t *testing.T) {
	bin := fakeChild(t)
	spy, marks := t.TempDir(), t.TempDir()
	for _, tool := range []string{"xz", "head", "grep", "mkdir"} {
		real, err := exec.LookPath(tool)
		if err != nil {
			t.Fatal(err)
		}
		script := "#!/bin/sh\n: >>" + shellQuoteTest(filepath.Join(marks, tool)) + "\nexec " + shellQuoteTest(real) + " \"$@\"\n"
		if err := os.WriteFile(filepath.Join(spy, tool), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	env := []string{"HOME=" + t.TempDir(), "PATH=" + spy + ":" + os.Getenv("PATH")}
	ran := func() []string {
		ents, _ := os.ReadDir(marks)
		var out []string
		for _, e := range ents {
			out = append(out, e.Name())
			os.Remove(filepath.Join(marks, e.Name()))
		}
		return out
	}
	if res, err := runStage1(t, []string{"/bin/sh"}, env, bin, nil); err != nil || !res.Uploaded {
		t.Fatalf("first contact: %+v %v", res, err)
	}
	if got := strings.Join(ran(), " "); got != "grep head mkdir xz" {
		t.Fatalf("an upload ran %q; want grep head mkdir xz (are the spies on PATH?)", got)
	}
	if res, err := runStage1(t, []string{"/bin/sh"}, env, bin, nil); err != nil || res.Uploaded {
		t.Fatalf("cached connect: %+v %v", res, err)
	}
	if got := ran(); len(got) != 0 {
		t.Errorf("a cached connect ran %v", got)
	}
}
