package cluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/mitogo/mitogo/actors"
	"github.com/mitogo/mitogo/cluster"
	"github.com/mitogo/mitogo/cluster/natsembed"
	"github.com/mitogo/mitogo/inventory"
)

var echo = actors.Register("clustertest.echo", func(ctx context.Context, n int) (int, error) { return n, nil })

// BenchmarkDispatch compares a call through the cluster (client → NATS →
// owner → host context) with a direct call from a router to a context,
// on one machine, in the same run:
//
//	go test -run '^$' -bench Dispatch ./cluster/
func BenchmarkDispatch(b *testing.B) {
	srv, err := natsembed.Start(natsembed.Options{Token: "t", StoreDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Shutdown()
	r, err := actors.NewRouter()
	if err != nil {
		b.Fatal(err)
	}
	defer r.Shutdown(context.Background())
	ctx := context.Background()
	c, err := cluster.Join(ctx, cluster.Config{Cluster: "bench" + randHex(3), ID: "a", NATS: srv.URL(), Token: "t",
		Hosts: []*inventory.Host{inventory.NewHost("h")}, Router: r, LeaseTTL: 3 * time.Second,
		Connect: func(ctx context.Context, r *actors.Router, h *inventory.Host) (*actors.Context, error) {
			return r.Local(ctx)
		}})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close(ctx)
	cl := c.Client()
	deadline := time.Now().Add(30 * time.Second)
	for len(c.Owned()) == 0 {
		if time.Now().After(deadline) {
			b.Fatal("the host was not driven after 30s")
		}
		time.Sleep(10 * time.Millisecond) // polling, bounded by the deadline
	}
	direct, err := r.Local(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("cluster", func(b *testing.B) {
		for b.Loop() {
			if _, err := cluster.CallFunc(ctx, cl, "h", echo, 1); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("direct", func(b *testing.B) {
		for b.Loop() {
			if _, err := echo.Call(ctx, direct, 1); err != nil {
				b.Fatal(err)
			}
		}
	})
}
