package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mitogo/mitogo/actors"
)

// A program's tree (the test's router, listening, with a mitogo child
// named worker) is reached by mitogo attach and mitogo debug as a user
// would: list its contexts, run and call in the worker, debug it, and be
// refused what the listener does not allow.
func TestAttachAndDebugCommands(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, err := actors.NewRouter(actors.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Shutdown(context.Background())
	path := filepath.Join(t.TempDir(), "run", "mitogo.sock")
	if _, err := r.Listen(path, actors.ListenDescendants(), actors.ListenAllow(actors.DebugFunction)); err != nil {
		t.Fatal(err)
	}
	w, err := r.Local(ctx, actors.Executable(bin), actors.Name("worker"))
	if err != nil {
		t.Fatal(err)
	}

	res := mitogo(t, "", "attach", "--socket", path, "contexts")
	if res.exit != 0 || !strings.Contains(res.stdout, "worker") {
		t.Fatalf("attach contexts: exit %d, stdout %q, stderr %q", res.exit, res.stdout, res.stderr)
	}
	res = mitogo(t, "", "attach", "--socket", path, "-t", "worker", "run", "--", "sh", "-c", "echo hi; exit 3")
	if res.exit != 3 || res.stdout != "hi\n" {
		t.Fatalf("attach run: exit %d, stdout %q, stderr %q; want hi and exit 3", res.exit, res.stdout, res.stderr)
	}
	res = mitogo(t, "", "attach", "--socket", path, "-t", strconv.Itoa(w.ID()), "call", "sys.facts")
	var facts map[string]any
	if res.exit != 0 || json.Unmarshal([]byte(res.stdout), &facts) != nil || facts["pid"] != float64(w.ProcessID()) {
		t.Fatalf("attach call sys.facts in context %d (pid %d): exit %d, stdout %q, stderr %q", w.ID(), w.ProcessID(), res.exit, res.stdout, res.stderr)
	}
	// The listener allows debugging, not other calls.
	res = mitogo(t, "", "attach", "--socket", path, "call", "sys.facts")
	if res.exit != 1 || !strings.Contains(res.stderr, "refused by policy") {
		t.Fatalf("attach call in the listener: exit %d, stderr %q; want refused", res.exit, res.stderr)
	}

	res = mitogo(t, "", "debug", "--socket", path, "-t", "worker")
	if res.exit != 0 || !strings.Contains(res.stdout, "context worker (id "+strconv.Itoa(w.ID())) || !strings.Contains(res.stdout, "goroutine 1 [") ||
		!strings.Contains(res.stdout, "streams:") {
		t.Fatalf("debug: exit %d, stdout %q, stderr %q", res.exit, res.stdout, res.stderr)
	}
	cpu := filepath.Join(t.TempDir(), "cpu.pb.gz")
	res = mitogo(t, "", "debug", "--socket", path, "--json", "--table", "--cpu", cpu, "--cpu-time", "200ms")
	var rep actors.DebugReport
	if res.exit != 0 || json.Unmarshal([]byte(res.stdout), &rep) != nil || !rep.Master || len(rep.Routes) != 2 {
		t.Fatalf("debug --json of the listener: exit %d, stdout %q, stderr %q; want the master's table (worker, the attached process)", res.exit, res.stdout, res.stderr)
	}
	b, err := os.ReadFile(cpu)
	if err != nil || !bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
		t.Fatalf("CPU profile: %d bytes, %v; want gzip", len(b), err)
	}
}
