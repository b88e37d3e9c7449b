package cluster

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
)

// The host side of fencing, for tests.
type FenceArgs = fenceArgs
type RunArgs = runArgs

var (
	TakeFence = takeFence
	HoldFence = holdFence
	RunFenced = runFenced
)

const CodeFenced = codeFenced

// NewFenceArgs names a host's token of generation gen and epoch epoch.
func NewFenceArgs(cluster, host string, gen, epoch uint64) fenceArgs {
	return fenceArgs{Cluster: cluster, Host: host, fenceToken: fenceToken{Gen: gen, Epoch: epoch}}
}

func NewRunArgs(fa fenceArgs, fn string, args []byte) runArgs {
	return runArgs{fenceArgs: fa, Fn: fn, Args: args}
}

var Preferred = preferred

// Backoff returns when the controller claims host again after failed
// connects, and whether it backs the host off at all.
func (c *Controller) Backoff(host string) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.backoff[host]
	return b.at, ok
}

// SetBackoff makes the controller hold off claiming host until at, as
// many failed connects in a row do.
func (c *Controller) SetBackoff(host string, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.backoff[host]
	b.at = at
	c.backoff[host] = b
}

// Served reports whether a member takes the calls to host: a request it
// cannot read is answered with a version error, and runs nothing.
func (cl *Client) Served(ctx context.Context, host string) (bool, error) {
	_, err := cl.nc.RequestWithContext(ctx, hostSubject(cl.cluster, host), nil)
	if errors.Is(err, nats.ErrNoResponders) {
		return false, nil
	}
	return err == nil, err
}

// KillWatch ends the controller's lease watch as nats.go does when it
// cannot recreate the watch's consumer: its updates channel closes.
func (c *Controller) KillWatch() {
	c.mu.Lock()
	w := c.watcher
	c.mu.Unlock()
	_ = w.Stop()
}

// Control sends a member a control request of kind op and returns its
// reply's error (an op the member does not know fails with ErrControl).
func (cl *Client) Control(ctx context.Context, member, op string) error {
	_, err := cl.control(ctx, member, ctlRequest{Op: op}, 0)
	return err
}

// InjectLease makes the controller's view hold a lease of host by owner
// that it last saw renewed an hour ago, as a watch that missed the lease's
// aging out would leave it; the bucket is not touched.
func (c *Controller) InjectLease(host, owner string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.view[host] = lease{Owner: owner, Epoch: 1}
	c.seenAt[host] = time.Now().Add(-time.Hour)
}
