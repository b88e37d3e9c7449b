package cluster_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mitogo/mitogo/actors"
	"github.com/mitogo/mitogo/cluster"
	"github.com/mitogo/mitogo/cluster/natsembed"
	"github.com/mitogo/mitogo/inventory"
)

// A controller whose renewals come too late for its lease (as on a busy
// machine; here it is cut off from NATS past the TTL) keeps its host when
// no other member claimed it meanwhile: it claims the lease again under
// the same epoch and keeps the host's context, rather than dropping it
// and connecting anew.
func TestLeaseLapsedKept(t *testing.T) {
	srv, err := natsembed.Start(natsembed.Options{Token: "t", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	rel := newRelay(t, srv.URL())
	name := "l" + randHex(3)
	r, err := actors.NewRouter()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Shutdown(context.Background())
	var connects atomic.Int32
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := cluster.Join(ctx, cluster.Config{Cluster: name, ID: "a", NATS: rel.URL(), Token: "t",
		Hosts: []*inventory.Host{inventory.NewHost("h")}, Router: r, LeaseTTL: time.Second, ConnectTimeout: 30 * time.Second,
		Connect: func(ctx context.Context, r *actors.Router, h *inventory.Host) (*actors.Context, error) {
			connects.Add(1)
			return r.Local(ctx)
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			t.Error(err)
		}
	}()
	cl, err := cluster.Dial(srv.URL(), "t", name)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// waitLeases polls the bucket, past the relay, until want holds.
	waitLeases := func(want func([]cluster.LeaseInfo) bool, what string) []cluster.LeaseInfo {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			st, err := cl.Status(ctx)
			cancel()
			if err == nil && want(st.Leases) {
				return st.Leases
			}
			if time.Now().After(deadline) {
				t.Fatalf("after 60s, no %s: %+v (%v)", what, st, err)
			}
			time.Sleep(20 * time.Millisecond) // polling the bucket, bounded by the deadline
		}
	}
	ready := func(ls []cluster.LeaseInfo) bool { return len(ls) == 1 && ls[0].Owner == "a" && ls[0].Ready }
	first := waitLeases(ready, "lease driven by a")[0]

	rel.Cut()
	waitLeases(func(ls []cluster.LeaseInfo) bool { return len(ls) == 0 }, "lease aged out")
	rel.Heal()
	again := waitLeases(ready, "lease driven by a again")[0]
	if again.Epoch != first.Epoch || connects.Load() != 1 {
		t.Fatalf("after its lease lapsed, a holds epoch %d (first %d) and connected %d times: want the same epoch and context",
			again.Epoch, first.Epoch, connects.Load())
	}
	cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer ccancel()
	if _, err := cluster.CallFunc(cctx, cl, "h", record, recordArgs{ID: "kept", Host: "h", Log: t.TempDir() + "/calls"}); err != nil {
		t.Fatalf("call after the lease was claimed again: %v", err)
	}
}
