package bootstrap

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// After a rebuild the far side usually still holds the previous build, and
// the two images differ in a small part: stage 1 then receives a delta,
// not the whole image. A delta is a zstd frame whose raw dictionary is the
// old image (the base): matches reach back into any part of it, so what
// did not change costs a few bytes. The base, being a mitogo program too,
// applies the delta itself (PatchSpec: run as the patcher), so no tool is
// needed on the far side; stage 1 then runs the result as it runs a fresh
// upload, which checks its own hash before it enters the cache.
//
// The master can compute a delta only against bytes it has: it keeps the
// images it sent in its own cache directory (storeSent), where stage 1's
// list of what the far side holds is looked up (deltaFor).
//
// Two encoders make deltas. The master's zstd tool, where it has one
// (toolDelta: long-distance matching, --patch-from; see deltaLevel), in a
// process of its own, so that the master's memory does not grow by the
// encoder's 85 MB. Its frames name no dictionary (id
// 0), which only a base that has patchAnyID decodes. Else the in-process
// encoder (makeDelta: zstd's best level with the base as dictionary 1),
// which all bases decode: deltas as small as the tool's level 12, but 0.5-
// 0.8 s and ~130 MB of heap, so it is used only where bytes are dear (a
// far link). Either way a delta is made once per pair of builds: it is
// kept on disk.

// PatchSpec is the value of transport.EnvChild that makes a mitogo program
// the patcher: it reads a delta on stdin, applies it to its own executable
// as it arrives, writes the result to stdout and exits 0 only when the
// result's sha256 matches EnvVerify.
const PatchSpec = "patch"

// patchCapability is in every executable whose patcher reads deltas made
// by makeDelta: the master looks for it in a base before it sends a delta
// that the base must apply. Change it whenever the delta format changes.
const patchCapability = "mitogo-patcher zstd-raw-dict v1"

// patchAnyID is in every executable whose patcher also reads deltas whose
// frame names no dictionary (id 0), as the zstd tool's --patch-from makes.
const patchAnyID = "mitogo-patcher zstd-raw-dict any-id"

// deltaLevel is the zstd tool's level for a delta, with long-distance
// matching. For an 18 MB image and a change to a package that moves much
// of the code: level 3 gives 3.0 MB in 0.24 s (60 MB of memory), level 9
// 1.7 MB in 0.4 s (85 MB), level 12 1.1 MB in 0.8 s (160 MB), level 19
// far more time for little more; the in-process encoder 1.1 MB in 0.8 s
// and 130 MB of heap. For a changed function body of a small program,
// level 3 sent 26% of the whole upload and level 9 10%. Level 9 then: the
// delta is made once per pair of builds and kept.
const deltaLevel = "-9"

// ErrPatch is why the patcher gave up: the delta does not apply to this
// executable or does not give the expected image.
var ErrPatch = errors.New("delta does not apply")

// maxPatchedSize bounds what the patcher decodes (a corrupt delta must not
// make it allocate without end).
const maxPatchedSize = 1 << 30

// deltaChunk is how much of the target makeDelta encodes between two
// looks at its ctx (the encoder works in blocks of 128 KiB, on the
// calling goroutine).
const deltaChunk = 1 << 20

// makeDelta returns target encoded against base, or ctx's error when it
// ends first. The window covers the whole base, so every part of it can
// be matched. ctx is looked at before each chunk of the target; loading
// the base into the encoder (a third of the time for an 8 MiB base) runs
// to its end, as the encoder offers no way to stop it.
func makeDelta(ctx context.Context, base, target []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	win := 1 << bits.Len(uint(max(len(base), len(target))))
	var out bytes.Buffer
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBestCompression),
		zstd.WithEncoderDictRaw(1, base), zstd.WithWindowSize(min(win, zstd.MaxWindowSize)),
		zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, fmt.Errorf("delta encoder: %w", err)
	}
	enc.ResetContentSize(&out, int64(len(target)))
	for rest := target; len(rest) > 0; {
		if err := ctx.Err(); err != nil {
			enc.Reset(io.Discard)
			enc.Close()
			return nil, err
		}
		n := min(len(rest), deltaChunk)
		if _, err := enc.Write(rest[:n]); err != nil {
			enc.Close()
			return nil, fmt.Errorf("delta encoder: %w", err)
		}
		rest = rest[n:]
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("delta encoder: %w", err)
	}
	return out.Bytes(), nil
}

// patchTo decodes delta against base as it reads it (a pipe: decoding
// keeps up with the transfer), writes the result to w as it goes and
// checks that the result's hex sha256 is want; it returns the bytes
// written. On an error what was written is not the image, and the caller
// throws it away. A goroutine hashes and writes each part of the result
// while the next is decoded; it ends before patchTo returns.
func patchTo(w io.Writer, base []byte, delta io.Reader, want string) (int64, error) {
	dec, err := zstd.NewReader(delta, zstd.WithDecoderDictRaw(1, base), zstd.WithDecoderDictRaw(0, base),
		zstd.WithDecoderMaxWindow(maxPatchedSize), zstd.WithDecoderMaxMemory(maxPatchedSize), zstd.WithDecoderConcurrency(1))
	if err != nil {
		return 0, fmt.Errorf("delta decoder: %w", err)
	}
	defer dec.Close()
	const parts, partSize = 3, 1 << 20
	full, free := make(chan []byte, parts), make(chan []byte, parts)
	for range parts {
		free <- make([]byte, partSize)
	}
	h := sha256.New()
	var werr error
	written := make(chan struct{})
	go func() {
		defer close(written)
		for b := range full {
			if werr == nil {
				h.Write(b)
				_, werr = w.Write(b)
			}
			free <- b[:cap(b)]
		}
	}()
	var n int64
	var derr error
	for derr == nil {
		b, k := <-free, 0
		for k < len(b) && derr == nil {
			var m int
			m, derr = dec.Read(b[k:])
			k += m
		}
		n += int64(k)
		full <- b[:k]
		if n > maxPatchedSize {
			derr = fmt.Errorf("the result is over %d bytes", maxPatchedSize)
		}
	}
	close(full)
	<-written
	switch {
	case derr != io.EOF:
		return n, fmt.Errorf("%w: %w", ErrPatch, derr)
	case werr != nil:
		return n, fmt.Errorf("writing the image: %w", werr)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return n, fmt.Errorf("%w: the result's sha256 is %s, want %s", ErrPatch, got, want)
	}
	return n, nil
}

// patcher is what a base's patcher reads: deltas of makeDelta (dictionary
// 1), and also those of toolDelta (no dictionary id).
type patcher struct{ dict1, anyID bool }

// patcherOf reads the file at path (a base in the cache) for the marks its
// patcher leaves, a buffer at a time.
func patcherOf(path string) (patcher, error) {
	f, err := os.Open(path)
	if err != nil {
		return patcher{}, err
	}
	defer f.Close()
	marks := [][]byte{[]byte(patchCapability), []byte(patchAnyID)}
	found := make([]bool, len(marks))
	keep := max(len(patchCapability), len(patchAnyID)) - 1
	buf := make([]byte, 0, 256<<10)
	for {
		n, err := f.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		for i, m := range marks {
			found[i] = found[i] || bytes.Contains(buf, m)
		}
		if err == io.EOF {
			return patcher{dict1: found[0], anyID: found[1]}, nil
		}
		if err != nil {
			return patcher{}, err
		}
		if len(buf) > keep { // keep a tail that may hold the start of a mark
			buf = buf[:copy(buf, buf[len(buf)-keep:])]
		}
	}
}

// frameDict returns the dictionary id the zstd frame at the start of d
// names (0: none).
func frameDict(d []byte) (uint32, error) {
	var h zstd.Header
	if err := h.Decode(d); err != nil {
		return 0, err
	}
	return h.DictionaryID, nil
}

// toolDelta returns img encoded against the file basePath by the zstd
// tool at zstdPath (see deltaLevel); the frame names no dictionary. When
// ctx ends first, the tool is killed and waited for, and the error is
// ctx's.
func toolDelta(ctx context.Context, zstdPath, basePath string, img *imageReader, baseSize int64) ([]byte, error) {
	wlog := min(bits.Len64(uint64(max(baseSize, img.Size()))), 30)
	cmd := exec.CommandContext(ctx, zstdPath, "-q", deltaLevel, "-c", "--long="+strconv.Itoa(wlog),
		"--stream-size="+strconv.FormatInt(img.Size(), 10), "--patch-from="+basePath)
	cmd.Stdin = io.NewSectionReader(img, 0, img.Size())
	// Killed, it leaves its pipes at once, unless something it started
	// holds them: Wait stops waiting for them after this.
	cmd.WaitDelay = 5 * time.Second
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%s: %w: %s", zstdPath, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out.Bytes(), nil
}

// RunPatcher is the patcher's main, for a process started with PatchSpec:
// it applies the delta on stdin to this executable as the delta arrives and
// writes the image to stdout as it goes. It returns the exit status: 0 when
// the image was written whole and its sha256 is the one EnvVerify names;
// otherwise what it wrote is to be thrown away.
func RunPatcher(stdin io.Reader, stdout io.Writer, stderr io.Writer) int {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "mitogo (%s): finding the executable: %v\n", patchCapability, err)
		return 1
	}
	return runPatcher(exe, stdin, stdout, stderr)
}

// runPatcher is RunPatcher with the base at basePath.
func runPatcher(basePath string, stdin io.Reader, stdout io.Writer, stderr io.Writer) int {
	fail := func(err error) int {
		fmt.Fprintf(stderr, "mitogo (%s): %v\n", patchCapability, err)
		return 1
	}
	want := os.Getenv(EnvVerify)
	os.Unsetenv(EnvVerify)
	if !isHash(want) {
		return fail(fmt.Errorf("%s=%q is not a sha256", EnvVerify, want))
	}
	base, unmap, err := mapFile(basePath)
	if err != nil {
		return fail(fmt.Errorf("reading the base: %w", err))
	}
	defer unmap()
	if _, err := patchTo(stdout, base, stdin, want); err != nil {
		return fail(err)
	}
	return 0
}

// mapFile returns the bytes of the file at path, mapped (a cached build is
// never written in place: a new one is renamed over it) or, where mapping
// fails, read; and what gives them back.
func mapFile(path string) ([]byte, func(), error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if size := st.Size(); size > 0 && size < maxPatchedSize {
		if b, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED); err == nil {
			return b, func() { unix.Munmap(b) }, nil
		}
	}
	b, err := io.ReadAll(io.LimitReader(f, maxPatchedSize))
	return b, func() {}, err
}
