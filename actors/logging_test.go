package actors_test

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/mitogo/mitogo/actors"
)

// recorder is a slog handler that keeps every record.
type recorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *recorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r.Clone())
	return nil
}
func (h *recorder) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recorder) WithGroup(string) slog.Handler      { return h }

// find returns the attributes of the first record with msg, if any.
func (h *recorder) find(msg string) (map[string]string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.recs {
		if r.Message == msg {
			attrs := map[string]string{}
			r.Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value.String(); return true })
			return attrs, true
		}
	}
	return nil, false
}

var runSub = actors.Register("test.subprocess", func(ctx context.Context, word string) (bool, error) {
	cmd := exec.CommandContext(ctx, "sh", "-c", "echo sub:"+word+"; echo suberr:"+word+" >&2")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr // a subprocess that prints, as a user would set it up
	return true, cmd.Run()
})

func TestLogsAndOutputReachMaster(t *testing.T) {
	rec := &recorder{}
	r, err := actors.NewRouter(actors.WithLogger(slog.New(rec)))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Shutdown(context.Background())
	c1 := local(t, r)
	c2 := local(t, r, actors.Via(c1))
	for _, c := range []*actors.Context{c1, c2} {
		word := strings.ReplaceAll(c.Name(), "/", "_")
		if _, err := printer.Call(ctxT(t), c, word); err != nil {
			t.Fatal(err)
		}
		if _, err := runSub.Call(ctxT(t), c, word); err != nil {
			t.Fatal(err)
		}
		// The echo itself still works: nothing printed corrupted the stream.
		if got, err := echo.Call(ctxT(t), c, "intact"); err != nil || got != "intact" {
			t.Fatalf("%s: %q %v", c.Name(), got, err)
		}
		for _, msg := range []string{word, "sub:" + word, "suberr:" + word} {
			waitFor(t, func() bool { _, ok := rec.find(msg); return ok })
			attrs, _ := rec.find(msg)
			if attrs["context"] != c.Name() {
				t.Fatalf("output %q: attrs %v, want context %s", msg, attrs, c.Name())
			}
		}
		waitFor(t, func() bool {
			for _, r := range rec.snapshot() {
				if r.Message == "slog from child" {
					attrs := map[string]string{}
					r.Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value.String(); return true })
					if attrs["context"] == c.Name() && attrs["word"] == word {
						return true
					}
				}
			}
			return false
		})
	}
	// protoactor's own Info lines went through our handler, demoted to Debug.
	for _, r := range rec.snapshot() {
		if r.Message == "actor system started" && r.Level != slog.LevelDebug {
			t.Fatalf("protoactor record at %v", r.Level)
		}
	}
}

func (h *recorder) snapshot() []slog.Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]slog.Record(nil), h.recs...)
}

// A child may name itself or a context below it in a log record, never
// another: a record claiming the master or a sibling is named after the
// context that sent it, with the claim kept aside.
func TestLogRecordsCannotClaimAnotherContext(t *testing.T) {
	rec := &recorder{}
	r := newRouter(t, actors.WithLogger(slog.New(rec)))
	c1 := local(t, r, actors.Name("one"))
	c2 := local(t, r, actors.Name("two"))
	c3 := local(t, r, actors.Via(c1), actors.Name("below"))
	cases := []struct {
		from        *actors.Context
		claim, want string
	}{
		{c1, "one", "one"},
		{c1, "one/below", "one/below"}, // a parent speaks for its child's output
		{c1, "two", "one"},
		{c3, "master", "one/below"},
		{c2, "one/below", "two"},
	}
	for _, tc := range cases {
		if _, err := actors.LogAs.Call(ctxT(t), tc.from, tc.claim); err != nil {
			t.Fatal(err)
		}
		for _, msg := range []string{"record claiming " + tc.claim, "attribute claiming " + tc.claim} {
			waitFor(t, func() bool {
				for _, r := range rec.snapshot() {
					if r.Message == msg && attrOf(r, "context") == tc.want {
						n := 0
						r.Attrs(func(a slog.Attr) bool {
							if a.Key == "context" {
								n++
							}
							return true
						})
						if n != 1 {
							t.Fatalf("%s: %d context attributes", msg, n)
						}
						if tc.claim != tc.want && attrOf(r, "claimed_context") != tc.claim {
							t.Fatalf("%s: no claimed_context %q", msg, tc.claim)
						}
						return true
					}
				}
				return false
			})
		}
	}
}
