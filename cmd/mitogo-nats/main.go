// Command mitogo-nats is a NATS server with JetStream for a mitogo cluster
// (see package cluster): controllers (mitogo serve) and clients (mitogo
// run/call --nats) meet in it. It listens on 127.0.0.1:4222 unless told
// otherwise and admits only clients presenting the cluster's token, which
// it generates into --token-file (mode 0600) when the file does not exist;
// mitogo reads the same file by default.
//
//	mitogo-nats [--listen HOST:PORT] [--store DIR] [--token-file FILE]
//	            [--name NAME --cluster-listen HOST:PORT --routes URL,...]
//
// Three of them, each given a --name and the other two's --cluster-listen
// addresses as --routes, form a routed JetStream cluster that survives
// losing any one: give the controllers --replicas 3 and each its own
// server (see package cluster, "Topology", and the README, "Beyond one
// machine"). Servers started together share one token file: the first
// to write it wins, the others read it.
//
// It is a command of its own so that the mitogo binary, which controllers
// upload to their hosts, does not carry the NATS server.
package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/mitogo/mitogo/cluster/natsembed"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "mitogo-nats:", err)
		os.Exit(1)
	}
}

// stateDir is where state that must outlive a cache clean-up lives:
// $XDG_STATE_HOME, else ~/.local/state. The JetStream store holds the
// cluster's leases; one emptied by a cache cleaner costs every controller
// its buckets (they recreate them, but a store lost is a failover for
// nothing).
func stateDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return d
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "state")
	}
	return os.TempDir()
}

func run() error {
	cfgDir, _ := os.UserConfigDir()
	listen := flag.String("listen", "127.0.0.1:4222", "the client listen address (127.0.0.1: this machine only)")
	store := flag.String("store", filepath.Join(stateDir(), "mitogo-nats"), "JetStream's directory (the cluster's leases: keep it)")
	tokenFile := flag.String("token-file", filepath.Join(cfgDir, "mitogo", "nats-token"), "the cluster's token; generated when missing")
	name := flag.String("name", "", "this server's name (unique in a routed cluster)")
	clusterListen := flag.String("cluster-listen", "", "the route listen address of a routed cluster, e.g. 127.0.0.1:6222")
	routes := flag.String("routes", "", "the other servers' route URLs, comma-separated, e.g. nats-route://127.0.0.1:6223")
	flag.Parse()

	tok, err := loadOrMakeToken(*tokenFile)
	if err != nil {
		return err
	}
	host, port, err := splitHostPort(*listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	o := natsembed.Options{Name: *name, Host: host, Port: port, Token: tok, StoreDir: *store}
	if *clusterListen != "" {
		ch, cp, err := splitHostPort(*clusterListen)
		if err != nil {
			return fmt.Errorf("--cluster-listen: %w", err)
		}
		o.ClusterName, o.ClusterHost, o.ClusterPort = "mitogo", ch, cp
		if *routes != "" {
			o.Routes = strings.Split(*routes, ",")
		}
	}
	s, err := natsembed.Start(o)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "mitogo-nats: listening on %s (token in %s)\n", s.URL(), *tokenFile)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	s.Shutdown()
	return nil
}

func splitHostPort(a string) (string, int, error) {
	h, p, err := net.SplitHostPort(a)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, err
	}
	return h, n, nil
}

// loadOrMakeToken reads the token file, or writes a new random token to
// it. The token is written whole to a file of its own, then linked to
// path, so that servers started together neither read a half-written
// token nor write two: the first link wins, the others read its token.
func loadOrMakeToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("--token-file: %w", err)
	}
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	tok := hex.EncodeToString(raw)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("--token-file: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".nats-token-*")
	if err != nil {
		return "", fmt.Errorf("--token-file: %w", err)
	}
	defer os.Remove(f.Name())
	_, err = fmt.Fprintln(f, tok)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("--token-file: %w", err)
	}
	if err := os.Link(f.Name(), path); errors.Is(err, os.ErrExist) {
		return loadOrMakeToken(path) // another server wrote it first
	} else if err != nil {
		return "", fmt.Errorf("--token-file: %w", err)
	}
	return tok, nil
}
