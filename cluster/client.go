package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/mitogo/mitogo/actors"
	"github.com/mitogo/mitogo/messages"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/vmihailenco/msgpack/v5"
)

// Client calls functions on the hosts of a cluster, through whichever
// member owns each. It needs the NATS client only, not a controller.
type Client struct {
	nc      *nats.Conn
	cluster string
	from    string
	own     bool // Close closes nc
}

// Dial connects a client to a cluster's NATS (URLs comma-separated).
func Dial(urls, tok, cluster string) (*Client, error) {
	if err := checkClusterName(cluster); err != nil {
		return nil, err
	}
	nc, err := nats.Connect(urls, nats.Token(tok), nats.Name("mitogo client"))
	if err != nil {
		return nil, fmt.Errorf("cluster %s: connecting to NATS at %s: %w", cluster, urls, err)
	}
	h, _ := os.Hostname()
	return &Client{nc: nc, cluster: cluster, from: fmt.Sprintf("client %s-%d", h, os.Getpid()), own: true}, nil
}

// Close closes the client's connection (not a controller's, when the
// client came from Controller.Client).
func (cl *Client) Close() {
	if cl.own {
		cl.nc.Close()
	}
}

// Call runs the registered function fn on host with args, encoded as
// msgpack, and returns its msgpack-encoded result. Errors are *HostError
// naming the host and its controller; errors.Is tells the cause:
// ErrNoOwner, ErrNotOwner, ErrFenced, ErrUnavailable and ErrExpired (the
// call did not run), ErrCallFailed (it ran, or was refused on the host,
// and failed; also actors.ErrUnknownFunction when no function of that
// name is registered there), ErrOutcomeUnknown (the controller went away
// or the deadline passed while it had the call: it may have run). A call
// sent while the host is between owners (a handover or a failover)
// reaches nobody: it is sent again once an owner subscribes, until ctx
// ends (or for two lease TTLs when ctx has no deadline), then fails with
// ErrNoOwner (see Dispatch in the package comment). A call that reached a
// controller is never sent again.
func (cl *Client) Call(ctx context.Context, host, fn string, args []byte) ([]byte, error) {
	herr := func(controller string, err error) error {
		return &HostError{Host: host, Controller: controller, Err: err}
	}
	req := request{V: ProtocolVersion, Fn: fn, Args: args, From: cl.from}
	if dl, ok := ctx.Deadline(); ok {
		req.Deadline = dl.UnixNano()
	}
	data, err := msgpack.Marshal(&req)
	if err != nil {
		return nil, herr("", fmt.Errorf("encoding the call: %w", err))
	}
	inbox := cl.nc.NewRespInbox()
	sub, err := cl.nc.SubscribeSync(inbox)
	if err != nil {
		return nil, herr("", fmt.Errorf("subscribing to the reply inbox: %w", err))
	}
	defer sub.Unsubscribe()
	send := func() error {
		if err := cl.nc.PublishRequest(hostSubject(cl.cluster, host), inbox, data); err != nil {
			return herr("", fmt.Errorf("sending the call: %w", err))
		}
		return nil
	}
	if err := send(); err != nil {
		return nil, err
	}
	controller := ""
	owner := ownerWait{cl: cl, host: host}
	for {
		wait := acceptWait
		if controller != "" {
			wait = silentAfter
		}
		wctx, cancel := context.WithTimeout(ctx, wait)
		m, err := sub.NextMsgWithContext(wctx)
		cancel()
		if errors.Is(err, nats.ErrNoResponders) { // delivered to no one: sent again once a member owns the host
			if err := owner.missed(ctx); err != nil {
				return nil, herr("", err)
			}
			if err := send(); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) && !errors.Is(err, nats.ErrTimeout) {
			return nil, herr(controller, fmt.Errorf("%w: waiting for the reply: %w", ErrOutcomeUnknown, err))
		}
		if err != nil {
			switch {
			case ctx.Err() != nil && controller == "":
				return nil, herr("", fmt.Errorf("%w: no controller took the call before %w", ErrOutcomeUnknown, ctx.Err()))
			case ctx.Err() != nil:
				return nil, herr(controller, fmt.Errorf("%w: the call was still running at %w", ErrOutcomeUnknown, ctx.Err()))
			case controller == "":
				return nil, herr("", fmt.Errorf("%w: no controller took the call within %v", ErrOutcomeUnknown, acceptWait))
			default:
				return nil, herr(controller, fmt.Errorf("%w: silent for %v while the call ran", ErrOutcomeUnknown, silentAfter))
			}
		}
		var r reply
		if err := messages.Unmarshal(m.Data, &r); err != nil {
			return nil, herr(controller, fmt.Errorf("%w: unreadable reply: %v", ErrVersion, err))
		}
		if controller != "" && r.Controller != controller {
			continue // the call is the first accepter's: another member's word is not its outcome
		}
		controller = r.Controller
		if r.Kind != replyFinal {
			continue
		}
		if r.Code != "" {
			return nil, herr(controller, &remoteError{code: r.Code, msg: r.Msg})
		}
		return r.Result, nil
	}
}

// CallFunc calls fn on host through the cluster with typed arguments and
// result, as Func.Call does in one context.
func CallFunc[A, R any](ctx context.Context, cl *Client, host string, fn actors.Func[A, R], args A) (R, error) {
	var res R
	b, err := msgpack.Marshal(args)
	if err != nil {
		return res, &HostError{Host: host, Err: fmt.Errorf("encoding the arguments of %s: %w", fn.Name(), err)}
	}
	out, err := cl.Call(ctx, host, fn.Name(), b)
	if err != nil {
		return res, err
	}
	if err := messages.Unmarshal(out, &res); err != nil {
		return res, &HostError{Host: host, Err: fmt.Errorf("decoding the result of %s into %T: %w", fn.Name(), res, err)}
	}
	return res, nil
}

// HostResult is one host's outcome in a fan-out.
type HostResult struct {
	Host   string
	Result []byte // msgpack, when Err is nil
	Err    error
}

// Fan calls fn on every host with the same args, at most limit at once (0:
// no limit), and yields each host's outcome as it finishes, whichever
// member owns it. Leaving the loop early cancels the calls still running
// and waits for them.
func (cl *Client) Fan(ctx context.Context, hosts []string, fn string, args []byte, limit int) iter.Seq[HostResult] {
	hosts = append([]string(nil), hosts...)
	return func(yield func(HostResult) bool) {
		if len(hosts) == 0 {
			return
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		if limit <= 0 || limit > len(hosts) {
			limit = len(hosts)
		}
		out := make(chan HostResult, len(hosts))
		next := make(chan string, len(hosts))
		for _, h := range hosts {
			next <- h
		}
		close(next)
		var wg sync.WaitGroup
		defer wg.Wait()
		for range limit {
			wg.Go(func() {
				for h := range next {
					res, err := cl.Call(ctx, h, fn, args)
					out <- HostResult{Host: h, Result: res, Err: err}
				}
			})
		}
		for range hosts {
			if !yield(<-out) {
				return
			}
		}
	}
}

// Status is a cluster's state as its buckets hold it. Its JSON keys are
// lowercase, as a Member's.
type Status struct {
	Cluster      string      `json:"cluster"`
	Members      []Member    `json:"members"`
	Leases       []LeaseInfo `json:"leases"`
	LastMove     *Move       `json:"last_move"`     // the last host a member took from another, nil when none
	LastFailover *Move       `json:"last_failover"` // the last one taken after a failure
	// ConnectErrors are the hosts whose last connect failed, each with the
	// latest failure a member advertises (a host its owner now drives is
	// left out), sorted by host.
	ConnectErrors []ConnectError `json:"connect_errors"`
}

// LeaseInfo is one host's lease.
type LeaseInfo struct {
	Host  string    `json:"host"`
	Owner string    `json:"owner"`
	Epoch uint64    `json:"epoch"`
	Gen   uint64    `json:"gen"` // the generation of the lease bucket Epoch was taken in
	Since time.Time `json:"since"`
	Ready bool      `json:"ready"` // the owner drives the host; false while it connects
	// Renewed is when the owner last wrote the lease; it lapses a lease
	// TTL after.
	Renewed time.Time `json:"renewed"`
}

// Status reads the cluster's members and leases.
func (cl *Client) Status(ctx context.Context) (*Status, error) {
	js, err := jetstream.New(cl.nc)
	if err != nil {
		return nil, err
	}
	st := &Status{Cluster: cl.cluster}
	members, err := js.KeyValue(ctx, memberBucket(cl.cluster))
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, &noClusterError{cluster: cl.cluster}
	}
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", cl.cluster, err)
	}
	if st.Members, err = listMembers(ctx, members); err != nil {
		return nil, err
	}
	sort.Slice(st.Members, func(i, j int) bool { return st.Members[i].ID < st.Members[j].ID })
	st.lastMoves()
	leases, err := js.KeyValue(ctx, leaseBucket(cl.cluster))
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", cl.cluster, err)
	}
	lister, err := leases.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: listing leases: %w", cl.cluster, err)
	}
	defer lister.Stop()
	for k := range lister.Keys() {
		e, err := leases.Get(ctx, k)
		if err != nil {
			continue
		}
		var l lease
		_ = jsonUnmarshal(e.Value(), &l)
		st.Leases = append(st.Leases, LeaseInfo{Host: untoken(k), Owner: l.Owner, Epoch: l.Epoch, Gen: l.Gen, Since: l.Since, Ready: l.Ready, Renewed: e.Created()})
	}
	sort.Slice(st.Leases, func(i, j int) bool { return st.Leases[i].Host < st.Leases[j].Host })
	ready := map[string]bool{}
	for _, l := range st.Leases {
		ready[l.Host] = l.Ready
	}
	for _, ce := range connectErrors(st.Members) {
		if !ready[ce.Host] {
			st.ConnectErrors = append(st.ConnectErrors, ce)
		}
	}
	return st, nil
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

func jsonUnmarshal(b []byte, v any) error {
	if len(b) == 0 {
		return errors.New("empty value")
	}
	return json.Unmarshal(b, v)
}
