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

// inProcess starts what an in-process controller needs: an embedded NATS
// server (token "t") and a router, both ended when the test ends (after
// its deferred calls, so after the controller's Close). It returns the
// server's URL and the router.
func inProcess(t *testing.T) (string, *actors.Router) {
	t.Helper()
	srv, err := natsembed.Start(natsembed.Options{Token: "t", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	r, err := actors.NewRouter()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Shutdown(context.Background()) })
	return srv.URL(), r
}

// connectLocal is a Connect function that drives every host in a local
// child.
func connectLocal(ctx context.Context, r *actors.Router, h *inventory.Host) (*actors.Context, error) {
	return r.Local(ctx)
}

// waitDriven polls c until it drives host, failing t after 60s (the bound
// only guards against a hang).
func waitDriven(ctx context.Context, t *testing.T, c *cluster.Controller, host, what string) {
	t.Helper()
	guard, stop := context.WithTimeout(ctx, 60*time.Second)
	defer stop()
	for !slices.Contains(c.Owned(), host) {
		if guard.Err() != nil {
			t.Fatalf("host %s not driven 60s after %s (owned: %v)", host, what, c.Owned())
		}
		time.Sleep(20 * time.Millisecond) // polling the controller, bounded by guard
	}
}
