package messages

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
)

func frame(body []byte) []byte {
	return append(AppendFrameHeader(nil, len(body)), body...)
}

func TestReadFrame(t *testing.T) {
	bodies := [][]byte{{}, {0xc0}, []byte("hello"), bytes.Repeat([]byte{7}, 70000)}
	var stream []byte
	for _, b := range bodies {
		stream = append(stream, frame(b)...)
	}
	readers := map[string]func() io.Reader{
		"whole":      func() io.Reader { return bytes.NewReader(stream) },
		"one byte":   func() io.Reader { return iotest.OneByteReader(bytes.NewReader(stream)) },
		"half":       func() io.Reader { return iotest.HalfReader(bytes.NewReader(stream)) },
		"data + EOF": func() io.Reader { return iotest.DataErrReader(bytes.NewReader(stream)) },
		"split": func() io.Reader {
			return io.MultiReader(bytes.NewReader(stream[:3]), bytes.NewReader(stream[3:10]), bytes.NewReader(stream[10:]))
		},
	}
	for name, mk := range readers {
		t.Run(name, func(t *testing.T) {
			r := mk()
			for i, want := range bodies {
				got, err := ReadFrame(r, 1<<20)
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("frame %d: got %d bytes, want %d", i, len(got), len(want))
				}
			}
			if _, err := ReadFrame(r, 1<<20); err != io.EOF {
				t.Fatalf("after the last frame: %v, want io.EOF", err)
			}
		})
	}
}

func TestReadFrameMaxIsInclusive(t *testing.T) {
	body := make([]byte, 100)
	if _, err := ReadFrame(bytes.NewReader(frame(body)), 100); err != nil {
		t.Fatalf("a frame of exactly max bytes: %v", err)
	}
	_, err := ReadFrame(bytes.NewReader(frame(body)), 99)
	var fse *FrameSizeError
	if !errors.As(err, &fse) || fse.Size != 100 || fse.Max != 99 || !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("a frame of max+1 bytes: %v", err)
	}
}

// hugeFrame announces a frame of 4 GiB - 1 bytes and then serves zeros for
// ever: a reader that allocated what the prefix says would be caught.
type hugeFrame struct{ off int }

func (h *hugeFrame) Read(p []byte) (int, error) {
	for i := range p {
		if h.off < 4 {
			p[i] = 0xff
		} else {
			p[i] = 0
		}
		h.off++
	}
	return len(p), nil
}

func TestReadFrameOversizeRefusedBeforeAllocation(t *testing.T) {
	for _, max := range []int{0, 1 << 16, DefaultMaxFrame} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		const runs = 100
		for range runs {
			h := &hugeFrame{}
			_, err := ReadFrame(h, max)
			var fse *FrameSizeError
			if !errors.As(err, &fse) || fse.Size != 1<<32-1 || fse.Max != int64(max) {
				t.Fatalf("max %d: %v, want a *FrameSizeError", max, err)
			}
			if h.off != FrameHeaderLen {
				t.Fatalf("max %d: read %d bytes past the length prefix", max, h.off-FrameHeaderLen)
			}
		}
		runtime.ReadMemStats(&after)
		if d := after.TotalAlloc - before.TotalAlloc; d > 64<<10 {
			t.Fatalf("max %d: refusing %d oversize frames allocated %d bytes", max, runs, d)
		}
	}
}

func TestReadFrameTruncated(t *testing.T) {
	full := frame([]byte("0123456789"))
	for n := range len(full) {
		for _, slow := range []bool{false, true} {
			var r io.Reader = bytes.NewReader(full[:n])
			if slow {
				r = iotest.OneByteReader(r)
			}
			_, err := ReadFrame(r, 1<<10)
			switch {
			case n == 0:
				if err != io.EOF {
					t.Fatalf("empty stream: %v, want io.EOF", err)
				}
			case !errors.Is(err, io.ErrUnexpectedEOF):
				t.Fatalf("%d of %d bytes: %v, want io.ErrUnexpectedEOF", n, len(full), err)
			}
		}
	}
}

func TestReadFrameReaderError(t *testing.T) {
	boom := errors.New("boom")
	full := frame([]byte("0123456789"))
	r := io.MultiReader(bytes.NewReader(full[:7]), iotest.ErrReader(boom))
	if _, err := ReadFrame(r, 1<<10); !errors.Is(err, boom) {
		t.Fatalf("got %v, want the reader's error", err)
	}
}

func TestWriteFrame(t *testing.T) {
	var buf bytes.Buffer
	for _, b := range []string{"", "x", strings.Repeat("y", 1000)} {
		if err := WriteFrame(&buf, []byte(b), 1000); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"", "x", strings.Repeat("y", 1000)} {
		got, err := ReadFrame(&buf, 1000)
		if err != nil || string(got) != want {
			t.Fatalf("got %q, %v", got, err)
		}
	}
	err := WriteFrame(&buf, make([]byte, 1001), 1000)
	var fse *FrameSizeError
	if !errors.As(err, &fse) || fse.Size != 1001 || fse.Max != 1000 || buf.Len() != 0 {
		t.Fatalf("oversize write: %v, %d bytes written", err, buf.Len())
	}
	if !strings.Contains(err.Error(), "1001") || !strings.Contains(err.Error(), "1000") {
		t.Fatalf("error does not name the sizes: %v", err)
	}
}
