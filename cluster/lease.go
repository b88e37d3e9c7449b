package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// A host runner's writes of its lease. The bucket is the only judge of
// who holds a lease: a write that fails or whose reply comes late (a busy
// machine, a slow NATS) does not lose the lease, and may even have
// landed. So a write is tried again until the bucket answers; when an
// earlier attempt of it landed, the bucket holds this runner's own value
// (its owner and epoch are this runner's alone) and the runner takes its
// revision. The lease is lost only when it was deleted or another claim
// holds it; one that aged out and that nobody claimed since is claimed
// again.

// errLeaseLost is the cause of a lease write that found the lease
// deleted or held by another claim.
var errLeaseLost = errors.New("the lease is lost")

// claim creates the host's lease with this member as its owner, then
// writes its token: the bucket's generation and its epoch (the revision
// the creation got). It reports false when the host has an owner already
// or the claim failed; a claim that landed but could not be completed is
// released.
func (hr *hostRun) claim(ctx context.Context) bool {
	c := hr.c
	// The generation is read before and after the creation: a creation
	// that landed in a bucket created anew meanwhile (the NATS store was
	// lost) must not take a token in the generation of the lost one.
	gen, err := hr.generation(ctx)
	if err != nil {
		if ctx.Err() == nil {
			hr.log.Warn("claiming the lease: reading the bucket's generation", "error", err)
		}
		return false
	}
	l := lease{Owner: c.id, Since: time.Now()} // epoch 0: being claimed
	val, _ := jsonMarshal(l)
	sent := time.Now()
	actx, cancel := context.WithTimeout(ctx, c.cfg.LeaseTTL)
	rev, err := c.leases.Create(actx, hr.key, val)
	cancel()
	if errors.Is(err, jetstream.ErrKeyExists) {
		return false
	}
	if err != nil {
		// The creation may have landed (Since makes the value this
		// claim's own): read until the bucket answers, for as long as a
		// claim that landed would live.
		if rev, err = hr.landed(ctx, val, sent, err); err != nil {
			if ctx.Err() == nil {
				hr.log.Warn("claiming the lease", "error", err)
			}
			return false
		}
	}
	hr.mu.Lock()
	hr.rev, hr.renewed, hr.lease = rev, sent, l
	hr.mu.Unlock()
	if after, err := hr.generation(ctx); err != nil || after != gen {
		if ctx.Err() == nil {
			hr.log.Warn("claiming the lease: the bucket's generation changed, or could not be read", "before", gen, "after", after, "error", err)
		}
		hr.release()
		return false
	}
	hr.mu.Lock()
	hr.lease.Epoch, hr.lease.Gen = rev, gen
	hr.mu.Unlock()
	if err := hr.put(ctx); err != nil {
		if ctx.Err() == nil {
			hr.log.Warn("writing the lease", "error", err)
		}
		if !errors.Is(err, errLeaseLost) {
			hr.release()
		}
		return false
	}
	hr.mu.Lock()
	hr.token = fenceToken{Gen: gen, Epoch: rev}
	hr.mu.Unlock()
	return true
}

// generation reads the lease bucket's generation.
func (hr *hostRun) generation(ctx context.Context) (uint64, error) {
	actx, cancel := context.WithTimeout(ctx, hr.c.cfg.LeaseTTL)
	defer cancel()
	return bucketGen(actx, hr.c.leases)
}

// put writes the runner's lease value over the revision it last wrote,
// trying again until the bucket answers. It returns nil once the value is
// in the bucket, an error wrapping errLeaseLost when the lease was deleted
// or another claim holds it, or ctx's error.
func (hr *hostRun) put(ctx context.Context) error {
	c := hr.c
	hr.mu.Lock()
	val, _ := jsonMarshal(hr.lease)
	rev, tok := hr.rev, hr.lease.token()
	hr.mu.Unlock()
	// The lease lives LeaseTTL from the write that lands; the first
	// attempt's sending is the earliest it can have landed.
	sent := time.Now()
	pause := 50 * time.Millisecond
	for {
		actx, cancel := context.WithTimeout(ctx, c.cfg.LeaseTTL)
		nrev, err := c.leases.Update(actx, hr.key, val, rev)
		cancel()
		if err == nil {
			hr.wrote(nrev, sent)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		e, gerr := hr.current(ctx)
		switch {
		case errors.Is(gerr, jetstream.ErrKeyNotFound):
			nrev, rerr := hr.reclaim(ctx, val, tok, err)
			if rerr == nil {
				hr.wrote(nrev, sent)
				return nil
			}
			if errors.Is(rerr, errLeaseLost) {
				return rerr
			}
			// Unknown (the claim may have landed): the next attempt tells.
		case gerr != nil:
			// The bucket did not answer: try again.
		case e.Revision() == rev:
			// The write did not land: try again.
		case bytes.Equal(e.Value(), val):
			hr.wrote(e.Revision(), sent) // an attempt landed, its reply was lost
			return nil
		default:
			return fmt.Errorf("host %s: %w: the bucket holds revision %d, not %d (%v)", hr.host.Name, errLeaseLost, e.Revision(), rev, err)
		}
		hr.log.Debug("lease write not confirmed; trying again", "error", err, "read", gerr)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause/2 + rand.N(pause/2)):
		}
		pause = min(2*pause, c.cfg.LeaseTTL/6)
	}
}

// landed reads the host's lease after a creation of val sent at sent
// failed with err, until the bucket answers or a lease created then
// would have aged out; it returns the lease's revision when it holds val.
func (hr *hostRun) landed(ctx context.Context, val []byte, sent time.Time, err error) (uint64, error) {
	pause := 50 * time.Millisecond
	for time.Since(sent) < hr.c.cfg.LeaseTTL {
		e, gerr := hr.current(ctx)
		switch {
		case gerr == nil && bytes.Equal(e.Value(), val):
			return e.Revision(), nil
		case gerr == nil || errors.Is(gerr, jetstream.ErrKeyNotFound):
			return 0, err // another claim, or none: this one did not land
		case ctx.Err() != nil:
			return 0, ctx.Err()
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(pause/2 + rand.N(pause/2)):
		}
		pause = min(2*pause, hr.c.cfg.LeaseTTL/6)
	}
	return 0, err
}

// reclaim claims the host's lease again, with the runner's value val
// (its token too), after a write found it absent (cause), when it aged
// out (its renewals came too late) or was lost with its bucket (the
// NATS store was lost), and nobody claimed the host since: rather than
// drop a healthy context. A member that took the host
// meanwhile took its token with a newer epoch, and this runner's context
// exits on seeing it. It returns the new revision, an error wrapping
// errLeaseLost when the lease was deleted or claimed by another, or
// another error when the outcome is unknown.
func (hr *hostRun) reclaim(ctx context.Context, val []byte, tok fenceToken, cause error) (uint64, error) {
	aged, err := hr.agedOut(ctx)
	if err != nil {
		return 0, err
	}
	if !aged {
		return 0, fmt.Errorf("host %s: %w: it was deleted (%v)", hr.host.Name, errLeaseLost, cause)
	}
	actx, cancel := context.WithTimeout(ctx, hr.c.cfg.LeaseTTL)
	defer cancel()
	rev, err := hr.c.leases.Create(actx, hr.key, val)
	switch {
	case err == nil && tok.Gen != hr.c.gen.Load():
		hr.log.Warn("lease lost with its bucket; claimed again", "epoch", tok)
		return rev, nil
	case err == nil:
		hr.log.Warn("lease lapsed (renewals too late); claimed again", "epoch", tok)
		return rev, nil
	case errors.Is(err, jetstream.ErrKeyExists):
		return 0, fmt.Errorf("host %s: %w: it lapsed and another member claimed it (%v)", hr.host.Name, errLeaseLost, cause)
	}
	return 0, fmt.Errorf("host %s: claiming the lapsed lease again: %w", hr.host.Name, err)
}

// agedOut reports whether the host's lease, absent from the bucket, aged
// out (its last entry is the TTL's marker) rather than being deleted (a
// release, by its owner or an operator, which is not undone).
func (hr *hostRun) agedOut(ctx context.Context) (bool, error) {
	actx, cancel := context.WithTimeout(ctx, hr.c.cfg.LeaseTTL)
	defer cancel()
	es, err := hr.c.leases.History(actx, hr.key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return true, nil // the marker itself aged out
	}
	if err != nil || len(es) == 0 {
		return false, fmt.Errorf("host %s: reading the lease's history: %w", hr.host.Name, err)
	}
	return es[len(es)-1].Operation() == jetstream.KeyValuePurge, nil
}

// current reads the host's lease from the bucket.
func (hr *hostRun) current(ctx context.Context) (jetstream.KeyValueEntry, error) {
	actx, cancel := context.WithTimeout(ctx, hr.c.cfg.LeaseTTL)
	defer cancel()
	return hr.c.leases.Get(actx, hr.key)
}

// wrote records a write of the lease that landed at revision rev.
func (hr *hostRun) wrote(rev uint64, sent time.Time) {
	hr.mu.Lock()
	defer hr.mu.Unlock()
	hr.rev = rev
	if sent.After(hr.renewed) {
		hr.renewed = sent
	}
}

// renewLoop renews the lease every LeaseTTL/3, and at once when now
// receives (the value changed), on a goroutine of its own so that nothing
// the runner does delays a renewal. It sends the error on lost and
// returns when the lease is lost, and returns when ctx ends.
func (hr *hostRun) renewLoop(ctx context.Context, now <-chan struct{}, lost chan<- error) {
	t := time.NewTicker(hr.c.cfg.LeaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-now:
		}
		if !hr.c.online.Load() {
			continue // the leases cannot be renewed; they lapse unless NATS returns
		}
		if err := hr.put(ctx); err != nil {
			if ctx.Err() == nil {
				lost <- err
			}
			return
		}
	}
}

// release deletes the lease, unless another claim holds it already, so
// that another member need not wait for its TTL. A release on purpose (a
// handover, or the controller closing) first writes why into the lease,
// so that the next owner can tell (the bucket keeps two entries a key, so
// watchers see that put before the delete). The runner's renewals have
// ended: nothing else writes the lease. Each write has a third of a TTL.
func (hr *hostRun) release() {
	c := hr.c
	hr.mu.Lock()
	rev, l, why := hr.rev, hr.lease, hr.reason
	hr.mu.Unlock()
	if why == "" && c.ctx.Err() != nil {
		why = WhyLeft
	}
	if why != "" {
		l.Ready, l.Handover = false, why
		if val, err := jsonMarshal(l); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), c.cfg.LeaseTTL/3)
			if r, err := c.leases.Update(ctx, hr.key, val, rev); err == nil {
				rev = r
			}
			cancel()
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.LeaseTTL/3)
	defer cancel()
	_ = c.leases.Delete(ctx, hr.key, jetstream.LastRevision(rev))
}
