package bootstrap

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"go.uber.org/goleak"
)

var errRefused = errors.New("refused")

type refusingWriter struct{}

func (refusingWriter) Write([]byte) (int, error) { return 0, errRefused }

// An upload that fails at once still joins the goroutines compressing the
// rest of the binary before it returns.
func TestSendPiecesJoinsCompressorsOnFailure(t *testing.T) {
	data := make([]byte, 64<<20)
	rng := rand.NewChaCha8([32]byte{1})
	rng.Read(data) // incompressible: compressing takes a while
	path := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(path, data, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := NewBinary(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.sendPieces(refusingWriter{}); !errors.Is(err, errRefused) {
		t.Fatalf("sendPieces = %v, want the writer's error", err)
	}
	goleak.VerifyNone(t)
}

// The master reads its executable a buffer at a time: hashing a 32 MiB
// executable, caching its image and compressing it never holds the file,
// nor its image, in memory whole (a first contact peaked at 180 MB when
// they did). Only the compressed pieces, which later uploads reuse, stay.
func TestBinaryNeverHoldsTheImageWhole(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	data := make([]byte, 32<<20)
	for i := range data {
		data[i] = byte(i / 4096) // compresses to almost nothing
	}
	path := filepath.Join(t.TempDir(), "exe")
	if err := os.WriteFile(path, data, 0o755); err != nil {
		t.Fatal(err)
	}
	allocated := func(f func()) uint64 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		f()
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	var b *Binary
	var err error
	if n := allocated(func() { b, err = NewBinary(path) }); err != nil || n > 4<<20 {
		t.Fatalf("NewBinary allocated %d bytes (%v); want < 4 MiB for a 32 MiB file", n, err)
	}
	if n := allocated(b.storeSent); n > 4<<20 {
		t.Fatalf("storeSent allocated %d bytes; want < 4 MiB", n)
	}
	if cached, err := os.ReadFile(filepath.Join(masterCache(t), b.Hash)); err != nil || !bytes.Equal(cached, data) {
		t.Fatalf("the image cached differs from the file: %v", err)
	}
	var gz []byte
	// Each worker has a buffer for a part (2 MiB here) and a scratch for
	// its compressed bytes; the pieces are exact copies.
	if n := allocated(func() { gz, err = b.Gzipped() }); err != nil || n > 16<<20 {
		t.Fatalf("compressing allocated %d bytes (%v); want < 16 MiB for a 32 MiB file", n, err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(zr); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the gzip'd pieces unpack to something else: %v", err)
	}
}
