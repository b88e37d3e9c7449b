package main

// The --ssh mode: mitogo over a real sshd on this machine (see
// ../compare_ssh.sh and ../sshd.sh), with the same JSON keys as
// `mitogen_bench.py --ssh`.

import (
	"bytes"
	"compress/gzip"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/mitogo/mitogo/actors"
	"github.com/mitogo/mitogo/bootstrap"
	"github.com/mitogo/mitogo/test/peer/internal/peerkit"
)

var (
	sshMode     = flag.Bool("ssh", false, "run the SSH benchmarks instead (needs --ssh-port, --ssh-key, --ssh-known-hosts or PEER_SSH_* in the environment)")
	sshHost     = flag.String("ssh-host", envOr("PEER_SSH_HOST", "127.0.0.1"), "sshd address ($PEER_SSH_HOST)")
	sshPort     = flag.Int("ssh-port", envInt("PEER_SSH_PORT"), "sshd port ($PEER_SSH_PORT)")
	sshUser     = flag.String("ssh-user", envOr("PEER_SSH_USER", "root"), "user to log in as ($PEER_SSH_USER)")
	sshKey      = flag.String("ssh-key", os.Getenv("PEER_SSH_KEY"), "private key file ($PEER_SSH_KEY)")
	sshKnown    = flag.String("ssh-known-hosts", os.Getenv("PEER_SSH_KNOWN_HOSTS"), "known_hosts file with sshd's key ($PEER_SSH_KNOWN_HOSTS)")
	sshSudoUser = flag.String("sudo-user", "mitogo-test", "user of the ssh→sudo chain")
	sshCache    = flag.String("ssh-cache", os.Getenv("PEER_SSH_CACHE"), "the remote user's binary cache, deleted before each first-contact run ($PEER_SSH_CACHE; default: ~USER/.cache/mitogo of --ssh-user, the host being this machine)")
	sshRounds   = flag.Int("rounds", 0, "timed connects of ssh_connect and first contacts of ssh_first (default 10; 3 and 2 with --quick)")
	firstCold   = flag.Bool("first-cold", os.Getenv("PEER_FIRST_COLD") != "", "ssh_first: remove this account's compressed forms of the build before each run, so every run sends the pipelined gzip -1 pieces a build's first upload sends ($PEER_FIRST_COLD); by default one untimed first contact makes them first")
	rebuildFrom = flag.String("rebuild-from", os.Getenv("PEER_REBUILD_FROM"), "ssh_rebuild: an earlier build of this program (the same source with one string changed), run first to leave itself in the remote cache ($PEER_REBUILD_FROM)")
)

// buildNote is set by -ldflags -X in the earlier build ssh_rebuild uses,
// so that the two builds differ as after a one-string change.
var buildNote = "this build"

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func envInt(name string) int {
	n, _ := strconv.Atoi(os.Getenv(name))
	return n
}

type sshConfig struct {
	connects, firsts, calls, parRuns int
}

// uploads records the router's "binary uploaded" debug records (their
// "bytes" attribute) and the phases of its "connected" records (their
// durations, in ms), and passes warnings and the phases on to next, if any.
type uploads struct {
	mu     sync.Mutex
	bytes  []int64
	phases []map[string]float64
	next   slog.Handler
}

func (h *uploads) Enabled(context.Context, slog.Level) bool { return true }

func (h *uploads) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "binary uploaded" {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "bytes" {
				h.mu.Lock()
				h.bytes = append(h.bytes, a.Value.Int64())
				h.mu.Unlock()
			}
			return true
		})
	}
	if r.Message == "connected" {
		ph := map[string]float64{}
		r.Attrs(func(a slog.Attr) bool {
			if a.Value.Kind() == slog.KindDuration {
				ph[a.Key] = peerkit.MS(a.Value.Duration())
			}
			return true
		})
		h.mu.Lock()
		h.phases = append(h.phases, ph)
		h.mu.Unlock()
	}
	if h.next != nil && (r.Level >= slog.LevelWarn || r.Message == "connected") {
		return h.next.Handle(ctx, r)
	}
	return nil
}

func (h *uploads) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *uploads) WithGroup(string) slog.Handler      { return h }

func (h *uploads) take() []int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	b := h.bytes
	h.bytes = nil
	return b
}

// takePhases returns the phases of the connects logged since the last call.
func (h *uploads) takePhases() []map[string]float64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.phases
	h.phases = nil
	return p
}

func newSSHRouter() (*actors.Router, *uploads) {
	h := &uploads{}
	if peerkit.Verbose {
		h.next = slog.NewTextHandler(os.Stderr, nil)
	}
	r, err := actors.NewRouter(actors.WithLogger(slog.New(h)))
	must(err)
	return r, h
}

func sshTarget() string {
	return fmt.Sprintf("%s@%s:%d", *sshUser, *sshHost, *sshPort)
}

func sshOpts(extra ...actors.ConnectOption) []actors.ConnectOption {
	return append([]actors.ConnectOption{
		actors.IdentityFile(*sshKey), actors.KnownHosts(*sshKnown), actors.SSHConfig("none"),
	}, extra...)
}

// sshConnectCall times r.SSH plus a first call; the context is shut down
// afterwards, untimed.
func sshConnectCall(r *actors.Router) float64 {
	t0 := time.Now()
	c, err := r.SSH(bg, sshTarget(), sshOpts()...)
	must(err)
	_, err = identity.Call(bg, c, 0)
	must(err)
	ms := peerkit.MS(time.Since(t0))
	shutdown(c)
	return ms
}

func benchSSHConnect(r *actors.Router, _ *uploads, cfg sshConfig, res peerkit.Result) {
	sshConnectCall(r) // untimed: puts the binary in the remote cache
	wire, _ := peerkit.ReadWire()
	var samples []float64
	for i := 0; i < cfg.connects; i++ {
		samples = append(samples, sshConnectCall(r))
	}
	logf("ssh_connect_cached samples (ms): %.1f", samples)
	peerkit.PutSamples(res, "ssh_connect_cached", "ms", samples)
	peerkit.PutWire(res, "ssh_connect_cached", wire, cfg.connects)
}

// benchSSHFirst deletes the remote cache before each run and uses a fresh
// Router each time, so every run pays what a new master pays on a host it
// never reached: hashing and gzip'ing the binary, and sending it.
func benchSSHFirst(_ *actors.Router, _ *uploads, cfg sshConfig, res peerkit.Result) {
	dir := *sshCache
	if dir == "" {
		u, err := user.Lookup(*sshUser)
		must(err)
		dir = filepath.Join(u.HomeDir, ".cache", "mitogo")
	}
	var samples []float64
	var sent []int64
	local, err := bootstrap.LocalCacheDir()
	must(err)
	if !*firstCold {
		// A build's first upload makes its compressed form in the
		// background (bootstrap/forms.go); what a first contact costs
		// is timed once it is made, as every later one finds it.
		must(os.RemoveAll(dir))
		r, _ := newSSHRouter()
		sshConnectCall(r)
		shutdownRouter(r)
		bootstrap.WaitForms(local)
	}
	wire, _ := peerkit.ReadWire()
	for i := 0; i < cfg.firsts; i++ {
		must(os.RemoveAll(dir))
		if *firstCold { // the compressed forms only: kept deltas stay
			for _, format := range []string{"xz", "zstd", "gz"} {
				forms, _ := filepath.Glob(filepath.Join(local, "*."+format+".*"))
				for _, f := range forms {
					os.Remove(f)
				}
			}
		}
		r, h := newSSHRouter()
		samples = append(samples, sshConnectCall(r))
		shutdownRouter(r)
		up := h.take()
		if len(up) != 1 {
			must(fmt.Errorf("ssh_first: %d uploads logged after deleting %s, want 1", len(up), dir))
		}
		sent = append(sent, up[0])
	}
	logf("ssh_connect_first samples (ms): %.1f; bytes %d", samples, sent)
	peerkit.PutSamples(res, "ssh_connect_first", "ms", samples)
	peerkit.PutWire(res, "ssh_connect_first", wire, cfg.firsts)
	res["ssh_first_bytes"] = sent[0]
	res["ssh_first_cache_dir"] = dir

	exe, err := os.Executable()
	must(err)
	data, err := os.ReadFile(exe)
	must(err)
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	zw.Write(data)
	zw.Close()
	res["ssh_binary_bytes"] = len(data)
	res["ssh_binary_gzip1_bytes"] = buf.Len() // the whole file's; what is sent is its stripped image
}

// benchSSHRebuild times first contact after a rebuild: before each run
// the remote cache is emptied and the earlier build (--rebuild-from) makes
// a first contact, which leaves it there (and in this account's cache of
// what was sent); then this build connects with a fresh Router and sends
// what it must: a delta against the earlier build, where it can.
func benchSSHRebuild(_ *actors.Router, _ *uploads, cfg sshConfig, res peerkit.Result) {
	if *rebuildFrom == "" {
		must(fmt.Errorf("ssh_rebuild needs --rebuild-from (or PEER_REBUILD_FROM): an earlier build of this program"))
	}
	dir := remoteCache()
	var samples []float64
	var sent []int64
	var phases []map[string]float64
	var up, down int64
	var wired bool
	for i := 0; i < cfg.firsts; i++ {
		must(os.RemoveAll(dir))
		earlier := exec.Command(*rebuildFrom, "--ssh", "--only", "ssh_first", "--rounds", "1", "--first-cold")
		earlier.Stderr = os.Stderr
		if out, err := earlier.Output(); err != nil {
			must(fmt.Errorf("ssh_rebuild: the earlier build: %w: %s", err, out))
		}
		before, _ := peerkit.ReadWire()
		r, h := newSSHRouter()
		samples = append(samples, sshConnectCall(r))
		shutdownRouter(r)
		if after, ok := peerkit.ReadWire(); ok {
			up, down, wired = up+after.Up-before.Up, down+after.Down-before.Down, true
		}
		logged := h.take()
		if len(logged) != 1 {
			must(fmt.Errorf("ssh_rebuild: %d uploads logged after a rebuild, want 1", len(logged)))
		}
		sent = append(sent, logged[0])
		phases = append(phases, h.takePhases()...)
	}
	logf("ssh_connect_rebuild samples (ms): %.1f; bytes %d (%s)", samples, sent, buildNote)
	peerkit.PutSamples(res, "ssh_connect_rebuild", "ms", samples)
	if wired {
		res["ssh_connect_rebuild_wire_up_bytes"] = up / int64(cfg.firsts)
		res["ssh_connect_rebuild_wire_down_bytes"] = down / int64(cfg.firsts)
	}
	res["ssh_rebuild_bytes"] = sent[0]
	res["ssh_connect_rebuild_phases"] = phases // each connect's, as -v logs them
}

// remoteCache is the remote user's binary cache.
func remoteCache() string {
	if *sshCache != "" {
		return *sshCache
	}
	u, err := user.Lookup(*sshUser)
	must(err)
	return filepath.Join(u.HomeDir, ".cache", "mitogo")
}

func benchSSHCall(r *actors.Router, _ *uploads, cfg sshConfig, res peerkit.Result) {
	c, err := r.SSH(bg, sshTarget(), sshOpts()...)
	must(err)
	defer shutdown(c)
	samples, total := timeCalls(c, cfg.calls)
	peerkit.PutCalls(res, "ssh_call", samples, total)
	sshFloor(cfg, res)
}

func benchSSHSudoCall(r *actors.Router, _ *uploads, cfg sshConfig, res peerkit.Result) {
	c, err := r.SSH(bg, sshTarget(), sshOpts()...)
	must(err)
	defer shutdown(c)
	s, err := r.Sudo(bg, actors.Via(c), actors.User(*sshSudoUser))
	must(err)
	defer shutdown(s)
	samples, total := timeCalls(s, cfg.calls)
	peerkit.PutCalls(res, "ssh_sudo_call", samples, total)
}

func benchSSHParallel20(r *actors.Router, _ *uploads, cfg sshConfig, res peerkit.Result) {
	var samples []float64
	var lost []int
	worst := 0
	var firstErr string
	for i := 0; i < cfg.parRuns; i++ {
		if i > 0 {
			time.Sleep(500 * time.Millisecond) // let sshd reap the last run's sessions
		}
		ms, failed := parallelOnce(20, func(i int) (*actors.Context, error) {
			return r.SSH(bg, sshTarget(), sshOpts(actors.Name(fmt.Sprintf("par%d", i)))...)
		})
		samples = append(samples, ms)
		lost = append(lost, len(failed))
		worst = max(worst, len(failed))
		if len(failed) > 0 && firstErr == "" {
			firstErr = failed[0].Error()
		}
		for _, err := range failed {
			logf("ssh_parallel20: lost: %v", err)
		}
	}
	logf("ssh_parallel20 samples (ms): %.1f; lost %d", samples, lost)
	peerkit.PutSamples(res, "ssh_parallel20", "ms", samples)
	res["ssh_parallel20_lost"] = worst // the worst run
	res["ssh_parallel20_lost_runs"] = lost
	if firstErr != "" {
		res["ssh_parallel20_error"] = firstErr
	}
}

var sshBenches = []peerkit.Bench[func(*actors.Router, *uploads, sshConfig, peerkit.Result)]{
	{Name: "ssh_connect", Fn: benchSSHConnect},
	{Name: "ssh_first", Fn: benchSSHFirst},
	{Name: "ssh_rebuild", Fn: benchSSHRebuild},
	{Name: "ssh_call", Fn: benchSSHCall},
	{Name: "ssh_sudo_call", Fn: benchSSHSudoCall},
	{Name: "ssh_parallel20", Fn: benchSSHParallel20},
}

var sshAliases = map[string]string{
	"ssh_connect_cached_ms": "ssh_connect", "ssh_connect_cached": "ssh_connect",
	"ssh_connect_first_ms": "ssh_first", "ssh_first_bytes": "ssh_first", "ssh_connect_first": "ssh_first",
	"ssh_connect_rebuild_ms": "ssh_rebuild", "ssh_rebuild_bytes": "ssh_rebuild",
	"ssh_call_us": "ssh_call", "ssh_sudo_call_us": "ssh_sudo_call", "ssh_floor_us": "ssh_call",
	"ssh_parallel20_ms": "ssh_parallel20", "ssh_parallel20_lost": "ssh_parallel20",
}

func mainSSH(o *peerkit.Options) {
	if *sshPort == 0 || *sshKey == "" || *sshKnown == "" {
		must(fmt.Errorf("--ssh needs --ssh-port, --ssh-key and --ssh-known-hosts (or PEER_SSH_PORT, PEER_SSH_KEY, PEER_SSH_KNOWN_HOSTS; see test/peer/sshd.sh)"))
	}
	cfg := sshConfig{connects: 10, firsts: 10, calls: 2000, parRuns: 3}
	if o.Quick {
		cfg = sshConfig{connects: 3, firsts: 2, calls: 200, parRuns: 1}
	}
	if *sshRounds > 0 {
		cfg.connects, cfg.firsts = *sshRounds, *sshRounds
	}
	want := peerkit.Pick(o.Only, "SSH benchmark", peerkit.Names(sshBenches), sshAliases)

	r, h := newSSHRouter()
	res := peerkit.Result{"impl": "mitogo", "go": runtime.Version(), "quick": o.Quick, "ssh_target": sshTarget()}
	for _, b := range sshBenches {
		want.Run(b.Name, func() { b.Fn(r, h, cfg, res) })
	}
	shutdownRouter(r)
	peerkit.PrintJSON(res)
}
