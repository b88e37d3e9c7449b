package main

// The --ssh mode: mitogo over a real sshd on this machine (see
// ../compare_ssh.sh and ../sshd.sh), with the same JSON keys as
// `mitogen_bench.py --ssh`.

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mitogo/mitogo/actors"
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
)

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
// "bytes" attribute) and passes warnings on to next, if any.
type uploads struct {
	mu    sync.Mutex
	bytes []int64
	next  slog.Handler
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
	if h.next != nil && r.Level >= slog.LevelWarn {
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

func newSSHRouter() (*actors.Router, *uploads) {
	h := &uploads{}
	if *verbose {
		h.next = slog.NewTextHandler(os.Stderr, nil)
	}
	r, err := actors.NewRouter(actors.WithLogger(slog.New(h)))
	must(err)
	return r, h
}

func shutdownRouter(r *actors.Router) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Shutdown(ctx); err != nil {
		logf("router shutdown: %v", err)
	}
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
	ms := float64(time.Since(t0).Microseconds()) / 1e3
	shutdown(c)
	return ms
}

func benchSSHConnect(r *actors.Router, _ *uploads, cfg sshConfig, res result) {
	sshConnectCall(r) // untimed: puts the binary in the remote cache
	var samples []float64
	for i := 0; i < cfg.connects; i++ {
		samples = append(samples, sshConnectCall(r))
	}
	logf("ssh_connect_cached samples (ms): %.1f", samples)
	res["ssh_connect_cached_ms"] = round1(median(samples))
	res["ssh_connect_cached_n"] = len(samples)
	res["ssh_connect_cached_samples"] = roundAll(samples)
}

// benchSSHFirst deletes the remote cache before each run and uses a fresh
// Router each time, so every run pays what a new master pays on a host it
// never reached: hashing and gzip'ing the binary, and sending it.
func benchSSHFirst(_ *actors.Router, _ *uploads, cfg sshConfig, res result) {
	dir := *sshCache
	if dir == "" {
		u, err := user.Lookup(*sshUser)
		must(err)
		dir = filepath.Join(u.HomeDir, ".cache", "mitogo")
	}
	var samples []float64
	var sent []int64
	for i := 0; i < cfg.firsts; i++ {
		must(os.RemoveAll(dir))
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
	res["ssh_connect_first_ms"] = round1(median(samples))
	res["ssh_connect_first_n"] = len(samples)
	res["ssh_connect_first_samples"] = roundAll(samples)
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
	res["ssh_binary_gzip1_bytes"] = buf.Len() // a cross-check of ssh_first_bytes
}

func benchSSHCall(r *actors.Router, _ *uploads, cfg sshConfig, res result) {
	c, err := r.SSH(bg, sshTarget(), sshOpts()...)
	must(err)
	defer shutdown(c)
	samples, total := timeCalls(c, cfg.calls)
	res["ssh_call_us"] = round1(median(samples))
	res["ssh_call_n"] = len(samples)
	res["ssh_call_total_ms"] = round1(float64(total.Microseconds()) / 1e3)
}

func benchSSHSudoCall(r *actors.Router, _ *uploads, cfg sshConfig, res result) {
	c, err := r.SSH(bg, sshTarget(), sshOpts()...)
	must(err)
	defer shutdown(c)
	s, err := r.Sudo(bg, actors.Via(c), actors.User(*sshSudoUser))
	must(err)
	defer shutdown(s)
	samples, total := timeCalls(s, cfg.calls)
	res["ssh_sudo_call_us"] = round1(median(samples))
	res["ssh_sudo_call_n"] = len(samples)
	res["ssh_sudo_call_total_ms"] = round1(float64(total.Microseconds()) / 1e3)
}

// sshParallelOnce starts n SSH contexts at once, calls each once, and
// returns the wall time until all are done or failed, and the failures.
func sshParallelOnce(r *actors.Router, n int) (float64, []error) {
	ctxs := make([]*actors.Context, n)
	errs := make([]error, n)
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	ready.Add(n)
	done.Add(n)
	for i := 0; i < n; i++ {
		go func(i int) {
			defer done.Done()
			ready.Done()
			<-start
			c, err := r.SSH(bg, sshTarget(), sshOpts(actors.Name(fmt.Sprintf("par%d", i)))...)
			if err != nil {
				errs[i] = err
				return
			}
			ctxs[i] = c
			_, errs[i] = identity.Call(bg, c, 0)
		}(i)
	}
	ready.Wait()
	t0 := time.Now()
	close(start)
	done.Wait()
	elapsed := time.Since(t0)
	var wg sync.WaitGroup
	for _, c := range ctxs {
		if c != nil {
			wg.Add(1)
			go func() { defer wg.Done(); shutdown(c) }()
		}
	}
	wg.Wait()
	var failed []error
	for _, err := range errs {
		if err != nil {
			failed = append(failed, err)
		}
	}
	return float64(elapsed.Microseconds()) / 1e3, failed
}

func benchSSHParallel20(r *actors.Router, _ *uploads, cfg sshConfig, res result) {
	var samples []float64
	var lost []int
	worst := 0
	var firstErr string
	for i := 0; i < cfg.parRuns; i++ {
		if i > 0 {
			time.Sleep(500 * time.Millisecond) // let sshd reap the last run's sessions
		}
		ms, failed := sshParallelOnce(r, 20)
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
	res["ssh_parallel20_ms"] = round1(median(samples))
	res["ssh_parallel20_n"] = len(samples)
	res["ssh_parallel20_samples"] = roundAll(samples)
	res["ssh_parallel20_lost"] = worst // the worst run
	res["ssh_parallel20_lost_runs"] = lost
	if firstErr != "" {
		res["ssh_parallel20_error"] = firstErr
	}
}

var sshBenches = []struct {
	name string
	fn   func(*actors.Router, *uploads, sshConfig, result)
}{
	{"ssh_connect", benchSSHConnect},
	{"ssh_first", benchSSHFirst},
	{"ssh_call", benchSSHCall},
	{"ssh_sudo_call", benchSSHSudoCall},
	{"ssh_parallel20", benchSSHParallel20},
}

var sshAliases = map[string]string{
	"ssh_connect_cached_ms": "ssh_connect", "ssh_connect_cached": "ssh_connect",
	"ssh_connect_first_ms": "ssh_first", "ssh_first_bytes": "ssh_first", "ssh_connect_first": "ssh_first",
	"ssh_call_us": "ssh_call", "ssh_sudo_call_us": "ssh_sudo_call",
	"ssh_parallel20_ms": "ssh_parallel20", "ssh_parallel20_lost": "ssh_parallel20",
}

func mainSSH(quick bool, only string) {
	if *sshPort == 0 || *sshKey == "" || *sshKnown == "" {
		must(fmt.Errorf("--ssh needs --ssh-port, --ssh-key and --ssh-known-hosts (or PEER_SSH_PORT, PEER_SSH_KEY, PEER_SSH_KNOWN_HOSTS; see test/peer/sshd.sh)"))
	}
	cfg := sshConfig{connects: 10, firsts: 10, calls: 2000, parRuns: 3}
	if quick {
		cfg = sshConfig{connects: 3, firsts: 2, calls: 200, parRuns: 1}
	}
	want := map[string]bool{}
	for _, n := range strings.Split(only, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if a, ok := sshAliases[n]; ok {
			n = a
		}
		found := false
		for _, b := range sshBenches {
			found = found || b.name == n
		}
		if !found {
			must(fmt.Errorf("unknown SSH benchmark %q", n))
		}
		want[n] = true
	}

	r, h := newSSHRouter()
	res := result{"impl": "mitogo", "go": runtime.Version(), "quick": quick, "ssh_target": sshTarget()}
	for _, b := range sshBenches {
		if len(want) > 0 && !want[b.name] {
			continue
		}
		logf("running %s", b.name)
		t0 := time.Now()
		b.fn(r, h, cfg, res)
		logf("%s done in %s", b.name, time.Since(t0).Round(time.Millisecond))
	}
	shutdownRouter(r)
	out, err := json.Marshal(res)
	must(err)
	fmt.Println(string(out))
}
