package cluster_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mitogo/mitogo/actors"
	"github.com/mitogo/mitogo/cluster"
	"github.com/mitogo/mitogo/inventory"
)

// The environment of a controller process started by a test.
const (
	envRole    = "MITOGO_CLUSTER_TEST_ROLE"
	envNATS    = "MITOGO_CLUSTER_TEST_NATS"
	envToken   = "MITOGO_CLUSTER_TEST_TOKEN"
	envCluster = "MITOGO_CLUSTER_TEST_CLUSTER"
	envID      = "MITOGO_CLUSTER_TEST_ID"
	envInv     = "MITOGO_CLUSTER_TEST_INVENTORY"
	envTTL     = "MITOGO_CLUSTER_TEST_TTL"
)

// envReplicas is the buckets' replica count (3 on a routed cluster).
const envReplicas = "MITOGO_CLUSTER_TEST_REPLICAS"

// controllerMain is a controller process: it joins the cluster, prints
// "ready", and leaves on SIGTERM or when its stdin closes (the test ended).
func controllerMain() int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "controller:", err)
		return 1
	}
	inv, err := inventory.Read(os.Getenv(envInv), nil)
	if err != nil {
		return fail(err)
	}
	ttl, err := time.ParseDuration(os.Getenv(envTTL))
	if err != nil {
		return fail(err)
	}
	replicas, err := strconv.Atoi(os.Getenv(envReplicas))
	if err != nil {
		return fail(err)
	}
	r, err := actors.NewRouter()
	if err != nil {
		return fail(err)
	}
	// Generous bounds: a loaded machine (CI, or other builds and tests
	// beside these) makes a first ssh contact, which sends this test
	// binary, take tens of seconds.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	c, err := cluster.Join(ctx, cluster.Config{
		Cluster: os.Getenv(envCluster), ID: os.Getenv(envID), NATS: os.Getenv(envNATS), Token: os.Getenv(envToken),
		Hosts: inv.Hosts, Connect: connectHost, Router: r, LeaseTTL: ttl, ConnectTimeout: 90 * time.Second, Replicas: replicas,
		InventoryFile: os.Getenv(envInv), ReadInventory: readInventory, ReloadInterval: 100 * time.Millisecond,
	})
	cancel()
	if err != nil {
		r.Shutdown(context.Background())
		return fail(err)
	}
	fmt.Println("ready")
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM)
	eof := make(chan struct{})
	go func() {
		bufio.NewReader(os.Stdin).ReadString('\n')
		close(eof)
	}()
	select {
	case <-stop:
	case <-eof:
	}
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = c.Close(ctx)
	r.Shutdown(ctx)
	if err != nil {
		return fail(err)
	}
	return 0
}

// connectHost starts a test host: "local" is a local child, "local,local"
// a local child's local child (a chain of two hops), anything else an ssh
// target with the inventory's identity and known-hosts settings.
func connectHost(ctx context.Context, r *actors.Router, h *inventory.Host) (*actors.Context, error) {
	switch h.Chain {
	case "local":
		return r.Local(ctx)
	case "local,local":
		first, err := r.Local(ctx)
		if err != nil {
			return nil, err
		}
		last, err := r.Local(ctx, actors.Via(first))
		if err != nil {
			first.Shutdown(ctx)
			return nil, err
		}
		cluster.Hops(ctx, first)
		return last, nil
	}
	target, ok := strings.CutPrefix(h.Chain, "ssh:")
	if !ok {
		return nil, fmt.Errorf("test host %s: chain %q: want local or ssh:ADDR", h.Name, h.Chain)
	}
	// NoCache: the binary goes whole (gzip pieces, made once per
	// controller), never as a delta against the builds the shared cache
	// holds, which costs a best-level zstd pass over this 37 MiB -race
	// binary per base (minutes on a loaded machine, and not cancelable).
	return r.SSH(ctx, target, actors.IdentityFile(h.Settings["identity"]), actors.KnownHosts(h.Settings["known-hosts"]),
		actors.SSHConfig("none"), actors.NoCache())
}

func readInventory(path string) ([]*inventory.Host, error) {
	inv, err := inventory.Read(path, nil)
	if err != nil {
		return nil, err
	}
	return inv.Hosts, nil
}
