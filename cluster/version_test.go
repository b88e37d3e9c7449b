package cluster_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mitogo/mitogo/actors"
	"github.com/mitogo/mitogo/cluster"
	"github.com/mitogo/mitogo/cluster/natsembed"
	"github.com/mitogo/mitogo/inventory"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Members of one protocol on different builds work together, and status
// tells their builds apart; a controller of another protocol is refused,
// naming the member it disagrees with.
func TestBuilds(t *testing.T) {
	srv, err := natsembed.Start(natsembed.Options{Token: "t", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	name := "v" + randHex(3)
	r, err := actors.NewRouter()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Shutdown(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	join := func(id, build string) (*cluster.Controller, error) {
		return cluster.Join(ctx, cluster.Config{Cluster: name, ID: id, NATS: srv.URL(), Token: "t",
			Hosts: []*inventory.Host{inventory.NewHost("h-" + id)}, Router: r, Build: build, LeaseTTL: 2 * time.Second,
			Connect: func(ctx context.Context, r *actors.Router, h *inventory.Host) (*actors.Context, error) {
				return r.Local(ctx)
			}})
	}
	for _, m := range []struct{ id, build string }{{"a", "v1.0.0 aaaa"}, {"b", "v1.1.0 bbbb"}} {
		c, err := join(m.id, m.build)
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := c.Close(ctx); err != nil {
				t.Error(err)
			}
		}()
	}
	cl, err := cluster.Dial(srv.URL(), "t", name)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, err := cl.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ready := 0
		for _, l := range st.Leases {
			if l.Ready {
				ready++
			}
		}
		if ready == 2 {
			if len(st.Members) != 2 || st.Members[0].Build != "v1.0.0 aaaa" || st.Members[1].Build != "v1.1.0 bbbb" {
				t.Errorf("status members %+v: want a and b with their builds", st.Members)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 60s, the members on two builds do not both drive their host: %+v", st.Leases)
		}
		time.Sleep(20 * time.Millisecond) // polling the buckets, bounded by the deadline
	}
	for _, h := range []string{"h-a", "h-b"} {
		if _, err := cluster.CallFunc(ctx, cl, h, pid, struct{}{}); err != nil {
			t.Errorf("call to %s across builds: %v", h, err)
		}
	}

	// A member entry of another protocol, as a controller of another
	// version writes it.
	nc, err := nats.Connect(srv.URL(), nats.Token("t"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, "mitogo_"+name+"_members")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "future", []byte(`{"id":"future","version":99,"build":"v9"}`)); err != nil {
		t.Fatal(err)
	}
	c, err := join("c", "")
	if err == nil {
		c.Close(ctx)
		t.Fatal("a member joined a cluster with a member of another protocol")
	}
	if !errors.Is(err, cluster.ErrVersion) || !strings.Contains(err.Error(), "future") {
		t.Errorf("join beside a member of another protocol: %v, want ErrVersion naming member future", err)
	}
}
