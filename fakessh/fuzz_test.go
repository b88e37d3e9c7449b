package fakessh

import (
	"bytes"
	"strings"
	"testing"
)

// A frame read back is the frame written; any input either decodes or
// fails, within the size bound, without panicking.
func FuzzStandInFrame(f *testing.F) {
	var seed bytes.Buffer
	writeFrame(&seed, frameStdout, []byte("hello"))
	f.Add(seed.Bytes())
	f.Add([]byte{'x', 0, 0, 0, 4, 0, 0, 0, 3})
	f.Add([]byte{'o', 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		typ, data, err := readFrame(bytes.NewReader(in), nil)
		if err != nil {
			return
		}
		if len(data) > maxFrame {
			t.Fatalf("frame of %d bytes accepted", len(data))
		}
		var out bytes.Buffer
		writeFrame(&out, typ, data)
		if !bytes.Equal(out.Bytes(), in[:out.Len()]) {
			t.Fatalf("frame does not round-trip")
		}
	})
}

// Any ssh command line parses or is refused, never panics.
func FuzzParseArgs(f *testing.F) {
	f.Add("-l\x00deploy\x00-p\x002222\x00web1\x00rsync --server .")
	f.Add("-s\x00--\x00target\x00sftp")
	f.Add("-oX\x00-\x00h")
	f.Fuzz(func(t *testing.T, joined string) {
		inv, err := parseArgs(strings.Split(joined, "\x00")) // words split at NUL
		if err == nil && (inv.Host == "" || inv.Command == "") {
			t.Fatalf("accepted %q as %+v", joined, inv)
		}
	})
}
