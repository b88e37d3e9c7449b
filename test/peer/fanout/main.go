// Command fanout measures one call fanned out to many contexts with mitogo
// (Router.ConnectAll, then Func.Fan), the work that ../mitogen_fanout.py
// does with Mitogen (threads to connect, then call_async and Select); see
// ../fanout.sh, which runs both in one go and prints one table.
//
//	go build -o /tmp/fanout ./test/peer/fanout
//	/tmp/fanout [--local N] [--rounds R] [-v]                        # N local children
//	eval "$(bash test/peer/sshd.sh start)"; /tmp/fanout --ssh N ...   # N contexts over sshd
//
// It connects the N contexts once (timed: connect_ms), then times R
// fan-outs of one small call to all of them (fanout_ms: from the first
// call sent to the last result in) and prints ONE JSON object on stdout.
// The binary re-execs itself for every child, so actors.Main comes first.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"time"

	"github.com/mitogo/mitogo/actors"
	"github.com/mitogo/mitogo/test/peer/internal/peerkit"
)

var identity = actors.Register("peer.fanout.identity", func(_ context.Context, v int) (int, error) { return v, nil })

var (
	localN = flag.Int("local", 200, "local children (when --ssh is 0)")
	sshN   = flag.Int("ssh", 0, "contexts over the sshd of PEER_SSH_* instead of local children")
	rounds = flag.Int("rounds", 5, "fan-outs timed")
	limit  = flag.Int("limit", 16, "connections made at once")
	prof   = flag.String("profile", "", "write cpu.pprof, heap.pprof and goroutine.pprof of the master's timed fan-outs into this directory")
)

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func main() {
	actors.Main() // never returns in a child
	peerkit.Prog = "fanout"
	flag.BoolVar(&peerkit.Verbose, "v", false, "log to stderr")
	flag.Parse()

	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if peerkit.Verbose {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	r, err := actors.NewRouter(actors.WithLogger(logger))
	peerkit.Must(err)
	ctx := context.Background()

	n, kind := *localN, "local"
	if *sshN > 0 {
		n, kind = *sshN, "ssh"
	}
	target := fmt.Sprintf("%s@%s:%s", envOr("PEER_SSH_USER", "root"), envOr("PEER_SSH_HOST", "127.0.0.1"), os.Getenv("PEER_SSH_PORT"))
	targets := make([]actors.ConnectTarget, n)
	for i := range targets {
		name := kind + strconv.Itoa(i)
		targets[i] = actors.ConnectTarget{Name: name, Connect: func(ctx context.Context, r *actors.Router) (*actors.Context, error) {
			if kind == "local" {
				return r.Local(ctx, actors.Name(name))
			}
			return r.SSH(ctx, target, actors.Name(name), actors.IdentityFile(os.Getenv("PEER_SSH_KEY")),
				actors.KnownHosts(os.Getenv("PEER_SSH_KNOWN_HOSTS")), actors.SSHConfig("none"))
		}}
	}
	t0 := time.Now()
	conns := r.ConnectAll(ctx, targets, actors.Limit(*limit), actors.TargetTimeout(time.Minute))
	connect := time.Since(t0)
	peerkit.Must(conns.Err())
	contexts := conns.Contexts()

	stopProfile := func() {}
	if *prof != "" {
		peerkit.Must(writeProfile(*prof, "goroutine-idle"))
		stopProfile = startCPUProfile(*prof)
	}
	var roots []int // where the remote contexts' processes are
	if sshd, err := strconv.Atoi(os.Getenv("PEER_SSHD_PID")); err == nil && kind == "ssh" {
		roots = append(roots, sshd)
	}
	cpu0 := cpuOf(os.Getpid(), roots...)
	var samples []float64
	for range *rounds {
		t0 := time.Now()
		got := 0
		for res := range identity.Fan(ctx, contexts, 7) {
			peerkit.Must(res.Err)
			got++
		}
		samples = append(samples, peerkit.MS(time.Since(t0)))
		if got != n {
			peerkit.Must(fmt.Errorf("%d results of %d", got, n))
		}
	}
	cpu := cpuOf(os.Getpid(), roots...).sub(cpu0)
	stopProfile()
	peerkit.Logf("fanout samples (ms): %.1f", samples)
	per := float64(*rounds)
	peerkit.Logf("per fan-out: master %.1f ms CPU, %.0f runs on a CPU; children (and under sshd) %.1f ms CPU, %.0f runs on a CPU",
		peerkit.MS(cpu.self)/per, float64(cpu.selfRuns)/per, peerkit.MS(cpu.children)/per, float64(cpu.childrenRuns)/per)
	if *prof != "" {
		peerkit.Must(writeProfile(*prof, "heap"))
		peerkit.Must(writeProfile(*prof, "goroutine"))
	}
	res := peerkit.Result{"impl": "mitogo", "go": runtime.Version(), "kind": kind, "n": n,
		"connect_ms": peerkit.Round1(peerkit.MS(connect))}
	peerkit.PutSamples(res, "fanout", "ms", samples)
	res["rss_master_kb"], _ = peerkit.RSSKB(os.Getpid())
	if peerkit.Verbose {
		logMemory()
	}
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := r.Shutdown(sctx); err != nil {
		peerkit.Logf("shutdown: %v", err)
	}
	peerkit.PrintJSON(res)
}
