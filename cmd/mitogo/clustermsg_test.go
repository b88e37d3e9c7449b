package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mitogo/mitogo/cluster/natsembed"
)

// The cluster commands' errors say what is wrong in the user's terms:
// where the NATS token came from or why there was none, a cluster name
// no member joined, NATS out of reach (exit 255, one line per target with
// --json), each once prefixed.
func TestClusterMessages(t *testing.T) {
	t.Setenv("MITOGO_NATS_TOKEN", "")
	t.Setenv("MITOGO_NATS", "")
	srv, err := natsembed.Start(natsembed.Options{Token: "right", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing-token")
	empty := filepath.Join(dir, "empty-token")
	wrong := filepath.Join(dir, "wrong-token")
	right := filepath.Join(dir, "right-token")
	for path, text := range map[string]string{empty: "\n", wrong: "wrong\n", right: "right\n"} {
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	says := func(r result, wants ...string) {
		t.Helper()
		for _, w := range wants {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("stderr %q: want %q in it", r.stderr, w)
			}
		}
		if strings.Contains(r.stderr, "mitogo: mitogo") {
			t.Errorf("stderr %q: the prefix twice", r.stderr)
		}
	}
	status := func(tokenFile string, args ...string) result {
		return mitogo(t, "", append([]string{"cluster", "status", "--nats", srv.URL(), "--nats-token-file", tokenFile}, args...)...)
	}

	says(status(missing), missing, "does not exist")
	says(status(empty), empty, "is empty")
	says(status(wrong), "refused the token in "+wrong)
	r := status(right, "--cluster", "nosuch")
	says(r, `no cluster "nosuch" (no member has joined it)`)
	if strings.Contains(r.stderr, "bucket not found") {
		t.Errorf("stderr %q: the bucket, not the cluster", r.stderr)
	}

	r = mitogo(t, "", "run", "--nats", srv.URL(), "--nats-token-file", right, "--cluster", "nosuch", "-t", "web1", "--", "true")
	says(r, `host web1: no cluster "nosuch" (no member has joined it)`)
	if r.exit != 255 {
		t.Errorf("run in a cluster nobody joined: exit %d, want 255", r.exit)
	}

	for _, c := range []struct{ what, url, tokenFile string }{
		{"NATS out of reach", "nats://127.0.0.1:1", right},
		{"a wrong token", srv.URL(), wrong},
	} {
		r = mitogo(t, "", "run", "--json", "--nats", c.url, "--nats-token-file", c.tokenFile, "-t", "web1,web2", "--", "true")
		if r.exit != 255 {
			t.Errorf("run with %s: exit %d, want 255", c.what, r.exit)
		}
		st := statuses(t, parseJSONLines(t, r.stdout))
		for _, h := range []string{"web1", "web2"} {
			if s := st[h]; s.Status != "unreachable" || s.Error == "" {
				t.Errorf("run with %s: %s's status record %+v, want unreachable with the error", c.what, h, s)
			}
		}
		r = mitogo(t, "", "call", "--nats", c.url, "--nats-token-file", c.tokenFile, "-t", "web1", "sys.facts")
		if r.exit != 255 {
			t.Errorf("call with %s: exit %d, want 255", c.what, r.exit)
		}
	}

	r = mitogo(t, "", "serve", "--nats", srv.URL(), "--nats-token-file", right, "-i", filepath.Join(dir, "no-inventory"))
	if r.exit != 2 || strings.Contains(r.stderr, "--stdin") || !strings.Contains(r.stderr, "no-inventory") {
		t.Errorf("serve -i of a missing file: exit %d, stderr %q; want 2, naming the file, not --stdin", r.exit, r.stderr)
	}
}
