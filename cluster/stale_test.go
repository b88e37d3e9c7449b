package cluster_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/mitogo/mitogo/actors"
	"github.com/mitogo/mitogo/cluster"
	"github.com/mitogo/mitogo/cluster/natsembed"
	"github.com/mitogo/mitogo/inventory"
)

// A lease the controller's view holds but the bucket no longer does (its
// aging-out marker never reached the watch, as when a routed JetStream
// cluster loses its stream leader at that moment) is read from the bucket
// once it has gone unrenewed for two TTLs, and its host is claimed: it is
// not left to a dead owner for good.
func TestStaleLeaseReadAgain(t *testing.T) {
	srv, err := natsembed.Start(natsembed.Options{Token: "t", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	r, err := actors.NewRouter()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Shutdown(context.Background())
	connect := func(ctx context.Context, r *actors.Router, h *inventory.Host) (*actors.Context, error) {
		return r.Local(ctx)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := cluster.Join(ctx, cluster.Config{Cluster: "s" + randHex(3), ID: "a", NATS: srv.URL(), Token: "t",
		Hosts: []*inventory.Host{{Name: "h", Chain: "local"}}, Router: r, Connect: connect,
		LeaseTTL: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := c.Close(ctx); err != nil {
			t.Error(err)
		}
	}()
	c.InjectLease("g", "ghost")
	c.SetHosts([]*inventory.Host{{Name: "h", Chain: "local"}, {Name: "g", Chain: "local"}})
	guard, stop := context.WithTimeout(ctx, 60*time.Second)
	defer stop()
	for !slices.Contains(c.Owned(), "g") {
		if guard.Err() != nil {
			t.Fatalf("host g, whose lease only the view held, not driven after 60s (owned: %v)", c.Owned())
		}
		time.Sleep(20 * time.Millisecond) // polling the controller, bounded by guard
	}
}
