package cluster_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/mitogo/mitogo/cluster"
	"github.com/mitogo/mitogo/inventory"
)

// A controller whose lease watch ends (as nats.go ends one it cannot
// recreate after a NATS server restart) watches again: a lease released
// after that is seen, and its host claimed and driven again, rather than
// the controller taking the stale lease for held forever.
func TestLeaseWatchRestarted(t *testing.T) {
	url, r := inProcess(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := cluster.Join(ctx, cluster.Config{Cluster: "w" + randHex(3), ID: "a", NATS: url, Token: "t",
		Hosts: []*inventory.Host{{Name: "h", Chain: "local"}}, Router: r, Connect: connectLocal,
		LeaseTTL: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := c.Close(ctx); err != nil {
			t.Error(err)
		}
	}()
	waitDriven(ctx, t, c, "h", "the join")
	before, err := cluster.CallFunc(ctx, c.Client(), "h", pid, struct{}{})
	if err != nil {
		t.Fatal(err)
	}

	c.KillWatch()
	// A settings change hands the host over: its lease is released, and
	// claimed again over the new entry.
	if _, _, changed := c.SetHosts([]*inventory.Host{{Name: "h", Chain: "local", Settings: map[string]string{"connect-timeout": "20s"}}}); !slices.Equal(changed, []string{"h"}) {
		t.Fatalf("SetHosts: changed %v, want [h]", changed)
	}
	// Driven again means by a new context: the old one was shut down.
	guard, stop := context.WithTimeout(ctx, 60*time.Second)
	defer stop()
	for {
		cctx, ccancel := context.WithTimeout(guard, 5*time.Second)
		after, err := cluster.CallFunc(cctx, c.Client(), "h", pid, struct{}{})
		ccancel()
		if err == nil && after != before {
			break
		}
		if guard.Err() != nil {
			t.Fatalf("host h not driven by a new context 60s after its lease was released with the watch ended (last call: pid %d, %v)", after, err)
		}
		time.Sleep(20 * time.Millisecond) // polling the host, bounded by guard
	}
}
