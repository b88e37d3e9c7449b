package cluster_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/mitogo/mitogo/actors"
	"github.com/mitogo/mitogo/cluster"
	"github.com/mitogo/mitogo/cluster/natsembed"
	"github.com/mitogo/mitogo/inventory"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A NATS server that restarts with an empty store (memory storage, a
// fresh mitogo-nats) has lost the cluster's buckets. The controllers
// recreate them; each claims the hosts it drove again and keeps driving
// them through the same context, and calls go through again. A host that
// then moves to another member is driven by it, though the token on the
// host was taken in the lost bucket at a revision higher than any the new
// bucket has given.
func TestStoreReset(t *testing.T) {
	dir := t.TempDir()
	srv, err := natsembed.Start(natsembed.Options{Token: "t", StoreDir: filepath.Join(dir, "before")})
	if err != nil {
		t.Fatal(err)
	}
	stopSrv := srv.Shutdown
	defer func() { stopSrv() }()
	u, err := url.Parse(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(u.Port())
	name := "s" + randHex(3)
	t.Cleanup(func() {
		home, _ := os.UserHomeDir()
		os.RemoveAll(filepath.Join(home, ".cache", "mitogo-cluster", name))
	})
	r, err := actors.NewRouter()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Shutdown(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var hosts []*inventory.Host
	var names []string
	for i := range 6 {
		hosts = append(hosts, inventory.NewHost(fmt.Sprintf("h%d", i)))
		names = append(names, hosts[i].Name)
	}
	join := func(id string) *cluster.Controller {
		t.Helper()
		c, err := cluster.Join(ctx, cluster.Config{Cluster: name, ID: id, NATS: srv.URL(), Token: "t", Router: r,
			LeaseTTL: 6 * time.Second, Connect: func(ctx context.Context, r *actors.Router, h *inventory.Host) (*actors.Context, error) {
				return r.Local(ctx)
			}})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a, b := join("a"), join("b")
	closed := map[*cluster.Controller]bool{}
	defer func() {
		for _, c := range []*cluster.Controller{b, a} {
			if !closed[c] {
				if err := c.Close(ctx); err != nil {
					t.Error(err)
				}
			}
		}
	}()

	// The lease bucket's revisions start at a million before any claim:
	// every token taken in it is higher than any revision the new bucket
	// gives in this test.
	nc, err := nats.Connect(srv.URL(), nats.Token("t"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, "KV_mitogo_"+name+"_hosts")
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Purge(ctx, jetstream.WithPurgeSequence(1_000_000)); err != nil {
		t.Fatal(err)
	}
	a.SetHosts(hosts)
	b.SetHosts(hosts)

	// driven waits until every host is driven by one of members and
	// answers a call, and returns each host's owner and context's pid.
	driven := func(what string, members map[string]*cluster.Controller) (owner map[string]string, pids map[string]int) {
		t.Helper()
		guard, stop := context.WithTimeout(ctx, 90*time.Second)
		defer stop()
		for {
			owner, pids = map[string]string{}, map[string]int{}
			for id, c := range members {
				for _, h := range c.Owned() {
					owner[h] = id
				}
			}
			var err error
			for _, h := range names {
				if owner[h] == "" {
					err = fmt.Errorf("host %s has no owner", h)
					break
				}
				cctx, ccancel := context.WithTimeout(guard, 10*time.Second)
				pids[h], err = cluster.CallFunc(cctx, b.Client(), h, pid, struct{}{})
				ccancel()
				if err != nil {
					break
				}
			}
			if err == nil {
				return owner, pids
			}
			if guard.Err() != nil {
				t.Fatalf("hosts not all driven 90s after %s: %v (owners %v)", what, err, owner)
			}
			time.Sleep(50 * time.Millisecond) // polling the members, bounded by guard
		}
	}
	both := map[string]*cluster.Controller{"a": a, "b": b}
	owner, pids := driven("the join", both)

	nc.Close()
	srv.Shutdown()
	srv, err = natsembed.Start(natsembed.Options{Token: "t", Port: port, StoreDir: filepath.Join(dir, "after")})
	if err != nil {
		t.Fatal(err)
	}
	stopSrv = srv.Shutdown

	after, pidsAfter := driven("the NATS store was reset", both)
	for _, h := range names {
		if after[h] != owner[h] || pidsAfter[h] != pids[h] {
			t.Errorf("host %s: driven by %s (context pid %d) before the reset, by %s (pid %d) after: want the same owner and context",
				h, owner[h], pids[h], after[h], pidsAfter[h])
		}
	}

	// a leaves: b takes its hosts in the new bucket.
	if err := a.Close(ctx); err != nil {
		t.Error(err)
	}
	closed[a] = true
	moved, _ := driven("a left", map[string]*cluster.Controller{"b": b})
	for _, h := range names {
		if moved[h] != "b" {
			t.Errorf("host %s driven by %q after a left, want b", h, moved[h])
		}
	}
}
