package cluster_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mitogo/mitogo/actors"
	"github.com/mitogo/mitogo/cluster"
	"github.com/vmihailenco/msgpack/v5"
)

// The host refuses a call that does not carry the epoch holding its token,
// refuses an older owner's take, and a context holding an older epoch
// exits when a newer owner takes the token.
func TestHostFencing(t *testing.T) {
	name := "f" + randHex(4)
	t.Cleanup(func() {
		home, _ := os.UserHomeDir()
		os.RemoveAll(filepath.Join(home, ".cache", "mitogo-cluster", name))
	})
	r, err := actors.NewRouter()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Shutdown(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	old, err := r.Local(ctx)
	if err != nil {
		t.Fatal(err)
	}
	newer, err := r.Local(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fa := func(epoch uint64) cluster.FenceArgs {
		return cluster.FenceArgs{Cluster: name, Host: "web1", Epoch: epoch}
	}
	log := filepath.Join(t.TempDir(), "calls")
	args, _ := msgpack.Marshal(recordArgs{ID: "x", Host: "web1", Log: log})
	run := func(c *actors.Context, epoch uint64) (string, error) {
		res, err := cluster.RunFenced.Call(ctx, c, cluster.NewRunArgs(fa(epoch), record.Name(), args))
		return res.Code, err
	}

	if _, err := cluster.TakeFence.Call(ctx, old, fa(5)); err != nil {
		t.Fatalf("take epoch 5: %v", err)
	}
	if code, err := run(old, 5); err != nil || code != "" {
		t.Fatalf("call with the token's epoch: code %q, %v", code, err)
	}
	hold := cluster.HoldFence.Go(ctx, old, fa(5))

	if _, err := cluster.TakeFence.Call(ctx, newer, fa(4)); err == nil {
		t.Fatal("an older epoch took the token")
	}
	if _, err := cluster.TakeFence.Call(ctx, newer, fa(7)); err != nil {
		t.Fatalf("take epoch 7: %v", err)
	}
	if code, err := run(newer, 5); err != nil || code != cluster.CodeFenced {
		t.Fatalf("call with an overtaken epoch: code %q, %v (want %q)", code, err, cluster.CodeFenced)
	}
	select {
	case <-old.Done():
	case <-ctx.Done():
		t.Fatal("the context holding the overtaken epoch did not exit")
	}
	if _, err := hold.Wait(); err == nil {
		t.Fatal("hold returned no error though its context exited")
	}
	b, _ := os.ReadFile(log)
	if string(b) == "" || len(b) > len("x web1 ")+12 {
		t.Fatalf("the function ran %q, want once", b)
	}
}
