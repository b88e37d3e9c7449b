package files

import (
	"bytes"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/mitogo/mitogo/messages"
)

// A data item built by encodeData decodes as a data item, for every size
// of bin header, and costs one allocation of about the chunk's size (plus
// the few bytes of its head).
func TestEncodeData(t *testing.T) {
	for _, n := range []int{1, 255, 256, 65535, 65536, chunkSize} {
		data := make([]byte, n)
		rand.NewChaCha8([32]byte{byte(n)}).Read(data)
		var got item
		if err := messages.Unmarshal(encodeData(data), &got); err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if got.Kind != kindData || !bytes.Equal(got.Data, data) {
			t.Fatalf("%d bytes: decoded kind %d, %d bytes of data (equal: %v)", n, got.Kind, len(got.Data), bytes.Equal(got.Data, data))
		}
	}
	data := make([]byte, chunkSize)
	allocated := func(f func()) uint64 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		f()
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	if n := allocated(func() { encodeData(data) }); n > chunkSize+64<<10 {
		t.Errorf("encodeData allocated %d bytes for a %d-byte chunk", n, chunkSize)
	}
}
