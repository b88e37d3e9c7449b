package cluster_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/mitogo/mitogo/actors"
	"github.com/mitogo/mitogo/cluster"
	"github.com/mitogo/mitogo/inventory"
)

// A host whose connects failed is backed off, and its lease left to
// lapse; an inventory change that corrects its chain clears the backoff
// and deletes that lease, so that the host is claimed and driven over the
// new chain at once, not after the lease's TTL and the old chain's
// backoff (here held at an hour, as after many failures).
func TestReloadClearsBackoff(t *testing.T) {
	url, r := inProcess(t)
	failed := make(chan struct{}, 1)
	connect := func(ctx context.Context, r *actors.Router, h *inventory.Host) (*actors.Context, error) {
		if h.Chain == "local" {
			return r.Local(ctx)
		}
		select {
		case failed <- struct{}{}:
		default:
		}
		return nil, fmt.Errorf("test host %s: chain %q does not connect", h.Name, h.Chain)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := cluster.Join(ctx, cluster.Config{Cluster: "b" + randHex(3), ID: "a", NATS: url, Token: "t",
		Hosts: []*inventory.Host{{Name: "h", Chain: "broken"}}, Router: r, Connect: connect,
		LeaseTTL: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := c.Close(ctx); err != nil {
			t.Error(err)
		}
	}()
	select {
	case <-failed:
	case <-ctx.Done():
		t.Fatal("no connect to the broken chain")
	}
	// The failed connect's runner backs the host off as it ends.
	for {
		if _, ok := c.Backoff("h"); ok {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the host was not backed off after its connect failed")
		}
		time.Sleep(10 * time.Millisecond) // polling the controller, bounded by ctx
	}
	c.SetBackoff("h", time.Now().Add(time.Hour))
	failed1 := leaseOf(t, ctx, c.Client(), "h")
	if failed1 == nil || failed1.Owner != "a" || failed1.Ready {
		t.Fatalf("lease of the failed connect: %+v, want one of a's, not ready", failed1)
	}

	_, _, changed := c.SetHosts([]*inventory.Host{{Name: "h", Chain: "local"}})
	if !slices.Equal(changed, []string{"h"}) {
		t.Fatalf("SetHosts: changed %v, want [h]", changed)
	}
	if at, ok := c.Backoff("h"); ok {
		t.Errorf("after the chain changed, the host is still backed off until %v", at.Format(time.TimeOnly))
	}
	// Long before the failed connect's lease would lapse (its TTL is
	// 20s), it is gone.
	if l := leaseOf(t, ctx, c.Client(), "h"); l != nil && l.Epoch == failed1.Epoch {
		t.Errorf("after the chain changed, the failed connect's lease is still held: %+v", l)
	}
	guard, stop := context.WithTimeout(ctx, 60*time.Second)
	defer stop()
	for !slices.Contains(c.Owned(), "h") {
		if guard.Err() != nil {
			t.Fatal("the host is not driven 60s after its chain was corrected")
		}
		time.Sleep(20 * time.Millisecond) // polling the controller, bounded by guard
	}
	if _, err := cluster.CallFunc(guard, c.Client(), "h", pid, struct{}{}); err != nil {
		t.Fatalf("call over the corrected chain: %v", err)
	}
}

// leaseOf returns host's lease, nil when it has none.
func leaseOf(t *testing.T, ctx context.Context, cl *cluster.Client, host string) *cluster.LeaseInfo {
	t.Helper()
	st, err := cl.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range st.Leases {
		if l.Host == host {
			return &l
		}
	}
	return nil
}
