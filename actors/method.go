package actors

import (
	"context"
	"os"
	"time"

	"github.com/mitogo/mitogo/bootstrap"
	"github.com/mitogo/mitogo/connect"
)

// Binaries gives the binary to start on a far side of another platform:
// a map from GOOS/GOARCH ("linux/arm64") to the path of a build of this
// program for it, on this machine (the one that calls the connect method),
// also when the connection is made Via a context elsewhere: that context
// fetches it from here. Without one, such a connection fails with "remote
// is linux/arm64; no binary for it".
func Binaries(byPlatform map[string]string) ConnectOption {
	return func(c *connectConfig) { c.binaries, c.given = byPlatform, c.given|connect.OptBinaries }
}

// BinaryFunc is Binaries as a function: it returns the path, on this
// machine, of the build for a platform ("linux/arm64"), or "" when there is
// none. It runs here, whichever context runs stage 1.
func BinaryFunc(fn func(platform string) (path string, err error)) ConnectOption {
	return func(c *connectConfig) { c.binaryFunc, c.given = fn, c.given|connect.OptBinaries }
}

// NoCache runs the child from a temporary file that it removes as soon as
// it starts, instead of keeping the binary in the far side's cache; the
// binary is then sent on every connection.
func NoCache() ConnectOption {
	return func(c *connectConfig) { c.noCache, c.given = true, c.given|connect.OptNoCache }
}

// User sets the account a connection logs into (sudo, su, doas: default
// root; ssh: as in ~/.ssh/config, else the local user).
func User(name string) ConnectOption {
	return func(c *connectConfig) { c.user, c.given = name, c.given|connect.OptUser }
}

// PreserveEnv keeps the caller's environment in the new account (sudo -E,
// su -m; doas has none: use keepenv in doas.conf).
func PreserveEnv() ConnectOption {
	return func(c *connectConfig) { c.preserveEnv, c.given = true, c.given|connect.OptPreserveEnv }
}

// LoginShell runs the target user's login shell, with its profile, before
// the child (sudo -i, su -l).
func LoginShell() ConnectOption {
	return func(c *connectConfig) { c.login, c.given = true, c.given|connect.OptLoginShell }
}

// Tool sets the path of the program a method runs (sudo, su, doas).
func Tool(path string) ConnectOption {
	return func(c *connectConfig) { c.tool, c.given = path, c.given|connect.OptTool }
}

// selfBinary is this program's executable, hashed once, for stage 1.
func (r *Router) selfBinary() (*bootstrap.Binary, error) {
	r.binOnce.Do(func() {
		r.bin, r.binErr = bootstrap.NewBinary(runningExecutable())
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
	user, host, port, err := connect.SplitTarget(target)
	if err != nil {
		return nil, &StreamError{Context: "ssh:" + target, Method: connect.SSH, Reason: err.Error(), Err: err}
	}
	opts = append([]ConnectOption{func(c *connectConfig) { c.ssh.Host, c.ssh.Port, c.ssh.User = host, port, user }}, opts...)
	return r.connect(ctx, connect.SSH, opts)
}

// IdentityFile adds a private key file to offer (instead of the defaults).
func IdentityFile(path string) ConnectOption {
	return func(c *connectConfig) {
		c.ssh.IdentityFiles, c.given = append(c.ssh.IdentityFiles, path), c.given|connect.OptIdentityFile
	}
}

// Password is the password to log in with (ssh) or to answer a prompt
// with (sudo, su, doas). Never put it on a command line: read it from a
// terminal or the environment.
func Password(pw string) ConnectOption {
	return func(c *connectConfig) { c.password, c.given = pw, c.given|connect.OptPassword }
}

// KnownHosts sets the known_hosts file (default ~/.ssh/known_hosts).
func KnownHosts(path string) ConnectOption {
	return func(c *connectConfig) { c.ssh.KnownHosts, c.given = path, c.given|connect.OptKnownHosts }
}

// HostKeyPolicy sets how unknown host keys are met: "strict" (refuse; the
// default), "accept-new" (record them; a changed key is still refused) or
// "ignore".
func HostKeyPolicy(p string) ConnectOption {
	return func(c *connectConfig) { c.ssh.HostKeyPolicy, c.given = p, c.given|connect.OptHostKeyPolicy }
}

// Keepalive asks an SSH server for a sign of life every interval; after max
// unanswered intervals the host is taken for dead and everything pending on
// it fails with *ChannelError. Default 15s × 3; interval < 0 turns it off.
func Keepalive(interval time.Duration, max int) ConnectOption {
	return func(c *connectConfig) {
		c.ssh.Keepalive, c.ssh.KeepaliveMax, c.given = interval, max, c.given|connect.OptKeepalive
	}
}

// Su starts a child context as another user through su (User, default
// root), after any context. su runs on a pseudo-terminal; with Password
// its prompt is answered once, whatever its language, and a wrong password
// is a *StreamError "password incorrect" within seconds. Without one, a
// prompt is a *StreamError "a password is required" (su from root, or a
// PAM rule, asks none). PreserveEnv (-m) and LoginShell (-l) apply.
func (r *Router) Su(ctx context.Context, opts ...ConnectOption) (*Context, error) {
	return r.connect(ctx, connect.Su, opts)
}

// Doas starts a child context as another user through doas (User,
// default root), after any context. With Password, doas runs on a
// pseudo-terminal and its prompt is answered once; without one, doas -n
// never prompts, and a rule that wants a password fails at once with a
// *StreamError saying so.
func (r *Router) Doas(ctx context.Context, opts ...ConnectOption) (*Context, error) {
	return r.connect(ctx, connect.Doas, opts)
}

// OpenSSH starts a child context over SSH with the OpenSSH client binary
// (ssh), for users whose ~/.ssh/config must apply: ProxyJump, ControlMaster,
// certificates, per-host users. target is [user@]host[:port] or a Host
// alias. Options as for SSH; SSHArgs adds arguments; Password is answered
// through SSH_ASKPASS. Without a password ssh runs in BatchMode.
func (r *Router) OpenSSH(ctx context.Context, target string, opts ...ConnectOption) (*Context, error) {
	user, host, port, err := connect.SplitTarget(target)
	if err != nil {
		return nil, &StreamError{Context: "ssh:" + target, Method: connect.OpenSSH, Reason: err.Error(), Err: err}
	}
	opts = append([]ConnectOption{func(c *connectConfig) { c.ssh.Host, c.ssh.Port, c.ssh.User = host, port, user }}, opts...)
	return r.connect(ctx, connect.OpenSSH, opts)
}

// SSHArgs adds arguments to the OpenSSH client's command line (OpenSSH only).
func SSHArgs(args ...string) ConnectOption {
	return func(c *connectConfig) { c.sshArgs, c.given = append(c.sshArgs, args...), c.given|connect.OptSSHArgs }
}

// SSHConfig reads host settings from path instead of ~/.ssh/config ("none": no file).
func SSHConfig(path string) ConnectOption {
	return func(c *connectConfig) { c.ssh.ConfigFile, c.given = path, c.given|connect.OptSSHConfig }
}

// runningExecutable is the path that reads this process's own executable:
// /proc/self/exe where it exists, which stays the running image when the
// file is rebuilt, replaced or removed from a cache meanwhile (a context
// sending itself on to a child must send what it runs); else the path it
// was started from.
func runningExecutable() string {
	const self = "/proc/self/exe"
	if f, err := os.Open(self); err == nil {
		f.Close()
		return self
	}
	exe, err := os.Executable()
	if err != nil {
		return os.Args[0]
	}
	return exe
}
