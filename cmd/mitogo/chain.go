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
var hopKinds = []string{"local", "ssh://[user@]host[:port]", "openssh://[user@]host[:port]", "sudo://[user]", "su://[user]", "doas://[user]"}

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
		case accountHop(p) != "":
			kind := accountHop(p)
			u := strings.TrimPrefix(strings.TrimPrefix(p, kind), "://")
			if u == "" {
				u = "root"
			}
			if strings.ContainsAny(u, "/@:") {
				return nil, usagef("-t %q: hop %d: %q is not a user name", chain, i+1, u)
			}
			hops = append(hops, hop{kind: kind, user: u})
		case strings.HasPrefix(p, "ssh://") || strings.HasPrefix(p, "openssh://"):
			kind, t, _ := strings.Cut(p, "://")
			if t == "" || strings.ContainsAny(t, "/ ") {
				return nil, usagef("-t %q: hop %d: want %s://[user@]host[:port], got %q", chain, i+1, kind, p)
			}
			hops = append(hops, hop{kind: kind, target: t})
		case p == "":
			return nil, usagef("-t %q: hop %d is empty", chain, i+1)
		default:
			return nil, usagef("-t %q: unknown hop %q (hop %d): supported kinds are %s",
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
	case "openssh":
		return r.OpenSSH(ctx, h.target, opts...)
	case "su":
		return r.Su(ctx, append(opts, actors.User(h.user))...)
	case "doas":
		return r.Doas(ctx, append(opts, actors.User(h.user))...)
	}
	return nil, fmt.Errorf("hop kind %q is not implemented", h.kind)
}

// accountHop returns the method of a hop that changes account (sudo, su,
// doas: "sudo", "sudo://", "sudo://user"), or "".
func accountHop(p string) string {
	for _, k := range []string{"sudo", "su", "doas"} {
		if p == k || strings.HasPrefix(p, k+"://") {
			return k
		}
	}
	return ""
}
