package actors_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/mitogo/mitogo/actors"
	"github.com/mitogo/mitogo/test/sshtest"
)

// floodArgs says what test.flood prints: Size bytes of Pattern repeated,
// with no newline, on stdout or stderr, then End on a line of its own.
type floodArgs struct {
	Stderr  bool
	Size    int
	Pattern string
	End     string
}

var flood = actors.Register("test.flood", func(ctx context.Context, a floodArgs) (bool, error) {
	f := os.Stdout
	if a.Stderr {
		f = os.Stderr
	}
	b := []byte(strings.Repeat(a.Pattern, a.Size/len(a.Pattern)+1)[:a.Size])
	if _, err := f.Write(b); err != nil {
		return false, err
	}
	_, err := fmt.Fprintf(f, "\n%s\n", a.End)
	return true, err
})

// outputOf is the messages of the output records from context name.
func outputOf(rec *recorder, name string) []string {
	var msgs []string
	for _, r := range rec.snapshot() {
		if attrOf(r, "stream") == "output" && attrOf(r, "context") == name {
			msgs = append(msgs, r.Message)
		}
	}
	return msgs
}

// checkFlood has a function in each of two contexts print 2 MiB without a
// newline, one on stdout and one on stderr: the output arrives whole in
// bounded records, and the contexts go on answering calls.
func checkFlood(t *testing.T, rec *recorder, connect func(name string) *actors.Context) {
	t.Helper()
	const size = 2 << 20
	for _, stderr := range []bool{false, true} {
		name := "stdout"
		if stderr {
			name = "stderr"
		}
		c := connect(name)
		end := "flood-end-" + name
		if _, err := flood.Call(ctxT(t), c, floodArgs{Stderr: stderr, Size: size, Pattern: "x", End: end}); err != nil {
			t.Fatalf("%s: printing 2 MiB without a newline on %s: %v", c.Name(), name, err)
		}
		for i := range 3 {
			if got, err := echo.Call(ctxT(t), c, fmt.Sprint("after ", i)); err != nil || got != fmt.Sprint("after ", i) {
				t.Fatalf("%s: call after the flood on %s: %q, %v", c.Name(), name, got, err)
			}
		}
		waitFor(t, func() bool {
			for _, m := range outputOf(rec, c.Name()) {
				if m == end {
					return true
				}
			}
			return false
		})
		total := 0
		for _, m := range outputOf(rec, c.Name()) {
			if len(m) > 4096 {
				t.Fatalf("%s: a record of %d bytes", c.Name(), len(m))
			}
			if strings.Trim(m, "x") == "" {
				total += len(m)
			}
		}
		if total != size {
			t.Fatalf("%s: %d bytes of the %d printed on %s arrived", c.Name(), total, size, name)
		}
	}
}

func TestOutputWithoutNewlinesLocal(t *testing.T) {
	rec := &recorder{}
	r := newRouter(t, actors.WithLogger(slog.New(rec)))
	checkFlood(t, rec, func(name string) *actors.Context { return local(t, r, actors.Name(name)) })
}

func TestOutputWithoutNewlinesSSH(t *testing.T) {
	s := sshtest.Start(t)
	rec := &recorder{}
	r := newRouter(t, actors.WithLogger(slog.New(rec)))
	checkFlood(t, rec, func(name string) *actors.Context {
		c, err := r.SSH(ctxT(t), s.Addr, sshTo(s, actors.Name(name))...)
		if err != nil {
			t.Fatal(err)
		}
		return c
	})
}

func TestOutputWithoutNewlinesSudo(t *testing.T) {
	needSudo(t)
	rec := &recorder{}
	r := newRouter(t, actors.WithLogger(slog.New(rec)))
	checkFlood(t, rec, func(name string) *actors.Context {
		c, err := r.Sudo(ctxT(t), actors.User("mitogo-test"), actors.Name(name))
		if err != nil {
			t.Fatal(err)
		}
		return c
	})
}

// A progress bar redraws its line after a carriage return: each state is
// a record of its own.
func TestOutputProgressBarArrivesAsRecords(t *testing.T) {
	rec := &recorder{}
	r := newRouter(t, actors.WithLogger(slog.New(rec)))
	c := local(t, r)
	var bar strings.Builder
	for i := 0; i <= 100; i += 10 {
		fmt.Fprintf(&bar, "progress %d%%\r", i)
	}
	if _, err := flood.Call(ctxT(t), c, floodArgs{Size: bar.Len(), Pattern: bar.String(), End: "bar-end"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		msgs := outputOf(rec, c.Name())
		return len(msgs) > 0 && msgs[len(msgs)-1] == "bar-end"
	})
	var want []string
	for i := 0; i <= 100; i += 10 {
		want = append(want, fmt.Sprintf("progress %d%%", i))
	}
	want = append(want, "bar-end")
	if got := outputOf(rec, c.Name()); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("records %q, want %q", got, want)
	}
}

// Binary output reaches the log escaped: no control byte and no invalid
// UTF-8 in any record.
func TestOutputBinaryIsEscaped(t *testing.T) {
	rec := &recorder{}
	r := newRouter(t, actors.WithLogger(slog.New(rec)))
	c := local(t, r)
	var all []byte
	for b := range 256 {
		if b != '\n' && b != '\r' {
			all = append(all, byte(b))
		}
	}
	if _, err := flood.Call(ctxT(t), c, floodArgs{Size: 64 << 10, Pattern: string(all), End: "binary-end"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		msgs := outputOf(rec, c.Name())
		return len(msgs) > 0 && msgs[len(msgs)-1] == "binary-end"
	})
	msgs := outputOf(rec, c.Name())
	if len(msgs) < 2 {
		t.Fatalf("records %q", msgs)
	}
	for _, m := range msgs {
		if !utf8.ValidString(m) || strings.IndexFunc(m, unicode.IsControl) >= 0 {
			t.Fatalf("a record carries raw bytes: %.80q...", m)
		}
	}
}
