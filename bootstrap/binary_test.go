package bootstrap

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
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
