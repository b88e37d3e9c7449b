package cluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/mitogo/mitogo/cluster"
	"github.com/mitogo/mitogo/inventory"
)

// A lease the controller's view holds but the bucket no longer does (its
// aging-out marker never reached the watch, as when a routed JetStream
// cluster loses its stream leader at that moment) is read from the bucket
// once it has gone unrenewed for two TTLs, and its host is claimed: it is
// not left to a dead owner for good.
func TestStaleLeaseReadAgain(t *testing.T) {
	url, r := inProcess(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := cluster.Join(ctx, cluster.Config{Cluster: "s" + randHex(3), ID: "a", NATS: url, Token: "t",
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
	c.InjectLease("g", "ghost")
	c.SetHosts([]*inventory.Host{{Name: "h", Chain: "local"}, {Name: "g", Chain: "local"}})
	waitDriven(ctx, t, c, "g", "its lease was held only by the view")
}
