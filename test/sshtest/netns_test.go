package sshtest

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The topology's reachability: the test reaches A, not B; A reaches B; and
// it is all gone after cleanup.
func TestTopology(t *testing.T) {
	var topo *Topology
	t.Run("build", func(t *testing.T) {
		topo = NewTopology(t)
		if !hasAddr(t, "", topo.RootIP) || hasAddr(t, "", topo.AIP) || hasAddr(t, "", topo.BIP) {
			t.Fatalf("root namespace addresses are wrong for %+v", topo)
		}
		if !hasAddr(t, topo.A, topo.AIP) || !hasAddr(t, topo.A, topo.AInnerIP) || !hasAddr(t, topo.A, "127.0.0.1") {
			t.Fatalf("namespace A lacks its addresses: %+v", topo)
		}
		if !hasAddr(t, topo.B, topo.BIP) || hasAddr(t, topo.B, topo.AIP) || !hasAddr(t, topo.B, "127.0.0.1") {
			t.Fatalf("namespace B's addresses are wrong: %+v", topo)
		}
		// A route lookup from the root namespace must not lead into B's
		// network through A.
		out, err := exec.Command("ip", "-4", "route", "get", topo.BIP).CombinedOutput()
		if err == nil && strings.Contains(string(out), topo.rootLink) {
			t.Fatalf("the root namespace routes %s through A: %s", topo.BIP, out)
		}
		for _, ns := range []string{topo.A, topo.B} {
			if _, err := os.Stat(netnsPath(ns)); err != nil {
				t.Fatal(err)
			}
		}
	})
	if topo == nil {
		t.Skip("no topology")
	}
	// The subtest's cleanup has removed everything.
	for _, ns := range []string{topo.A, topo.B} {
		if _, err := os.Stat(netnsPath(ns)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("namespace %s after cleanup: %v", ns, err)
		}
	}
	if _, err := net.InterfaceByName(topo.rootLink); err == nil {
		t.Errorf("link %s survived cleanup", topo.rootLink)
	}
}

// Two topologies at once get different names and networks.
func TestTwoTopologies(t *testing.T) {
	a, b := NewTopology(t), NewTopology(t)
	if a.A == b.A || a.rootLink == b.rootLink || a.RootIP == b.RootIP || a.BIP == b.BIP {
		t.Fatalf("topologies collide: %+v and %+v", a, b)
	}
	if !hasAddr(t, "", a.RootIP) || !hasAddr(t, "", b.RootIP) {
		t.Fatalf("root namespace lacks %s or %s", a.RootIP, b.RootIP)
	}
}

// sshd inside namespaces: the test logs in to A directly and to B only from
// inside A, and Stop ends a server in a namespace.
func TestNetnsServers(t *testing.T) {
	topo := NewTopology(t)
	a := Start(t, Netns(topo.A), ListenAddr(topo.AIP))
	b := Start(t, Netns(topo.B), ListenAddr(topo.BIP))
	if a.Netns != topo.A || a.Host != topo.AIP || b.Netns != topo.B {
		t.Fatalf("servers: %+v / %+v", a, b)
	}

	out, errOut, err := runSSH(t, nil, append(a.SSHArgs(), "ip -4 -o addr show")...)
	if err != nil || !strings.Contains(out, topo.AIP+"/") || strings.Contains(out, topo.RootIP+"/") {
		t.Fatalf("ssh to A: %v, stdout %q, stderr:\n%s", err, out, errOut)
	}

	begin := time.Now()
	_, errOut, err = runSSH(t, nil, append([]string{"-o", "ConnectTimeout=2"}, append(b.SSHArgs(), "true")...)...)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 255 {
		t.Fatalf("ssh from the root namespace to B: %v, stderr:\n%s", err, errOut)
	}
	t.Logf("B from the root namespace: %s (after %v)", strings.TrimSpace(errOut), time.Since(begin).Round(time.Millisecond))

	// From inside A, the same arguments reach B, whose session is in B.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", topo.A, "ssh"}, append(b.SSHArgs(), "ip -4 -o addr show")...)...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil || !strings.Contains(o.String(), topo.BIP+"/") || strings.Contains(o.String(), topo.AIP+"/") {
		t.Fatalf("ssh from A to B: %v, stdout %q, stderr:\n%s", err, o.String(), e.String())
	}

	b.Stop()
	err = inNetns(topo.A, func() error {
		c, err := net.DialTimeout("tcp", b.Addr, 2*time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dialling B from A after Stop: %v; want connection refused", err)
	}
}

// Work in a namespace must not end the thread it ran on: sshd is started
// with Pdeathsig, so the end of the thread that started it kills it. The
// thread that started sshd is reused sooner or later by the goroutines
// inNetns starts.
func TestInNetnsKeepsSSHDAlive(t *testing.T) {
	topo := NewTopology(t)
	s := Start(t, Netns(topo.A), ListenAddr(topo.AIP))
	for i := 0; i < 200; i++ {
		if !hasAddr(t, topo.A, topo.AIP) {
			t.Fatalf("namespace A lost %s", topo.AIP)
		}
	}
	select {
	case <-s.done:
		t.Fatalf("sshd died: %v\n%s", s.err, s.Log())
	default:
	}
	if err := readBanner(s.Addr, 2*time.Second); err != nil {
		t.Fatalf("sshd in A after work in A: %v", err)
	}
	// The threads came back to the test's own namespace.
	if hasAddr(t, "", topo.AIP) || !hasAddr(t, "", topo.RootIP) {
		t.Fatal("a thread stayed in namespace A")
	}
}

// hasAddr reports whether an interface of network namespace ns ("" for the
// test's own) has the address ip.
func hasAddr(t *testing.T, ns, ip string) bool {
	t.Helper()
	var found bool
	err := inNetns(ns, func() error {
		addrs, err := net.InterfaceAddrs()
		if err != nil {
			return err
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.String() == ip {
				found = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("addresses of namespace %q: %v", ns, err)
	}
	return found
}
