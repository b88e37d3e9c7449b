package actors

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// splitRecorder is a splitter whose bucket holds burst bytes, refilled at
// rate a second on a clock the test moves, and the records and drop notes
// it made, in order.
type splitRecorder struct {
	now time.Time
	got []string
	sp  *outputSplitter
}

func newSplitRecorder(rate, burst int) *splitRecorder {
	s := &splitRecorder{now: time.Unix(1000, 0)}
	s.sp = &outputSplitter{
		bucket:  newByteBucket(rate, burst, func() time.Time { return s.now }),
		emit:    func(rec []byte) { s.got = append(s.got, string(rec)) },
		dropped: func(n int64) { s.got = append(s.got, "dropped "+strconv.FormatInt(n, 10)) },
	}
	return s
}

func TestOutputSplitterCutsRecords(t *testing.T) {
	s := newSplitRecorder(1<<30, 1<<30)
	s.sp.write([]byte("one\ntwo\r\nthree\rfour"))
	s.sp.write([]byte("\n\n"))
	s.sp.write([]byte(strings.Repeat("x", 10000)))
	s.sp.write([]byte(strings.Repeat("y", 4095) + "é" + "\n"))
	s.sp.write([]byte("last, without a newline"))
	s.sp.end()
	var lens []int
	for _, g := range s.got {
		lens = append(lens, len(g))
		if len(g) > outputRecordMax {
			t.Fatalf("a record of %d bytes", len(g))
		}
	}
	joined := strings.Join(s.got, "|")
	wantJoined := "one|two|three|four||" + strings.Repeat("x", 4096) + "|" + strings.Repeat("x", 4096) + "|" +
		strings.Repeat("x", 1808) + strings.Repeat("y", 2288) + "|" + strings.Repeat("y", 4095-2288) + "é|last, without a newline"
	if joined != wantJoined {
		t.Fatalf("records of lengths %v: %.200q", lens, joined)
	}
}

func TestOutputSplitterKeepsCharactersWhole(t *testing.T) {
	s := newSplitRecorder(1<<30, 1<<30)
	s.sp.write([]byte(strings.Repeat("x", 4095) + "é\n"))
	s.sp.end()
	if len(s.got) != 2 || s.got[0] != strings.Repeat("x", 4095) || s.got[1] != "é" {
		t.Fatalf("records %.80q", s.got)
	}
}

// Over the rate bound records are dropped, and the next record that goes
// through is preceded by a note of how many bytes were lost.
func TestOutputSplitterCountsDroppedBytes(t *testing.T) {
	s := newSplitRecorder(10, 20)
	s.sp.write([]byte("aaaaaaaa\nbbbbbbbb\ncccccccc\n")) // 9 bytes each: the third does not fit
	s.now = s.now.Add(time.Second)                       // 2 + 10 tokens
	s.sp.write([]byte("d\n"))
	s.sp.write([]byte("eeeeeeeeeeeeeeeeeeee\n")) // over what is left
	s.sp.end()
	want := "aaaaaaaa|bbbbbbbb|dropped 9|d|dropped 21"
	if got := strings.Join(s.got, "|"); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"plain text\twith a tab": "plain text\twith a tab",
		"café":                   "café",
		"\x1b[31mred\x1b[0m":     `"\x1b[31mred\x1b[0m"`,
		"\x00\xff":               `"\x00\xff"`,
	} {
		if got := printable([]byte(in)); got != want {
			t.Errorf("printable(%q) = %s, want %s", in, got, want)
		}
	}
}
