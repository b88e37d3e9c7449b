package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/nats-io/nats.go"
)

// Why a host passed from one member to another (Move.Why, and the
// lease's Handover as its owner releases it on purpose).
const (
	WhyFailover  = "failover"  // its owner died, lost NATS, or lost its context to the host
	WhyDrain     = "drain"     // its owner was drained
	WhyRebalance = "rebalance" // moved by a rebalance
	WhyInventory = "inventory" // its owner's inventory dropped or changed it
	WhyLeft      = "left"      // its owner closed (mitogo serve stopped)
)

// defaultGrace is how long a handover waits for the calls in flight on a
// host before it cancels them.
const defaultGrace = 30 * time.Second

// handoverState is a host runner's side of a handover on purpose: the
// runner stops taking calls, lets those in flight finish, and only then
// releases the lease, so that no call runs on two controllers and none is
// dropped silently.
type handoverState struct {
	handoverC chan struct{} // closed to ask the runner to hand the host over
	done      chan struct{} // closed when the runner has returned (lease released or lost)
	asked     bool          // handoverC is closed (guarded by hostRun.mu)
	reason    string        // Why* of the handover (guarded by hostRun.mu)
	grace     time.Duration // how long calls in flight may run on

	// The calls accepted and not finished; once handing, no call is
	// accepted and idle is closed when the last one finishes.
	handing  bool
	inflight int
	idle     chan struct{}

	// callCtx is the context of the host's calls: cancelled when the
	// grace ends, or when the runner returns.
	callCtx    context.Context
	callCancel context.CancelFunc
}

// handOver asks the runner to hand the host over; the first reason wins.
func (hr *hostRun) handOver(why string, grace time.Duration) {
	hr.mu.Lock()
	defer hr.mu.Unlock()
	if hr.asked {
		return
	}
	hr.asked, hr.reason, hr.grace = true, why, grace
	close(hr.handoverC)
}

// stopTaking makes the runner refuse new calls; the channel it returns is
// closed once no call is in flight.
func (hr *hostRun) stopTaking() <-chan struct{} {
	hr.mu.Lock()
	defer hr.mu.Unlock()
	if !hr.handing {
		hr.handing = true
		if hr.inflight == 0 {
			close(hr.idle)
		}
	}
	return hr.idle
}

// begin counts a call in; false when the host is being handed over (the
// call is refused and did not run).
func (hr *hostRun) begin() bool {
	hr.mu.Lock()
	defer hr.mu.Unlock()
	if hr.handing {
		return false
	}
	hr.inflight++
	return true
}

// finish counts a call out.
func (hr *hostRun) finish() {
	hr.mu.Lock()
	defer hr.mu.Unlock()
	hr.inflight--
	if hr.handing && hr.inflight == 0 {
		close(hr.idle)
	}
}

// Drain makes this member hand all its hosts over to the others and claim
// none until Resume: each host stops taking calls, its calls in flight
// finish (those still running after grace are cancelled and reported to
// their callers), its context is shut down and its lease released, so
// that the other members claim it at once. It returns the hosts released
// before ctx ended. 0 grace means 30s.
func (c *Controller) Drain(ctx context.Context, grace time.Duration) ([]string, error) {
	c.mu.Lock()
	c.draining = true
	var names []string
	for name := range c.running {
		names = append(names, name)
	}
	c.mu.Unlock()
	// The others stop preferring this member before its hosts come free.
	actx, cancel := context.WithTimeout(ctx, c.cfg.LeaseTTL/3)
	err := c.advertise(actx)
	cancel()
	if err != nil {
		c.log.Warn("draining: member entry not written", "error", err)
	}
	c.log.Info("draining", "hosts", len(names))
	return c.HandOff(ctx, names, WhyDrain, grace)
}

// Resume ends a drain: the member claims hosts again (those without an
// owner only: it takes none back from the others).
func (c *Controller) Resume(ctx context.Context) error {
	c.mu.Lock()
	c.draining = false
	c.mu.Unlock()
	c.poke()
	return c.advertise(ctx)
}

// HandOff hands the named hosts this member drives over to the others, as
// Drain does for all of them, and does not claim them again for two lease
// TTLs (so that their preferred member takes them). It returns the hosts
// released before ctx ended; hosts it does not drive are left out.
func (c *Controller) HandOff(ctx context.Context, hosts []string, why string, grace time.Duration) ([]string, error) {
	if grace <= 0 {
		grace = defaultGrace
	}
	var runs []*hostRun
	c.mu.Lock()
	for _, name := range hosts {
		if hr, ok := c.running[name]; ok {
			runs = append(runs, hr)
			if why != WhyInventory {
				c.handedOff[name] = time.Now()
			}
		}
	}
	c.mu.Unlock()
	for _, hr := range runs {
		hr.handOver(why, grace)
	}
	var released []string
	for _, hr := range runs {
		select {
		case <-hr.done:
			released = append(released, hr.host.Name)
		case <-ctx.Done():
			sort.Strings(released)
			return released, fmt.Errorf("cluster %s: member %s: handing hosts over: %w", c.cfg.Cluster, c.id, ctx.Err())
		}
	}
	sort.Strings(released)
	return released, nil
}

// Control requests, sent by a Client to one member's subject.
const (
	opDrain   = "drain"
	opResume  = "resume"
	opHandOff = "handoff"
)

type ctlRequest struct {
	V     int           `json:"v"`
	Op    string        `json:"op"`
	Hosts []string      `json:"hosts,omitempty"` // opHandOff
	Grace time.Duration `json:"grace,omitempty"`
	// Deadline (unix ns; 0: none) is when the sender stops waiting for
	// the acknowledgement: a member that gets the request later ignores it.
	Deadline int64 `json:"deadline,omitempty"`
	// Ack asks the member to acknowledge the request (a reply with
	// Accepted) before it works on it, then to reply as usual.
	Ack bool `json:"ack,omitempty"`
}

type ctlReply struct {
	Member   string   `json:"member"`
	Accepted bool     `json:"accepted,omitempty"` // the acknowledgement of a request with Ack
	Released []string `json:"released,omitempty"`
	Code     string   `json:"code,omitempty"`
	Msg      string   `json:"msg,omitempty"`
}

// memberSubject is where a member takes control requests.
func memberSubject(cluster, member string) string {
	return "mitogo." + cluster + ".member." + token(member)
}

// onControl serves one control request. It runs on the subscription's
// goroutine: control requests are rare, and one waits for the previous.
// A request that comes past its deadline (this member was frozen or cut
// off while its sender waited, and gave up) is ignored.
func (c *Controller) onControl(m *nats.Msg) {
	var req ctlRequest
	uerr := json.Unmarshal(m.Data, &req)
	if uerr == nil && req.Deadline != 0 && time.Now().UnixNano() > req.Deadline {
		c.log.Warn("control request ignored: it came past its deadline (its sender gave up)", "op", req.Op,
			"late", time.Since(time.Unix(0, req.Deadline)).Round(time.Millisecond))
		return
	}
	rep := ctlReply{Member: c.id}
	defer func() {
		b, _ := json.Marshal(rep)
		_ = m.Respond(b)
	}()
	if uerr != nil || req.V != ProtocolVersion {
		rep.Code, rep.Msg = codeVersion, fmt.Sprintf("member %s speaks cluster protocol %d (request: %d)", c.id, ProtocolVersion, req.V)
		return
	}
	if req.Ack {
		b, _ := json.Marshal(ctlReply{Member: c.id, Accepted: true})
		_ = m.Respond(b)
	}
	var err error
	switch req.Op {
	case opDrain:
		rep.Released, err = c.Drain(c.ctx, req.Grace)
	case opResume:
		ctx, cancel := context.WithTimeout(c.ctx, c.cfg.LeaseTTL)
		err = c.Resume(ctx)
		cancel()
	case opHandOff:
		rep.Released, err = c.HandOff(c.ctx, req.Hosts, WhyRebalance, req.Grace)
	default:
		err = fmt.Errorf("unknown control request %q", req.Op)
	}
	if err != nil {
		rep.Code, rep.Msg = codeControl, err.Error()
	}
}
