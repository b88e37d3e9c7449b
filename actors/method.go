package actors

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/mitogo/mitogo/bootstrap"
	"github.com/mitogo/mitogo/transport"
)

// methodSpec says how to start a child; it is plain data, so a context
// asked to start a child for another (Via) receives it in the request.
type methodSpec struct {
	Method string   `msgpack:"method"` // local, sudo
	Path   string   `msgpack:"path"`   // local: the executable
	Args   []string `msgpack:"args"`   // local: its arguments
	User   string   `msgpack:"user"`   // sudo: the target user
	Tool   string   `msgpack:"tool"`   // sudo: the path of the tool
	Secret string   `msgpack:"secret"` // sudo: the password to answer with

	SSH     transport.SSHSpec `msgpack:"ssh"`      // ssh, openssh: how to reach the host
	SSHArgs []string          `msgpack:"ssh_args"` // openssh: extra arguments for ssh
	NoCache bool              `msgpack:"no_cache"` // shell methods: run from a temporary file, cache nothing
	// Binaries maps GOOS/GOARCH to a binary for far sides of another
	// platform, as paths on the machine of the context that connects.
	Binaries map[string]string `msgpack:"binaries"`
}

// provider serves Binaries to stage 1.
func (m methodSpec) provider() bootstrap.Provider {
	if len(m.Binaries) == 0 {
		return nil
	}
	return func(platform string) (*bootstrap.Binary, error) {
		path, ok := m.Binaries[platform]
		if !ok {
			return nil, nil
		}
		return bootstrap.NewBinary(path)
	}
}

func (m methodSpec) defaultName(id uint32) string {
	switch m.Method {
	case "sudo", "su", "doas":
		return m.Method + ":" + m.User
	case "ssh", "openssh":
		if m.SSH.User != "" {
			return "ssh:" + m.SSH.User + "@" + m.SSH.Host
		}
		return "ssh:" + m.SSH.Host
	}
	return m.Method + "." + itoa(id)
}

// shell reports whether the method ends in a shell that runs stage 1.
func (m methodSpec) shell() bool { return m.Method != "local" }

func (m methodSpec) start(ctx context.Context, r *Router) (*transport.Child, error) {
	switch m.Method {
	case "ssh":
		return transport.StartSSH(ctx, m.SSH, "sh -c "+shellQuote(bootstrap.Stage1()), &r.pacer)
	case "openssh":
		return m.startOpenSSH()
	case "su", "doas":
		if m.Secret != "" {
			return nil, fmt.Errorf("%s with a password needs a pty, which is not supported yet; use sudo, or a rule that needs no password", m.Method)
		}
		tool := m.Tool
		if tool == "" {
			tool = m.Method
		}
		if m.Method == "su" {
			return transport.StartCommand([]string{tool, "-s", "/bin/sh", "-c", bootstrap.Stage1(), m.User}, nil)
		}
		// -n: never prompt; a rule that wants a password fails at once.
		return transport.StartCommand([]string{tool, "-n", "-u", m.User, "/bin/sh", "-c", bootstrap.Stage1()}, nil)
	case "local":
		return transport.StartLocal(transport.LocalSpec{Path: m.Path, Args: m.Args})
	case "sudo":
		tool := m.Tool
		if tool == "" {
			tool = "sudo"
		}
		// -H: the target user's home, so the cache is theirs.
		if m.Secret == "" {
			// -n: never prompt; a sudoers entry that wants a password
			// fails at once, saying so.
			return transport.StartCommand([]string{tool, "-n", "-H", "-u", m.User, "--", "/bin/sh", "-c", bootstrap.Stage1()}, nil)
		}
		// -A: sudo asks our helper, whatever its prompt or language;
		// -k: the password given is checked, not a cached credential.
		return startWithAskpass([]string{tool, "-k", "-A", "-H", "-u", m.User, "--", "/bin/sh", "-c", bootstrap.Stage1()}, m.Secret,
			(*transport.Askpass).Env)
	}
	return nil, fmt.Errorf("unknown connection method %q", m.Method)
}

// startOpenSSH runs the OpenSSH client, so that everything in the user's
// ~/.ssh/config applies (ProxyJump, ControlMaster, certificates). A
// password is given through SSH_ASKPASS, as for sudo.
func (m methodSpec) startOpenSSH() (*transport.Child, error) {
	tool := m.Tool
	if tool == "" {
		tool = "ssh"
	}
	s := m.SSH
	argv := []string{tool, "-T", "-o", "NumberOfPasswordPrompts=1"}
	if s.Port != 0 {
		argv = append(argv, "-p", strconv.Itoa(s.Port))
	}
	if s.User != "" {
		argv = append(argv, "-l", s.User)
	}
	for _, id := range s.IdentityFiles {
		argv = append(argv, "-i", id)
	}
	if s.KnownHosts != "" {
		argv = append(argv, "-o", "UserKnownHostsFile="+s.KnownHosts)
	}
	switch s.HostKeyPolicy {
	case transport.HostKeyAcceptNew:
		argv = append(argv, "-o", "StrictHostKeyChecking=accept-new")
	case transport.HostKeyIgnore:
		argv = append(argv, "-o", "StrictHostKeyChecking=no")
	case "", transport.HostKeyStrict:
		argv = append(argv, "-o", "StrictHostKeyChecking=yes")
	}
	if s.ConfigFile != "" {
		cfg := s.ConfigFile
		if cfg == "none" {
			cfg = "/dev/null"
		}
		argv = append(argv, "-F", cfg)
	}
	if m.Secret == "" {
		argv = append(argv, "-o", "BatchMode=yes")
	}
	argv = append(argv, m.SSHArgs...)
	argv = append(argv, "--", s.Host, "sh -c "+shellQuote(bootstrap.Stage1()))
	if m.Secret == "" {
		return transport.StartCommand(argv, nil)
	}
	return startWithAskpass(argv, m.Secret, (*transport.Askpass).AskpassEnv)
}

// startWithAskpass runs argv with an askpass helper that answers secret;
// env says how the tool finds the helper. A second ask means the secret
// was wrong: the child is killed and its refusal says so.
func startWithAskpass(argv []string, secret string, env func(*transport.Askpass) []string) (*transport.Child, error) {
	ap, err := transport.NewAskpass(secret)
	if err != nil {
		return nil, err
	}
	child, err := transport.StartCommand(argv, env(ap))
	if err != nil {
		ap.Close()
		return nil, err
	}
	child.Output = ap.Watch(child.Output, func() {
		child.Refuse("password incorrect")
		child.Proc.Kill()
	})
	child.Cleanup = ap.Close
	return child, nil
}

// explain turns what a failed method printed into a reason, when it is a
// known refusal.
func (m methodSpec) explain(output string) string {
	low := strings.ToLower(output)
	if m.Method == "openssh" {
		switch {
		case strings.Contains(low, "host key verification failed"):
			return "ssh: host key verification failed (the host's key is unknown or changed; see known_hosts)"
		case strings.Contains(low, "permission denied"):
			return "ssh: authentication failed: " + lastLine(output)
		case strings.Contains(low, "connection refused"), strings.Contains(low, "could not resolve"), strings.Contains(low, "timed out"), strings.Contains(low, "no route to host"):
			return "ssh: " + lastLine(output)
		}
		return ""
	}
	switch m.Method {
	case "su":
		switch {
		case strings.Contains(low, "does not exist"), strings.Contains(low, "unknown"):
			return fmt.Sprintf("su to %s: user unknown", m.User)
		case strings.Contains(low, "must be run from a terminal"), strings.Contains(low, "authentication failure"):
			return fmt.Sprintf("su to %s: a password is required (su with a password needs a pty, not supported yet)", m.User)
		}
		return ""
	case "doas":
		switch {
		case strings.Contains(low, "authorization required"), strings.Contains(low, "a password is required"):
			return fmt.Sprintf("doas to %s: a password is required", m.User)
		case strings.Contains(low, "not permitted"):
			return fmt.Sprintf("doas to %s: not allowed by doas.conf", m.User)
		case strings.Contains(low, "unknown user"), strings.Contains(low, "no passwd entry"):
			return fmt.Sprintf("doas to %s: user unknown", m.User)
		}
		return ""
	case "sudo":
	default:
		return ""
	}
	switch {
	case strings.Contains(low, "a password is required"):
		return fmt.Sprintf("sudo to %s: a password is required", m.User)
	case strings.Contains(low, "unknown user"):
		return fmt.Sprintf("sudo to %s: user unknown", m.User)
	case strings.Contains(low, "not allowed") || strings.Contains(low, "not in the sudoers"):
		return fmt.Sprintf("sudo to %s: not allowed by sudoers", m.User)
	}
	return ""
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// Binaries gives the binary to start on a far side of another platform:
// a map from GOOS/GOARCH ("linux/arm64") to the path of a build of this
// program for it, on the machine of the context that makes the connection.
// Without one, such a connection fails with "remote is linux/arm64; no
// binary for it".
func Binaries(byPlatform map[string]string) ConnectOption {
	return func(c *connectConfig) { c.binaries = byPlatform }
}

// NoCache runs the child from a temporary file that it removes as soon as
// it starts, instead of keeping the binary in the far side's cache; the
// binary is then sent on every connection.
func NoCache() ConnectOption { return func(c *connectConfig) { c.noCache = true } }

// User sets the account a sudo (later su, doas, ssh) connection logs into.
func User(name string) ConnectOption { return func(c *connectConfig) { c.user = name } }

// Tool sets the path of the program a method runs (sudo, su, doas).
func Tool(path string) ConnectOption { return func(c *connectConfig) { c.tool = path } }

// selfBinary is this program's executable, hashed once, for stage 1.
func (r *Router) selfBinary() (*bootstrap.Binary, error) {
	r.binOnce.Do(func() {
		exe, err := os.Executable()
		if err == nil {
			r.bin, err = bootstrap.NewBinary(exe)
		}
		r.binErr = err
	})
	return r.bin, r.binErr
}

// SSH starts a child context on another machine over SSH (the native
// client, golang.org/x/crypto/ssh), with nothing installed there but
// /bin/sh: stage 1 copies this program into the remote user's cache the
// first time. target is [user@]host[:port], or a Host from ~/.ssh/config.
// Defaults are OpenSSH's: ~/.ssh keys, the agent, ~/.ssh/known_hosts
// checked strictly, ~/.ssh/config's HostName, User, Port and IdentityFile.
// Options: User, IdentityFile, Password, KnownHosts, HostKeyPolicy,
// Keepalive, SSHConfig, plus Via, Name, ConnectTimeout and Supervise.
func (r *Router) SSH(ctx context.Context, target string, opts ...ConnectOption) (*Context, error) {
	user, host, port, err := splitTarget(target)
	if err != nil {
		return nil, &StreamError{Context: "ssh:" + target, Method: "ssh", Reason: err.Error(), Err: err}
	}
	opts = append([]ConnectOption{func(c *connectConfig) { c.ssh.Host, c.ssh.Port, c.ssh.User = host, port, user }}, opts...)
	return r.connect(ctx, "ssh", opts)
}

// splitTarget splits [user@]host[:port]; IPv6 addresses go in brackets.
func splitTarget(t string) (user, host string, port int, err error) {
	if i := strings.LastIndex(t, "@"); i >= 0 {
		user, t = t[:i], t[i+1:]
	}
	host = t
	if h, p, e := net.SplitHostPort(t); e == nil {
		host = h
		if port, err = strconv.Atoi(p); err != nil || port <= 0 || port > 65535 {
			return "", "", 0, fmt.Errorf("bad port %q in %q", p, t)
		}
	}
	if host == "" {
		return "", "", 0, fmt.Errorf("no host in %q", t)
	}
	return user, host, port, nil
}

// IdentityFile adds a private key file to offer (instead of the defaults).
func IdentityFile(path string) ConnectOption {
	return func(c *connectConfig) { c.ssh.IdentityFiles = append(c.ssh.IdentityFiles, path) }
}

// Password is the password to log in with (ssh) or to answer a prompt
// with (sudo, su, doas). Never put it on a command line: read it from a
// terminal or the environment.
func Password(pw string) ConnectOption {
	return func(c *connectConfig) { c.ssh.Password, c.password = pw, pw }
}

// KnownHosts sets the known_hosts file (default ~/.ssh/known_hosts).
func KnownHosts(path string) ConnectOption { return func(c *connectConfig) { c.ssh.KnownHosts = path } }

// HostKeyPolicy sets how unknown host keys are met: "strict" (refuse; the
// default), "accept-new" (record them; a changed key is still refused) or
// "ignore".
func HostKeyPolicy(p string) ConnectOption { return func(c *connectConfig) { c.ssh.HostKeyPolicy = p } }

// Keepalive asks an SSH server for a sign of life every interval; after max
// unanswered intervals the host is taken for dead and everything pending on
// it fails with *ChannelError. Default 15s × 3; interval < 0 turns it off.
func Keepalive(interval time.Duration, max int) ConnectOption {
	return func(c *connectConfig) { c.ssh.Keepalive, c.ssh.KeepaliveMax = interval, max }
}

// Su starts a child context as another user through su (User, default
// root), after any context. Without a terminal su asks no password, so
// this works where none is needed (from root, or a PAM rule); a password
// comes with pty support.
func (r *Router) Su(ctx context.Context, opts ...ConnectOption) (*Context, error) {
	return r.connect(ctx, "su", opts)
}

// Doas starts a child context as another user through doas -n (User,
// default root), after any context; a rule that wants a password fails at
// once with a *StreamError saying so.
func (r *Router) Doas(ctx context.Context, opts ...ConnectOption) (*Context, error) {
	return r.connect(ctx, "doas", opts)
}

// OpenSSH starts a child context over SSH with the OpenSSH client binary
// (ssh), for users whose ~/.ssh/config must apply: ProxyJump, ControlMaster,
// certificates, per-host users. target is [user@]host[:port] or a Host
// alias. Options as for SSH; SSHArgs adds arguments; Password is answered
// through SSH_ASKPASS. Without a password ssh runs in BatchMode.
func (r *Router) OpenSSH(ctx context.Context, target string, opts ...ConnectOption) (*Context, error) {
	user, host, port, err := splitTarget(target)
	if err != nil {
		return nil, &StreamError{Context: "ssh:" + target, Method: "openssh", Reason: err.Error(), Err: err}
	}
	opts = append([]ConnectOption{func(c *connectConfig) { c.ssh.Host, c.ssh.Port, c.ssh.User = host, port, user }}, opts...)
	return r.connect(ctx, "openssh", opts)
}

// SSHArgs adds arguments to the OpenSSH client's command line (OpenSSH only).
func SSHArgs(args ...string) ConnectOption {
	return func(c *connectConfig) { c.sshArgs = append(c.sshArgs, args...) }
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// SSHConfig reads host settings from path instead of ~/.ssh/config ("none": no file).
func SSHConfig(path string) ConnectOption { return func(c *connectConfig) { c.ssh.ConfigFile = path } }
