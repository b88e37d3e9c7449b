package files

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mitogo/mitogo/actors"
)

// A sender cannot make the receiver write outside the destination: not by
// "..", nor through a link it sent in place of a directory it sent first.
func TestReceiverRefusesPathsOutside(t *testing.T) {
	r, err := actors.NewRouter(actors.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r.Shutdown(ctx)
	}()
	dir := t.TempDir()
	outside := t.TempDir()
	dirEntry := func(p string) item { return item{Kind: kindEntry, Entry: &entry{Path: p, Type: typeDir, Mode: 0o755}} }
	for name, items := range map[string][]item{
		"dotdot": {dirEntry(""), {Kind: kindEntry, Entry: &entry{Path: "../x", Type: typeSymlink, Link: "y"}}},
		"relink": {dirEntry(""), dirEntry("a"),
			{Kind: kindEntry, Entry: &entry{Path: "a", Type: typeSymlink, Link: outside}},
			{Kind: kindEntry, Entry: &entry{Path: "a/x", Type: typeSymlink, Link: "y"}}},
	} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			a, b := newChannel(r), newChannel(r)
			defer a.Release()
			defer b.Release()
			a.Connect(b.Addr())
			b.Connect(a.Addr())
			go func() {
				for _, it := range items {
					if a.Send(ctx, &it) != nil {
						return
					}
				}
			}()
			_, err := receiveTree(ctx, b, filepath.Join(dir, name), "", ownerNo, nil)
			if err == nil || (name == "dotdot" && !errors.Is(err, ErrUnsafePath)) {
				t.Fatalf("receive: %v, want it refused", err)
			}
			if des, _ := os.ReadDir(outside); len(des) != 0 {
				t.Fatalf("something was written outside: %v", des)
			}
		})
	}
}
