package actors

import (
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mitogo/mitogo/messages"
)

// What a child prints on stdout and stderr reaches the master as log
// records with a "stream"="output" attribute. Output of any shape is read
// to its end: a record ends at a newline, at a carriage return (a progress
// bar), or after outputRecordMax bytes, so that a megabyte without a
// newline is many records and never stops the reading (a child whose
// output pipe is not read blocks, or dies of SIGPIPE when it is closed).
//
// Forwarding is bounded by a token bucket of outputBurst bytes refilled
// at outputRate bytes a second, so that a child printing without end
// cannot fill the stream to the master ahead of calls' frames. What is
// over the bound is read and dropped, never held: a record "output
// dropped" with a dropped_bytes attribute says how much, before the next
// record that goes through (or at the end of the output).
const (
	outputRecordMax = 4 << 10
	outputRate      = 1 << 20
	outputBurst     = 4 << 20
	outputReadSize  = 4 << 10 // drainOutput's read buffer
)

// drainOutput reads what the child called name prints until it ends,
// forwards it as records and keeps the last few for errors.
func (r *Router) drainOutput(name string, f io.ReadCloser, t *tail) {
	defer f.Close()
	sp := &outputSplitter{bucket: newByteBucket(outputRate, outputBurst, time.Now), emit: func(rec []byte) {
		t.add(string(rec))
		r.logLine(name, printable(rec))
	}, dropped: func(n int64) {
		r.emit(&messages.LogRecord{Time: time.Now(), Level: int(slog.LevelWarn), Message: "output dropped", Context: name,
			Attrs: []messages.Attr{{Key: "stream", Value: "output"}, {Key: "dropped_bytes", Value: n}}})
	}}
	// Held for the child's whole life: small, as output is rare and
	// limited to outputRate anyway.
	buf := make([]byte, outputReadSize)
	for {
		n, err := f.Read(buf)
		sp.write(buf[:n])
		if err != nil {
			sp.end()
			return
		}
	}
}

// outputSplitter cuts output into records: at '\n', at '\r' (a "\r\n" is
// one end), or at outputRecordMax bytes, on a character boundary.
type outputSplitter struct {
	line    []byte
	afterCR bool // the last byte ended a record with '\r'
	bucket  *byteBucket
	drop    int64 // bytes dropped since the last record that went through

	emit    func(rec []byte)
	dropped func(n int64)
}

func (s *outputSplitter) write(b []byte) {
	for len(b) > 0 {
		if s.afterCR && b[0] == '\n' {
			b = b[1:]
			s.afterCR = false
			continue
		}
		s.afterCR = false
		i := indexEnd(b)
		room := outputRecordMax - len(s.line)
		switch {
		case i >= 0 && i <= room:
			s.line = append(s.line, b[:i]...)
			s.afterCR = b[i] == '\r'
			b = b[i+1:]
			s.flush()
		case len(b) < room:
			s.line = append(s.line, b...)
			return
		default:
			s.line = append(s.line, b[:room]...)
			b = b[room:]
			cut := runeCut(s.line)
			rest := append([]byte(nil), s.line[cut:]...)
			s.line = s.line[:cut]
			s.flush()
			s.line = append(s.line, rest...)
		}
	}
}

// end forwards what is left when the output ended.
func (s *outputSplitter) end() {
	if len(s.line) > 0 {
		s.flush()
	}
	if s.drop > 0 {
		s.dropped(s.drop)
		s.drop = 0
	}
}

// flush forwards the record in s.line if the bound allows, else counts it
// dropped.
func (s *outputSplitter) flush() {
	n := int64(len(s.line)) + 1
	if !s.bucket.take(n) {
		s.drop += n
		s.line = s.line[:0]
		return
	}
	if s.drop > 0 {
		s.dropped(s.drop)
		s.drop = 0
	}
	s.emit(s.line)
	s.line = s.line[:0]
}

// indexEnd is the index of the first '\n' or '\r' in b, or -1.
func indexEnd(b []byte) int {
	for i, c := range b {
		if c == '\n' || c == '\r' {
			return i
		}
	}
	return -1
}

// runeCut is where to cut line so that a character whose bytes are not
// all there yet is not split: len(line), or the start of that character.
func runeCut(line []byte) int {
	for i := len(line) - 1; i >= 0 && i >= len(line)-utf8.UTFMax+1; i-- {
		if utf8.RuneStart(line[i]) {
			if !utf8.FullRune(line[i:]) && i > 0 {
				return i
			}
			break
		}
	}
	return len(line)
}

// printable is rec as it may go into a log: unchanged when it is text
// without control characters (tabs aside), else Go-quoted, so that binary
// data and terminal escapes never reach the master's log raw.
func printable(rec []byte) string {
	s := string(rec)
	if !utf8.ValidString(s) || strings.IndexFunc(s, func(c rune) bool { return c != '\t' && unicode.IsControl(c) }) >= 0 {
		return strconv.Quote(s)
	}
	return s
}

// byteBucket is a token bucket counted in bytes.
type byteBucket struct {
	rate, burst float64
	tokens      float64
	last        time.Time
	now         func() time.Time
}

func newByteBucket(rate, burst int, now func() time.Time) *byteBucket {
	return &byteBucket{rate: float64(rate), burst: float64(burst), tokens: float64(burst), last: now(), now: now}
}

// take spends n bytes if the bucket holds them.
func (b *byteBucket) take(n int64) bool {
	t := b.now()
	b.tokens = min(b.burst, b.tokens+t.Sub(b.last).Seconds()*b.rate)
	b.last = t
	if b.tokens < float64(n) {
		return false
	}
	b.tokens -= float64(n)
	return true
}

// tail keeps the last lines of a child's output.
type tail struct {
	mu    sync.Mutex
	lines []string
}

func (t *tail) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.lines) == 10 {
		t.lines = t.lines[1:]
	}
	t.lines = append(t.lines, line)
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}

// logLine forwards one record of a child's output.
func (r *Router) logLine(ctxName, line string) {
	r.emit(&messages.LogRecord{Time: time.Now(), Level: int(slog.LevelInfo), Message: line, Context: ctxName,
		Attrs: []messages.Attr{{Key: "stream", Value: "output"}}})
}
