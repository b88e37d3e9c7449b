package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mitogo/mitogo/actors"
	methods "github.com/mitogo/mitogo/connect"
	"golang.org/x/crypto/ssh/knownhosts"
)

// planned is a target ready to connect: its hops, each with its options.
type planned struct {
	t    *target
	hops []hop
	opts [][]actors.ConnectOption // per hop, Via not yet added

	// acceptNew is the known_hosts file this machine records new host keys
	// in for the target (its first hop is ssh with the accept-new policy),
	// and hostKeyName the host as that file names it; "" otherwise.
	acceptNew, hostKeyName string
}

// connect starts the target's chain of contexts and returns the first
// (shutting it down stops the whole chain) and the last. When a hop fails,
// the ones before it are shut down.
func (p *planned) connect(ctx context.Context, r *actors.Router) (first, last *actors.Context, err error) {
	for i, h := range p.hops {
		opts := p.opts[i]
		if last != nil {
			opts = append(opts[:len(opts):len(opts)], actors.Via(last))
		}
		c, err := h.connect(ctx, r, opts...)
		if err != nil {
			if first != nil {
				shutdown(first)
			}
			return nil, nil, err
		}
		if first == nil {
			first = c
		}
		last = c
	}
	return first, last, nil
}

// shutdown stops c and what it started, killing what does not stop within
// a few seconds.
func shutdown(c *actors.Context) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c.Shutdown(ctx)
}

// plan parses every target's chain and gathers its connection options.
// Passwords are read once, the terminal asked at most once for each kind,
// and shared by every target that needs one; a target's own password-env
// setting wins.
func (o *options) plan(ts []*target) ([]*planned, error) {
	if err := checkPolicy("--host-key-policy", o.hostKeyPolicy); err != nil {
		return nil, err
	}
	hops := make([][]hop, len(ts))
	needSSH, needSu := false, false
	for i, t := range ts {
		var err error
		if hops[i], err = parseChain(t.chain); err != nil {
			return nil, err
		}
		for _, h := range hops[i] {
			m := h.method()
			needSSH = needSSH || m.SSHLogin && t.settings["password-env"] == ""
			needSu = needSu || changesAccount(m) && t.settings["sudo-password-env"] == ""
		}
	}
	sshPW, err := sharedPassword("--password-env", o.passwordEnv, o.askPassword && needSSH, "--ask-password", "ssh password: ")
	if err != nil {
		return nil, err
	}
	suPW, err := sharedPassword("--sudo-password-env", o.sudoPasswordEnv, o.askSudoPassword && needSu, "--ask-sudo-password", "password for sudo/su/doas: ")
	if err != nil {
		return nil, err
	}
	out := make([]*planned, len(ts))
	for i, t := range ts {
		if out[i], err = o.planTarget(t, hops[i], sshPW, suPW); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// planTarget gathers one target's options: its settings over the flags.
func (o *options) planTarget(t *target, hops []hop, sshPW, suPW actors.ConnectOption) (*planned, error) {
	setting := func(key, flagValue string) string {
		if v, ok := t.settings[key]; ok {
			return expandTilde(v)
		}
		return flagValue
	}
	where := "target " + t.name
	policy := setting("host-key-policy", o.hostKeyPolicy)
	if err := checkPolicy(where+": host-key-policy", policy); err != nil {
		return nil, err
	}
	var sshOpts []actors.ConnectOption
	if id := setting("identity", o.identity); id != "" {
		sshOpts = append(sshOpts, actors.IdentityFile(id))
	}
	kh := setting("known-hosts", o.knownHosts)
	if kh != "" {
		sshOpts = append(sshOpts, actors.KnownHosts(kh))
	}
	sshOpts = append(sshOpts, actors.HostKeyPolicy(policy))
	if v, ok := t.settings["password-env"]; ok {
		pw, err := passwordFromEnv(where+": password-env", v)
		if err != nil {
			return nil, err
		}
		sshOpts = append(sshOpts, pw)
	} else if sshPW != nil {
		sshOpts = append(sshOpts, sshPW)
	}
	var suOpts []actors.ConnectOption
	if o.preserveEnv {
		suOpts = append(suOpts, actors.PreserveEnv())
	}
	if o.login {
		suOpts = append(suOpts, actors.LoginShell())
	}
	if v, ok := t.settings["sudo-password-env"]; ok {
		pw, err := passwordFromEnv(where+": sudo-password-env", v)
		if err != nil {
			return nil, err
		}
		suOpts = append(suOpts, pw)
	} else if suPW != nil {
		suOpts = append(suOpts, suPW)
	}

	connectTimeout := o.connectTimeout
	if v, ok := t.settings["connect-timeout"]; ok {
		connectTimeout, _ = time.ParseDuration(v) // checked by parseInventory
	}
	p := &planned{t: t, hops: append([]hop(nil), hops...)}
	firstSSH := true
	for i, h := range p.hops {
		m := h.method()
		if m.SSHLogin && firstSSH {
			firstSSH = false
			user, host, port, err := methods.SplitTarget(h.target)
			if err != nil {
				return nil, usagef("%s: %v", where, err)
			}
			if user == "" {
				user = t.settings["user"]
			}
			if port == 0 && t.settings["port"] != "" {
				port, _ = strconv.Atoi(t.settings["port"])
			}
			p.hops[i].target = methods.Target(user, host, port)
			if i == 0 && policy == "accept-new" {
				p.acceptNew = kh
				if p.acceptNew == "" {
					home, _ := os.UserHomeDir()
					p.acceptNew = filepath.Join(home, ".ssh", "known_hosts")
				}
				if port == 0 {
					port = 22
				}
				p.hostKeyName = knownhosts.Normalize(net.JoinHostPort(host, strconv.Itoa(port)))
			}
		}
		opts := append([]actors.ConnectOption{actors.ConnectTimeout(connectTimeout)}, o.heartbeat.options()...)
		if len(o.binaries) > 0 && m.Shell {
			opts = append(opts, actors.Binaries(o.binaries))
		}
		if m.SSHLogin {
			opts = append(opts, sshOpts...)
		}
		if changesAccount(m) {
			opts = append(opts, suOpts...)
		}
		p.opts = append(p.opts, opts)
	}
	return p, nil
}

func checkPolicy(what, policy string) error {
	switch policy {
	case "strict", "accept-new", "ignore":
		return nil
	}
	return usagef("%s %q: want strict, accept-new or ignore", what, policy)
}

// sharedPassword is the password every target without its own uses: from
// the environment variable env names, else asked on the terminal when ask
// is set, else none (nil).
func sharedPassword(envFlag, env string, ask bool, askFlag, prompt string) (actors.ConnectOption, error) {
	switch {
	case env != "":
		return passwordFromEnv(envFlag, env)
	case ask:
		pw, err := askPassword(askFlag, prompt)
		if err != nil {
			return nil, err
		}
		return actors.Password(pw), nil
	}
	return nil, nil
}

// passwordFromEnv is the Password option from the environment variable a
// flag or setting names.
func passwordFromEnv(what, variable string) (actors.ConnectOption, error) {
	pw, ok := os.LookupEnv(variable)
	if !ok {
		return nil, usagef("%s %s: the variable is not set", what, variable)
	}
	return actors.Password(pw), nil
}

// expandTilde expands a leading ~/ to the home directory, as a shell would
// have for a flag.
func expandTilde(p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, rest)
		}
	}
	return p
}
