package cluster

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/mitogo/mitogo/inventory"
	"github.com/nats-io/nats.go/jetstream"
)

// SetHosts replaces the hosts this controller may own, as an edited
// inventory does: new hosts become claimable at once; a host that is gone
// is handed over (its calls in flight finish, its context is shut down,
// its lease released: a member that still has it claims it); a host whose
// chain or settings changed is handed over too, and claimed again (here
// or by another member) over its new chain. A host whose connect failed
// here is claimed again at once over its new entry (or by another member,
// when removed): its claim backoff (see Controller.ended) is cleared, and
// the lease the failed connect left to lapse is deleted. It returns the
// names added, removed and changed.
func (c *Controller) SetHosts(hosts []*inventory.Host) (added, removed, changed []string) {
	next := make(map[string]*inventory.Host, len(hosts))
	for _, h := range hosts {
		next[h.Name] = h
	}
	c.mu.Lock()
	var runs []*hostRun
	var lapsing []string // hosts whose lease is this member's without a runner: a failed connect's
	for name, old := range c.inv {
		h, ok := next[name]
		switch {
		case !ok:
			removed = append(removed, name)
		case !sameHost(h, old):
			changed = append(changed, name)
		default:
			continue
		}
		delete(c.backoff, name)
		if hr, ok := c.running[name]; ok {
			runs = append(runs, hr)
		} else if c.view[name].Owner == c.id {
			lapsing = append(lapsing, name)
		}
	}
	for name := range next {
		if _, ok := c.inv[name]; !ok {
			added = append(added, name)
			delete(c.backoff, name)
		}
	}
	c.inv = next
	c.mu.Unlock()
	// A runner keeps the *inventory.Host it started with; the one that
	// claims the host next takes the new one from c.inv.
	for _, hr := range runs {
		hr.handOver(WhyInventory, defaultGrace)
	}
	for _, name := range lapsing {
		c.dropLapsing(name)
	}
	slices.Sort(added)
	slices.Sort(removed)
	slices.Sort(changed)
	if len(added)+len(removed)+len(changed) > 0 {
		c.log.Info("inventory changed", "added", added, "removed", removed, "changed", changed)
		c.poke()
	}
	return added, removed, changed
}

// dropLapsing deletes the lease of a host this member holds without a
// runner: a failed connect's, left to lapse to space the next attempt,
// which an inventory change makes moot. A lease claimed meanwhile (a new
// revision) is left alone.
func (c *Controller) dropLapsing(name string) {
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.LeaseTTL/3)
	defer cancel()
	e, err := c.leases.Get(ctx, token(name))
	if err != nil {
		return
	}
	var l lease
	if jsonUnmarshal(e.Value(), &l) != nil || l.Owner != c.id {
		return
	}
	c.mu.Lock()
	_, running := c.running[name]
	c.mu.Unlock()
	if running {
		return
	}
	if err := c.leases.Delete(ctx, token(name), jetstream.LastRevision(e.Revision())); err != nil {
		c.log.Debug("the lease of a failed connect is left to lapse", "host", name, "error", err)
	}
}

// sameHost reports whether two inventory entries of a host connect alike.
func sameHost(a, b *inventory.Host) bool {
	return a.Chain == b.Chain && maps.Equal(a.Settings, b.Settings)
}

// Reload makes the controller check its inventory file now (mitogo serve
// calls it on SIGHUP); it does not wait for the check.
func (c *Controller) Reload() {
	select {
	case c.reload <- struct{}{}:
	default:
	}
}

// reloadLoop watches Config.InventoryFile: every ReloadInterval it
// compares the file's size and modification time with the last ones
// seen, and when they differ (or on Reload) its content's hash with the
// last applied; a new content is read with ReadInventory and applied with
// SetHosts. A file that cannot be read or parsed leaves the inventory as
// it was, with a warning.
func (c *Controller) reloadLoop() {
	path := c.cfg.InventoryFile
	t := time.NewTicker(cmp.Or(c.cfg.ReloadInterval, 2*time.Second))
	defer t.Stop()
	var size int64
	var mtime time.Time
	var sum []byte
	if b, err := os.ReadFile(path); err == nil { // what Config.Hosts came from
		h := sha256.Sum256(b)
		sum = h[:]
		if fi, err := os.Stat(path); err == nil {
			size, mtime = fi.Size(), fi.ModTime()
		}
	}
	for {
		forced := false
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		case <-c.reload:
			forced = true
		}
		fi, err := os.Stat(path)
		if err != nil {
			c.log.Warn("inventory not reloaded", "file", path, "error", err)
			continue
		}
		if !forced && fi.Size() == size && fi.ModTime().Equal(mtime) {
			continue
		}
		size, mtime = fi.Size(), fi.ModTime()
		b, err := os.ReadFile(path)
		if err != nil {
			c.log.Warn("inventory not reloaded", "file", path, "error", err)
			continue
		}
		h := sha256.Sum256(b)
		if bytes.Equal(h[:], sum) {
			continue
		}
		hosts, err := c.cfg.ReadInventory(path)
		if err != nil {
			c.log.Warn("inventory not reloaded: the file is kept as it was before", "file", path, "error", err)
			continue
		}
		sum = h[:]
		c.SetHosts(hosts)
	}
}
