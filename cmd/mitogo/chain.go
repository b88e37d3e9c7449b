package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/mitogo/mitogo/actors"
)

// hop is one step of a chain: how a context is started from the previous one.
type hop struct {
	kind string
}

// hopKinds are the connection methods -t understands so far.
var hopKinds = []string{"local"}

// parseChain splits "local,local" into hops. Errors are usage errors that
// name the offending hop.
func parseChain(chain string) ([]hop, error) {
	if strings.TrimSpace(chain) == "" {
		return nil, usagef("-t: empty chain; give hops joined by commas, e.g. local,local")
	}
	parts := strings.Split(chain, ",")
	hops := make([]hop, 0, len(parts))
	for i, p := range parts {
		p = strings.TrimSpace(p)
		switch p {
		case "local":
			hops = append(hops, hop{kind: p})
		case "":
			return nil, usagef("-t %q: hop %d is empty", chain, i+1)
		default:
			return nil, usagef("-t %q: unknown hop %q (hop %d): supported kinds are %s; ssh://, sudo:, su: and doas: are coming",
				chain, p, i+1, strings.Join(hopKinds, ", "))
		}
	}
	return hops, nil
}

func (h hop) connect(ctx context.Context, r *actors.Router, opts ...actors.ConnectOption) (*actors.Context, error) {
	switch h.kind {
	case "local":
		return r.Local(ctx, opts...)
	}
	return nil, fmt.Errorf("hop kind %q is not implemented", h.kind)
}
