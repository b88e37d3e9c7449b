// Package natsembed runs a NATS server with JetStream inside the process,
// set up for a mitogo cluster: it listens on 127.0.0.1 unless told
// otherwise and admits only clients that present the cluster's token.
// Several such servers given each other as routes form a routed JetStream
// cluster, so that losing any one of them does not lose the cluster.
//
// This package links the whole NATS server (about 17 MB stripped). Only
// the mitogo-nats command and tests import it: the mitogo binary, which
// controllers upload to hosts, carries the client library only.
package natsembed

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// ErrNotReady is matched by the error of a server that did not accept
// connections within its start timeout.
var ErrNotReady = errors.New("nats server not ready")

// Options configure an embedded server.
type Options struct {
	Name     string // the server's name (required in a routed cluster: unique per server)
	Host     string // the client listen address; "" means 127.0.0.1
	Port     int    // the client port; 0 picks a free one
	Token    string // the token clients must present; "" admits anyone
	StoreDir string // JetStream's directory (required)

	// A routed cluster: ClusterName, this server's route listener, and
	// the other servers' route URLs (nats-route://host:port).
	ClusterName string
	ClusterHost string // "" means Host
	ClusterPort int    // 0: no routed cluster
	Routes      []string

	StartTimeout time.Duration // how long to wait for the server to be ready; 0 means 10s
}

// Server is a running embedded NATS server.
type Server struct {
	s *server.Server
}

// Start starts a server and waits until it accepts connections.
func Start(o Options) (*Server, error) {
	if o.StoreDir == "" {
		return nil, errors.New("natsembed: a JetStream store directory is required")
	}
	host := o.Host
	if host == "" {
		host = "127.0.0.1"
	}
	port := o.Port
	if port == 0 {
		port = server.RANDOM_PORT
	}
	opts := &server.Options{
		ServerName:    o.Name,
		Host:          host,
		Port:          port,
		Authorization: o.Token,
		JetStream:     true,
		StoreDir:      o.StoreDir,
		NoSigs:        true,
		NoLog:         true,
	}
	if o.ClusterPort != 0 {
		ch := o.ClusterHost
		if ch == "" {
			ch = host
		}
		opts.Cluster = server.ClusterOpts{Name: o.ClusterName, Host: ch, Port: o.ClusterPort}
		for _, r := range o.Routes {
			u, err := url.Parse(r)
			if err != nil {
				return nil, fmt.Errorf("natsembed: route %q: %w", r, err)
			}
			opts.Routes = append(opts.Routes, u)
		}
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsembed: %w", err)
	}
	go s.Start() // Start returns once the listeners run; its own goroutines end at Shutdown
	timeout := o.StartTimeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	if !s.ReadyForConnections(timeout) {
		s.Shutdown()
		s.WaitForShutdown()
		return nil, fmt.Errorf("natsembed: not accepting connections after %v: %w", timeout, ErrNotReady)
	}
	return &Server{s: s}, nil
}

// URL is the client URL, e.g. nats://127.0.0.1:4222.
func (s *Server) URL() string { return s.s.ClientURL() }

// Shutdown stops the server and waits until it has stopped.
func (s *Server) Shutdown() {
	s.s.Shutdown()
	s.s.WaitForShutdown()
}
