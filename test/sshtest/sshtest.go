package sshtest

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Paths of the system OpenSSH programs that Start uses.
const (
	SSHDPath    = "/usr/sbin/sshd"
	privSepDir  = "/run/sshd"
	installHint = "run `bash test/run.sh` as root, which installs openssh-server and openssh-client"
	requireEnv  = "MITOGO_REQUIRE_PARTS"
)

// The test user and its password, created by test/run.sh.
const (
	TestUser     = "mitogo-test"
	TestPassword = "mitogo-test-pw"
)

// How long Start waits for sshd to greet, and Stop for it to exit after
// SIGTERM before it is killed.
const (
	startTimeout = 15 * time.Second
	stopTimeout  = 5 * time.Second
	maxLog       = 8 << 20 // bytes of sshd log kept
)

// Server is one running sshd. Its fields describe it; do not change them.
type Server struct {
	Addr  string // host:port sshd listens on, e.g. 127.0.0.1:40123
	Host  string // the listening IP address, 127.0.0.1 unless ListenAddr
	Port  int    // the listening port
	User  string // the only user allowed to log in
	Netns string // the network namespace sshd runs in (option Netns), "" for the test's own
	Dir   string // the temporary directory holding the files below

	Config         string // path of the sshd_config
	HostKeyPub     string // the host key as an authorized-key line ("ssh-ed25519 AAAA... comment")
	ClientKey      string // path of a private ed25519 key (no passphrase) that can log in as User
	ClientKeyPub   string // the client key as an authorized-key line
	AuthorizedKeys string // path of User's authorized_keys file; append lines to admit more keys
	KnownHosts     string // path of a known_hosts file with the host key for [Host]:Port

	t    testing.TB
	cmd  *exec.Cmd
	self proc // the listener
	log  *logBuffer
	done chan struct{} // closed when sshd has exited
	err  error         // sshd's exit status, set before done is closed

	mu      sync.Mutex
	stopped bool
}

// Option changes how Start configures sshd.
type Option func(*config)

type config struct {
	user         string
	passwordAuth bool
	maxStartups  string
	listenAddr   string
	netns        string
}

// User sets the user who may log in (AllowUsers). The default is the user
// running the test, normally root. The user must exist.
func User(name string) Option { return func(c *config) { c.user = name } }

// PasswordAuth turns password authentication on or off (default off). It
// checks the user's password in /etc/shadow (UsePAM stays no); TestUser has
// the password TestPassword. Key authentication stays on either way.
func PasswordAuth(on bool) Option { return func(c *config) { c.passwordAuth = on } }

// MaxStartups sets sshd's MaxStartups, e.g. "100" or "10:30:100" (the default).
func MaxStartups(spec string) Option { return func(c *config) { c.maxStartups = spec } }

// ListenAddr makes sshd listen on ip instead of 127.0.0.1, for example
// inside a network namespace.
func ListenAddr(ip string) Option { return func(c *config) { c.listenAddr = ip } }

// Netns runs sshd inside the named network namespace (one that `ip netns
// list` shows, such as Topology.A), as `ip netns exec NAME sshd ...`:
// sshd, its sessions and everything they start see that namespace's
// network. Start finds the port and waits for the banner from inside the
// namespace. Combine it with ListenAddr, since the namespace's loopback is
// not the test's.
func Netns(name string) Option { return func(c *config) { c.netns = name } }

// Start starts an sshd for the test and stops it at cleanup. It skips the
// test (fails it with MITOGO_REQUIRE_PARTS=1) when it is not root or sshd or
// ssh-keygen is missing, and fails it when sshd does not come up.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	cfg := config{listenAddr: "127.0.0.1"}
	for _, o := range opts {
		o(&cfg)
	}
	requireParts(t)
	if cfg.user == "" {
		u, err := user.Current()
		if err != nil {
			t.Fatalf("sshtest: current user: %v", err)
		}
		cfg.user = u.Username
	}
	if net.ParseIP(cfg.listenAddr) == nil {
		t.Fatalf("sshtest: ListenAddr(%q): not an IP address", cfg.listenAddr)
	}
	if cfg.netns != "" {
		if _, err := os.Stat(netnsPath(cfg.netns)); err != nil {
			t.Fatalf("sshtest: Netns(%q): no such network namespace: %v", cfg.netns, err)
		}
	}

	s := &Server{
		t:     t,
		Host:  cfg.listenAddr,
		User:  cfg.user,
		Dir:   t.TempDir(),
		Netns: cfg.netns,
	}
	s.Config = filepath.Join(s.Dir, "sshd_config")
	s.ClientKey = filepath.Join(s.Dir, "client_ed25519")
	s.KnownHosts = filepath.Join(s.Dir, "known_hosts")
	s.AuthorizedKeys = filepath.Join(s.Dir, "authorized_keys_"+cfg.user)
	hostKey := filepath.Join(s.Dir, "host_ed25519")

	s.HostKeyPub = keygen(t, hostKey, "sshtest-host")
	s.ClientKeyPub = keygen(t, s.ClientKey, "sshtest-client")
	if err := os.WriteFile(s.AuthorizedKeys, []byte(s.ClientKeyPub+"\n"), 0o600); err != nil {
		t.Fatalf("sshtest: %v", err)
	}
	s.shareAuthorizedKeys(cfg.user)
	if err := os.MkdirAll(privSepDir, 0o755); err != nil {
		t.Fatalf("sshtest: creating sshd's privilege separation directory: %v", err)
	}

	// The port comes from the kernel and is free when we look; another
	// process may take it before sshd binds it, so try a few times.
	penalties := true
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort(cfg.netns, cfg.listenAddr)
		if err != nil {
			t.Fatalf("sshtest: finding a free port: %v", err)
		}
		s.Port = port
		s.Addr = net.JoinHostPort(cfg.listenAddr, strconv.Itoa(port))
		if err := os.WriteFile(s.Config, []byte(s.sshdConfig(cfg, hostKey, penalties)), 0o600); err != nil {
			t.Fatalf("sshtest: %v", err)
		}
		if out, err := exec.Command(SSHDPath, "-t", "-f", s.Config).CombinedOutput(); err != nil {
			if penalties && bytes.Contains(out, []byte("PerSourcePenalties")) {
				penalties = false // an sshd older than 9.8
				attempt--
				continue
			}
			t.Fatalf("sshtest: sshd rejects its config: %v\n%s\nconfig:\n%s", err, out, s.sshdConfig(cfg, hostKey, penalties))
		}
		if lastErr = s.run(); lastErr == nil {
			break
		}
		if !strings.Contains(s.log.String(), "Address already in use") {
			break
		}
		t.Logf("sshtest: port %d was taken, trying another", port)
	}
	if lastErr != nil {
		t.Fatalf("sshtest: sshd did not start: %v\nsshd log:\n%s", lastErr, s.log.String())
	}

	line := fmt.Sprintf("[%s]:%d %s\n", cfg.listenAddr, s.Port, s.HostKeyPub)
	if err := os.WriteFile(s.KnownHosts, []byte(line), 0o600); err != nil {
		t.Fatalf("sshtest: %v", err)
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("sshtest: log of sshd on %s:\n%s", s.Addr, s.Log())
		}
	})
	return s
}

// requireParts skips or fails t when sshd cannot be run here.
func requireParts(t testing.TB) {
	t.Helper()
	var missing []string
	if _, err := os.Stat(SSHDPath); err != nil {
		missing = append(missing, "no sshd at "+SSHDPath+" (package openssh-server)")
	}
	for _, prog := range []string{"ssh-keygen", "ssh"} {
		if _, err := exec.LookPath(prog); err != nil {
			missing = append(missing, "no "+prog+" in PATH (package openssh-client)")
		}
	}
	if os.Geteuid() != 0 {
		missing = append(missing, "not root (sshd needs root to switch users)")
	}
	if len(missing) == 0 {
		return
	}
	missingPart(t, "sshtest: cannot run sshd: "+strings.Join(missing, "; ")+"; "+installHint)
}

// missingPart skips t with msg, or fails it when MITOGO_REQUIRE_PARTS=1 says
// that every part the tests need must be there.
func missingPart(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv(requireEnv) == "1" {
		t.Fatal(msg + " (failing, not skipping, because " + requireEnv + "=1)")
	}
	t.Skip(msg)
}

// NeedTestUser skips t (fails it with MITOGO_REQUIRE_PARTS=1) when the user
// TestUser, created by test/run.sh, does not exist.
func NeedTestUser(t testing.TB) {
	t.Helper()
	if _, err := user.Lookup(TestUser); err == nil {
		return
	}
	missingPart(t, "sshtest: no user "+TestUser+"; run `bash test/run.sh` as root, which creates it")
}

// keygen makes an ed25519 key without passphrase at path and returns its
// public half as an authorized-key line.
func keygen(t testing.TB, path, comment string) string {
	t.Helper()
	out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path).CombinedOutput()
	if err != nil {
		t.Fatalf("sshtest: ssh-keygen: %v\n%s", err, out)
	}
	pub, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatalf("sshtest: %v", err)
	}
	return strings.TrimSpace(string(pub))
}

// shareAuthorizedKeys lets name read its authorized_keys file: sshd opens it
// with the user's privileges. The file is given to the user, and the
// directories testing made above it (the temporary directory and its
// parent) become traversable; other ancestors must be already.
func (s *Server) shareAuthorizedKeys(name string) {
	t := s.t
	t.Helper()
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatalf("sshtest: User(%q): %v", name, err)
	}
	if u.Uid == "0" {
		return
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(s.AuthorizedKeys, uid, gid); err != nil {
		t.Fatalf("sshtest: %v", err)
	}
	for _, dir := range []string{s.Dir, filepath.Dir(s.Dir)} {
		if err := os.Chmod(dir, 0o711); err != nil {
			t.Fatalf("sshtest: %v", err)
		}
	}
	for dir := filepath.Dir(filepath.Dir(s.Dir)); ; dir = filepath.Dir(dir) {
		fi, err := os.Stat(dir)
		if err != nil {
			t.Fatalf("sshtest: %v", err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			t.Fatalf("sshtest: user %s cannot reach its authorized_keys: %s is not world-searchable (mode %v); point TMPDIR elsewhere", name, dir, fi.Mode().Perm())
		}
		if dir == filepath.Dir(dir) {
			break
		}
	}
}

func (s *Server) sshdConfig(cfg config, hostKey string, penalties bool) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("# Written by mitogo's test/sshtest for one test.")
	p("ListenAddress %s", cfg.listenAddr)
	p("Port %d", s.Port)
	p("HostKey %s", hostKey)
	p("PidFile %s", filepath.Join(s.Dir, "sshd.pid"))
	p("AuthorizedKeysFile %s", filepath.Join(s.Dir, "authorized_keys_%u"))
	p("StrictModes no") // the directory is under the world-writable /tmp
	p("AllowUsers %s", cfg.user)
	p("PubkeyAuthentication yes")
	p("PasswordAuthentication %s", yesNo(cfg.passwordAuth))
	p("PermitEmptyPasswords no")
	p("KbdInteractiveAuthentication no")
	p("UsePAM no")
	if cfg.user == "root" {
		if cfg.passwordAuth {
			p("PermitRootLogin yes")
		} else {
			p("PermitRootLogin prohibit-password")
		}
	}
	if cfg.maxStartups != "" {
		p("MaxStartups %s", cfg.maxStartups)
	}
	if penalties {
		p("PerSourcePenalties no")
	}
	p("UseDNS no")
	p("PrintMotd no")
	p("PrintLastLog no")
	p("LogLevel DEBUG1")
	p("Subsystem sftp internal-sftp")
	return b.String()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// freePort returns a port of ip on which nothing listened a moment ago, in
// the network namespace netns ("" for the test's own).
func freePort(netns, ip string) (port int, err error) {
	err = inNetns(netns, func() error {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			return err
		}
		defer l.Close()
		port = l.Addr().(*net.TCPAddr).Port
		return nil
	})
	return port, err
}

// run starts sshd and waits until it greets on s.Addr. On failure sshd has
// exited when run returns.
func (s *Server) run() error {
	s.log = &logBuffer{}
	s.done = make(chan struct{})
	s.err = nil
	argv := []string{SSHDPath, "-D", "-e", "-f", s.Config}
	if s.Netns != "" {
		// ip joins the namespace and then executes sshd in its place, so
		// the process id, and with it Stop and Pause, stay sshd's.
		ip, err := exec.LookPath("ip")
		if err != nil {
			return fmt.Errorf("running sshd in network namespace %s: %w", s.Netns, err)
		}
		argv = append([]string{ip, "netns", "exec", s.Netns}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"}
	cmd.Stdout = s.log
	cmd.Stderr = s.log
	// Its own process group, and killed if the test process dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// Per-connection children inherit stderr; do not let them hold Wait.
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return err
	}
	s.cmd = cmd
	s.self = proc{pid: cmd.Process.Pid}
	if _, start, ok := procStat(cmd.Process.Pid); ok {
		s.self.start = start
	}
	go func() {
		s.err = cmd.Wait()
		close(s.done)
	}()

	// The address may exist only inside sshd's namespace: wait from there.
	deadline := time.Now().Add(startTimeout)
	if err := inNetns(s.Netns, func() error { return s.awaitBanner(deadline) }); err != nil {
		select {
		case <-s.done: // exited by itself
		default:
			s.kill()
		}
		return err
	}
	return nil
}

// awaitBanner polls s.Addr until sshd greets, sshd exits or the deadline
// passes.
func (s *Server) awaitBanner(deadline time.Time) error {
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("sshd exited: %v", s.err)
		default:
		}
		if lastErr = readBanner(s.Addr, time.Until(deadline)); lastErr == nil {
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("sshd exited: %v", s.err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("no SSH banner on %s within %v: %v", s.Addr, startTimeout, lastErr)
}

// readBanner connects to addr and reads its first line, which must be an
// SSH-2.0 identification.
func readBanner(addr string, budget time.Duration) error {
	budget = min(budget, 2*time.Second)
	c, err := net.DialTimeout("tcp", addr, budget)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(budget))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("reading banner: %w", err)
	}
	if !strings.HasPrefix(line, "SSH-2.0-") {
		return fmt.Errorf("not an SSH banner: %q", line)
	}
	// Say goodbye politely, so sshd logs no protocol error.
	c.Write([]byte("SSH-2.0-sshtest_probe\r\n"))
	return nil
}

// SSHArgs returns the arguments with which the OpenSSH client logs in to
// the server as User by key, without prompts and checking the host key
// against KnownHosts. Append the remote command. For a server in a network
// namespace the client must run where Addr is reachable, for example under
// `ip netns exec`.
func (s *Server) SSHArgs() []string {
	return []string{
		"-F", "/dev/null",
		"-p", strconv.Itoa(s.Port),
		"-i", s.ClientKey,
		"-o", "UserKnownHostsFile=" + s.KnownHosts,
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "StrictHostKeyChecking=yes",
		"-o", "BatchMode=yes",
		"-o", "IdentitiesOnly=yes",
		s.User + "@" + s.Host,
	}
}

// Log returns what sshd has logged so far (LogLevel DEBUG1).
func (s *Server) Log() string { return s.log.String() }

// Pid returns the process id of the sshd listener.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Stop stops sshd and every process it started, such as the sessions of
// logged-in clients, as if the host died: they all get SIGTERM, and those
// left after 5 seconds SIGKILL. Stop returns when the listener has exited;
// later calls do nothing. Start arranges for Stop at cleanup.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	s.stopped = true
	procs := append(descendants(s.self.pid), s.self)
	signalAll(procs, syscall.SIGTERM)
	signalAll(procs, syscall.SIGCONT) // a paused process handles SIGTERM only once resumed
	select {
	case <-s.done:
	case <-time.After(stopTimeout):
		s.t.Logf("sshtest: sshd on %s ignored SIGTERM for %v; killing it", s.Addr, stopTimeout)
	}
	// Whatever is left, including children started meanwhile.
	signalAll(append(descendants(s.self.pid), procs...), syscall.SIGKILL)
	<-s.done
}

// kill ends a listener that failed to start.
func (s *Server) kill() {
	signalAll(append(descendants(s.self.pid), s.self), syscall.SIGKILL)
	<-s.done
}

// Pause freezes sshd and all its processes with SIGSTOP, as a hung host:
// new connections complete the TCP handshake but get no banner, and
// logged-in sessions stop. Resume undoes it.
func (s *Server) Pause() { s.signalTree(syscall.SIGSTOP) }

// Resume continues the processes stopped by Pause with SIGCONT.
func (s *Server) Resume() { s.signalTree(syscall.SIGCONT) }

func (s *Server) signalTree(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	if sig == syscall.SIGSTOP {
		// Stop the listener first, so that it starts no new children.
		signalAll([]proc{s.self}, sig)
		signalAll(descendants(s.self.pid), sig)
		return
	}
	signalAll(descendants(s.self.pid), sig)
	signalAll([]proc{s.self}, sig)
}

// proc names a process by id and start time, so that a recycled id is not
// signalled by mistake.
type proc struct {
	pid   int
	start uint64
}

// descendants lists the processes descended from root, from /proc.
func descendants(root int) []proc {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]proc{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ppid, start, ok := procStat(pid)
		if ok {
			children[ppid] = append(children[ppid], proc{pid: pid, start: start})
		}
	}
	var out []proc
	queue := []int{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c.pid)
		}
	}
	return out
}

// procStat reads the parent id and start time of pid.
func procStat(pid int) (ppid int, start uint64, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	// The command name, field 2, is in parentheses and may hold anything.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(b[i+1:])) // f[0] is field 3, the state
	if len(f) < 20 {
		return 0, 0, false
	}
	ppid, err1 := strconv.Atoi(f[1])
	start, err2 := strconv.ParseUint(f[19], 10, 64)
	return ppid, start, err1 == nil && err2 == nil
}

func signalAll(procs []proc, sig syscall.Signal) {
	for _, p := range procs {
		if _, start, ok := procStat(p.pid); !ok || start != p.start {
			continue // gone, or the id now names another process
		}
		syscall.Kill(p.pid, sig) // ESRCH: it has just exited
	}
}

// logBuffer collects sshd's output, keeping the first maxLog bytes.
type logBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	dropped int
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := maxLog - l.buf.Len(); room < len(p) {
		l.buf.Write(p[:max(room, 0)])
		l.dropped += len(p) - max(room, 0)
	} else {
		l.buf.Write(p)
	}
	return len(p), nil
}

func (l *logBuffer) String() string {
	if l == nil {
		return ""
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dropped > 0 {
		return fmt.Sprintf("%s[sshtest: %d more bytes of log dropped]\n", l.buf.String(), l.dropped)
	}
	return l.buf.String()
}

// Silent returns the address of a TCP listener on 127.0.0.1 that accepts
// connections and never sends a byte, like a host whose sshd hangs. The
// listener and its connections are closed at cleanup.
func Silent(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("sshtest: %v", err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

// ClosedPort returns an address on 127.0.0.1 where nothing listens, so a
// connection is refused. (Another process could bind the port meanwhile,
// as for any port found free; in a test machine that is rare.)
func ClosedPort(t testing.TB) string {
	t.Helper()
	port, err := freePort("", "127.0.0.1")
	if err != nil {
		t.Fatalf("sshtest: %v", err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}
