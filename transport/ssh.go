package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kevinburke/ssh_config"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Host key policies.
const (
	HostKeyStrict    = "strict"     // refuse unknown and changed keys (the default)
	HostKeyAcceptNew = "accept-new" // record an unknown key, refuse a changed one
	HostKeyIgnore    = "ignore"     // accept any key: only for throwaway hosts
)

// SSHSpec says how to reach a host over SSH. Zero values take OpenSSH's
// defaults: port 22, the local user, ~/.ssh/id_ed25519, id_ecdsa and id_rsa,
// the agent at SSH_AUTH_SOCK, ~/.ssh/known_hosts, and whatever ~/.ssh/config
// says for the host (HostName, User, Port, IdentityFile).
type SSHSpec struct {
	Host          string        `msgpack:"host"`            // a name from ~/.ssh/config, a host name or an address
	Port          int           `msgpack:"port"`            // 0: the config's Port, else 22
	User          string        `msgpack:"user"`            // "": the config's User, else $USER
	IdentityFiles []string      `msgpack:"identity_files"`  // private keys to offer; none: the config's IdentityFile, else the defaults
	Password      string        `msgpack:"password"`        // for password and keyboard-interactive authentication; "": neither
	KnownHosts    string        `msgpack:"known_hosts"`     // the known_hosts file; "": ~/.ssh/known_hosts
	HostKeyPolicy string        `msgpack:"host_key_policy"` // HostKey*; "": HostKeyStrict
	NoAgent       bool          `msgpack:"no_agent"`        // do not offer the agent's keys
	ConfigFile    string        `msgpack:"config_file"`     // "" for ~/.ssh/config, "none" for no file
	Keepalive     time.Duration `msgpack:"keepalive"`       // interval; 0 means 15s, <0 none
	KeepaliveMax  int           `msgpack:"keepalive_max"`   // keepalives unanswered before the connection is closed; <=0 means 3
}

// HostKeyError reports a host key refused by the policy.
type HostKeyError struct {
	Host        string // as known_hosts names it
	KeyType     string // ssh-ed25519, ecdsa-sha2-nistp256...
	Fingerprint string // SHA256:...
	Changed     bool   // the host is known with another key
	KnownHosts  string // the file looked in
}

// Error says what was refused and what to do about it.
func (e *HostKeyError) Error() string {
	if e.Changed {
		return fmt.Sprintf("host key for %s has CHANGED (now %s %s); %s lists another key: someone may be intercepting the connection, or the host was reinstalled",
			e.Host, e.KeyType, e.Fingerprint, e.KnownHosts)
	}
	return fmt.Sprintf("host key for %s is not known (%s %s); add it to %s, or connect with the accept-new policy",
		e.Host, e.KeyType, e.Fingerprint, e.KnownHosts)
}

// Is matches ErrChangedHostKey or ErrUnknownHostKey.
func (e *HostKeyError) Is(target error) bool {
	return target == ErrChangedHostKey && e.Changed || target == ErrUnknownHostKey && !e.Changed
}

// AuthError reports a server that accepted none of the credentials.
type AuthError struct {
	Host    string   // the host name connected to
	User    string   // the login user
	Methods []string // what was tried
	Err     error    // the SSH library's error
	// Identities are the identity files that were not used, each an
	// *IdentityError: one named explicitly (or in ~/.ssh/config) that is
	// not there, or any that is not a key or is encrypted.
	Identities []error
}

// Error names the account, the identity files not used and what was tried.
func (e *AuthError) Error() string {
	msg := fmt.Sprintf("authentication as %s@%s failed", e.User, e.Host)
	for _, id := range e.Identities {
		msg += ": " + id.Error()
	}
	return msg + fmt.Sprintf(" (tried %s): %v", strings.Join(e.Methods, ", "), e.Err)
}

// Unwrap returns the server's refusal and the identity files' errors.
func (e *AuthError) Unwrap() []error { return append([]error{e.Err}, e.Identities...) }

// Is matches ErrAuthFailed.
func (e *AuthError) Is(target error) bool { return target == ErrAuthFailed }

// Pacer limits concurrent SSH handshakes per host, so that a burst of
// connections stays under sshd's MaxStartups (10 by default). The zero
// value is ready; one belongs to each router.
type Pacer struct {
	mu    sync.Mutex
	hosts map[string]chan struct{}
}

const handshakesPerHost = 8

func (p *Pacer) acquire(ctx context.Context, host string) (func(), error) {
	p.mu.Lock()
	if p.hosts == nil {
		p.hosts = map[string]chan struct{}{}
	}
	sem, ok := p.hosts[host]
	if !ok {
		sem = make(chan struct{}, handshakesPerHost)
		p.hosts[host] = sem
	}
	p.mu.Unlock()
	select {
	case sem <- struct{}{}:
		return func() { <-sem }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// resolved is an SSHSpec with ~/.ssh/config and the defaults applied.
type resolved struct {
	addr, host, user string
	identities       []string
	namedIDs         bool // identities were named (SSHSpec.IdentityFiles, IdentityFile in the config), not the defaults
	knownHosts       string
}

func (s *SSHSpec) resolve() (resolved, error) {
	var r resolved
	home, _ := os.UserHomeDir()
	alias := s.Host
	hostName, user, port := alias, s.User, s.Port
	var idFiles []string
	if s.ConfigFile != "none" {
		path := s.ConfigFile
		if path == "" && home != "" {
			path = filepath.Join(home, ".ssh", "config")
		}
		if f, err := os.Open(path); err == nil {
			cfg, err := ssh_config.Decode(f)
			f.Close()
			if err != nil {
				if s.ConfigFile != "" {
					return r, fmt.Errorf("reading %s: %w", path, err)
				}
			} else {
				if v, _ := cfg.Get(alias, "HostName"); v != "" {
					hostName = strings.ReplaceAll(v, "%h", alias)
				}
				if v, _ := cfg.Get(alias, "User"); v != "" && user == "" {
					user = v
				}
				if v, _ := cfg.Get(alias, "Port"); v != "" && port == 0 {
					port, _ = strconv.Atoi(v)
				}
				if vs, _ := cfg.GetAll(alias, "IdentityFile"); len(vs) > 0 {
					for _, v := range vs {
						idFiles = append(idFiles, expandHome(v, home))
					}
				}
			}
		}
	}
	if user == "" {
		user = os.Getenv("USER")
		if user == "" {
			user = "root"
		}
	}
	if port == 0 {
		port = 22
	}
	r.host, r.user = hostName, user
	r.addr = net.JoinHostPort(hostName, strconv.Itoa(port))
	r.identities = s.IdentityFiles
	if len(r.identities) == 0 {
		r.identities = idFiles
	}
	r.namedIDs = len(r.identities) > 0
	if len(r.identities) == 0 && home != "" {
		for _, n := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
			r.identities = append(r.identities, filepath.Join(home, ".ssh", n))
		}
	}
	r.knownHosts = s.KnownHosts
	if r.knownHosts == "" && home != "" {
		r.knownHosts = filepath.Join(home, ".ssh", "known_hosts")
	}
	return r, nil
}

func expandHome(p, home string) string {
	if strings.HasPrefix(p, "~/") && home != "" {
		return filepath.Join(home, p[2:])
	}
	return p
}

// hostKeyCallback applies the policy with the known_hosts file.
func (s *SSHSpec) hostKeyCallback(r resolved) (ssh.HostKeyCallback, error) {
	policy := s.HostKeyPolicy
	switch policy {
	case "", HostKeyStrict, HostKeyAcceptNew:
	case HostKeyIgnore:
		return ssh.InsecureIgnoreHostKey(), nil
	default:
		return nil, fmt.Errorf("unknown host key policy %q (want strict, accept-new or ignore)", policy)
	}
	var mu sync.Mutex
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		mu.Lock()
		defer mu.Unlock()
		check, err := knownhosts.New(r.knownHosts)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("reading %s: %w", r.knownHosts, err)
		}
		if err == nil {
			err = check(hostname, remote, key)
		} else {
			err = &knownhosts.KeyError{} // no file: every host is unknown
		}
		var ke *knownhosts.KeyError
		if err == nil || !errors.As(err, &ke) {
			return err
		}
		herr := &HostKeyError{Host: knownhosts.Normalize(hostname), KeyType: key.Type(), Fingerprint: ssh.FingerprintSHA256(key),
			Changed: len(ke.Want) > 0, KnownHosts: r.knownHosts}
		if herr.Changed || policy != HostKeyAcceptNew {
			return herr
		}
		if err := os.MkdirAll(filepath.Dir(r.knownHosts), 0o700); err != nil {
			return fmt.Errorf("recording the host key: %w", err)
		}
		f, err := os.OpenFile(r.knownHosts, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return fmt.Errorf("recording the host key: %w", err)
		}
		defer f.Close()
		_, err = fmt.Fprintln(f, knownhosts.Line([]string{knownhosts.Normalize(hostname)}, key))
		return err
	}, nil
}

// auth gathers the credentials to offer, in OpenSSH's order, and the
// identity files it could not use (each an *IdentityError): like OpenSSH,
// it goes on without them, and an *AuthError names them.
func (s *SSHSpec) auth(r resolved) ([]ssh.AuthMethod, []string, []error, func()) {
	var methods []ssh.AuthMethod
	var names []string
	var unused []error
	cleanup := func() {}
	var signers []ssh.Signer
	for _, path := range r.identities {
		signer, err := loadIdentity(path)
		if err != nil {
			if r.namedIDs || !errors.Is(err, fs.ErrNotExist) {
				unused = append(unused, err) // OpenSSH, too, skips default keys that are not there
			}
			continue
		}
		signers = append(signers, signer)
	}
	if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" && !s.NoAgent {
		if c, err := net.Dial("unix", sock); err == nil {
			cleanup = func() { c.Close() }
			if as, err := agent.NewClient(c).Signers(); err == nil {
				signers = append(signers, as...)
			}
		}
	}
	if len(signers) > 0 {
		methods = append(methods, ssh.PublicKeys(signers...))
		names = append(names, fmt.Sprintf("%d key(s)", len(signers)))
	}
	if s.Password != "" {
		pw := s.Password
		methods = append(methods, ssh.Password(pw), ssh.KeyboardInteractive(func(_, _ string, qs []string, _ []bool) ([]string, error) {
			answers := make([]string, len(qs))
			for i := range qs {
				answers[i] = pw
			}
			return answers, nil
		}))
		names = append(names, "password")
	}
	if len(names) == 0 {
		if len(unused) > 0 {
			names = append(names, "no credentials: no usable key file, no agent, no password")
		} else {
			names = append(names, "no credentials: no key file, no agent, no password")
		}
	}
	return methods, names, unused, cleanup
}

// StartSSH connects to the host, authenticates and runs command (usually
// sh -c STAGE1) in a session whose stdin and stdout become the stream.
// Handshakes to one host are paced by pacer, and a connection that sshd
// drops before the key exchange (its MaxStartups limit) is retried with
// backoff until ctx ends. onPhase, when not nil, is called as each step
// completes (tcp, ssh_handshake, auth, session), so that a log shows the
// last step done; when ctx ends first, the error is a *StalledError that
// says which step it ended.
func StartSSH(ctx context.Context, spec SSHSpec, command string, pacer *Pacer, onPhase func(Phase)) (*Child, error) {
	r, err := spec.resolve()
	if err != nil {
		return nil, err
	}
	hostKey, err := spec.hostKeyCallback(r)
	if err != nil {
		return nil, err
	}
	methods, names, unusedIDs, cleanup := spec.auth(r)
	defer cleanup()
	cfg := &ssh.ClientConfig{User: r.user, Auth: methods, HostKeyCallback: hostKey}
	var client *ssh.Client
	progress := newSSHProgress(onPhase, PhaseTCP)
	for backoff := 50 * time.Millisecond; ; backoff *= 2 {
		var keyed bool
		client, keyed, err = dialSSH(ctx, r, cfg, pacer, progress)
		if err == nil {
			break
		}
		var herr *HostKeyError
		if errors.As(err, &herr) {
			return nil, herr
		}
		if ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded) {
			// The deadline set on the connection from ctx fires a hair
			// before ctx itself: both mean the connect timed out.
			return nil, &StalledError{Addr: r.addr, Phase: progress.where(), Err: err}
		}
		if keyed && !dropped(err) {
			// After the key exchange, the handshake only authenticates:
			// an error that is not the connection dropping is a refusal
			// (all methods tried, or the server's disconnect message).
			return nil, &AuthError{Host: r.addr, User: r.user, Methods: names, Err: err, Identities: unusedIDs}
		}
		if keyed || !dropped(err) {
			return nil, fmt.Errorf("connecting to %s: %w", r.addr, err)
		}
		backoff = min(backoff, time.Second)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			if ctx.Err() == context.DeadlineExceeded {
				return nil, &StalledError{Addr: r.addr, Phase: progress.where() + ", retrying after the host dropped the connection", Err: err}
			}
			return nil, fmt.Errorf("connecting to %s: %w", r.addr, ctx.Err())
		}
	}
	// A server that never answers the session's requests is ended with
	// the connection when ctx ends.
	stop := context.AfterFunc(ctx, func() { client.Close() })
	stalled := func(err error) error {
		ended := !stop()
		client.Close()
		switch {
		case ended && ctx.Err() == context.DeadlineExceeded:
			return &StalledError{Addr: r.addr, Phase: PhaseSession, Err: err}
		case ended:
			return fmt.Errorf("%w (%w)", err, ctx.Err())
		}
		return err
	}
	sess, err := client.NewSession()
	if err != nil {
		return nil, stalled(fmt.Errorf("opening a session on %s: %w", r.addr, err))
	}
	stdin, _ := sess.StdinPipe()
	stdout, _ := sess.StdoutPipe()
	stderr, _ := sess.StderrPipe()
	if err := sess.Start(command); err != nil {
		return nil, stalled(fmt.Errorf("starting the remote command on %s: %w", r.addr, err))
	}
	if !stop() {
		return nil, stalled(ctx.Err())
	}
	c := &sshConn{r: stdout, w: stdin, client: client, stderr: newOutputPump(stderr)}
	proc := newProcess(func() (string, error) {
		err := sess.Wait()
		client.Close()
		var ee *ssh.ExitError
		switch {
		case err == nil:
			return "exit status 0", nil
		case errors.As(err, &ee):
			return ee.Error(), err
		}
		return err.Error(), err
	}, func() { client.Close() })
	interval, max := spec.Keepalive, spec.KeepaliveMax
	if interval == 0 {
		interval = 15 * time.Second
	}
	if max <= 0 {
		max = 3
	}
	if interval > 0 {
		c.bg.Go(func() { c.keepalive(interval, max, proc.Done()) })
	}
	progress.done("session", "")
	var warnings []error
	for _, err := range unusedIDs {
		// As OpenSSH warns of a file given with -i that it could not load;
		// an encrypted key was most likely used through the agent.
		if len(spec.IdentityFiles) > 0 && !errors.Is(err, ErrKeyEncrypted) {
			warnings = append(warnings, err)
		}
	}
	return &Child{Conn: c, Proc: proc, Output: c.stderr, Phases: progress.steps(), Warnings: warnings}, nil
}

// dialSSH connects and performs the SSH handshake. keyed reports that the
// key exchange completed (the host key was accepted), so that a failure
// after it happened during authentication. progress follows the steps:
// the TCP connect, the key exchange and authentication.
func dialSSH(ctx context.Context, r resolved, cfg *ssh.ClientConfig, pacer *Pacer, progress *sshProgress) (client *ssh.Client, keyed bool, err error) {
	if pacer != nil {
		progress.restart(PhasePacing)
		release, err := pacer.acquire(ctx, r.addr)
		if err != nil {
			return nil, false, err
		}
		defer release()
	}
	progress.restart(PhaseTCP)
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", r.addr)
	if err != nil {
		return nil, false, err
	}
	progress.done("tcp", PhaseBanner)
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	}
	var mu sync.Mutex // keyed is set on x/crypto's key exchange goroutine
	attempt := *cfg
	attempt.HostKeyCallback = func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		err := cfg.HostKeyCallback(hostname, remote, key)
		mu.Lock()
		keyed = err == nil
		mu.Unlock()
		if err == nil {
			progress.done("ssh_handshake", PhaseAuth)
		}
		return err
	}
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	cc, chans, reqs, err := ssh.NewClientConn(&bannerConn{Conn: nc, p: progress}, r.addr, &attempt)
	stop()
	mu.Lock()
	defer mu.Unlock()
	if err != nil {
		nc.Close()
		return nil, keyed, err
	}
	nc.SetDeadline(time.Time{})
	progress.done("auth", PhaseSession)
	return ssh.NewClient(cc, chans, reqs), true, nil
}

// dropped reports a connection that ended under the handshake (as sshd
// drops connections beyond MaxStartups before the key exchange), as
// opposed to a refusal the server sent.
func dropped(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE)
}

// sshConn is a session's stdin and stdout as one connection. It owns the
// goroutines that read the session's stderr and send keepalives; Close
// joins them.
type sshConn struct {
	r      io.Reader
	w      io.WriteCloser
	client *ssh.Client
	stderr *outputPump    // the session's stderr, read whether or not Output is
	bg     sync.WaitGroup // keepalive and its requests

	mu    sync.Mutex
	timer *time.Timer
	dead  error // why keepalive closed the connection

	// wmu orders Write and the CloseWrite in Close: x/crypto/ssh's channel
	// races when they run at once. It also guards run, Writev's buffer.
	wmu sync.Mutex
	run []byte
}

func (c *sshConn) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	return n, c.why(err)
}

func (c *sshConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	n, err := c.w.Write(p)
	return n, c.why(err)
}

// coalesceMax is the most a Writev copies into one Write: an SSH channel
// packet's payload (x/crypto/ssh sends up to 32 KiB in one).
const coalesceMax = 32 << 10

// Writev writes bufs (a frame's header and payload, or a batch of frames)
// with as few channel writes as it can: each Write is a packet of its own
// at least, so a small frame written as header and payload crossed as two
// packets each way, and woke the far side twice. Runs of buffers that fit
// in one packet are copied together; larger ones go as they are.
func (c *sshConn) Writev(bufs [][]byte) (int64, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	var total int64
	run := c.run[:0]
	defer func() { c.run = run[:0] }()
	flush := func() error {
		if len(run) == 0 {
			return nil
		}
		n, err := c.w.Write(run)
		total += int64(n)
		run = run[:0]
		return c.why(err)
	}
	for _, b := range bufs {
		if len(run)+len(b) > coalesceMax {
			if err := flush(); err != nil {
				return total, err
			}
		}
		if len(b) > coalesceMax {
			n, err := c.w.Write(b)
			total += int64(n)
			if err != nil {
				return total, c.why(err)
			}
			continue
		}
		run = append(run, b...)
	}
	return total, flush()
}

// why is err, or, when the deadline or keepalive closed the connection,
// what did: a read or write it ended says so rather than EOF.
func (c *sshConn) why(err error) error {
	if err == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead != nil {
		return c.dead
	}
	return err
}

// Close sends EOF on the session's stdin when no write is in flight (a
// write blocked on a dead peer must not hold Close up), then closes the
// connection, which ends any write, and waits for the goroutines it owns:
// closing the connection ends the session's stderr and the session.
func (c *sshConn) Close() error {
	if c.wmu.TryLock() {
		c.w.Close()
		c.wmu.Unlock()
	}
	err := c.client.Close()
	c.stderr.Wait()
	c.bg.Wait()
	return err
}

// SetDeadline bounds the handshake: when it passes, the connection closes.
func (c *sshConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	if !t.IsZero() {
		c.timer = time.AfterFunc(time.Until(t), func() {
			c.mu.Lock()
			if c.dead == nil {
				c.dead = os.ErrDeadlineExceeded
			}
			c.mu.Unlock()
			c.client.Close()
		})
	}
	return nil
}

// keepalive asks the server for a reply every interval; after max
// unanswered intervals the host is taken for dead and the connection
// closes, which fails everything pending on it.
func (c *sshConn) keepalive(interval time.Duration, max int, done <-chan struct{}) {
	t := time.NewTicker(interval)
	defer t.Stop()
	missed := 0
	answered := make(chan struct{}, 1)
	inflight := false
	for {
		select {
		case <-done:
			return
		case <-answered:
			inflight, missed = false, 0
		case <-t.C:
			if inflight {
				missed++
				if missed >= max {
					c.mu.Lock()
					c.dead = fmt.Errorf("keepalive: no answer from the host in %v", time.Duration(max)*interval)
					c.mu.Unlock()
					c.client.Close()
					return
				}
				continue
			}
			inflight = true
			c.bg.Go(func() {
				if _, _, err := c.client.SendRequest("keepalive@openssh.com", true, nil); err == nil {
					answered <- struct{}{}
				}
			})
		}
	}
}
