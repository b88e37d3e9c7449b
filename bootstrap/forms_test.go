package bootstrap

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mitogo/mitogo/test/sshtest"
)

// smallChild is a fake child like fakeChild's with 256 KiB of text after
// its script: quick to compress, so a test can wait for its forms.
func smallChild(t *testing.T, variant string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "child")
	script := "#!/bin/sh\n# " + variant + "\n[ \"$MITOGO_CHILD\" = stdio ] || exit 9\n" +
		"if [ -n \"$MITOGO_VERIFY\" ]; then\n" +
		"  [ \"$(sha256sum <\"$0\" | cut -d' ' -f1)\" = \"$MITOGO_VERIFY\" ] || { rm -f \"$0\"; echo corrupt >&2; exit 8; }\n" +
		"  if [ \"$MITOGO_INSTALL\" = nocache ]; then rm -f \"$0\"; else mv -f \"$0\" \"${0%/*}/$MITOGO_VERIFY\"; fi\n" +
		"fi\necho " + ReadyLine + "\nexec cat\n"
	var pad strings.Builder
	for i := 0; pad.Len() < 256<<10; i++ {
		pad.WriteString("# line " + strings.Repeat("x", i%97) + "\n")
	}
	if err := os.WriteFile(path, []byte(script+pad.String()), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// withoutTools returns a PATH of one directory that has every program of
// the test's PATH but those named.
func withoutTools(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range filepath.SplitList(os.Getenv("PATH")) {
		ents, _ := os.ReadDir(d)
		for _, e := range ents {
			n := e.Name()
			skip := false
			for _, x := range names {
				skip = skip || n == x || strings.Contains(n, x) // unxz, xzcat, zstdcat...
			}
			if _, err := os.Lstat(filepath.Join(dir, n)); skip || err == nil {
				continue
			}
			os.Symlink(filepath.Join(d, n), filepath.Join(dir, n))
		}
	}
	return dir
}

// formOpts are the options of a first contact that makes forms, with the
// job at the test's priority (the default, the lowest, may starve on a
// busy machine).
var formOpts = Options{formNice: "0", nearRTT: -1}

func masterCache(t *testing.T) string {
	t.Helper()
	dir, err := LocalCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// needTools fails (or skips) unless the master has xz and zstd.
func needTools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"xz", "zstd", "gzip", "sha256sum"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("MITOGO_REQUIRE_PARTS") != "" {
				t.Fatalf("%s is needed (apt-get install xz-utils zstd)", tool)
			}
			t.Skipf("%s is needed", tool)
		}
	}
}

// The first upload of a build sends the pipelined gzip pieces and starts
// making the build's smaller form; once it is made, a first contact
// elsewhere sends it: xz where the far side has xz, else zstd, else gzip
// -9. What lands in the far side's cache is the image, whichever way.
func TestStage1SendsTheReadyForm(t *testing.T) {
	needTools(t)
	for _, c := range []struct {
		want    string
		without []string
	}{
		{"xz", nil},
		{"zstd", []string{"xz"}},
		{"gz", []string{"xz", "zstd"}},
	} {
		t.Run(c.want, func(t *testing.T) {
			bin, err := NewBinary(smallChild(t, c.want))
			if err != nil {
				t.Fatal(err)
			}
			path := os.Getenv("PATH")
			if c.without != nil {
				path = withoutTools(t, c.without...)
			}
			run := func() Result {
				t.Helper()
				env := []string{"HOME=" + t.TempDir(), "PATH=" + path}
				res, err := runStage1With(t, []string{"/bin/sh", "-c", Stage1()}, env, bin, nil, formOpts)
				if err != nil {
					t.Fatal(err)
				}
				cached, err := os.ReadFile(filepath.Join(res.CacheDir, bin.Hash))
				want, _ := os.ReadFile(bin.Path)
				if err != nil || !bytes.Equal(cached, want) {
					t.Fatalf("cached binary differs: %v", err)
				}
				return res
			}
			if res := run(); !res.Uploaded || res.Form != "" {
				t.Fatalf("first upload: %+v; want the gzip pieces", res)
			}
			if n := bin.sent.formJobs.Load(); n != 1 {
				t.Fatalf("%d jobs started to make the form, want 1", n)
			}
			WaitForms(masterCache(t))
			res := run()
			if !res.Uploaded || res.Form != c.want {
				t.Fatalf("once the form is made: %+v; want it sent as %s", res, c.want)
			}
			if n := bin.sent.formJobs.Load(); n != 1 {
				t.Fatalf("%d jobs started in all, want 1", n)
			}
		})
	}
}

// 20 parallel first contacts of one build, each by its own Binary (as 20
// processes would), make its form once.
func TestFormMadeOncePerBuild(t *testing.T) {
	needTools(t)
	path := smallChild(t, "once")
	var wg sync.WaitGroup
	var mu sync.Mutex
	jobs := int32(0)
	for range 20 {
		wg.Go(func() {
			bin, err := NewBinary(path)
			if err != nil {
				t.Error(err)
				return
			}
			env := []string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}
			if _, err := runStage1With(t, []string{"/bin/sh", "-c", Stage1()}, env, bin, nil, formOpts); err != nil {
				t.Error(err)
			}
			mu.Lock()
			jobs += bin.sent.formJobs.Load()
			mu.Unlock()
		})
	}
	wg.Wait()
	dir := masterCache(t)
	WaitForms(dir)
	if jobs != 1 {
		t.Errorf("%d jobs made the form, want 1", jobs)
	}
	bin, _ := NewBinary(path)
	if forms, _ := filepath.Glob(filepath.Join(dir, bin.Hash+".xz.*")); len(forms) != 1 {
		t.Errorf("forms in the cache: %v, want one", forms)
	}
}

// A form in the cache that does not match its name (truncated, or a byte
// changed) is not sent: the upload sends the gzip pieces, the form is
// removed and made again.
func TestCorruptFormNotSent(t *testing.T) {
	needTools(t)
	for _, c := range []struct {
		name  string
		spoil func([]byte) []byte
	}{
		{"truncated", func(b []byte) []byte { return b[:len(b)/2] }},
		{"a byte changed", func(b []byte) []byte { b[len(b)/2] ^= 0x40; return b }},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := smallChild(t, c.name)
			env := func() []string { return []string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")} }
			bin, _ := NewBinary(path)
			if _, err := runStage1With(t, []string{"/bin/sh", "-c", Stage1()}, env(), bin, nil, formOpts); err != nil {
				t.Fatal(err)
			}
			dir := masterCache(t)
			WaitForms(dir)
			forms, _ := filepath.Glob(filepath.Join(dir, bin.Hash+".xz.*"))
			if len(forms) != 1 {
				t.Fatalf("forms: %v, want one", forms)
			}
			data, _ := os.ReadFile(forms[0])
			spoilt := c.spoil(data)
			os.WriteFile(forms[0], spoilt, 0o600)

			bin, _ = NewBinary(path) // a new process: nothing in memory
			res, err := runStage1With(t, []string{"/bin/sh", "-c", Stage1()}, env(), bin, nil, formOpts)
			if err != nil || !res.Uploaded || res.Form != "" {
				t.Fatalf("with a spoilt form: %+v %v; want the gzip pieces", res, err)
			}
			// Removed; the job that makes it again may already have put
			// the good form back under the same name.
			if now, err := os.ReadFile(forms[0]); err == nil && bytes.Equal(now, spoilt) {
				t.Errorf("the spoilt form %s is still there", forms[0])
			}
			if n := bin.sent.formJobs.Load(); n != 1 {
				t.Errorf("%d jobs started to make it again, want 1", n)
			}
			WaitForms(dir)
			bin, _ = NewBinary(path)
			if res, err := runStage1With(t, []string{"/bin/sh", "-c", Stage1()}, env(), bin, nil, formOpts); err != nil || res.Form != "xz" {
				t.Fatalf("once made again: %+v %v; want xz", res, err)
			}
		})
	}
}

// Over a real sshd: a first contact sends the gzip pieces, then each form
// the far side can unpack (by the PATH its shell gets) is sent whole.
func TestFormsOverSSH(t *testing.T) {
	needTools(t)
	s := sshtest.Start(t)
	bin, err := NewBinary(smallChild(t, "ssh"))
	if err != nil {
		t.Fatal(err)
	}
	contact := func(path string) Result {
		t.Helper()
		far := t.TempDir() // the far side's cache home
		remote := "XDG_CACHE_HOME=" + far + " PATH=" + path + " exec /bin/sh -c " + shellQuoteTest(Stage1())
		res, err := runStage1With(t, append([]string{"ssh"}, append(s.SSHArgs(), remote)...), os.Environ(), bin, nil, formOpts)
		if err != nil {
			t.Fatal(err)
		}
		cached, err := os.ReadFile(filepath.Join(far, "mitogo", bin.Hash))
		want, _ := os.ReadFile(bin.Path)
		if err != nil || !bytes.Equal(cached, want) {
			t.Fatalf("cached binary differs: %v", err)
		}
		return res
	}
	if res := contact(os.Getenv("PATH")); res.Form != "" || !res.Uploaded {
		t.Fatalf("first contact: %+v; want the gzip pieces", res)
	}
	WaitForms(masterCache(t))
	if res := contact(os.Getenv("PATH")); res.Form != "xz" {
		t.Fatalf("with the form made: %+v; want xz", res)
	}
	// A far side without xz gets the next form, made at its first upload.
	noXZ := withoutTools(t, "xz")
	if res := contact(noXZ); res.Form != "" {
		t.Fatalf("without xz, first: %+v; want the gzip pieces", res)
	}
	WaitForms(masterCache(t))
	if res := contact(noXZ); res.Form != "zstd" {
		t.Fatalf("without xz: %+v; want zstd", res)
	}
}

// On a near link the pipelined gzip pieces go even when the form is
// ready, and none is made.
func TestNearLinkSendsPieces(t *testing.T) {
	needTools(t)
	path := smallChild(t, "near")
	env := func() []string { return []string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")} }
	bin, _ := NewBinary(path)
	near := Options{formNice: "0", nearRTT: time.Hour}
	if _, err := runStage1With(t, []string{"/bin/sh", "-c", Stage1()}, env(), bin, nil, near); err != nil {
		t.Fatal(err)
	}
	if n := bin.sent.formJobs.Load(); n != 0 {
		t.Fatalf("a near first contact started %d jobs, want none", n)
	}
	if _, err := runStage1With(t, []string{"/bin/sh", "-c", Stage1()}, env(), bin, nil, formOpts); err != nil {
		t.Fatal(err)
	}
	WaitForms(masterCache(t))
	bin, _ = NewBinary(path)
	res, err := runStage1With(t, []string{"/bin/sh", "-c", Stage1()}, env(), bin, nil, near)
	if err != nil || !res.Uploaded || res.Form != "" {
		t.Fatalf("near, with the form made: %+v %v; want the gzip pieces", res, err)
	}
}
