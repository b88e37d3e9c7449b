package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The cluster's buckets, and what a controller does when they are lost:
// a NATS server restarted with an empty store (memory storage, a fresh
// store directory, a new NATS cluster) has none. Every member checks
// that they exist every LeaseTTL/3 and when its lease watch ends, and
// creates a missing one; members that do so at once all end up on the
// one bucket JetStream keeps under that name.
//
// The lease bucket's generation is the time JetStream created it, in
// nanoseconds (by the clock of the server, or of the routed cluster's
// meta leader, that created it; kept in the store with the bucket). A
// new bucket numbers its revisions from 1 again, and the fencing tokens
// (fenceToken) order by generation first, so that the hosts take the
// tokens of the new bucket over those of the lost one. The leases are
// gone with the bucket: each member claims again the hosts it drove,
// keeping their tokens and contexts, and the others leave them a lease
// TTL to do so (see firstClaimer). The members do not choose the
// generation: members that start together must create a bucket with one
// config (see openBucket).

// openBucket opens or creates one of the cluster's KV buckets: entries
// age out TTL after their last write, and a marker tells watchers when
// one does. A bucket that exists is bound as it is, and updated only
// when its TTL, replicas or history differ: on a routed JetStream cluster
// (2.15), members that start together and all create-or-update the same
// replicated bucket hang in the update until their deadline, while
// concurrent creates of one config all succeed. history is how many
// entries a key keeps; a lease bucket made by a build that kept one is
// updated to two once, by the first member of a newer build.
func openBucket(ctx context.Context, js jetstream.JetStream, name string, cfg Config, history uint8) (jetstream.KeyValue, error) {
	want := bucketConfig(name, cfg, history)
	kv, _, err := bindBucket(ctx, js, name, cfg, history)
	if err == nil {
		var st jetstream.KeyValueStatus
		if st, err = kv.Status(ctx); err == nil {
			if bs, ok := st.(*jetstream.KeyValueBucketStatus); ok && (bs.TTL() != want.TTL ||
				bs.StreamInfo().Config.Replicas != want.Replicas || bs.History() != int64(want.History)) {
				kv, err = js.UpdateKeyValue(ctx, want)
			}
		}
	}
	if errors.Is(err, jetstream.ErrLimitMarkerTTLNotSupported) {
		return nil, fmt.Errorf("bucket %s: %w", name, ErrServerTooOld)
	}
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", name, err)
	}
	return kv, nil
}

// bucketConfig is a bucket's configuration.
func bucketConfig(name string, cfg Config, history uint8) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket: name, History: history, TTL: cfg.LeaseTTL, LimitMarkerTTL: cfg.LeaseTTL, Replicas: cfg.Replicas,
	}
}

// bindBucket binds a bucket, creating it when it is missing; it reports
// whether this call created it. A bucket another member created
// meanwhile, with another config, is bound.
func bindBucket(ctx context.Context, js jetstream.JetStream, name string, cfg Config, history uint8) (jetstream.KeyValue, bool, error) {
	kv, err := js.KeyValue(ctx, name)
	created := false
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, bucketConfig(name, cfg, history))
		created = err == nil
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, name)
		}
	}
	if err != nil {
		return nil, false, err
	}
	return kv, created, nil
}

// bucketGen reads a bucket's generation: the time it was created, in
// nanoseconds.
func bucketGen(ctx context.Context, kv jetstream.KeyValue) (uint64, error) {
	st, err := kv.Status(ctx)
	if err != nil {
		return 0, fmt.Errorf("bucket %s: %w", kv.Bucket(), err)
	}
	bs, ok := st.(*jetstream.KeyValueBucketStatus)
	if !ok {
		return 0, fmt.Errorf("bucket %s: status of type %T: %w", kv.Bucket(), st, errNoGeneration)
	}
	created := bs.StreamInfo().Created
	if created.UnixNano() <= 0 {
		return 0, fmt.Errorf("bucket %s: created %v: %w", kv.Bucket(), created, errNoGeneration)
	}
	return uint64(created.UnixNano()), nil
}

// errNoGeneration is the cause of a bucket whose creation time is unknown.
var errNoGeneration = errors.New("no creation time to take a generation from")

// bucketLoop checks the cluster's buckets every LeaseTTL/3.
func (c *Controller) bucketLoop() {
	t := time.NewTicker(c.cfg.LeaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		if !c.online.Load() {
			continue
		}
		ctx, cancel := context.WithTimeout(c.ctx, c.cfg.LeaseTTL)
		if err := c.checkBuckets(ctx); err != nil && c.ctx.Err() == nil {
			c.log.Debug("checking the buckets", "error", err)
		}
		cancel()
	}
}

// checkBuckets creates the cluster's buckets when they are missing, and
// when the lease bucket is not the one this member knew (it created it
// anew, or another member did), forgets the leases of the lost one
// (bucketLost).
func (c *Controller) checkBuckets(ctx context.Context) error {
	c.bucketMu.Lock()
	defer c.bucketMu.Unlock()
	known := c.gen.Load()
	kv, created, err := bindBucket(ctx, c.js, leaseBucket(c.cfg.Cluster), c.cfg, leaseHistory)
	if err != nil {
		return fmt.Errorf("bucket %s: %w", leaseBucket(c.cfg.Cluster), err)
	}
	gen, err := bucketGen(ctx, kv)
	if err != nil {
		return err
	}
	if gen != known {
		c.gen.Store(gen)
		if created {
			c.log.Warn("lease bucket lost (NATS store reset?); recreated", "generation", gen)
		} else {
			c.log.Warn("lease bucket lost (NATS store reset?); recreated by another member", "generation", gen)
		}
		c.bucketLost()
	}
	if _, created, err = bindBucket(ctx, c.js, memberBucket(c.cfg.Cluster), c.cfg, 1); err != nil {
		return fmt.Errorf("bucket %s: %w", memberBucket(c.cfg.Cluster), err)
	}
	if created || gen != known {
		c.touch() // advertise in the new member bucket now
	}
	return nil
}

// bucketLost forgets the leases of a lost lease bucket: each host of the
// view is unowned from now, its last owner is the first to claim it (as
// when a lease ages out, even before that member advertises itself in
// the new member bucket), and the others wait a lease TTL for it. The
// lease watch is started again on the new bucket, from its first entry.
func (c *Controller) bucketLost() {
	now := time.Now()
	c.mu.Lock()
	for host, l := range c.view {
		c.prevOwner[host], c.prevWhy[host] = l.Owner, ""
		c.lapsed[host] = true
		c.resetLost[host] = true
		c.unowned[host] = now
		delete(c.view, host)
		delete(c.seenAt, host)
	}
	w := c.watcher
	c.mu.Unlock()
	if w != nil {
		_ = w.Stop() // watchLoop watches again
	}
	c.poke()
}
