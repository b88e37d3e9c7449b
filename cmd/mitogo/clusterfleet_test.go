package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mitogo/mitogo/cluster"
	"github.com/mitogo/mitogo/cluster/natsembed"
)

// testCluster is an embedded NATS server and mitogo serve processes on it.
type testCluster struct {
	url, token, name string
	client           *cluster.Client
}

// startCluster starts a NATS server and one mitogo serve per id, all
// with the inventory lines, and waits until every host is driven.
func startCluster(t *testing.T, hosts []string, ids ...string) *testCluster {
	t.Helper()
	raw := make([]byte, 8)
	rand.Read(raw)
	tc := &testCluster{token: hex.EncodeToString(raw), name: "cli" + hex.EncodeToString(raw[:3])}
	srv, err := natsembed.Start(natsembed.Options{Token: tc.token, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	tc.url = srv.URL()
	t.Cleanup(func() {
		home, _ := os.UserHomeDir()
		os.RemoveAll(filepath.Join(home, ".cache", "mitogo-cluster", tc.name))
	})
	var lines []string
	for _, h := range hosts {
		lines = append(lines, h+" local")
	}
	inv := writeInventory(t, lines...)
	for _, id := range ids {
		cmd := exec.Command(bin, "serve", "--cluster", tc.name, "--nats", tc.url, "-i", inv, "--id", id, "--lease-ttl", "3s")
		cmd.Env = append(os.Environ(), "MITOGO_NATS_TOKEN="+tc.token)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if os.Getenv("MITOGO_TEST_LOG") == "" {
			cmd.Stdout, cmd.Stderr = nil, nil
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			cmd.Wait()
			close(done)
		}()
		t.Cleanup(func() {
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				cmd.Process.Kill()
				<-done
				t.Errorf("mitogo serve --id %s did not stop within 30s of SIGTERM", id)
			}
		})
	}
	if tc.client, err = cluster.Dial(tc.url, tc.token, tc.name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tc.client.Close)
	deadline := time.Now().Add(90 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		st, err := tc.client.Status(ctx)
		cancel()
		ready := 0
		if err == nil {
			for _, l := range st.Leases {
				if l.Ready {
					ready++
				}
			}
		}
		if ready == len(hosts) {
			return tc
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 90s, %d of %d hosts are driven (%v)", ready, len(hosts), err)
		}
		time.Sleep(50 * time.Millisecond) // polling the leases, bounded by the deadline
	}
}

// run runs mitogo with the cluster's flags first.
func (tc *testCluster) run(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	return mitogo(t, stdin, append([]string{args[0], "--nats", tc.url, "--cluster", tc.name}, args[1:]...)...)
}

// run and call with --nats behave as without: prefixed lines, --json
// records, the exit statuses (255 no owner, 127 no such command or
// function, 124 timeout, the command's own), stdin to one target, output
// while the command runs, and a client killed with SIGKILL leaves no
// command behind.
func TestClusterRunCLI(t *testing.T) {
	tc := startCluster(t, []string{"l1", "l2", "l3"}, "a", "b")
	t.Setenv("MITOGO_NATS_TOKEN", tc.token)

	t.Run("prefixed", func(t *testing.T) {
		r := tc.run(t, "", "run", "-t", "l1,l2", "-t", "l3", "--", "sh", "-c", "echo out; echo err >&2; exit 2")
		if r.exit != 2 {
			t.Errorf("exit %d, want 2", r.exit)
		}
		for _, h := range []string{"l1", "l2", "l3"} {
			if !strings.Contains(r.stdout, h+" | out\n") || !strings.Contains(r.stderr, h+" | err\n") {
				t.Errorf("no %s-prefixed lines on stdout and stderr", h)
			}
		}
	})

	t.Run("json", func(t *testing.T) {
		r := tc.run(t, "", "run", "--json", "-t", "l1,nowhere", "--", "sh", "-c", "echo hi; exit 4")
		if r.exit != 255 {
			t.Errorf("exit %d, want 255 (a host without an owner)", r.exit)
		}
		recs := parseJSONLines(t, r.stdout)
		st := statuses(t, recs)
		if s := st["l1"]; s.Status != "failed" || s.Exit == nil || *s.Exit != 4 {
			t.Errorf("l1's status record %+v, want failed, exit 4", s)
		}
		if s := st["nowhere"]; s.Status != "unreachable" || s.Exit == nil || *s.Exit != 255 || !strings.Contains(s.Error, "no controller owns the host") {
			t.Errorf("nowhere's status record %+v, want unreachable, exit 255, no owner", s)
		}
		found := false
		for _, rec := range recs {
			if rec.Target == "l1" && rec.Stream == "stdout" && rec.Data != nil && *rec.Data == "hi\n" {
				found = true
			}
		}
		if !found {
			t.Errorf("no stdout record hi for l1")
		}
	})

	t.Run("statuses", func(t *testing.T) {
		if r := tc.run(t, "", "run", "-t", "l2", "--", "no-such-command-mitogo"); r.exit != 127 || !strings.Contains(r.stderr, "not found") {
			t.Errorf("missing command: exit %d, stderr %q; want 127, not found", r.exit, r.stderr)
		}
		if r := tc.run(t, "", "run", "-t", "l2", "--timeout", "2s", "--", "sleep", "60"); r.exit != 124 {
			t.Errorf("--timeout: exit %d, want 124", r.exit)
		}
		if r := tc.run(t, "", "run", "-t", "l2", "--", "sh", "-c", "exit 9"); r.exit != 9 {
			t.Errorf("exit %d, want the command's 9", r.exit)
		}
	})

	t.Run("stdin", func(t *testing.T) {
		if r := tc.run(t, "abc\n", "run", "-t", "l3", "--", "tr", "a-z", "A-Z"); r.exit != 0 || r.stdout != "ABC\n" {
			t.Errorf("stdout %q, exit %d; want ABC, 0", r.stdout, r.exit)
		}
	})

	t.Run("call", func(t *testing.T) {
		r := tc.run(t, "", "call", "--json", "-t", "l1,l2", "file.stat", `{"path":"/"}`)
		if r.exit != 0 {
			t.Fatalf("exit %d", r.exit)
		}
		got := map[string]bool{}
		for _, rec := range parseJSONLines(t, r.stdout) {
			if rec.Result != nil && rec.Result["is_dir"] == true {
				got[rec.Target] = true
			}
		}
		st := statuses(t, parseJSONLines(t, r.stdout))
		if !got["l1"] || !got["l2"] || st["l1"].Status != "ok" || st["l2"].Status != "ok" {
			t.Errorf("want a result record with is_dir and status ok for l1 and l2")
		}
		if r := tc.run(t, "", "call", "-t", "l1", "file.stat", `{"path":"/nonexistent-mitogo"}`); r.exit != 1 {
			t.Errorf("a call that fails: exit %d, want 1", r.exit)
		}
		if r := tc.run(t, "", "call", "-t", "l1", "mitogo.no.such.function"); r.exit != 127 || !strings.Contains(r.stderr, "mitogo.no.such.function") {
			t.Errorf("call of an unknown function: exit %d, stderr %q; want 127, naming it", r.exit, r.stderr)
		}
	})

	t.Run("live and killed", func(t *testing.T) {
		// The test writes the command's stdin only once it has read the
		// command's first line: output held back until the end would
		// hang here (until the guard's deadline).
		cmd := exec.Command(bin, "run", "--nats", tc.url, "--cluster", tc.name, "-t", "l3", "--", "sh", "-c", "echo $$; read x; echo got $x; exec sleep 600")
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Wait()
		defer cmd.Process.Kill()
		lines := make(chan string, 2)
		go func() {
			br := bufio.NewReader(stdout)
			for {
				s, err := br.ReadString('\n')
				if err != nil {
					close(lines)
					io.Copy(io.Discard, br)
					return
				}
				lines <- strings.TrimSpace(s)
			}
		}()
		next := func() string {
			select {
			case s, ok := <-lines:
				if !ok {
					t.Fatal("mitogo run ended early")
				}
				return s
			case <-time.After(time.Minute):
				t.Fatal("no line within a minute")
			}
			return ""
		}
		pid, err := strconv.Atoi(next())
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(stdin, "abc\n")
		if s := next(); s != "got abc" {
			t.Fatalf("second line %q, want got abc", s)
		}
		cmd.Process.Kill() // SIGKILL: the owner hears nothing more from it
		deadline := time.Now().Add(time.Minute)
		for syscall.Kill(pid, 0) == nil {
			if time.Now().After(deadline) {
				t.Fatalf("the command (pid %d) still runs a minute after its client was killed", pid)
			}
			time.Sleep(50 * time.Millisecond) // polling the process table, bounded by the deadline
		}
	})
}
