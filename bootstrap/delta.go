package bootstrap

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"

	"github.com/klauspost/compress/zstd"
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
// images it sent in its own cache directory (StoreSent), where stage 1's
// list of what the far side holds is looked up (deltaBase).

// PatchSpec is the value of transport.EnvChild that makes a mitogo program
// the patcher: it reads a delta on stdin, applies it to its own executable
// and writes the result to stdout once its sha256 matches EnvVerify.
const PatchSpec = "patch"

// patchCapability is in every executable whose patcher reads deltas made
// by makeDelta: the master looks for it in a base before it sends a delta
// that the base must apply. Change it whenever the delta format changes.
const patchCapability = "mitogo-patcher zstd-raw-dict v1"

// ErrPatch is why the patcher gave up: the delta does not apply to this
// executable or does not give the expected image.
var ErrPatch = errors.New("delta does not apply")

// maxPatchedSize bounds what the patcher decodes (a corrupt delta must not
// make it allocate without end).
const maxPatchedSize = 1 << 30

// makeDelta returns target encoded against base. The window covers the
// whole base, so every part of it can be matched.
func makeDelta(base, target []byte) ([]byte, error) {
	win := 1 << bits.Len(uint(max(len(base), len(target))))
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBestCompression),
		zstd.WithEncoderDictRaw(1, base), zstd.WithWindowSize(min(win, zstd.MaxWindowSize)),
		zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, fmt.Errorf("delta encoder: %w", err)
	}
	defer enc.Close()
	return enc.EncodeAll(target, nil), nil
}

// applyDelta decodes delta against base and checks that the result's hex
// sha256 is want.
func applyDelta(base, delta []byte, want string) ([]byte, error) {
	dec, err := zstd.NewReader(nil, zstd.WithDecoderDictRaw(1, base), zstd.WithDecoderMaxWindow(maxPatchedSize),
		zstd.WithDecoderMaxMemory(maxPatchedSize), zstd.WithDecoderConcurrency(1))
	if err != nil {
		return nil, fmt.Errorf("delta decoder: %w", err)
	}
	defer dec.Close()
	out, err := dec.DecodeAll(delta, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPatch, err)
	}
	sum := sha256.Sum256(out)
	if got := hex.EncodeToString(sum[:]); got != want {
		return nil, fmt.Errorf("%w: the result's sha256 is %s, want %s", ErrPatch, got, want)
	}
	return out, nil
}

// canPatch reports whether the executable image img has a patcher that
// reads this side's deltas.
func canPatch(img []byte) bool { return bytes.Contains(img, []byte(patchCapability)) }

// RunPatcher is the patcher's main, for a process started with PatchSpec:
// it applies the delta on stdin to this executable and writes the image
// whose sha256 EnvVerify names to stdout, all of it or nothing. It returns
// the exit status: 0 when the image was written.
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
	base, err := os.ReadFile(basePath)
	if err != nil {
		return fail(fmt.Errorf("reading the base: %w", err))
	}
	delta, err := io.ReadAll(io.LimitReader(stdin, maxPatchedSize))
	if err != nil {
		return fail(fmt.Errorf("reading the delta: %w", err))
	}
	out, err := applyDelta(base, delta, want)
	if err != nil {
		return fail(err)
	}
	if _, err := stdout.Write(out); err != nil {
		return fail(fmt.Errorf("writing the image: %w", err))
	}
	return 0
}
