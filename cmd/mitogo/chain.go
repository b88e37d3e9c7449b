package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/mitogo/mitogo/actors"
)

// hop is one step of a chain: how a context is started from the previous one.
type hop struct {
	kind   string
	user   string // sudo: the target user
	target string // ssh: [user@]host[:port]
}

// hopKinds are the connection methods -t understands so far.
var hopKinds = []string{"local", "ssh://[user@]host[:port]", "sudo://[user]"}

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
		switch {
		case p == "local":
			hops = append(hops, hop{kind: p})
		case strings.HasPrefix(p, "sudo://") || p == "sudo":
			u := strings.TrimPrefix(strings.TrimPrefix(p, "sudo"), "://")
			if u == "" {
				u = "root"
			}
			if strings.ContainsAny(u, "/@:") {
				return nil, usagef("-t %q: hop %d: %q is not a user name", chain, i+1, u)
			}
			hops = append(hops, hop{kind: "sudo", user: u})
		case strings.HasPrefix(p, "ssh://"):
			t := strings.TrimPrefix(p, "ssh://")
			if t == "" || strings.ContainsAny(t, "/ ") {
				return nil, usagef("-t %q: hop %d: want ssh://[user@]host[:port], got %q", chain, i+1, p)
			}
			hops = append(hops, hop{kind: "ssh", target: t})
		case p == "":
			return nil, usagef("-t %q: hop %d is empty", chain, i+1)
		default:
			return nil, usagef("-t %q: unknown hop %q (hop %d): supported kinds are %s; openssh://, su:// and doas:// are coming",
				chain, p, i+1, strings.Join(hopKinds, ", "))
		}
	}
	return hops, nil
}

func (h hop) connect(ctx context.Context, r *actors.Router, opts ...actors.ConnectOption) (*actors.Context, error) {
	switch h.kind {
	case "local":
		return r.Local(ctx, opts...)
	case "sudo":
		return r.Sudo(ctx, append(opts, actors.User(h.user))...)
	case "ssh":
		return r.SSH(ctx, h.target, opts...)
	}
	return nil, fmt.Errorf("hop kind %q is not implemented", h.kind)
}
