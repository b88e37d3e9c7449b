package cluster_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mitogo/mitogo/actors"
	"github.com/mitogo/mitogo/builtins"
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

// A context fenced out by a newer owner ends what its functions started
// before it exits: the command an older owner started there (proc.run's
// process group) is killed, not left running beside the new owner's
// calls, though the older owner never asked for it.
func TestFencedContextEndsItsCommand(t *testing.T) {
	name := "e" + randHex(4)
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
	fa := func(epoch uint64) cluster.FenceArgs { return cluster.NewFenceArgs(name, "web4", 0, epoch) }
	if _, err := cluster.TakeFence.Call(ctx, old, fa(5)); err != nil {
		t.Fatalf("take epoch 5: %v", err)
	}
	hold := cluster.HoldFence.Go(ctx, old, fa(5))

	dir := t.TempDir()
	pidFile, marker := filepath.Join(dir, "pid"), filepath.Join(dir, "marker")
	// Long enough that only a kill ends it before the deadlines below.
	script := "echo $$ > " + pidFile + ".tmp && mv " + pidFile + ".tmp " + pidFile + "; sleep 300; echo done > " + marker
	ran := make(chan error, 1)
	go func() {
		_, err := builtins.Run(ctx, r, old, builtins.RunRequest{Argv: []string{"sh", "-c", script}}, nil, io.Discard, io.Discard)
		ran <- err
	}()
	var pgid int
	for pgid == 0 {
		select {
		case err := <-ran:
			t.Fatalf("the command ended before the fence: %v", err)
		case <-ctx.Done():
			t.Fatal("the command did not start")
		case <-time.After(20 * time.Millisecond):
		}
		if b, err := os.ReadFile(pidFile); err == nil {
			pgid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
	}
	if groupAlive(pgid) == 0 {
		t.Fatalf("process group %d not found", pgid)
	}

	if _, err := cluster.TakeFence.Call(ctx, newer, fa(7)); err != nil {
		t.Fatalf("take epoch 7: %v", err)
	}
	select {
	case <-old.Done():
	case <-ctx.Done():
		t.Fatal("the context holding the overtaken epoch did not exit")
	}
	hold.Wait()
	<-ran
	// The context killed its command before it exited. A killed process
	// takes a moment to be gone from /proc; the deadline only guards
	// against waiting for the command's own end (its sleep is far longer).
	gone := time.Now().Add(30 * time.Second)
	for groupAlive(pgid) != 0 {
		if time.Now().After(gone) {
			t.Fatalf("%d processes of the fenced context's command (group %d) still run after it exited", groupAlive(pgid), pgid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	syscall.Kill(-pgid, syscall.SIGKILL) // before the fix: do not leave it behind
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the fenced context's command finished")
	}
}

// groupAlive counts the processes of process group pgid that are not
// zombies.
func groupAlive(pgid int) int {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	n := 0
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		// pid (comm) state ppid pgrp ...
		f := strings.Fields(s[i+1:])
		if len(f) < 3 || f[0] == "Z" {
			continue
		}
		if g, _ := strconv.Atoi(f[2]); g == pgid {
			n++
		}
	}
	return n
}
