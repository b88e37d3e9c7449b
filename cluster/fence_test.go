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
		return cluster.NewFenceArgs(name, "web1", 0, epoch)
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

// A host's token survives the loss of the lease bucket: an owner of the
// new bucket, whose epoch restarts low, takes the token from one of the
// lost bucket (an older generation), and the context of that owner is
// refused and exits. A token file written before generations (an epoch
// alone) reads as generation 0.
func TestHostFencingGenerations(t *testing.T) {
	name := "g" + randHex(4)
	home, _ := os.UserHomeDir()
	dir := filepath.Join(home, ".cache", "mitogo-cluster", name)
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "web1.epoch"), []byte("57\n"), 0o600); err != nil {
		t.Fatal(err)
	}
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
	fa := func(gen, epoch uint64) cluster.FenceArgs { return cluster.NewFenceArgs(name, "web1", gen, epoch) }
	log := filepath.Join(t.TempDir(), "calls")
	args, _ := msgpack.Marshal(recordArgs{ID: "x", Host: "web1", Log: log})
	run := func(c *actors.Context, gen, epoch uint64) (string, error) {
		res, err := cluster.RunFenced.Call(ctx, c, cluster.NewRunArgs(fa(gen, epoch), record.Name(), args))
		return res.Code, err
	}

	if _, err := cluster.TakeFence.Call(ctx, old, fa(0, 50)); err == nil {
		t.Fatal("epoch 50 took the token from a file holding 57")
	}
	if code, err := run(old, 0, 57); err != nil || code != "" {
		t.Fatalf("call with the epoch of an old token file: code %q, %v", code, err)
	}
	hold := cluster.HoldFence.Go(ctx, old, fa(0, 57))

	if _, err := cluster.TakeFence.Call(ctx, newer, fa(5, 1)); err != nil {
		t.Fatalf("epoch 1 of a newer generation: %v", err)
	}
	if code, err := run(newer, 0, 57); err != nil || code != cluster.CodeFenced {
		t.Fatalf("call with the lost bucket's token: code %q, %v (want %q)", code, err, cluster.CodeFenced)
	}
	select {
	case <-old.Done():
	case <-ctx.Done():
		t.Fatal("the context holding the lost bucket's token did not exit")
	}
	if _, err := hold.Wait(); err == nil {
		t.Fatal("hold returned no error though its context exited")
	}
	if _, err := cluster.TakeFence.Call(ctx, newer, fa(4, 900)); err == nil {
		t.Fatal("an older generation took the token")
	}
	if code, err := run(newer, 5, 1); err != nil || code != "" {
		t.Fatalf("call with the new generation's token: code %q, %v", code, err)
	}
}
