package main

import (
	"context"
	"fmt"
	"net"
	"strings"

	"github.com/mitogo/mitogo/actors"
	methods "github.com/mitogo/mitogo/connect"
)

// hop is one step of a chain: how a context is started from the previous one.
type hop struct {
	kind   string // the method's name in package connect's registry
	user   string // sudo, su, doas: the target user
	target string // ssh, openssh: [user@]host[:port]; container methods: what they enter
}

// method is the hop's connection method.
func (h hop) method() *methods.Method {
	m, _ := methods.Lookup(h.kind)
	return m
}

// changesAccount reports a method that becomes another user on the same
// machine (sudo, su, doas): those have a default user.
func changesAccount(m *methods.Method) bool { return m.DefaultUser != "" }

// hopKinds are the connection methods -t understands.
var hopKinds = append([]string{"local", "[user@]host[:port] (ssh)", "ssh://[user@]host[:port]", "openssh://[user@]host[:port]", "sudo://[user]", "su://[user]", "doas://[user]"},
	targetHopKinds()...)

// targetHopKinds are the hops of the methods that enter a target:
// "podman://[user@]CONTAINER", "chroot://DIR".
func targetHopKinds() []string {
	var kinds []string
	for _, m := range methods.Methods() {
		if m.Target != "" {
			kinds = append(kinds, targetHopKind(m))
		}
	}
	return kinds
}

// hopUser reports a target hop that takes [user@] (not chroot, whose
// directory may hold an "@").
func hopUser(m *methods.Method) bool {
	return m.Options&methods.OptUser != 0 && m.Name != methods.Chroot
}

// targetHopKind is the usage of m's hop: "podman://[user@]CONTAINER".
func targetHopKind(m *methods.Method) string {
	k := m.Name + "://"
	if hopUser(m) {
		k += "[user@]"
	}
	return k + m.Target
}

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
		case p == methods.Local:
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
		case sshHop(p) != "":
			kind, t, _ := strings.Cut(p, "://")
			if t == "" || strings.ContainsAny(t, "/ ") {
				return nil, usagef("-t %q: hop %d: want %s://[user@]host[:port], got %q", chain, i+1, kind, p)
			}
			hops = append(hops, hop{kind: kind, target: t})
		case targetHop(p) != nil:
			h, err := parseTargetHop(targetHop(p), p)
			if err != nil {
				return nil, usagef("-t %q: hop %d: %v", chain, i+1, err)
			}
			hops = append(hops, h)
		case p == "":
			return nil, usagef("-t %q: hop %d is empty", chain, i+1)
		case bareSSHHost(p):
			hops = append(hops, hop{kind: methods.SSH, target: p})
		case sshPort(p) != "":
			// An ssh host whose port is out of range or not a number
			// (a "sudo:root" too: it reads as host "sudo", port "root").
			_, _, _, err := methods.SplitTarget(p)
			if isDigits(sshPort(p)) {
				return nil, usagef("-t %q: hop %d: %v", chain, i+1, err)
			}
			if kind, rest, _ := strings.Cut(p, ":"); accountHop(kind) == kind && kind != "" {
				return nil, usagef("-t %q: hop %d: %q is not a hop; did you mean %s://%s?", chain, i+1, p, kind, rest)
			}
			return nil, usagef("-t %q: hop %d: %v; supported kinds are %s", chain, i+1, err, strings.Join(hopKinds, ", "))
		default:
			return nil, usagef("-t %q: unknown hop %q (hop %d): supported kinds are %s",
				chain, p, i+1, strings.Join(hopKinds, ", "))
		}
	}
	return hops, nil
}

// starts are the Router's connect methods, by method name.
var starts = map[string]func(r *actors.Router, ctx context.Context, h hop, opts []actors.ConnectOption) (*actors.Context, error){
	methods.Local: func(r *actors.Router, ctx context.Context, _ hop, opts []actors.ConnectOption) (*actors.Context, error) {
		return r.Local(ctx, opts...)
	},
	methods.Sudo: func(r *actors.Router, ctx context.Context, h hop, opts []actors.ConnectOption) (*actors.Context, error) {
		return r.Sudo(ctx, append(opts, actors.User(h.user))...)
	},
	methods.Su: func(r *actors.Router, ctx context.Context, h hop, opts []actors.ConnectOption) (*actors.Context, error) {
		return r.Su(ctx, append(opts, actors.User(h.user))...)
	},
	methods.Doas: func(r *actors.Router, ctx context.Context, h hop, opts []actors.ConnectOption) (*actors.Context, error) {
		return r.Doas(ctx, append(opts, actors.User(h.user))...)
	},
	methods.SSH: func(r *actors.Router, ctx context.Context, h hop, opts []actors.ConnectOption) (*actors.Context, error) {
		return r.SSH(ctx, h.target, opts...)
	},
	methods.OpenSSH: func(r *actors.Router, ctx context.Context, h hop, opts []actors.ConnectOption) (*actors.Context, error) {
		return r.OpenSSH(ctx, h.target, opts...)
	},
}

// targetStarts are the Router's methods that enter a target.
var targetStarts = map[string]func(r *actors.Router, ctx context.Context, target string, opts ...actors.ConnectOption) (*actors.Context, error){
	methods.Podman: (*actors.Router).Podman, methods.Docker: (*actors.Router).Docker, methods.Kubectl: (*actors.Router).Kubectl,
	methods.LXC: (*actors.Router).LXC, methods.Nsenter: (*actors.Router).Nsenter, methods.Chroot: (*actors.Router).Chroot,
}

func init() {
	for name, start := range targetStarts {
		starts[name] = func(r *actors.Router, ctx context.Context, h hop, opts []actors.ConnectOption) (*actors.Context, error) {
			if h.user != "" {
				opts = append(opts, actors.User(h.user))
			}
			return start(r, ctx, h.target, opts...)
		}
	}
}

func (h hop) connect(ctx context.Context, r *actors.Router, opts ...actors.ConnectOption) (*actors.Context, error) {
	start, ok := starts[h.kind]
	if !ok {
		return nil, fmt.Errorf("hop kind %q is not implemented", h.kind)
	}
	return start(r, ctx, h, opts)
}

// bareSSHHost reports a hop that is an ssh host as ssh reads it:
// [user@]host[:port] or a ~/.ssh/config alias, with no method prefix.
func bareSSHHost(p string) bool {
	if strings.Contains(p, "://") || strings.ContainsAny(p, "/ \t") {
		return false
	}
	_, _, _, err := methods.SplitTarget(p)
	return err == nil
}

// sshPort returns the port of a hop written as an ssh host with a port,
// [user@]host:port, whatever the port is; "" for other hops.
func sshPort(p string) string {
	if strings.Contains(p, "://") || strings.ContainsAny(p, "/ \t") {
		return ""
	}
	hostPort := p[strings.LastIndex(p, "@")+1:]
	_, port, err := net.SplitHostPort(hostPort)
	if err != nil {
		return ""
	}
	return port
}

func isDigits(s string) bool { return s != "" && strings.Trim(s, "0123456789") == "" }

// accountHop returns the method of a hop that changes account (sudo, su,
// doas: "sudo", "sudo://", "sudo://user"), or "".
func accountHop(p string) string {
	for _, m := range methods.Methods() {
		if k := m.Name; changesAccount(m) && (p == k || strings.HasPrefix(p, k+"://")) {
			return k
		}
	}
	return ""
}

// sshHop returns the method of a hop to another host ("ssh://...",
// "openssh://..."), or "".
func sshHop(p string) string {
	for _, m := range methods.Methods() {
		if k := m.Name; m.SSHLogin && strings.HasPrefix(p, k+"://") {
			return k
		}
	}
	return ""
}

// targetHop returns the method of a hop that enters a target
// ("podman://web", "chroot:///srv/root"), or nil.
func targetHop(p string) *methods.Method {
	for _, m := range methods.Methods() {
		if m.Target != "" && strings.HasPrefix(p, m.Name+"://") {
			return m
		}
	}
	return nil
}

// parseTargetHop reads "podman://[user@]CONTAINER", "nsenter://PID",
// "chroot://DIR".
func parseTargetHop(m *methods.Method, p string) (hop, error) {
	t := strings.TrimPrefix(p, m.Name+"://")
	h := hop{kind: m.Name, target: t}
	if hopUser(m) {
		if u, rest, ok := strings.Cut(t, "@"); ok {
			if u == "" {
				return hop{}, fmt.Errorf("%q: empty user before '@'", p)
			}
			h.user, h.target = u, rest
		}
	}
	if h.target == "" || strings.ContainsAny(h.target, " \t") {
		return hop{}, fmt.Errorf("want %s, got %q", targetHopKind(m), p)
	}
	return h, nil
}
