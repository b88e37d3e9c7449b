package cluster

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mitogo/mitogo/actors"
	"github.com/mitogo/mitogo/inventory"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Connector starts the context of one inventory host, e.g. over the chain
// the inventory gives it. One that starts several hops names those before
// the context it returns with Hops, so that they end with the host's.
type Connector func(ctx context.Context, r *actors.Router, h *inventory.Host) (*actors.Context, error)

// Config configures a controller.
type Config struct {
	Cluster string // the cluster's name: letters, digits, '_' and '-'
	ID      string // this member's name, unique in the cluster; "" means hostname-pid
	NATS    string // the NATS server URLs, comma-separated
	Token   string // the cluster's NATS token ("" when the server needs none)

	Hosts   []*inventory.Host // the hosts this controller may own
	Connect Connector         // starts a host's context (required)
	Router  *actors.Router    // the router the hosts' contexts start from (required)

	// LeaseTTL is how long a host's lease outlives its owner's last
	// renewal (renewals come every LeaseTTL/3): the bound on failover,
	// plus a connect. 0 means 10s.
	LeaseTTL time.Duration
	// ConnectTimeout bounds each host's connect; 0 means 30s.
	ConnectTimeout time.Duration
	// Replicas is the JetStream replica count of the cluster's buckets:
	// 3 on a routed cluster of three or more NATS servers; 0 means 1.
	Replicas int
	Logger   *slog.Logger // nil: the router's

	// InventoryFile, when set, is the file Hosts came from: the
	// controller reads it again with ReadInventory when its content
	// changes (checked every ReloadInterval, 0 meaning 2s, and at once
	// on Reload) and applies it with SetHosts.
	InventoryFile  string
	ReadInventory  func(path string) ([]*inventory.Host, error)
	ReloadInterval time.Duration
	// Build names this member's build in its member entry (Status
	// shows it); "" means the module version and VCS revision the
	// binary carries.
	Build string
}

// Controller is one member of a cluster: it owns a share of its hosts
// through leases, drives each through a context, and serves calls to
// them from any member or client. Close leaves the cluster.
type Controller struct {
	cfg     Config
	id      string
	log     *slog.Logger
	nc      *nats.Conn
	js      jetstream.JetStream
	leases  jetstream.KeyValue
	members jetstream.KeyValue
	started time.Time

	gen      atomic.Uint64 // the lease bucket's generation as last seen (bucket.go)
	bucketMu sync.Mutex    // orders the checks of the buckets

	ctx      context.Context // ends at Close
	cancel   context.CancelFunc
	wg       sync.WaitGroup // the loops and the host runners
	connects sync.WaitGroup // the host runners' connects
	calls    sync.WaitGroup // calls being served

	online atomic.Bool // connected to NATS; while false nothing is dispatched

	mu        sync.Mutex
	inv       map[string]*inventory.Host
	running   map[string]*hostRun  // hosts this member claims, connects or drives
	view      map[string]lease     // every host's lease as last seen
	seenAt    map[string]time.Time // when a lease of view was last written (renewed), by this clock
	unowned   map[string]time.Time
	takeovers int
	lastTake  time.Time
	prevOwner map[string]string // the owner a host last had, for takeovers
	lapsed    map[string]bool   // hosts whose lease aged out rather than being deleted
	resetLost map[string]bool   // hosts whose lease was lost with its bucket (bucketLost)
	backoff   map[string]retry  // hosts whose connect failed here: not claimed again before retry.at
	prevWhy   map[string]string // why its last owner released it ("" when it lapsed)
	lastMove  *Move             // the last host this member took from another
	lastFail  *Move             // the last one it took over after a failure
	draining  bool              // Drain: claim nothing, hand everything over
	handedOff map[string]time.Time
	ctlSub    *nats.Subscription // control requests (handover.go)
	reload    chan struct{}      // asks the inventory watcher for a check (Reload)
	changed   chan struct{}      // asks the member loop to advertise now (touch)

	watcher jetstream.KeyWatcher // the lease watch that runs (watchLoop), guarded by mu

	// hops named by Connectors (Hops): how many driven hosts go through
	// each, guarded by mu.
	hopUsers map[*actors.Context]int

	wake chan struct{} // asks the reconciler for a pass
	live []string      // the members the reconciler listed last (its own)
}

// Join connects to the cluster's NATS, creates the cluster's buckets when
// they are missing and starts owning hosts.
func Join(ctx context.Context, cfg Config) (*Controller, error) {
	if err := checkClusterName(cfg.Cluster); err != nil {
		return nil, err
	}
	if cfg.Connect == nil || cfg.Router == nil {
		return nil, fmt.Errorf("cluster %s: a Connect function and a Router are required: %w", cfg.Cluster, ErrConfig)
	}
	cfg.LeaseTTL = cmp.Or(cfg.LeaseTTL, 10*time.Second)
	cfg.ConnectTimeout = cmp.Or(cfg.ConnectTimeout, 30*time.Second)
	cfg.Replicas = cmp.Or(cfg.Replicas, 1)
	if cfg.LeaseTTL < time.Second {
		return nil, fmt.Errorf("cluster %s: lease TTL %v is under 1s: %w", cfg.Cluster, cfg.LeaseTTL, ErrConfig)
	}
	if cfg.ID == "" {
		h, _ := os.Hostname()
		cfg.ID = fmt.Sprintf("%s-%d", h, os.Getpid())
	}
	c := &Controller{cfg: cfg, id: cfg.ID, started: time.Now(), live: []string{cfg.ID},
		inv: map[string]*inventory.Host{}, running: map[string]*hostRun{}, view: map[string]lease{}, seenAt: map[string]time.Time{},
		unowned: map[string]time.Time{}, prevOwner: map[string]string{}, lapsed: map[string]bool{}, resetLost: map[string]bool{},
		backoff: map[string]retry{}, prevWhy: map[string]string{}, handedOff: map[string]time.Time{},
		wake: make(chan struct{}, 1), reload: make(chan struct{}, 1), changed: make(chan struct{}, 1)}
	cfg.Build = cmp.Or(cfg.Build, buildName())
	c.cfg.Build = cfg.Build
	c.log = cmp.Or(cfg.Logger, cfg.Router.Logger()).With("cluster", cfg.Cluster, "member", cfg.ID)
	for _, h := range cfg.Hosts {
		c.inv[h.Name] = h
	}
	nc, err := nats.Connect(cfg.NATS, nats.Token(cfg.Token), nats.Name("mitogo controller "+cfg.ID),
		nats.MaxReconnects(-1), nats.ReconnectWait(200*time.Millisecond),
		nats.DisconnectErrHandler(func(nc *nats.Conn, _ error) {
			if !nc.IsClosed() {
				c.suspend()
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) { c.online.Store(true); c.poke() }))
	if err != nil {
		return nil, fmt.Errorf("cluster %s: connecting to NATS at %s: %w", cfg.Cluster, cfg.NATS, err)
	}
	c.nc = nc
	c.online.Store(true)
	fail := func(err error) (*Controller, error) {
		nc.Close()
		return nil, fmt.Errorf("cluster %s: member %s: %w", cfg.Cluster, cfg.ID, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return fail(err)
	}
	c.js = js
	if c.leases, err = openBucket(ctx, js, leaseBucket(cfg.Cluster), cfg, leaseHistory); err != nil {
		return fail(err)
	}
	gen, err := bucketGen(ctx, c.leases)
	if err != nil {
		return fail(err)
	}
	c.gen.Store(gen)
	if c.members, err = openBucket(ctx, js, memberBucket(cfg.Cluster), cfg, 1); err != nil {
		return fail(err)
	}
	if err := c.checkMembers(ctx); err != nil {
		return fail(err)
	}
	if err := c.advertise(ctx); err != nil {
		return fail(err)
	}
	// The watch lives as long as the controller, not as ctx: nats.go
	// recreates a watch's consumer with the context it was made with
	// (after a gap or missed heartbeats), and gives up on one that ended.
	c.ctx, c.cancel = context.WithCancel(context.Background())
	watcher, err := c.leases.WatchAll(c.ctx)
	if err != nil {
		c.cancel()
		return fail(fmt.Errorf("watching the leases: %w", err))
	}
	// The watcher sends every current lease, then nil: the view is
	// complete before the first reconcile pass claims anything.
	for e := range watcher.Updates() {
		if e == nil {
			break
		}
		c.see(e)
	}
	if c.ctlSub, err = nc.Subscribe(memberSubject(cfg.Cluster, c.id), c.onControl); err != nil {
		watcher.Stop()
		c.cancel()
		return fail(fmt.Errorf("subscribing to control requests: %w", err))
	}
	c.wg.Go(func() { c.watchLoop(watcher) })
	c.wg.Go(c.memberLoop)
	c.wg.Go(c.reconcileLoop)
	c.wg.Go(c.bucketLoop)
	if cfg.InventoryFile != "" && cfg.ReadInventory != nil {
		c.wg.Go(c.reloadLoop)
	}
	return c, nil
}

// leaseHistory is how many entries the lease bucket keeps a host: a
// lease released on purpose is a put saying why, then a delete, and
// watchers must not miss the put because the delete already replaced
// it.
const leaseHistory = 2

// ID is this member's name.
func (c *Controller) ID() string { return c.id }

// Client returns a client that shares the controller's NATS connection,
// so that a member calls any host of the cluster as a client does.
func (c *Controller) Client() *Client { return &Client{nc: c.nc, cluster: c.cfg.Cluster, from: c.id} }

// Owned returns the names of the hosts this member drives now.
func (c *Controller) Owned() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for name, hr := range c.running {
		if hr.active() {
			out = append(out, name)
		}
	}
	return out
}

// Close leaves the cluster: it stops serving calls, shuts down its hosts'
// contexts and releases their leases so that the other members take them
// over at once, and closes its NATS connection. Connects in flight are
// canceled and not waited for past ctx: one whose Connector ignores its
// context finishes on its own, and the context it makes is shut down.
func (c *Controller) Close(ctx context.Context) error {
	_ = c.ctlSub.Unsubscribe()
	c.cancel()
	runners := waited(&c.wg, &c.calls)
	connects := waited(&c.connects)
	var err error
	select {
	case <-runners:
		select {
		case <-connects:
		case <-ctx.Done():
			err = fmt.Errorf("cluster %s: member %s: closing: a connect still runs: %w", c.cfg.Cluster, c.id, ctx.Err())
		}
	case <-ctx.Done():
		err = fmt.Errorf("cluster %s: member %s: closing: %w", c.cfg.Cluster, c.id, ctx.Err())
	}
	dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_ = c.members.Delete(dctx, token(c.id))
	cancel()
	c.nc.Close()
	<-runners // they end once their contexts' shutdowns return, which are bounded
	return err
}

// waited returns a channel closed once every group's Wait returned.
func waited(groups ...*sync.WaitGroup) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		for _, g := range groups {
			g.Wait()
		}
		close(done)
	}()
	return done
}

// suspend stops dispatching at once when the NATS connection is lost: the
// leases cannot be renewed, so another member may own the hosts soon.
func (c *Controller) suspend() {
	c.online.Store(false)
	c.log.Warn("NATS connection lost: dispatch suspended")
}

func (c *Controller) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// checkMembers refuses to join a cluster whose members speak another
// protocol version, or where a live member already has this ID.
func (c *Controller) checkMembers(ctx context.Context) error {
	ms, err := listMembers(ctx, c.members)
	if err != nil {
		return err
	}
	for _, m := range ms {
		if m.Version != ProtocolVersion {
			return fmt.Errorf("member %s speaks cluster protocol %d, this build %d: %w", m.ID, m.Version, ProtocolVersion, ErrVersion)
		}
		if m.ID == c.id {
			if err := c.awaitNamesake(ctx, m); err != nil {
				return err
			}
		}
	}
	return nil
}

// awaitNamesake waits for the entry of a member with this member's name
// to age out: it is a controller of that name that was killed or lost,
// and this one its restart. A live member renews its entry every third of
// the TTL, so an entry that is written again, or outlives a TTL, is a
// live namesake: joining is refused.
func (c *Controller) awaitNamesake(ctx context.Context, m Member) error {
	live := fmt.Errorf("a live member is already named %s (pid %d on %s): %w", m.ID, m.PID, m.Hostname, ErrConfig)
	w, err := c.members.Watch(ctx, token(c.id))
	if err != nil {
		return fmt.Errorf("watching the entry of member %s: %w", c.id, err)
	}
	defer w.Stop()
	timer := time.NewTimer(c.cfg.LeaseTTL + c.cfg.LeaseTTL/3)
	defer timer.Stop()
	var first uint64
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the entry of an earlier member %s to age out: %w", c.id, ctx.Err())
		case <-timer.C:
			return live
		case e, ok := <-w.Updates():
			switch {
			case !ok:
				return fmt.Errorf("watching the entry of member %s: the watch ended", c.id)
			case e == nil: // the current entry, if any, came first
				if first == 0 {
					return nil // gone already
				}
			case e.Operation() != jetstream.KeyValuePut:
				return nil // aged out or deleted: the namesake is gone
			case first == 0:
				first = e.Revision()
			case e.Revision() != first:
				return live // renewed
			}
		}
	}
}

// advertise writes this member's entry in the member bucket.
func (c *Controller) advertise(ctx context.Context) error {
	hn, _ := os.Hostname()
	c.mu.Lock()
	m := Member{ID: c.id, Hostname: hn, PID: os.Getpid(), Version: ProtocolVersion, Started: c.started,
		Takeovers: c.takeovers, LastTakeover: c.lastTake, Build: c.cfg.Build, Draining: c.draining,
		LastMove: c.lastMove, LastFailover: c.lastFail}
	for _, hr := range c.running {
		if hr.active() {
			m.Hosts++
		}
	}
	for _, name := range sortedKeys(c.backoff) {
		if b := c.backoff[name]; b.err != "" {
			m.ConnectErrors = append(m.ConnectErrors, ConnectError{Host: name, Error: b.err, At: b.tried})
		}
	}
	c.mu.Unlock()
	b, _ := jsonMarshal(m)
	if _, err := c.members.Put(ctx, token(c.id), b); err != nil {
		return fmt.Errorf("advertising member %s: %w", c.id, err)
	}
	return nil
}

// memberLoop renews this member's entry.
func (c *Controller) memberLoop() {
	t := time.NewTicker(c.cfg.LeaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		case <-c.changed:
		}
		ctx, cancel := context.WithTimeout(c.ctx, c.cfg.LeaseTTL)
		if err := c.advertise(ctx); err != nil && c.ctx.Err() == nil {
			c.log.Warn("member entry not renewed", "error", err)
		}
		cancel()
	}
}

// watchLoop keeps the view of the leases and wakes the reconciler when
// one is deleted or ages out: its host needs an owner. A watch that ends
// while the controller runs (nats.go closes it when it cannot recreate
// its consumer, e.g. after a NATS server restart) is started again, so
// that the controller is never left blind.
func (c *Controller) watchLoop(w jetstream.KeyWatcher) {
	for {
		c.follow(w)
		w.Stop()
		if c.ctx.Err() != nil {
			return
		}
		c.log.Warn("the lease watch ended; watching again")
		if w = c.rewatch(); w == nil {
			return
		}
	}
}

// follow applies a watch's updates until it ends or the controller
// closes.
func (c *Controller) follow(w jetstream.KeyWatcher) {
	c.mu.Lock()
	c.watcher = w
	c.mu.Unlock()
	for {
		select {
		case <-c.ctx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			if e != nil && c.see(e) {
				c.poke()
			}
		}
	}
}

// rewatch starts a new watch of the leases, trying again with a growing
// pause until one starts or the controller closes (nil then). The new
// watch sends every current lease first: a host of the view that is not
// among them lost its lease while the controller was blind, and is seen
// as released.
func (c *Controller) rewatch() jetstream.KeyWatcher {
	pause := 100 * time.Millisecond
	for {
		// The watch may have ended because the bucket is gone, or was
		// created anew: then the view's leases are lost with it.
		ctx, cancel := context.WithTimeout(c.ctx, c.cfg.LeaseTTL)
		err := c.checkBuckets(ctx)
		cancel()
		var w jetstream.KeyWatcher
		if err == nil {
			w, err = c.leases.WatchAll(c.ctx)
		}
		if err == nil {
			current, ok := c.snapshot(w)
			if ok {
				c.mu.Lock()
				for host, l := range c.view {
					if !current[host] {
						c.prevOwner[host], c.prevWhy[host] = l.Owner, l.Handover
						c.lapsed[host] = false // released or aged out: which, the watch did not say
						delete(c.view, host)
						delete(c.seenAt, host)
					}
				}
				c.mu.Unlock()
				c.poke()
				return w
			}
			w.Stop()
			err = errors.New("the watch ended before it listed the leases")
		}
		if c.ctx.Err() != nil {
			return nil
		}
		c.log.Warn("watching the leases again", "error", err, "retry in", pause)
		select {
		case <-c.ctx.Done():
			return nil
		case <-time.After(pause/2 + rand.N(pause/2)):
		}
		pause = min(2*pause, c.cfg.LeaseTTL/3)
	}
}

// snapshot applies a new watch's current leases, up to the nil that ends
// them, and returns the hosts that have one; false when the watch ended
// or the controller closed first.
func (c *Controller) snapshot(w jetstream.KeyWatcher) (map[string]bool, bool) {
	current := map[string]bool{}
	for {
		select {
		case <-c.ctx.Done():
			return nil, false
		case e, ok := <-w.Updates():
			switch {
			case !ok:
				return nil, false
			case e == nil:
				return current, true
			}
			c.see(e)
			if e.Operation() == jetstream.KeyValuePut {
				current[untoken(e.Key())] = true
			}
		}
	}
}

// see records one lease update; it reports a lease gone.
func (c *Controller) see(e jetstream.KeyValueEntry) bool {
	host := untoken(e.Key())
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.Operation() != jetstream.KeyValuePut {
		if l, ok := c.view[host]; ok {
			c.prevOwner[host], c.prevWhy[host] = l.Owner, l.Handover
		}
		c.lapsed[host] = e.Operation() == jetstream.KeyValuePurge // aged out (a delete is a release)
		delete(c.resetLost, host)
		delete(c.view, host)
		delete(c.seenAt, host)
		return true
	}
	var l lease // epoch 0 while its claimer writes it
	if err := jsonUnmarshal(e.Value(), &l); len(e.Value()) > 0 && err != nil {
		c.log.Warn("unreadable lease", "host", host, "error", err)
		return false
	}
	c.view[host] = l
	c.seenAt[host] = time.Now()
	delete(c.unowned, host)
	delete(c.lapsed, host)
	delete(c.resetLost, host)
	return false
}

// reconcileLoop claims the hosts that have no owner: at once those this
// member is the first claimer of among the live members (so that
// members that start together share the hosts), the others once they
// have stayed unowned for half a TTL (their first claimer is gone or
// failing). A host that has an owner is never claimed: a joining member
// does not steal. A host whose connect failed here is not claimed again
// before its backoff ends, so that a host that cannot be reached costs
// one connect per backoff, not one per TTL.
func (c *Controller) reconcileLoop() {
	// Members that start together see each other before the first pass,
	// and so share the hosts.
	select {
	case <-c.ctx.Done():
		return
	case <-time.After(c.cfg.LeaseTTL / 3):
	}
	t := time.NewTicker(c.cfg.LeaseTTL / 4)
	defer t.Stop()
	for {
		c.reconcile()
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		case <-c.wake:
		}
	}
}

func (c *Controller) reconcile() {
	if !c.online.Load() {
		return
	}
	c.checkStale()
	// A busy machine or NATS may answer late: the pass goes on with the
	// members it listed last rather than leave hosts unclaimed.
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.LeaseTTL)
	ms, err := listMembers(ctx, c.members)
	cancel()
	if err != nil {
		if c.ctx.Err() != nil {
			return
		}
		c.log.Warn("listing members; using the last list", "error", err, "members", c.live)
	} else {
		c.live = []string{c.id}
		for _, m := range ms {
			if m.ID != c.id && !m.Draining {
				c.live = append(c.live, m.ID)
			}
		}
	}
	live := c.live
	grace := c.cfg.LeaseTTL / 2
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx.Err() != nil || c.draining {
		return
	}
	for name, t := range c.handedOff {
		if now.Sub(t) > 2*c.cfg.LeaseTTL {
			delete(c.handedOff, name)
		}
	}
	for name, h := range c.inv {
		if _, ok := c.handedOff[name]; ok {
			continue // handed over on purpose: its preferred member takes it
		}
		if _, ok := c.running[name]; ok {
			continue
		}
		if _, ok := c.view[name]; ok {
			continue
		}
		since, seen := c.unowned[name]
		if !seen {
			c.unowned[name] = now
			since = now
		}
		if b, ok := c.backoff[name]; ok && now.Before(b.at) {
			continue
		}
		wait := grace
		if c.resetLost[name] {
			wait = c.cfg.LeaseTTL // its last owner claims it again, unless it is gone
		}
		if c.firstClaimer(name, live) != c.id && now.Sub(since) < wait {
			continue
		}
		hr := newHostRun(c, h, c.prevOwner[name], c.prevWhy[name])
		c.running[name] = hr
		c.wg.Go(hr.run)
	}
}

// staleAfter is how long a lease of another member may go without a
// renewal seen before the controller reads it from the bucket: renewals
// come every LeaseTTL/3, so this is six missed ones.
func (c *Controller) staleAfter() time.Duration { return 2 * c.cfg.LeaseTTL }

// checkStale reads from the bucket each lease of another member that the
// watch has not seen renewed for staleAfter. A lease that aged out is
// normally seen as a purge marker; one whose marker never came (a routed
// JetStream cluster losing its stream leader as the lease expired) would
// otherwise stay in the view, its host claimed by no one, for good. A
// lease that is gone is taken for aged out; one that is there updates the
// view; a read that fails changes nothing (the next pass reads again).
func (c *Controller) checkStale() {
	now := time.Now()
	var stale []string
	c.mu.Lock()
	for host, l := range c.view {
		if l.Owner != c.id && now.Sub(c.seenAt[host]) > c.staleAfter() {
			stale = append(stale, host)
		}
	}
	c.mu.Unlock()
	for _, host := range stale {
		ctx, cancel := context.WithTimeout(c.ctx, c.cfg.LeaseTTL)
		e, err := c.leases.Get(ctx, token(host))
		cancel()
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted):
			c.mu.Lock()
			if l, ok := c.view[host]; ok && now.Sub(c.seenAt[host]) > c.staleAfter() {
				c.log.Warn("lease gone without a word from the watch; taken for aged out", "host", host, "owner", l.Owner)
				c.prevOwner[host], c.prevWhy[host] = l.Owner, l.Handover
				c.lapsed[host] = true
				delete(c.resetLost, host)
				delete(c.view, host)
				delete(c.seenAt, host)
			}
			c.mu.Unlock()
		case err == nil:
			c.see(e) // still held: renewed (its time is seen now), or by another owner
		}
	}
}

// firstClaimer is the member that claims an unowned host at once: the
// owner of a lease that aged out while it is still a live member (its
// renewals came late, on a busy machine or NATS: it claims the host
// again and keeps its context, rather than the host moving and being
// connected anew) or that was lost with its bucket (its owner may not
// have advertised itself in the new member bucket yet), else the
// preferred member. Called with c.mu held.
func (c *Controller) firstClaimer(host string, live []string) string {
	if prev := c.prevOwner[host]; c.lapsed[host] && prev != "" && (c.resetLost[host] || slices.Contains(live, prev)) {
		return prev
	}
	return preferred(host, live)
}

// preferred is the member that should own host among the live members:
// the highest rendezvous hash, so that a member joining or leaving moves
// the preference of its share of hosts only.
func preferred(host string, members []string) string {
	best, bestH := "", uint64(0)
	for _, m := range members {
		if v := placeScore(host, m); best == "" || v > bestH || (v == bestH && m < best) {
			best, bestH = m, v
		}
	}
	return best
}

// placeScore is the rendezvous weight of member for host: the first 8
// bytes of the SHA-256 of both, so that names differing in one character
// (c1, c2, c3) still get independent, evenly spread weights.
func placeScore(host, member string) uint64 {
	h := sha256.New()
	h.Write([]byte(host))
	h.Write([]byte{0})
	h.Write([]byte(member))
	return binary.BigEndian.Uint64(h.Sum(nil))
}

// retry is the backoff of a host whose connects failed here.
type retry struct {
	at       time.Time // not claimed here before
	failures int       // connects failed in a row
	err      string    // why the last one failed
	tried    time.Time // when it gave up
}

// ended is called by a host runner as it returns: a connect that failed
// backs the host off here for a jittered LeaseTTL/2 doubling with each
// failure in a row, up to 8 TTLs; a connect that worked clears it. A
// connect over a chain the inventory no longer gives the host says
// nothing of the new one: it leaves the backoff alone.
func (c *Controller) ended(hr *hostRun) {
	name := hr.host.Name
	c.mu.Lock()
	if c.running[name] == hr {
		delete(c.running, name)
	}
	cur, ok := c.inv[name]
	switch o := hr.outcome(); {
	case !ok || !sameHost(cur, hr.host):
	case o == connectFailed:
		b := c.backoff[name]
		b.failures++
		d := min(c.cfg.LeaseTTL/2<<min(b.failures-1, 4), 8*c.cfg.LeaseTTL)
		b.at = time.Now().Add(d/2 + rand.N(d/2+1))
		b.tried = time.Now()
		if err := hr.connectErr(); err != nil {
			// Shown after "host H: ...": without the "mitogo: " of the
			// actors errors.
			b.err = strings.TrimPrefix(err.Error(), "mitogo: ")
		}
		c.backoff[name] = b
	case o == connectWorked:
		delete(c.backoff, name)
	}
	c.mu.Unlock()
	c.poke()
	c.touch()
}

// touch has the member's entry written again soon: what it advertises
// changed.
func (c *Controller) touch() {
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// tookOver records that this member took a host over from another
// owner, which released it for why ("" when its lease lapsed).
func (c *Controller) tookOver(host, prev, why string) {
	mv := &Move{Host: host, From: prev, To: c.id, Why: cmp.Or(why, WhyFailover), At: time.Now()}
	c.mu.Lock()
	c.takeovers++
	c.lastTake = mv.At
	c.lastMove = mv
	if mv.Why == WhyFailover {
		c.lastFail = mv
	}
	c.mu.Unlock()
	c.touch()
	c.log.Info("took over host", "host", host, "previous owner", prev, "why", mv.Why)
}

func listMembers(ctx context.Context, kv jetstream.KeyValue) ([]Member, error) {
	lister, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing members: %w", err)
	}
	defer lister.Stop()
	var out []Member
	for k := range lister.Keys() {
		e, err := kv.Get(ctx, k)
		if err != nil {
			continue // aged out meanwhile
		}
		var m Member
		if jsonUnmarshal(e.Value(), &m) == nil {
			out = append(out, m)
		}
	}
	return out, nil
}
