package actors_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mitogo/mitogo/actors"
	"github.com/mitogo/mitogo/test/sshtest"
)

// ifAddrs returns the IP addresses of the network interfaces where it runs,
// which tells which network namespace a context is in.
var ifAddrs = actors.Register("test.ifaddrs", func(ctx context.Context, _ struct{}) ([]string, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	var ips []string
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			ips = append(ips, n.IP.String())
		}
	}
	return ips, nil
})

// ssh → ssh reaches a host the master cannot: host B sits in a network
// namespace that only namespace A is connected to (see
// sshtest.NewTopology), so the second hop must run from the context on A.
// Both servers' keys and known_hosts files are on the one filesystem, so the
// context on A reads B's just as the master reads A's.
func TestSSHThroughSSHToAnUnreachableHost(t *testing.T) {
	topo := sshtest.NewTopology(t)
	sa := sshtest.Start(t, sshtest.Netns(topo.A), sshtest.ListenAddr(topo.AIP))
	sb := sshtest.Start(t, sshtest.Netns(topo.B), sshtest.ListenAddr(topo.BIP))
	r := newRouter(t)

	// The master has no route to B: the connection fails, naming B, by
	// the end of its connect timeout at the latest.
	_, err := r.SSH(ctxT(t), sb.Addr, sshTo(sb, actors.ConnectTimeout(3*time.Second))...)
	var se *actors.StreamError
	var te *actors.TimeoutError
	if !errors.As(err, &se) && !errors.As(err, &te) {
		t.Fatalf("direct ssh to %s: %T %v; want a *StreamError or *TimeoutError", sb.Addr, err, err)
	}
	if !strings.Contains(err.Error(), topo.BIP) {
		t.Fatalf("the error does not name %s: %v", topo.BIP, err)
	}
	t.Logf("direct ssh to B: %v", err)

	a, err := r.SSH(ctxT(t), sa.Addr, sshTo(sa)...)
	if err != nil {
		t.Fatalf("ssh to A: %v", err)
	}
	b, err := r.SSH(ctxT(t), sb.Addr, sshTo(sb, actors.Via(a))...)
	if err != nil {
		t.Fatalf("ssh to B through A: %v", err)
	}

	// Each context runs in its own host's network namespace.
	for _, c := range []struct {
		ctx       *actors.Context
		has, hasn string
	}{
		{a, topo.AIP, topo.BIP},
		{b, topo.BIP, topo.AIP},
	} {
		ips, err := ifAddrs.Call(ctxT(t), c.ctx, struct{}{})
		if err != nil {
			t.Fatalf("addresses in %s: %v", c.ctx.Name(), err)
		}
		if !slices.Contains(ips, c.has) || slices.Contains(ips, c.hasn) || slices.Contains(ips, topo.RootIP) {
			t.Fatalf("%s runs where the addresses are %v; want %s and neither %s nor %s", c.ctx.Name(), ips, c.has, c.hasn, topo.RootIP)
		}
	}

	// B is A's child, and its name is the chain (with the ports: they are
	// not 22).
	wantA, wantB := "ssh:"+sa.Addr, "ssh:"+sa.Addr+"/ssh:"+sb.Addr
	if a.Name() != wantA || b.Name() != wantB {
		t.Fatalf("names %q and %q; want %q and %q", a.Name(), b.Name(), wantA, wantB)
	}
	id, err := whoami.Call(ctxT(t), b, struct{}{})
	if err != nil || id.Name != wantB || id.Parent != a.ID() || id.ID != b.ID() {
		t.Fatalf("whoami in B: %+v %v; want name %q, parent %d", id, err, wantB, a.ID())
	}
	if got, err := echo.Call(ctxT(t), b, "through A"); err != nil || got != "through A" {
		t.Fatalf("echo in B: %q %v", got, err)
	}
}
