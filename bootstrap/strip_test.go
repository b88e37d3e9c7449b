package bootstrap

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// panicker is a program that prints "ok", or with the argument "panic"
// panics in main.boom at line panicLine of main.go.
const panicker = `package main

import (
	"fmt"
	"os"
)

func boom() {
	panic("boom")
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "panic" {
		boom()
	}
	fmt.Println("ok")
}
`

const panicLine = 9

var (
	buildsMu sync.Mutex
	builds   = map[string]string{} // build flags → path, once per test run
)

// buildPanicker builds panicker with env and flags into the test's temp
// dir (once per combination for the whole run).
func buildPanicker(t *testing.T, env []string, flags ...string) string {
	t.Helper()
	key := strings.Join(env, " ") + "|" + strings.Join(flags, " ")
	buildsMu.Lock()
	defer buildsMu.Unlock()
	if p, ok := builds[key]; ok {
		return p
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build test programs: %v", err)
	}
	dir, err := os.MkdirTemp("", "mitogo-strip-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) }) // the map entry then goes stale; tests share one run's builds only
	src := filepath.Join(dir, "main.go")
	os.WriteFile(src, []byte(panicker), 0o644)
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module panicker\n\ngo 1.22\n"), 0o644)
	out := filepath.Join(dir, "panicker")
	cmd := exec.Command(goTool, append(append([]string{"build", "-o", out}, flags...), ".")...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", key, err, msg)
	}
	return out
}

func sectionNames(t *testing.T, data []byte) map[string]bool {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("not ELF: %v", err)
	}
	defer f.Close()
	names := map[string]bool{}
	for _, s := range f.Sections {
		names[s.Name] = true
	}
	return names
}

// runImage writes img to a file and runs it with args.
func runImage(t *testing.T, img []byte, args ...string) (string, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "stripped")
	if err := os.WriteFile(path, img, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(path, args...).CombinedOutput()
	return string(out), err
}

func TestStripImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Go programs")
	}
	_, gccErr := exec.LookPath("gcc")
	for _, tc := range []struct {
		name  string
		env   []string
		flags []string
		strip bool // something to leave out
		run   bool // this machine runs it
		need  error
	}{
		{name: "default", strip: true, run: true},
		{name: "cgo, external linker", env: []string{"CGO_ENABLED=1"}, flags: []string{"-ldflags=-linkmode=external"}, strip: true, run: true, need: gccErr},
		{name: "symbols only (-w)", flags: []string{"-ldflags=-w"}, strip: true, run: true},
		{name: "already stripped (-s -w)", flags: []string{"-ldflags=-s -w"}},
		{name: "arm64", env: []string{"GOOS=linux", "GOARCH=arm64"}, strip: true},
		{name: "386, 32-bit ELF", env: []string{"GOOS=linux", "GOARCH=386"}, strip: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
				if tc.run {
					t.Skip("runs amd64 Linux builds")
				}
			}
			if tc.need != nil {
				t.Skipf("needs gcc: %v", tc.need)
			}
			path := buildPanicker(t, tc.env, tc.flags...)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			img, err := stripImage(data)
			if !tc.strip {
				if !errors.Is(err, errNoStrip) {
					t.Fatalf("stripImage: %v, want errNoStrip", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("stripImage: %v", err)
			}
			before, after := sectionNames(t, data), sectionNames(t, img)
			for name := range before {
				if removable(name) == after[name] {
					t.Errorf("section %s: left out %v, want %v", name, !after[name], removable(name))
				}
			}
			if !before[".gopclntab"] || !after[".gopclntab"] {
				t.Errorf(".gopclntab: %v before, %v after; want it kept", before[".gopclntab"], after[".gopclntab"])
			}
			if len(img) >= len(data) {
				t.Errorf("image %d bytes, file %d: nothing saved", len(img), len(data))
			}
			// Every loaded byte is where it was.
			f, _ := elf.NewFile(bytes.NewReader(data))
			defer f.Close()
			for _, p := range f.Progs {
				if p.Filesz == 0 {
					continue
				}
				lo, hi := p.Off, p.Off+p.Filesz
				if !bytes.Equal(maskShdrFields(f, img[lo:hi], lo), maskShdrFields(f, data[lo:hi], lo)) {
					t.Errorf("segment at %#x..%#x changed", lo, hi)
				}
			}
			// Stripping again leaves nothing to do: a child that sends
			// itself on sends the same image, under the same hash.
			if _, err := stripImage(img); !errors.Is(err, errNoStrip) {
				t.Errorf("stripping the image again: %v, want errNoStrip", err)
			}
			if !tc.run {
				return
			}
			if out, err := runImage(t, img); err != nil || out != "ok\n" {
				t.Fatalf("the image ran: %q, %v; want ok", out, err)
			}
			out, _ := runImage(t, img, "panic")
			for _, want := range []string{"panic: boom", "main.boom(", "main.go:" + strconv.Itoa(panicLine), "main.main("} {
				if !strings.Contains(out, want) {
					t.Errorf("the image's panic lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

// maskShdrFields zeroes, in seg (the file's bytes from off), the ELF
// header fields stripImage rewrites, which lie in the first segment.
func maskShdrFields(f *elf.File, seg []byte, off uint64) []byte {
	seg = append([]byte(nil), seg...)
	lay := layout64
	if f.Class == elf.ELFCLASS32 {
		lay = layout32
	}
	for _, r := range [][2]int{{lay.shoff, lay.word}, {lay.shnum, 2}, {lay.shstrndx, 2}} {
		for i := r[0]; i < r[0]+r[1]; i++ {
			if j := i - int(off); j >= 0 && j < len(seg) {
				seg[j] = 0
			}
		}
	}
	return seg
}

func TestStripImageFallsBack(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Go programs")
	}
	data, err := os.ReadFile(buildPanicker(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	broken := append([]byte(nil), data...)
	copy(broken[layout64.shnum:], []byte{0xff, 0x7f}) // more section headers than the file holds
	for name, in := range map[string][]byte{
		"a script":               []byte("#!/bin/sh\necho hi\n"),
		"empty":                  nil,
		"truncated ELF":          data[:4096],
		"section headers beyond": broken,
	} {
		if _, err := stripImage(in); !errors.Is(err, errNoStrip) {
			t.Errorf("%s: %v, want errNoStrip", name, err)
		}
	}
}

// NewBinary names a binary by the hash of its stripped image, sends that
// image (gzip'd or plain), and caches the hash on disk: a second NewBinary
// of the same file does not read it, a changed file is hashed again, and
// a cache file that is garbage is replaced.
func TestNewBinaryHashesTheImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Go programs")
	}
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	data, err := os.ReadFile(buildPanicker(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	img, err := stripImage(data)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(img)
	want := hex.EncodeToString(sum[:])
	path := filepath.Join(t.TempDir(), "prog")
	if err := os.WriteFile(path, data, 0o755); err != nil {
		t.Fatal(err)
	}

	b, err := NewBinary(path)
	if err != nil {
		t.Fatal(err)
	}
	if b.Hash != want || b.size() != int64(len(img)) {
		t.Fatalf("NewBinary: hash %s, size %d; want %s, %d (the stripped image's)", b.Hash, b.size(), want, len(img))
	}
	gz, err := b.Gzipped()
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(zr); err != nil || !bytes.Equal(got, img) {
		t.Errorf("gzip'd binary unpacks to %d bytes (%v), want the %d of the image", len(got), err, len(img))
	}
	if plain, err := b.Bytes(false); err != nil || !bytes.Equal(plain, img) {
		t.Errorf("plain binary: %d bytes (%v), want the %d of the image", len(plain), err, len(img))
	}

	// The hash is cached under the file's key.
	st, _ := os.Stat(path)
	key := fileKey(path, st)
	if e, ok := lookupHash(key); !ok || e.hash != want || e.size != int64(len(img)) {
		t.Fatalf("cache entry %+v, %v; want %s, %d", e, ok, want, len(img))
	}

	// A changed file (new contents, new mtime) misses the cache.
	other := append(append([]byte(nil), data...), "appended"...)
	if err := os.WriteFile(path, other, 0o755); err != nil {
		t.Fatal(err)
	}
	b3, err := NewBinary(path)
	if err != nil {
		t.Fatal(err)
	}
	img3, _ := stripImage(other)
	sum3 := sha256.Sum256(img3)
	if b3.Hash != hex.EncodeToString(sum3[:]) || b3.Hash == want {
		t.Errorf("after a change: hash %s, want %x (not %s)", b3.Hash, sum3, want)
	}

	// A cache file that is garbage is recomputed and rewritten.
	name, _ := hashCacheFile()
	os.WriteFile(name, []byte("garbage\n"+want+" 12 "+key+"\n"), 0o600)
	os.WriteFile(path, data, 0o755)
	b4, err := NewBinary(path)
	if err != nil || b4.Hash != want {
		t.Errorf("with a garbage cache: %v, %v; want %s", b4, err, want)
	}
	if raw, _ := os.ReadFile(name); !strings.HasPrefix(string(raw), hashCacheHeader+"\n") {
		t.Errorf("cache file not rewritten: %q", raw)
	}
}

// The cache keeps hashCacheEntries entries, the newest.
func TestHashCacheBounded(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	h := strings.Repeat("ab", 32)
	for i := range hashCacheEntries + 10 {
		storeHash("key "+strconv.Itoa(i), hashEntry{hash: h, size: int64(i)})
	}
	keys, entries := readHashCache()
	if len(keys) != hashCacheEntries || keys[0] != "key "+strconv.Itoa(hashCacheEntries+9) {
		t.Fatalf("%d entries, first %q; want %d, the newest first", len(keys), keys[0], hashCacheEntries)
	}
	if _, ok := entries["key "+strconv.Itoa(0)]; ok {
		t.Errorf("the oldest entry is still there")
	}
}
