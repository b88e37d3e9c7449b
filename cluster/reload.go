package cluster

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/mitogo/mitogo/inventory"
)

// SetHosts replaces the hosts this controller may own, as an edited
// inventory does: new hosts become claimable at once; a host that is gone
// is handed over (its calls in flight finish, its context is shut down,
// its lease released: a member that still has it claims it); a host whose
// chain or settings changed is handed over too, and claimed again (here
// or by another member) over its new chain. The claim backoff of a host
// whose connects failed here (see Controller.ended) is cleared when the
// host is added, removed or changed: a corrected chain is claimed as soon
// as the host has no lease, not after the old chain's backoff. It
// returns the names added, removed and changed.
func (c *Controller) SetHosts(hosts []*inventory.Host) (added, removed, changed []string) {
	next := make(map[string]*inventory.Host, len(hosts))
	for _, h := range hosts {
		next[h.Name] = h
	}
	c.mu.Lock()
	var runs []*hostRun
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
	slices.Sort(added)
	slices.Sort(removed)
	slices.Sort(changed)
	if len(added)+len(removed)+len(changed) > 0 {
		c.log.Info("inventory changed", "added", added, "removed", removed, "changed", changed)
		c.poke()
	}
	return added, removed, changed
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
