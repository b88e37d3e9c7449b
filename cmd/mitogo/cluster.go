package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mitogo/mitogo/actors"
	"github.com/mitogo/mitogo/cluster"
	inv "github.com/mitogo/mitogo/inventory"
	"github.com/nats-io/nats.go"
)

// natsOptions are the flags that reach a cluster: serve, cluster status,
// and run and call with --nats.
type natsOptions struct {
	url, tokenFile, cluster string
	clusterGiven            bool                    // --cluster was on the command line
	id                      string                  // serve --id
	leaseTTL                time.Duration           // serve --lease-ttl
	replicas                int                     // serve --replicas
	reloadEvery             time.Duration           // serve --reload-interval
	handover                cluster.HandoverOptions // cluster drain, rebalance
}

func defaultTokenFile() string {
	dir, err := os.UserConfigDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "mitogo", "nats-token")
}

// defaultNATS is the NATS URL of serve, cluster, and run and call with
// --cluster, when neither --nats nor $MITOGO_NATS gives one: where
// mitogo-nats listens.
const defaultNATS = "nats://127.0.0.1:4222"

// clusterTargetHelp documents run and call through a cluster.
const clusterTargetHelp = `
Through a cluster: with --nats URL, or --cluster NAME (then at
` + defaultNATS + `), -t names hosts of the cluster's inventories
(-t a,b or -t a -t b), and each runs on its host through the controller
that owns it (mitogo serve); -i is not taken. A host no controller owns,
or could connect to, counts as unreachable (exit 255).
` + natsEnvHelp

// natsEnvHelp documents the environment the cluster flags read, for the
// --help of the commands that take them.
const natsEnvHelp = `
Environment: MITOGO_NATS is the default of --nats; MITOGO_NATS_TOKEN is
the NATS token (over --nats-token-file); MITOGO_CLUSTER is the default of
--cluster (it names the cluster; it does not make run or call use one).
`

func (n *natsOptions) flags(fs *flag.FlagSet, urlHelp string) {
	fs.StringVar(&n.url, "nats", os.Getenv("MITOGO_NATS"), urlHelp+" ($MITOGO_NATS)")
	fs.StringVar(&n.tokenFile, "nats-token-file", defaultTokenFile(), "the file holding the cluster's NATS token (mitogo-nats writes it); $MITOGO_NATS_TOKEN wins")
	n.cluster, n.clusterGiven = cmpOr(os.Getenv("MITOGO_CLUSTER"), "default"), false
	fs.Var(clusterFlag{n}, "cluster", "the cluster's `NAME` (default $MITOGO_CLUSTER, else \"default\")")
}

// clusterFlag is --cluster: it records that it was given.
type clusterFlag struct{ n *natsOptions }

// String is the name given, "" when none was (the usage says the
// default).
func (f clusterFlag) String() string {
	if f.n == nil || !f.n.clusterGiven {
		return ""
	}
	return f.n.cluster
}

func (f clusterFlag) Set(v string) error {
	f.n.cluster, f.n.clusterGiven = v, true
	return nil
}

// use reports whether run or call go through a cluster: when --nats (or
// $MITOGO_NATS) gives its URL, or --cluster names one, then at the
// default URL.
func (n *natsOptions) use() bool {
	if n.url == "" && n.clusterGiven {
		n.url = defaultNATS
	}
	return n.url != ""
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// token is the cluster's NATS token: $MITOGO_NATS_TOKEN, else the token
// file's content, else none when the file does not exist. A file that
// cannot be read is an error naming it.
func (n *natsOptions) token() (string, error) {
	if t := os.Getenv("MITOGO_NATS_TOKEN"); t != "" {
		return t, nil
	}
	b, err := os.ReadFile(n.tokenFile)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading the NATS token file (--nats-token-file): %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// refused explains an error of NATS refusing the connection's token: it
// names where the token came from, or that there was none and why.
// Other errors are returned unchanged.
func (n *natsOptions) refused(err error) error {
	if !errors.Is(err, nats.ErrAuthorization) {
		return err
	}
	if os.Getenv("MITOGO_NATS_TOKEN") != "" {
		return fmt.Errorf("NATS refused the token in $MITOGO_NATS_TOKEN: %w", err)
	}
	if n.tokenFile == "" {
		return fmt.Errorf("NATS wants a token, and none was given (--nats-token-file or $MITOGO_NATS_TOKEN): %w", err)
	}
	b, rerr := os.ReadFile(n.tokenFile)
	switch {
	case errors.Is(rerr, os.ErrNotExist):
		return fmt.Errorf("NATS wants a token, and the token file %s does not exist (mitogo-nats writes it; or give --nats-token-file or $MITOGO_NATS_TOKEN): %w", n.tokenFile, err)
	case rerr == nil && strings.TrimSpace(string(b)) == "":
		return fmt.Errorf("NATS wants a token, and the token file %s is empty: %w", n.tokenFile, err)
	}
	return fmt.Errorf("NATS refused the token in %s (is it this NATS server's?): %w", n.tokenFile, err)
}

func (n *natsOptions) dial() (*cluster.Client, error) {
	tok, err := n.token()
	if err != nil {
		return nil, err
	}
	cl, err := cluster.Dial(n.url, tok, n.cluster)
	return cl, n.refused(err)
}

var serveCommand = &command{
	name:    "serve",
	summary: "be a controller of a cluster: own a share of an inventory's hosts",
	usage:   "--cluster NAME [--nats URL] -i INVENTORY",
	help: `Joins the cluster NAME on NATS (default nats://127.0.0.1:4222, as mitogo-nats
listens), claims the inventory's hosts that no member owns, connects them,
and serves calls to them from any member or client (mitogo run/call --nats)
until interrupted; then it releases its hosts to the other members. Started
before its NATS server (after a reboot, say), it says so and waits for it.

The inventory is read again when it changes, without a restart: its size
and modification time are checked every --reload-interval, and SIGHUP
checks at once. New hosts become claimable; a removed host is handed over
(its calls in flight finish, its context is shut down, its lease released);
a host whose chain or settings changed is handed over and claimed again
over its new chain. An inventory that does not parse is ignored (the
previous one stays) with a warning. Passwords are not asked for again:
hosts added later need their password from the environment (password-env).

Examples:
  mitogo-nats &                 # one machine: the cluster's NATS server
  mitogo serve --cluster ops -i hosts.txt --id a &
  mitogo serve --cluster ops -i hosts.txt --id b &
  mitogo run --nats nats://127.0.0.1:4222 --cluster ops -t web1 -- uptime
` + natsEnvHelp,
	flags: func(fs *flag.FlagSet, e *env, o *options) {
		o.connectFlags(fs, e, false)
		fs.StringVar(&o.fleet.inventory, "i", "", "the inventory of the hosts this controller may own")
		o.nats.flags(fs, "the NATS server URLs, comma-separated (default nats://127.0.0.1:4222)")
		fs.StringVar(&o.nats.id, "id", "", "this member's name in the cluster (default HOSTNAME-PID)")
		fs.IntVar(&o.nats.replicas, "replicas", 1, "the cluster buckets' JetStream replicas: 3 on a routed cluster of three mitogo-nats")
		fs.DurationVar(&o.nats.leaseTTL, "lease-ttl", 10*time.Second, "how long a host's lease outlives its owner: the bound on failover")
		fs.DurationVar(&o.nats.reloadEvery, "reload-interval", 2*time.Second, "how often the inventory file is checked for changes (SIGHUP: at once)")
	},
	run: serveMain,
}

func serveMain(ctx context.Context, e *env, o *options, args []string) error {
	if len(args) > 0 {
		return usagef("serve takes no arguments, got %q", args)
	}
	if o.fleet.inventory == "" {
		return usagef("serve needs an inventory: -i FILE")
	}
	list, err := readInventory(o.fleet.inventory)
	if err != nil {
		return err
	}
	plans, err := o.plan(list.targets)
	if err != nil {
		return err
	}
	byName := &servePlans{}
	hosts := byName.set(plans)
	readHosts := func(path string) ([]*inv.Host, error) {
		list, err := readInventory(path)
		if err != nil {
			return nil, err
		}
		// The passwords were asked for at start, if at all.
		ro := *o
		ro.askPassword, ro.askSudoPassword = false, false
		plans, err := ro.plan(list.targets)
		if err != nil {
			return nil, err
		}
		return byName.set(plans), nil
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
	// SIGHUP reloads the inventory; one that comes while joining waits.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	url := cmpOr(o.nats.url, defaultNATS)
	c, err := joinWhenReachable(ctx, e.stderr, url, func(jctx context.Context) (*cluster.Controller, error) {
		return cluster.Join(jctx, cluster.Config{
			Cluster: o.nats.cluster, ID: o.nats.id, NATS: url, Token: tok,
			Hosts: hosts, Router: r, LeaseTTL: o.nats.leaseTTL, Replicas: o.nats.replicas, ConnectTimeout: o.connectTimeout,
			Connect: func(ctx context.Context, r *actors.Router, h *inv.Host) (*actors.Context, error) {
				p := byName.get(h.Name)
				if p == nil {
					return nil, fmt.Errorf("host %s is no longer in the inventory", h.Name)
				}
				// The last hop runs the calls; the first, when it is another,
				// is shut down with it when the host is released.
				first, last, err := p.connect(ctx, r)
				if err == nil && first != last {
					cluster.Hops(ctx, first)
				}
				return last, err
			},
			InventoryFile: o.fleet.inventory, ReadInventory: readHosts, ReloadInterval: o.nats.reloadEvery,
		})
	})
	if err != nil {
		return o.nats.refused(err)
	}
	fmt.Fprintf(e.stderr, "mitogo serve: member %s of cluster %s, %s in its inventory\n", c.ID(), o.nats.cluster, plural(len(hosts), "host"))
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-hup:
			c.Reload()
		}
	}
	cctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return c.Close(cctx)
}

// joinWhenReachable joins the cluster with join. While nothing answers at
// the NATS URL (a member started before its server: a start-up order,
// after a reboot say) it says so once and tries again every 2 s until it
// joins or ctx ends; any other failure (a refused token, a bad inventory)
// is returned at once.
func joinWhenReachable(ctx context.Context, stderr io.Writer, url string, join func(context.Context) (*cluster.Controller, error)) (*cluster.Controller, error) {
	said := false
	for {
		jctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		c, err := join(jctx)
		cancel()
		if err == nil || !errors.Is(err, nats.ErrNoServers) || ctx.Err() != nil {
			return c, err
		}
		if !said {
			fmt.Fprintf(stderr, "mitogo serve: nothing answers at %s (%v); trying again every 2s\n", url, nats.ErrNoServers)
			said = true
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(2 * time.Second):
		}
	}
}

// clusterTargets are the -t values of run and call with --nats: inventory
// host names of the cluster.
func clusterTargets(o *options) ([]string, error) {
	if len(o.targets) == 0 {
		return nil, usagef("with --nats or --cluster, -t names the cluster's hosts by their inventory names")
	}
	if o.fleet.inventory != "" {
		return nil, usagef("with --nats or --cluster, the cluster's members hold the inventory: give hosts with -t, not -i")
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

// servePlans are serve's planned hosts by name, replaced when the
// inventory is read again.
type servePlans struct {
	mu     sync.Mutex
	byName map[string]*planned
}

// set replaces the plans and returns their hosts.
func (sp *servePlans) set(plans []*planned) []*inv.Host {
	m := make(map[string]*planned, len(plans))
	hosts := make([]*inv.Host, 0, len(plans))
	for _, p := range plans {
		m[p.t.name] = p
		hosts = append(hosts, &inv.Host{Name: p.t.name, Chain: p.t.chain, Settings: p.t.settings})
	}
	sp.mu.Lock()
	sp.byName = m
	sp.mu.Unlock()
	return hosts
}

func (sp *servePlans) get(name string) *planned {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.byName[name]
}
