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
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
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

// A lease bucket made by a build that kept one entry a host is given two
// when a member of this build joins: with one, the put that says why a
// lease was released on purpose (Move.Why) can be replaced by its delete
// before a watcher sees it.
func TestLeaseBucketHistory(t *testing.T) {
	srv, err := natsembed.Start(natsembed.Options{Token: "t", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	name := "hist" + randHex(3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nc, err := nats.Connect(srv.URL(), nats.Token("t"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	bucket := "mitogo_" + name + "_hosts"
	ttl := time.Second
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: bucket, History: 1, TTL: ttl, LimitMarkerTTL: ttl}); err != nil {
		t.Fatal(err)
	}
	r, err := actors.NewRouter()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Shutdown(context.Background())
	c, err := cluster.Join(ctx, cluster.Config{Cluster: name, ID: "a", NATS: srv.URL(), Token: "t", Router: r,
		LeaseTTL: ttl, Connect: func(ctx context.Context, r *actors.Router, h *inventory.Host) (*actors.Context, error) {
			return r.Local(ctx)
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := c.Close(ctx); err != nil {
			t.Error(err)
		}
	}()
	kv, err := js.KeyValue(ctx, bucket)
	if err != nil {
		t.Fatal(err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.History() != 2 {
		t.Fatalf("lease bucket made with one entry a host keeps %d after a member joined, want 2", st.History())
	}
}
