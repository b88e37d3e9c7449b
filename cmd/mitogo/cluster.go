package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mitogo/mitogo/actors"
	"github.com/mitogo/mitogo/cluster"
	inv "github.com/mitogo/mitogo/inventory"
)

// natsOptions are the flags that reach a cluster: serve, cluster status,
// and run and call with --nats.
type natsOptions struct {
	url, tokenFile, cluster string
	id                      string        // serve --id
	leaseTTL                time.Duration // serve --lease-ttl
	replicas                int           // serve --replicas
}

func defaultTokenFile() string {
	dir, err := os.UserConfigDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "mitogo", "nats-token")
}

func (n *natsOptions) flags(fs *flag.FlagSet, urlHelp string) {
	fs.StringVar(&n.url, "nats", os.Getenv("MITOGO_NATS"), urlHelp)
	fs.StringVar(&n.tokenFile, "nats-token-file", defaultTokenFile(), "the file holding the cluster's NATS token (mitogo-nats writes it); $MITOGO_NATS_TOKEN wins")
	fs.StringVar(&n.cluster, "cluster", cmpOr(os.Getenv("MITOGO_CLUSTER"), "default"), "the cluster's name")
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// token is the cluster's NATS token: $MITOGO_NATS_TOKEN, else the token
// file's content, else none when the file does not exist.
func (n *natsOptions) token() (string, error) {
	if t := os.Getenv("MITOGO_NATS_TOKEN"); t != "" {
		return t, nil
	}
	b, err := os.ReadFile(n.tokenFile)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("--nats-token-file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

func (n *natsOptions) dial() (*cluster.Client, error) {
	tok, err := n.token()
	if err != nil {
		return nil, err
	}
	return cluster.Dial(n.url, tok, n.cluster)
}

var serveCommand = &command{
	name:    "serve",
	summary: "be a controller of a cluster: own a share of an inventory's hosts",
	usage:   "--cluster NAME [--nats URL] -i INVENTORY",
	help: `Joins the cluster NAME on NATS (default nats://127.0.0.1:4222, as mitogo-nats
listens), claims the inventory's hosts that no member owns, connects them,
and serves calls to them from any member or client (mitogo run/call --nats)
until interrupted; then it releases its hosts to the other members.

Examples:
  mitogo-nats &                 # one machine: the cluster's NATS server
  mitogo serve --cluster ops -i hosts.txt --id a &
  mitogo serve --cluster ops -i hosts.txt --id b &
  mitogo run --nats nats://127.0.0.1:4222 --cluster ops -t web1 -- uptime
`,
	flags: func(fs *flag.FlagSet, e *env, o *options) {
		o.connectFlags(fs, e, false)
		fs.StringVar(&o.fleet.inventory, "i", "", "the inventory of the hosts this controller may own")
		o.nats.flags(fs, "the NATS server URLs, comma-separated (default nats://127.0.0.1:4222)")
		fs.StringVar(&o.nats.id, "id", "", "this member's name in the cluster (default HOSTNAME-PID)")
		fs.IntVar(&o.nats.replicas, "replicas", 1, "the cluster buckets' JetStream replicas: 3 on a routed cluster of three mitogo-nats")
		fs.DurationVar(&o.nats.leaseTTL, "lease-ttl", 10*time.Second, "how long a host's lease outlives its owner: the bound on failover")
	},
	run: serveMain,
}

func serveMain(ctx context.Context, e *env, o *options, args []string) error {
	if len(args) > 0 {
		return usagef("serve takes no arguments (got %q)", args)
	}
	if o.fleet.inventory == "" {
		return usagef("serve needs an inventory (-i FILE)")
	}
	list, err := readInventory(o.fleet.inventory)
	if err != nil {
		return err
	}
	plans, err := o.plan(list.targets)
	if err != nil {
		return err
	}
	byName := map[string]*planned{}
	var hosts []*inv.Host
	for _, p := range plans {
		byName[p.t.name] = p
		hosts = append(hosts, &inv.Host{Name: p.t.name, Chain: p.t.chain, Settings: p.t.settings})
	}
	tok, err := o.nats.token()
	if err != nil {
		return err
	}
	r, err := actors.NewRouter()
	if err != nil {
		return err
	}
	defer r.Shutdown(context.Background())
	jctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	c, err := cluster.Join(jctx, cluster.Config{
		Cluster: o.nats.cluster, ID: o.nats.id, NATS: cmpOr(o.nats.url, "nats://127.0.0.1:4222"), Token: tok,
		Hosts: hosts, Router: r, LeaseTTL: o.nats.leaseTTL, Replicas: o.nats.replicas, ConnectTimeout: o.connectTimeout,
		Connect: func(ctx context.Context, r *actors.Router, h *inv.Host) (*actors.Context, error) {
			// The last hop runs the calls; shutting it down leaves the
			// hops before it until this controller exits.
			_, last, err := byName[h.Name].connect(ctx, r)
			return last, err
		},
	})
	cancel()
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "mitogo serve: member %s of cluster %s, %d hosts in its inventory\n", c.ID(), o.nats.cluster, len(hosts))
	<-ctx.Done()
	cctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return c.Close(cctx)
}

var clusterCommand = &command{
	name:    "cluster",
	summary: "show a cluster: cluster status",
	usage:   "status [--json]",
	help: `Prints the cluster's members (hosts driven, takeovers, the last one) and
every host's lease (owner, epoch, since when, ready or connecting).
`,
	flags: clusterFlags,
	run:   clusterMain,
}

func clusterFlags(fs *flag.FlagSet, e *env, o *options) {
	o.nats.flags(fs, "the NATS server URLs, comma-separated (default nats://127.0.0.1:4222)")
	fs.BoolVar(&o.json, "json", false, "print JSON")
}

func clusterMain(ctx context.Context, e *env, o *options, args []string) error {
	if len(args) == 0 || args[0] != "status" {
		return usagef("want: mitogo cluster status")
	}
	if len(args) > 1 { // flags after the subcommand
		fs := flag.NewFlagSet("cluster status", flag.ContinueOnError)
		fs.SetOutput(e.stderr)
		clusterFlags(fs, e, o)
		if err := fs.Parse(args[1:]); err != nil {
			return usagef("%v", err)
		}
		if fs.NArg() > 0 {
			return usagef("cluster status takes no arguments (got %q)", fs.Args())
		}
	}
	o.nats.url = cmpOr(o.nats.url, "nats://127.0.0.1:4222")
	cl, err := o.nats.dial()
	if err != nil {
		return err
	}
	defer cl.Close()
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := cl.Status(sctx)
	if err != nil {
		return err
	}
	if o.json {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "cluster %s: %d members, %d leases\n\nMEMBER\tHOST\tPID\tHOSTS\tTAKEOVERS\tLAST TAKEOVER\tUP SINCE\n", st.Cluster, len(st.Members), len(st.Leases))
	for _, m := range st.Members {
		last := "-"
		if !m.LastTakeover.IsZero() {
			last = m.LastTakeover.Format(time.RFC3339)
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%s\t%s\n", m.ID, m.Hostname, m.PID, m.Hosts, m.Takeovers, last, m.Started.Format(time.RFC3339))
	}
	fmt.Fprintf(w, "\nHOST\tOWNER\tEPOCH\tSINCE\tSTATE\n")
	for _, l := range st.Leases {
		state := "connecting"
		if l.Ready {
			state = "ready"
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\n", l.Host, l.Owner, l.Epoch, l.Since.Format(time.RFC3339), state)
	}
	return w.Flush()
}

// clusterTargets are the -t values of run and call with --nats: inventory
// host names of the cluster.
func clusterTargets(o *options) ([]string, error) {
	if len(o.targets) == 0 {
		return nil, usagef("with --nats, -t names the cluster's hosts (inventory names)")
	}
	if o.fleet.inventory != "" {
		return nil, usagef("with --nats, the cluster's members hold the inventory: give hosts with -t, not -i")
	}
	var hosts []string
	for _, t := range o.targets {
		for _, h := range strings.Split(t, ",") {
			if h = strings.TrimSpace(h); h != "" {
				hosts = append(hosts, h)
			}
		}
	}
	return hosts, nil
}
