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
	Secret string   `msgpack:"secret"` // sudo, su, doas, openssh: the password to answer with
	// PreserveEnv keeps the caller's environment (sudo -E, su -m).
	PreserveEnv bool `msgpack:"preserve_env"`
	// Login runs the target user's login shell first (sudo -i, su -l).
	Login bool `msgpack:"login"`

	SSH     transport.SSHSpec `msgpack:"ssh"`      // ssh, openssh: how to reach the host
	SSHArgs []string          `msgpack:"ssh_args"` // openssh: extra arguments for ssh
	NoCache bool              `msgpack:"no_cache"` // shell methods: run from a temporary file, cache nothing
	// BinaryOwner is the context that made the connection and serves
	// binaries for far sides of other platforms; BinaryToken names what it
	// was given for this connection (see binaries.go).
	BinaryOwner uint32 `msgpack:"binary_owner"`
	BinaryToken string `msgpack:"binary_token"`
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
	if strings.ContainsAny(m.Secret, "\r\n") {
		return nil, fmt.Errorf("a password cannot contain a newline")
	}
	switch m.Method {
	case "ssh":
		return transport.StartSSH(ctx, m.SSH, "sh -c "+shellQuote(bootstrap.Stage1()), &r.pacer)
	case "openssh":
		return m.startOpenSSH()
	case "su", "doas":
		argv, err := m.suArgv()
		if err != nil {
			return nil, err
		}
		if m.Secret != "" || m.Method == "su" {
			// su and doas read a password only from a terminal; su with no
			// terminal would wait on its stdin for one, so it always gets
			// one, and a prompt without a password to give is refused.
			return transport.StartPty(argv, nil, m.Secret)
		}
		return transport.StartCommand(argv, nil)
	case "local":
		return transport.StartLocal(transport.LocalSpec{Path: m.Path, Args: m.Args})
	case "sudo":
		tool := m.Tool
		if tool == "" {
			tool = "sudo"
		}
		// -H: the target user's home, so the cache is theirs.
		argv := []string{tool, "-H", "-u", m.User}
		if m.PreserveEnv && m.Login {
			return nil, fmt.Errorf("sudo cannot both preserve the environment (-E) and start a login shell (-i)")
		}
		if m.PreserveEnv {
			argv = append(argv, "-E")
		}
		program := bootstrap.Stage1()
		if m.Login {
			argv = append(argv, "-i")
			program = bootstrap.Stage1Plain() // -i expands "$" in the command
		}
		argv = append(argv, "--", "/bin/sh", "-c", program)
		if m.Secret == "" {
			// -n: never prompt; a sudoers entry that wants a password
			// fails at once, saying so.
			return transport.StartCommand(append([]string{tool, "-n"}, argv[1:]...), nil)
		}
		// -A: sudo asks our helper, whatever its prompt or language;
		// -k: the password given is checked, not a cached credential.
		return startWithAskpass(append([]string{tool, "-k", "-A"}, argv[1:]...), m.Secret,
			(*transport.Askpass).Env)
	}
	return nil, fmt.Errorf("unknown connection method %q", m.Method)
}

// suArgv is the command line for su or doas. Without a password doas gets
// -n, so it never prompts.
func (m methodSpec) suArgv() ([]string, error) {
	tool := m.Tool
	if tool == "" {
		tool = m.Method
	}
	if m.Method == "su" {
		argv := []string{tool}
		if m.PreserveEnv {
			argv = append(argv, "-m")
		}
		if m.Login {
			argv = append(argv, "-l")
		}
		return append(argv, "-s", "/bin/sh", "-c", bootstrap.Stage1(), m.User), nil
	}
	if m.PreserveEnv || m.Login {
		return nil, fmt.Errorf("doas has no options to preserve the environment or start a login shell (use keepenv in doas.conf)")
	}
	argv := []string{tool}
	if m.Secret == "" {
		argv = append(argv, "-n")
	}
	return append(argv, "-u", m.User, "/bin/sh", "-c", bootstrap.Stage1()), nil
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
		case m.Secret != "" && strings.Contains(low, "authentication failure"):
			return fmt.Sprintf("su to %s: password incorrect", m.User)
		case strings.Contains(low, "permission denied"):
			return fmt.Sprintf("su to %s: not allowed: %s", m.User, lastLine(output))
		case strings.Contains(low, "must be run from a terminal"), strings.Contains(low, "authentication failure"):
			return fmt.Sprintf("su to %s: a password is required (give one with Password)", m.User)
		}
		return ""
	case "doas":
		switch {
		case m.Secret != "" && strings.Contains(low, "authentication failed"):
			return fmt.Sprintf("doas to %s: password incorrect", m.User)
		case strings.Contains(low, "authorization required"), strings.Contains(low, "authentication required"), strings.Contains(low, "a password is required"):
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
// program for it, on this machine (the one that calls the connect method),
// also when the connection is made Via a context elsewhere: that context
// fetches it from here. Without one, such a connection fails with "remote
// is linux/arm64; no binary for it".
func Binaries(byPlatform map[string]string) ConnectOption {
	return func(c *connectConfig) { c.binaries = byPlatform }
}

// BinaryFunc is Binaries as a function: it returns the path, on this
// machine, of the build for a platform ("linux/arm64"), or "" when there is
// none. It runs here, whichever context runs stage 1.
func BinaryFunc(fn func(platform string) (path string, err error)) ConnectOption {
	return func(c *connectConfig) { c.binaryFunc = fn }
}

// NoCache runs the child from a temporary file that it removes as soon as
// it starts, instead of keeping the binary in the far side's cache; the
// binary is then sent on every connection.
func NoCache() ConnectOption { return func(c *connectConfig) { c.noCache = true } }

// User sets the account a connection logs into (sudo, su, doas: default
// root; ssh: as in ~/.ssh/config, else the local user).
func User(name string) ConnectOption { return func(c *connectConfig) { c.user = name } }

// PreserveEnv keeps the caller's environment in the new account (sudo -E,
// su -m; doas has none: use keepenv in doas.conf).
func PreserveEnv() ConnectOption { return func(c *connectConfig) { c.preserveEnv = true } }

// LoginShell runs the target user's login shell, with its profile, before
// the child (sudo -i, su -l).
func LoginShell() ConnectOption { return func(c *connectConfig) { c.login = true } }

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
// root), after any context. su runs on a pseudo-terminal; with Password
// its prompt is answered once, whatever its language, and a wrong password
// is a *StreamError "password incorrect" within seconds. Without one, a
// prompt is a *StreamError "a password is required" (su from root, or a
// PAM rule, asks none). PreserveEnv (-m) and LoginShell (-l) apply.
func (r *Router) Su(ctx context.Context, opts ...ConnectOption) (*Context, error) {
	return r.connect(ctx, "su", opts)
}

// Doas starts a child context as another user through doas (User,
// default root), after any context. With Password, doas runs on a
// pseudo-terminal and its prompt is answered once; without one, doas -n
// never prompts, and a rule that wants a password fails at once with a
// *StreamError saying so.
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
