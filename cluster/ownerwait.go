package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// A call or run sent when nobody subscribes to its host's subject (NATS
// answers "no responders") was delivered to no one: it did not run, and
// sending it again is safe. That happens between two owners: a handover
// (the old owner unsubscribed, then releases the lease; the next one
// claims it, connects and subscribes) or a failover (the dead owner's
// lease ages out first). So the caller waits for an owner, sending the
// request again after a growing pause, while the host's lease leaves a
// trace in the lease bucket (the lease, or the record of its release or
// expiry, which the bucket keeps for a lease TTL): until ctx ends, or for
// ownerWaitTTLs lease TTLs when ctx has no deadline. A host with no trace
// (no member has it in its inventory, or none has held it for a TTL)
// fails at once. A request that reached a controller is never sent again.

// ownerWaitTTLs bounds the wait for an owner, in lease TTLs, when the
// caller's context has no deadline: a failover needs one for the dead
// owner's lease to age out, then a claim and a connect.
const ownerWaitTTLs = 2

// ownerPause bounds the pauses between the sends of a request that found
// no owner.
const (
	ownerPauseMin = 20 * time.Millisecond
	ownerPauseMax = 500 * time.Millisecond
)

// ownerWait is one call's wait for an owner of its host.
type ownerWait struct {
	cl    *Client
	host  string
	kv    jetstream.KeyValue // the lease bucket, once looked up (nil when it could not be)
	none  bool               // the cluster has no lease bucket
	since time.Time          // the first miss; zero before it
	until time.Time          // the end of the wait
	pause time.Duration
}

// missed is called each time the request found no owner: it returns nil
// once the request should be sent again, or an error wrapping ErrNoOwner
// when the wait is over (a NoConnectError when a member advertises a
// failed connect to the host).
func (w *ownerWait) missed(ctx context.Context) error {
	err := w.miss(ctx)
	if err != nil {
		return w.cl.noConnect(ctx, w.host, err)
	}
	return err
}

func (w *ownerWait) miss(ctx context.Context) error {
	if w.since.IsZero() {
		w.since, w.pause = time.Now(), ownerPauseMin
		ttl := w.lookup(ctx)
		w.until = w.since.Add(ownerWaitTTLs * ttl)
		if dl, ok := ctx.Deadline(); ok {
			w.until = dl
		}
	}
	if !w.traced(ctx) {
		if w.none {
			return &noClusterError{cluster: w.cl.cluster, call: true}
		}
		if w.waited() == 0 {
			return ErrNoOwner
		}
		return fmt.Errorf("%w (its lease was released or aged out; none took it over within %v)", ErrNoOwner, w.waited())
	}
	left := time.Until(w.until)
	if left <= 0 {
		return fmt.Errorf("%w (none took it over within %v)", ErrNoOwner, w.waited())
	}
	t := time.NewTimer(min(w.pause, left))
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	// Not sent again at the deadline: a reply could not come in time, and
	// the call would end with its outcome unknown.
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w (none took it over before %w)", ErrNoOwner, err)
	}
	if !time.Now().Before(w.until) {
		return fmt.Errorf("%w (none took it over within %v)", ErrNoOwner, w.waited())
	}
	w.pause = min(2*w.pause, ownerPauseMax)
	return nil
}

// waited is how long the call has waited for an owner, rounded.
func (w *ownerWait) waited() time.Duration {
	return time.Since(w.since).Round(10 * time.Millisecond)
}

// lookup finds the lease bucket and returns its TTL, the default lease
// TTL when the bucket cannot be read.
func (w *ownerWait) lookup(ctx context.Context) time.Duration {
	const fallback = 10 * time.Second // Config.LeaseTTL's default
	js, err := jetstream.New(w.cl.nc)
	if err != nil {
		return fallback
	}
	lctx, cancel := context.WithTimeout(ctx, acceptWait)
	defer cancel()
	kv, err := js.KeyValue(lctx, leaseBucket(w.cl.cluster))
	switch {
	case errors.Is(err, jetstream.ErrBucketNotFound):
		w.none = true
		return fallback
	case err != nil:
		return fallback
	}
	w.kv = kv
	st, err := kv.Status(lctx)
	if err != nil {
		return fallback
	}
	if bs, ok := st.(*jetstream.KeyValueBucketStatus); ok && bs.TTL() > 0 {
		return bs.TTL()
	}
	return fallback
}

// traced reports whether the host's lease leaves a trace in the bucket: a
// lease, or the record of one released or aged out within a TTL. A
// bucket that cannot be read counts as a trace (the wait stays bounded);
// a cluster without a lease bucket has none.
func (w *ownerWait) traced(ctx context.Context) bool {
	if w.none {
		return false
	}
	if w.kv == nil {
		return true
	}
	rctx, cancel := context.WithTimeout(ctx, acceptWait)
	defer cancel()
	key := token(w.host)
	_, err := w.kv.Get(rctx, key)
	if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return true // a lease, or an unreadable bucket
	}
	_, err = w.kv.History(rctx, key)
	return !errors.Is(err, jetstream.ErrKeyNotFound)
}
