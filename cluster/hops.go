package cluster

import (
	"context"
	"sync"

	"github.com/mitogo/mitogo/actors"
)

// A host reached through several hops (local then sudo, ssh then sudo)
// has contexts before the one its Connector returns. Its Connector names
// them with Hops, and the controller shuts them down when it stops
// driving the host, after the host's context, unless the chain of
// another host it drives goes through them too. Otherwise each move of
// the host would leave its first hop running, idle, until the controller
// exits.

// hopsKey is the key of a connect's hopList in the Connector's ctx.
type hopsKey struct{}

// hopList gathers the hops a Connector names.
type hopList struct {
	mu   sync.Mutex
	hops []*actors.Context
}

// Hops records, from a Connector (ctx is the one it was given), the
// contexts of the host's chain before the one it returns: the controller
// shuts them down when it stops driving the host (a handover, a failed
// fence, its close), those that no other host it drives named before the
// others. Shutting down a chain's first context ends the rest of it. A
// Connector that shares a hop between hosts names it for each. Outside a
// Connector's ctx, Hops does nothing.
func Hops(ctx context.Context, hops ...*actors.Context) {
	if l, ok := ctx.Value(hopsKey{}).(*hopList); ok {
		l.mu.Lock()
		l.hops = append(l.hops, hops...)
		l.mu.Unlock()
	}
}

// connectHost runs the Connector and counts the hops it named as used by
// one more host; endHost gives them back.
func (c *Controller) connectHost(ctx context.Context, h *hostRun) (*actors.Context, []*actors.Context, error) {
	l := &hopList{}
	hctx, err := c.cfg.Connect(context.WithValue(ctx, hopsKey{}, l), c.cfg.Router, h.host)
	l.mu.Lock()
	hops := l.hops
	l.mu.Unlock()
	c.mu.Lock()
	if c.hopUsers == nil {
		c.hopUsers = map[*actors.Context]int{}
	}
	for _, p := range hops {
		c.hopUsers[p]++
	}
	c.mu.Unlock()
	if err != nil {
		c.endHost(nil, hops)
		return nil, nil, err
	}
	return hctx, hops, nil
}

// endHost shuts a host's context down, then the hops of its chain that no
// other host uses, the last first.
func (c *Controller) endHost(hctx *actors.Context, hops []*actors.Context) {
	if hctx != nil {
		shutdown(hctx)
	}
	var unused []*actors.Context
	c.mu.Lock()
	for _, p := range hops {
		if c.hopUsers[p]--; c.hopUsers[p] <= 0 {
			delete(c.hopUsers, p)
			unused = append(unused, p)
		}
	}
	c.mu.Unlock()
	for i := len(unused) - 1; i >= 0; i-- {
		shutdown(unused[i])
	}
}
