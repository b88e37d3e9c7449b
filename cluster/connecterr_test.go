package cluster_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mitogo/mitogo/actors"
	"github.com/mitogo/mitogo/cluster"
	"github.com/mitogo/mitogo/inventory"
)

// A host no member can connect to: the members advertise why, Status
// shows it, and a call to the host fails with ErrNoOwner naming the cause
// and the member that last tried.
func TestConnectErrorShown(t *testing.T) {
	url, r := inProcess(t)
	name := "e" + randHex(3)
	// As the actors errors read: the "mitogo: " prefix is not repeated
	// after the host's name.
	cause := errors.New("mitogo: connecting local.1/sudo:nosuchuser (sudo): sudo to nosuchuser: user unknown")
	shown := strings.TrimPrefix(cause.Error(), "mitogo: ")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := cluster.Join(ctx, cluster.Config{Cluster: name, ID: "d", NATS: url, Token: "t",
		Hosts: []*inventory.Host{inventory.NewHost("bad1")}, Router: r, LeaseTTL: time.Second,
		Connect: func(ctx context.Context, r *actors.Router, h *inventory.Host) (*actors.Context, error) {
			return nil, cause
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
	cl, err := cluster.Dial(url, "t", name)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		st, err := cl.Status(ctx)
		cancel()
		if err == nil && len(st.ConnectErrors) == 1 {
			ce := st.ConnectErrors[0]
			if ce.Host != "bad1" || ce.Member != "d" || ce.Error != shown || ce.At.IsZero() {
				t.Errorf("status connect error %+v: want bad1's by d: %s", ce, shown)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 60s, status shows no connect error for bad1: %+v (%v)", st, err)
		}
		time.Sleep(20 * time.Millisecond) // polling the bucket, bounded by the deadline
	}
	cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer ccancel()
	_, err = cl.Call(cctx, "bad1", "x", nil)
	if !errors.Is(err, cluster.ErrNoOwner) {
		t.Fatalf("call to bad1: %v, want ErrNoOwner", err)
	}
	for _, want := range []string{"host bad1", "no controller could connect to it: " + shown, "by member d"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("call to bad1: %q, want it to say %q", err, want)
		}
	}
}
