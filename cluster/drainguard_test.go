package cluster_test

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mitogo/mitogo/cluster"
)

// Draining the only active member is refused: its hosts would be released
// with no member to take them. It keeps them, under the same leases.
func TestDrainLastMember(t *testing.T) {
	inv, hosts := localInventory(3)
	tc := newTestCluster(t, inv, testTTL)
	tc.start("a")
	tc.waitLeases(hosts, "a")
	before := tc.leases()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	moves, err := tc.client.Drain(ctx, "a", cluster.HandoverOptions{})
	if !errors.Is(err, cluster.ErrLastMember) {
		t.Fatalf("drain of the only member: moves %+v, error %v; want ErrLastMember", moves, err)
	}
	now := tc.leases()
	for h, l := range before {
		if n, ok := now[h]; !ok || !sameLease(n, l) {
			t.Errorf("host %s: lease %+v after the refused drain, was %+v", h, n, l)
		}
	}
	for _, m := range tc.status().Members {
		if m.Draining {
			t.Errorf("member %s is draining after a refused drain", m.ID)
		}
	}
}

// A drain sent to a frozen member fails once the member did not answer
// within HandoverOptions.Answer, naming it; and the member, woken, ignores
// the request it got past its deadline: it keeps its hosts and is not
// draining.
func TestControlPastDeadline(t *testing.T) {
	inv, hosts := localInventory(3)
	// A long TTL: the member keeps its leases while it is stopped.
	tc := newTestCluster(t, inv, 30*time.Second)
	tc.start("a")
	tc.waitLeases(hosts, "a")
	before := tc.leases()
	p := tc.members["a"].cmd.Process
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := true
	defer func() {
		if stopped {
			p.Signal(syscall.SIGCONT)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	_, err := tc.client.Drain(ctx, "a", cluster.HandoverOptions{Force: true, Answer: time.Second})
	if !errors.Is(err, cluster.ErrNoAnswer) || !strings.Contains(err.Error(), "member a did not answer") {
		t.Errorf("drain of a stopped member: %v; want ErrNoAnswer naming member a", err)
	}
	p.Signal(syscall.SIGCONT)
	stopped = false
	// The member serves its requests in order: once it answered this
	// one, it has handled the drain.
	if err := tc.client.Control(ctx, "a", "no-such-op"); !errors.Is(err, cluster.ErrControl) {
		t.Fatalf("request after the wake: %v, want ErrControl", err)
	}
	now := tc.leases()
	for h, l := range before {
		if n, ok := now[h]; !ok || !sameLease(n, l) {
			t.Errorf("host %s: lease %+v after the late drain, was %+v", h, n, l)
		}
	}
	for _, m := range tc.status().Members {
		if m.Draining {
			t.Errorf("member %s is draining: it applied a drain its sender had given up on", m.ID)
		}
	}
}

// A host reached through two hops leaves nothing behind on the member
// that hands it over: a drained member has no child process left (each
// host's first hop was its child).
func TestDrainEndsChains(t *testing.T) {
	tc := newTestCluster(t, "h0 local,local\nh1 local,local\n", testTTL)
	hosts := []string{"h0", "h1"}
	tc.start("a")
	tc.waitLeases(hosts, "a")
	pid := tc.members["a"].cmd.Process.Pid
	if n := len(liveChildren(pid)); n != len(hosts) {
		t.Fatalf("member a drives %d two-hop hosts through %d child processes, want %d", len(hosts), n, len(hosts))
	}
	tc.start("b")
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if _, err := tc.client.Drain(ctx, "a", cluster.HandoverOptions{Settle: 90 * time.Second}); err != nil {
		t.Fatal(err)
	}
	tc.waitLeases(hosts, "b")
	waitChildrenGone(t, pid)
}
