package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/mitogo/mitogo/actors"
	"github.com/mitogo/mitogo/inventory"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// hostRun drives one host for its controller: it claims the lease,
// connects, takes the host's token, serves calls on the host's subject
// and renews the lease while the context is healthy. It ends (and the
// reconciler may claim the host again) when the lease is lost, the
// context dies, the controller closes, or it hands the host over
// (handover.go).
type hostRun struct {
	c       *Controller
	host    *inventory.Host
	prev    string // the host's previous owner, "" when none was seen
	prevWhy string // why it released the host, "" when its lease lapsed

	mu      sync.Mutex
	epoch   uint64          // the lease's epoch: the host's fencing token
	hctx    *actors.Context // set once connected and fenced
	serving bool            // calls are dispatched
	renewed time.Time       // the last successful renewal

	handoverState // handing the host over on purpose (handover.go)
}

type connected struct {
	hctx *actors.Context
	err  error
}

func (hr *hostRun) run() {
	c := hr.c
	defer close(hr.done)
	defer c.ended(hr)
	defer hr.callCancel()
	key := token(hr.host.Name)
	log := c.log.With("host", hr.host.Name)
	ctx, cancel := context.WithCancel(c.ctx)
	defer cancel()

	// The claim: Create refuses when any lease exists.
	rev, err := c.leases.Create(ctx, key, nil)
	if err != nil {
		if !errors.Is(err, jetstream.ErrKeyExists) && ctx.Err() == nil {
			log.Warn("claiming the lease", "error", err)
		}
		return
	}
	l := lease{Owner: c.id, Epoch: rev, Since: time.Now()}
	val, _ := jsonMarshal(l)
	if rev, err = c.leases.Update(ctx, key, val, rev); err != nil {
		log.Warn("writing the lease", "error", err)
		return
	}
	hr.mu.Lock()
	hr.epoch, hr.renewed = l.Epoch, time.Now()
	hr.mu.Unlock()
	fa := fenceArgs{Cluster: c.cfg.Cluster, Host: hr.host.Name, Epoch: l.Epoch}

	// The connect runs on the controller's wait group, not the runner's:
	// a Connect that overstays its timeout must not hold the lease (the
	// runner gives up at connectGiveUp), and when it returns at last the
	// context it made is shut down unless the runner took it.
	conn := make(chan connected)
	abandon := make(chan struct{})
	defer close(abandon)
	c.wg.Go(func() {
		cctx, ccancel := context.WithTimeout(ctx, c.cfg.ConnectTimeout)
		defer ccancel()
		hctx, err := c.cfg.Connect(cctx, c.cfg.Router, hr.host)
		if err == nil {
			if _, err = takeFence.Call(cctx, hctx, fa); err != nil {
				shutdown(hctx)
				hctx = nil
			}
		}
		select {
		case conn <- connected{hctx, err}:
		case <-abandon:
			if hctx != nil {
				shutdown(hctx)
			}
		}
	})
	connectGiveUp := time.NewTimer(c.cfg.ConnectTimeout + c.cfg.LeaseTTL/3)
	defer connectGiveUp.Stop()

	var hctx *actors.Context
	var sub *nats.Subscription
	var hold *actors.Pending[struct{}]
	var holdDone, hctxDone <-chan struct{}
	release := true // delete the lease on the way out, so that another member need not wait for its TTL
	defer func() {
		hr.mu.Lock()
		hr.serving = false
		hr.mu.Unlock()
		if sub != nil {
			_ = sub.Unsubscribe()
		}
		cancel() // ends the connect and the hold call
		if hctx != nil {
			shutdown(hctx)
		}
		if release {
			hr.release(key, l, rev)
		}
	}()

	// renewLease writes the lease again (its TTL starts over); false when
	// it is lost.
	renewLease := func() bool {
		rctx, rcancel := context.WithTimeout(ctx, c.cfg.LeaseTTL/3)
		rev, err = c.leases.Update(rctx, key, val, rev)
		rcancel()
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("lease lost", "error", err)
			}
			release = false
			return false
		}
		hr.mu.Lock()
		hr.renewed = time.Now()
		hr.mu.Unlock()
		return true
	}
	renew := time.NewTicker(c.cfg.LeaseTTL / 3)
	defer renew.Stop()
	handover := hr.handoverC
	var grace <-chan time.Time
	var callsIdle <-chan struct{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-handover:
			handover = nil
			if hctx == nil {
				return // not driving it yet: the connect is abandoned
			}
			// No new call is taken from here on; the calls in flight
			// finish (or are cancelled after the grace) while the lease
			// is still renewed, and only then is it released.
			callsIdle = hr.stopTaking()
			if sub != nil {
				_ = sub.Unsubscribe()
				sub = nil
			}
			gt := time.NewTimer(hr.grace)
			defer gt.Stop()
			grace = gt.C
		case <-grace:
			grace = nil
			log.Warn("calls still running after the handover's grace: cancelled", "grace", hr.grace)
			hr.callCancel()
		case <-callsIdle:
			return
		case res := <-conn:
			if res.err != nil {
				log.Warn("connect failed; the lease lapses", "error", res.err)
				release = false // the lease's TTL spaces the next attempt
				return
			}
			hctx, hctxDone = res.hctx, res.hctx.Done()
			hold = holdFence.Go(ctx, hctx, fa)
			holdDone = hold.Done()
			sub, err = c.nc.Subscribe(hostSubject(c.cfg.Cluster, hr.host.Name), hr.onRequest)
			if err != nil {
				log.Warn("subscribing", "error", err)
				return
			}
			hr.mu.Lock()
			hr.hctx, hr.serving = hctx, true
			hr.mu.Unlock()
			l.Ready = true
			val, _ = jsonMarshal(l)
			if !renewLease() { // publishes the readiness
				return
			}
			if hr.prev != "" && hr.prev != c.id {
				c.tookOver(hr.host.Name, hr.prev, hr.prevWhy)
			}
			c.touch()
			log.Debug("driving host", "epoch", l.Epoch)
		case <-connectGiveUp.C:
			if hctx == nil {
				log.Warn("connect overstayed its timeout; the lease lapses", "timeout", c.cfg.ConnectTimeout)
				release = false // as for a failed connect
				return
			}
		case <-hctxDone:
			log.Warn("host context ended; lease released", "error", hctx.Err())
			return
		case <-holdDone:
			_, err := hold.Wait()
			log.Warn("host token lost; lease released", "error", err)
			return
		case <-renew.C:
			if !c.online.Load() {
				continue // the leases cannot be renewed; they lapse unless NATS returns
			}
			if !renewLease() {
				return
			}
		}
	}
}

// shutdown ends a host's context, bounded so that a wedged one cannot hold
// its runner.
func shutdown(hctx *actors.Context) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = hctx.Shutdown(ctx)
}

// active reports whether calls are dispatched to the host.
func (hr *hostRun) active() bool {
	hr.mu.Lock()
	defer hr.mu.Unlock()
	return hr.serving
}

// dispatchable returns the host's context and epoch when a call may run
// now: the runner serves, NATS is up and the last renewal is recent
// enough that the lease cannot have expired.
func (hr *hostRun) dispatchable() (*actors.Context, uint64, string, error) {
	hr.mu.Lock()
	defer hr.mu.Unlock()
	switch {
	case !hr.serving || hr.hctx == nil:
		return nil, hr.epoch, codeNotOwner, fmt.Errorf("host %s is not driven here", hr.host.Name)
	case !hr.c.online.Load():
		return nil, hr.epoch, codeNotOwner, fmt.Errorf("controller %s lost its NATS connection", hr.c.id)
	case time.Since(hr.renewed) > hr.c.cfg.LeaseTTL*2/3:
		return nil, hr.epoch, codeNotOwner, fmt.Errorf("lease of host %s not renewed for %v", hr.host.Name, time.Since(hr.renewed).Round(time.Millisecond))
	case hr.hctx.Err() != nil:
		return nil, hr.epoch, codeUnavailable, hr.hctx.Err()
	}
	return hr.hctx, hr.epoch, "", nil
}
