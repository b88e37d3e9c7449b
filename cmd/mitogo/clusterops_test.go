package main

import (
	"bufio"
	"context"
	"fmt"
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

// Two mitogo serve processes: cluster rebalance gives the second a share
// of the first's hosts, cluster drain moves all of the first's hosts to
// the second, cluster status shows it, and SIGHUP makes a controller read
// its edited inventory.
func TestClusterOpsCLI(t *testing.T) {
	srv, err := natsembed.Start(natsembed.Options{Token: "tok", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown) // after the controllers' (cleanups run last first)
	t.Setenv("MITOGO_NATS_TOKEN", "tok")
	// Hosts of two hops (a local child's local child), as local,sudo://...
	// is: a member that hands one over ends its whole chain.
	inv := writeInventory(t, "h0 local,local", "h1 local,local", "h2 local,local", "h3 local,local", "h4 local,local", "h5 local,local")
	// A cluster name of its own: the hosts keep their fencing tokens
	// under it, and a new NATS store starts the epochs over.
	name := fmt.Sprintf("cli%d", time.Now().UnixNano())
	t.Cleanup(func() {
		if dir, err := os.UserCacheDir(); err == nil {
			os.RemoveAll(filepath.Join(dir, "mitogo-cluster", name))
		}
	})
	nats := []string{"--nats", srv.URL(), "--cluster", name}
	cl, err := cluster.Dial(srv.URL(), "tok", name)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	waitStatus := func(what string, ok func(*cluster.Status) bool) *cluster.Status {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			st, err := cl.Status(ctx)
			cancel()
			if err == nil && ok(st) {
				return st
			}
			if time.Now().After(deadline) {
				t.Fatalf("after 90s, still waiting for %s: %+v (%v)", what, st, err)
			}
			time.Sleep(50 * time.Millisecond) // polling the buckets, bounded by the deadline
		}
	}
	held := func(st *cluster.Status) map[string]int {
		n := map[string]int{}
		for _, l := range st.Leases {
			if l.Ready {
				n[l.Owner]++
			}
		}
		return n
	}
	serve := func(id string, extra ...string) *exec.Cmd {
		args := append([]string{"serve", "-i", inv, "--id", id, "--lease-ttl", "6s"}, nats...)
		cmd := exec.Command(bin, append(args, extra...)...)
		stderr, _ := cmd.StderrPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { // the log, shown when the test fails
			sc := bufio.NewScanner(stderr)
			for sc.Scan() {
				t.Logf("[%s] %s", id, sc.Text())
			}
			close(done)
		}()
		t.Cleanup(func() {
			cmd.Process.Signal(syscall.SIGTERM)
			<-done
			if err := cmd.Wait(); err != nil {
				t.Errorf("mitogo serve --id %s: %v", id, err)
			}
		})
		return cmd
	}

	a := serve("a")
	waitStatus("a to hold the 6 hosts", func(st *cluster.Status) bool { return held(st)["a"] == 6 })
	b := serve("b", "--reload-interval", "1h") // b reads its inventory again on SIGHUP only
	waitStatus("b to join", func(st *cluster.Status) bool { return len(st.Members) == 2 })

	r := mitogo(t, "", append([]string{"cluster", "rebalance", "--batch", "2"}, nats...)...)
	if r.exit != 0 || !strings.Contains(r.stdout, ": a -> b\n") {
		t.Fatalf("cluster rebalance: exit %d, stdout %q, stderr %q; want moves from a to b", r.exit, r.stdout, r.stderr)
	}
	if n := held(waitStatus("6 hosts held", func(st *cluster.Status) bool { return len(st.Leases) == 6 })); n["a"] == 0 || n["b"] == 0 {
		t.Errorf("after cluster rebalance, hosts held %v: want both a and b to hold some", n)
	}

	r = mitogo(t, "", append([]string{"cluster", "drain"}, append(nats, "a")...)...)
	if r.exit != 0 || strings.Contains(r.stdout, "no member took it") {
		t.Fatalf("cluster drain a: exit %d, stdout %q, stderr %q", r.exit, r.stdout, r.stderr)
	}
	waitStatus("b to hold the 6 hosts, the drain recorded", func(st *cluster.Status) bool {
		return held(st)["b"] == 6 && st.LastMove != nil && st.LastMove.Why == cluster.WhyDrain
	})
	// The drained member drives nothing: each host's first hop, its
	// child, ended with the host's context.
	for deadline := time.Now().Add(60 * time.Second); len(childProcs(a.Process.Pid)) > 0; {
		if time.Now().After(deadline) {
			t.Fatalf("after 60s, the drained member still has child processes %v", childProcs(a.Process.Pid))
		}
		time.Sleep(50 * time.Millisecond) // polling /proc, bounded by the deadline
	}
	r = mitogo(t, "", append([]string{"cluster", "status"}, nats...)...)
	for _, want := range []string{"draining", "last move: host ", "from a to b (drain)", "BUILD"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("cluster status: stdout lacks %q:\n%s", want, r.stdout)
		}
	}

	// An added host: b claims it on SIGHUP (a is drained).
	if err := os.WriteFile(inv, []byte("h0 local\nh1 local\nh2 local\nh3 local\nh4 local\nh5 local\nh6 local\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b.Process.Signal(syscall.SIGHUP)
	waitStatus("b to hold h6", func(st *cluster.Status) bool {
		for _, l := range st.Leases {
			if l.Host == "h6" && l.Owner == "b" && l.Ready {
				return true
			}
		}
		return false
	})
	r = mitogo(t, "", append([]string{"run", "-t", "h6"}, append(nats, "--", "echo", "hi")...)...)
	if r.exit != 0 || r.stdout != "hi\n" {
		t.Errorf("run on the added host: exit %d, stdout %q, stderr %q", r.exit, r.stdout, r.stderr)
	}
	r = mitogo(t, "", append([]string{"cluster", "drain"}, append(nats, "nobody")...)...)
	if r.exit == 0 || !strings.Contains(r.stderr, "no such member") {
		t.Errorf("cluster drain nobody: exit %d, stderr %q; want an error naming no such member", r.exit, r.stderr)
	}
	// a is draining: b is the last active member, and keeps its hosts.
	r = mitogo(t, "", append([]string{"cluster", "drain"}, append(nats, "b")...)...)
	if r.exit == 0 || !strings.Contains(r.stderr, "no other active member would take its hosts") || !strings.Contains(r.stderr, "--force") {
		t.Errorf("cluster drain of the last active member: exit %d, stderr %q; want a refusal saying no other member would take its hosts", r.exit, r.stderr)
	}
	if n := held(waitStatus("7 hosts held", func(st *cluster.Status) bool { return len(st.Leases) == 7 })); n["b"] != 7 {
		t.Errorf("after the refused drain of b, hosts held %v: want b to hold all 7", n)
	}
	// A stopped member does not answer: the request fails within
	// --answer, naming it.
	if err := b.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	r = mitogo(t, "", append([]string{"cluster", "resume", "--answer", "1s"}, append(nats, "b")...)...)
	b.Process.Signal(syscall.SIGCONT)
	if r.exit == 0 || !strings.Contains(r.stderr, "member b did not answer") {
		t.Errorf("cluster resume of a stopped member: exit %d, stderr %q; want an error saying member b did not answer", r.exit, r.stderr)
	}
}

// childProcs lists the live (not zombie) child processes of pid.
func childProcs(pid int) []int {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []int
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) >= 2 && f[1] == strconv.Itoa(pid) && f[0] != "Z" {
			n, _ := strconv.Atoi(strings.Fields(s)[0])
			out = append(out, n)
		}
	}
	return out
}
