package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/mitogo/mitogo/actors"
	"github.com/mitogo/mitogo/inventory"
	"github.com/nats-io/nats.go"
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
	key     string // the host's key in the lease bucket
	log     *slog.Logger

	mu      sync.Mutex
	lease   lease           // the value the runner writes
	rev     uint64          // the revision of its last write that landed
	token   fenceToken      // the lease's generation and epoch once claimed: the host's fencing token
	hctx    *actors.Context // set once connected and fenced
	serving bool            // calls are dispatched
	renewed time.Time       // when the last write that landed was sent: the lease lives LeaseTTL from then at least
	connect connectOutcome  // how the runner's connect went
	connErr error           // why it failed, when it did

	handoverState // handing the host over on purpose (handover.go)
}

// connectOutcome is how a runner's connect went, for the claim backoff.
type connectOutcome int

const (
	connectNone   connectOutcome = iota // no connect (no claim, or it ended first)
	connectFailed                       // it failed or overstayed its timeout
	connectWorked                       // the host was driven
)

func (hr *hostRun) outcome() connectOutcome {
	hr.mu.Lock()
	defer hr.mu.Unlock()
	return hr.connect
}

// failed records that the runner's connect failed, and why.
func (hr *hostRun) failed(err error) {
	hr.mu.Lock()
	hr.connect, hr.connErr = connectFailed, err
	hr.mu.Unlock()
}

// connectErr is why the runner's connect failed.
func (hr *hostRun) connectErr() error {
	hr.mu.Lock()
	defer hr.mu.Unlock()
	return hr.connErr
}

type connected struct {
	hctx *actors.Context
	hops []*actors.Context // the contexts of its chain before hctx (Hops)
	err  error
}

func newHostRun(c *Controller, h *inventory.Host, prev, prevWhy string) *hostRun {
	hr := &hostRun{c: c, host: h, prev: prev, prevWhy: prevWhy, key: token(h.Name), log: c.log.With("host", h.Name)}
	hr.handoverC = make(chan struct{})
	hr.done = make(chan struct{})
	hr.idle = make(chan struct{})
	hr.callCtx, hr.callCancel = context.WithCancel(c.ctx)
	return hr
}

func (hr *hostRun) run() {
	c := hr.c
	defer close(hr.done)
	defer c.ended(hr)
	defer hr.callCancel()
	log := hr.log
	ctx, cancel := context.WithCancel(c.ctx)
	defer cancel()

	if !hr.claim(ctx) {
		return
	}
	hr.mu.Lock()
	fa := fenceArgs{Cluster: c.cfg.Cluster, Host: hr.host.Name, fenceToken: hr.token}
	hr.mu.Unlock()

	// The renewals run on a goroutine of their own: a slow connect or a
	// slow bucket never makes one late.
	var renewer sync.WaitGroup
	renewNow := make(chan struct{}, 1)
	lost := make(chan error, 1)
	renewer.Go(func() { hr.renewLoop(ctx, renewNow, lost) })

	// The connect runs on the controller's connects group, not the
	// runner's: a Connect that overstays its timeout must not hold the
	// lease (the runner gives up at connectGiveUp) nor Close, and when it
	// returns at last the context it made is shut down unless the runner
	// took it.
	conn := make(chan connected)
	abandon := make(chan struct{})
	defer close(abandon)
	c.connects.Go(func() {
		cctx, ccancel := context.WithTimeout(ctx, c.cfg.ConnectTimeout)
		defer ccancel()
		hctx, hops, err := c.connectHost(cctx, hr)
		if err == nil {
			if _, err = takeFence.Call(cctx, hctx, fa); err != nil {
				c.endHost(hctx, hops)
				hctx, hops = nil, nil
			}
		}
		select {
		case conn <- connected{hctx, hops, err}:
		case <-abandon:
			if hctx != nil {
				c.endHost(hctx, hops)
			}
		}
	})
	connectGiveUp := time.NewTimer(c.cfg.ConnectTimeout + c.cfg.LeaseTTL/3)
	defer connectGiveUp.Stop()

	var hctx *actors.Context
	var hops []*actors.Context
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
		cancel() // ends the connect, the hold call and the renewals
		renewer.Wait()
		if hctx != nil {
			c.endHost(hctx, hops)
		}
		if release {
			hr.release()
		}
	}()

	handover := hr.handoverC
	var grace <-chan time.Time
	var callsIdle <-chan struct{}
	for {
		select {
		case <-ctx.Done():
			return
		case err := <-lost:
			log.Warn("lease lost", "error", err)
			release = false
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
				hr.failed(res.err)
				return
			}
			hctx, hops, hctxDone = res.hctx, res.hops, res.hctx.Done()
			hold = holdFence.Go(ctx, hctx, fa)
			holdDone = hold.Done()
			var err error
			sub, err = c.nc.Subscribe(hostSubject(c.cfg.Cluster, hr.host.Name), hr.onRequest)
			if err != nil {
				log.Warn("subscribing", "error", err)
				return
			}
			hr.mu.Lock()
			hr.hctx, hr.serving = hctx, true
			hr.lease.Ready = true
			hr.connect = connectWorked
			hr.mu.Unlock()
			select { // the renewer publishes the readiness
			case renewNow <- struct{}{}:
			default:
			}
			if hr.prev != "" && hr.prev != c.id {
				c.tookOver(hr.host.Name, hr.prev, hr.prevWhy)
			}
			c.touch()
			log.Debug("driving host", "epoch", fa.fenceToken)
		case <-connectGiveUp.C:
			if hctx == nil {
				log.Warn("connect overstayed its timeout; the lease lapses", "timeout", c.cfg.ConnectTimeout)
				release = false // as for a failed connect
				hr.failed(fmt.Errorf("connect overstayed its timeout (%v)", c.cfg.ConnectTimeout))
				return
			}
		case <-hctxDone:
			log.Warn("host context ended; lease released", "error", hctx.Err())
			return
		case <-holdDone:
			_, err := hold.Wait()
			log.Warn("host token lost; lease released", "error", err)
			return
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

// dispatchable returns the host's context and token when a call may run
// now: the runner serves, NATS is up and the last renewal is recent
// enough that the lease cannot have expired.
func (hr *hostRun) dispatchable() (*actors.Context, fenceToken, string, error) {
	hr.mu.Lock()
	defer hr.mu.Unlock()
	switch {
	case !hr.serving || hr.hctx == nil:
		return nil, hr.token, codeNotOwner, fmt.Errorf("host %s is not driven here", hr.host.Name)
	case !hr.c.online.Load():
		return nil, hr.token, codeNotOwner, fmt.Errorf("controller %s lost its NATS connection", hr.c.id)
	case time.Since(hr.renewed) > hr.c.cfg.LeaseTTL*2/3:
		return nil, hr.token, codeNotOwner, fmt.Errorf("lease of host %s not renewed for %v", hr.host.Name, time.Since(hr.renewed).Round(time.Millisecond))
	case hr.hctx.Err() != nil:
		return nil, hr.token, codeUnavailable, hr.hctx.Err()
	}
	return hr.hctx, hr.token, "", nil
}
