// Command supervise keeps a mitogo context alive on each of its targets,
// an example of supervision-driven automation with protoactor and mitogo.
//
// A fleet actor spawns one context actor per target (Router.ContextProps)
// and supervises them with actors.Restart: a lost context (its process
// killed, its host gone) is restarted with exponential backoff under the
// same handle; after -limit failures within -window the fleet escalates to
// its guardian, which stops it (the fleet's contexts are shut down first)
// and the program exits with status 1. Every transition is logged.
//
//	supervise [-i key] [-known-hosts file] [-limit 3] [-window 1m] target...
//
// A target is [user@]host[:port] for SSH, or "local" for a child on this
// machine. The program must call actors.Main first, as every mitogo
// program does: it is also the program its contexts run.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/mitogo/mitogo/actors"
)

func main() {
	actors.Main()
	key := flag.String("i", "", "SSH private key (default: ~/.ssh keys and the agent)")
	knownHosts := flag.String("known-hosts", "", "known_hosts file (default ~/.ssh/known_hosts)")
	initial := flag.Duration("initial", time.Second, "wait before the first restart")
	maxWait := flag.Duration("max", 30*time.Second, "longest wait between restarts")
	limit := flag.Int("limit", 3, "failures within -window after which the fleet gives up")
	window := flag.Duration("window", time.Minute, "window of -limit")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: supervise [flags] target...")
		os.Exit(2)
	}
	var opts []actors.ConnectOption
	if *key != "" {
		opts = append(opts, actors.IdentityFile(*key))
	}
	if *knownHosts != "" {
		opts = append(opts, actors.KnownHosts(*knownHosts))
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	r, err := actors.NewRouter(actors.WithLogger(logger))
	if err != nil {
		logger.Error("starting", "error", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = Supervise(ctx, r, Config{Targets: flag.Args(), Options: opts,
		Strategy: actors.Restart(*initial, *maxWait, *limit, *window), Logger: logger})
	stop()
	shut, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r.Shutdown(shut)
	if err != nil {
		logger.Error("giving up", "error", err)
		os.Exit(1)
	}
}

// Config says what Supervise keeps alive and how.
type Config struct {
	Targets  []string               // [user@]host[:port], or "local"
	Options  []actors.ConnectOption // for every connection (keys, known_hosts...)
	Strategy *actors.Backoff        // restarts; Supervise sets its decider, and makes it escalate at its limit
	Logger   *slog.Logger
	// Events, if set, receives every transition as it is logged.
	Events chan<- Event
}

// Event is one transition of one target: "up", "lost", "restarted",
// "stopped", or "escalated" (Target empty: the fleet gave up).
type Event struct {
	Target string
	State  string
	PID    int   // the context's process ("up", "restarted")
	Err    error // why ("lost", "stopped", "escalated")
}

// ErrGaveUp is Supervise's error when a target failed too often.
var ErrGaveUp = errors.New("a target failed too often")

// Supervise runs the fleet until ctx ends (nil) or it gives up (an error
// matching ErrGaveUp, wrapping the last failure).
func Supervise(ctx context.Context, r *actors.Router, cfg Config) error {
	gaveUp := make(chan error, 1) // the guardian sends at most once: its fleet stops once
	g := &guardian{r: r, cfg: cfg, gaveUp: gaveUp}
	strategy := actor.NewOneForOneStrategy(0, 0, g.decide)
	pid := r.System().Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return g }, actor.WithSupervisor(strategy)))
	defer func() { r.System().Root.StopFuture(pid).Wait() }() // its fleet and contexts first
	select {
	case <-ctx.Done():
		return nil
	case err := <-gaveUp:
		return err
	}
}

// report logs e and sends it to Events.
func (cfg *Config) report(e Event) {
	attrs := []any{"target", e.Target}
	if e.PID != 0 {
		attrs = append(attrs, "pid", e.PID)
	}
	if e.Err != nil {
		attrs = append(attrs, "error", e.Err)
	}
	cfg.Logger.Info(e.State, attrs...)
	if cfg.Events != nil {
		cfg.Events <- e
	}
}

// guardian is the fleet's parent: an escalation from the fleet stops it.
type guardian struct {
	r      *actors.Router
	cfg    Config
	gaveUp chan<- error
	why    error
}

func (g *guardian) decide(reason any) actor.Directive {
	g.why, _ = reason.(error)
	g.cfg.report(Event{State: "escalated", Err: g.why})
	return actor.StopDirective
}

func (g *guardian) Receive(ctx actor.Context) {
	switch ctx.Message().(type) {
	case *actor.Started:
		ctx.Spawn(actor.PropsFromProducer(func() actor.Actor { return newFleet(g.r, g.cfg) },
			actor.WithSupervisor(g.cfg.Strategy.WithDecider(fleetDecider(g.cfg)).OnLimit(actor.EscalateDirective))))
	case *actor.Terminated:
		if g.why != nil {
			// The fleet stopped after an escalation; its contexts are gone.
			g.gaveUp <- fmt.Errorf("%w: %w", ErrGaveUp, g.why)
		}
	}
}

// fleetDecider logs each failure of a target and restarts it; the
// strategy escalates once its limit is passed.
func fleetDecider(cfg Config) actor.DeciderFunc {
	return func(reason any) actor.Directive {
		err, _ := reason.(error)
		cfg.report(Event{Target: contextName(err), State: "lost", Err: err})
		return actor.RestartDirective
	}
}

// contextName is the context an error of mitogo names.
func contextName(err error) string {
	var ce *actors.ChannelError
	var se *actors.StreamError
	var te *actors.TimeoutError
	switch {
	case errors.As(err, &ce):
		return ce.Context
	case errors.As(err, &se):
		return se.Context
	case errors.As(err, &te):
		return te.Context
	}
	return "?"
}

// fleet keeps one context actor per target.
type fleet struct {
	r       *actors.Router
	cfg     Config
	names   map[string]string          // context actor's id → its context's name (the target, until it is up)
	handles map[string]*actors.Context // context actor's id → its handle, once up
}

func newFleet(r *actors.Router, cfg Config) *fleet {
	return &fleet{r: r, cfg: cfg, names: map[string]string{}, handles: map[string]*actors.Context{}}
}

func (f *fleet) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		for _, target := range f.cfg.Targets {
			pid := ctx.Spawn(f.r.ContextProps(connector(target, f.cfg.Options)))
			f.names[pid.Id] = target
		}
	case *actors.ContextUp:
		state := "up"
		if m.Restart {
			state = "restarted"
		}
		f.names[m.Actor.Id], f.handles[m.Actor.Id] = m.Context.Name(), m.Context
		f.cfg.report(Event{Target: m.Context.Name(), State: state, PID: m.Context.ProcessID()})
	case *actor.Terminated:
		if name, ok := f.names[m.Who.Id]; ok {
			e := Event{Target: name, State: "stopped"}
			if h := f.handles[m.Who.Id]; h != nil {
				e.Err = h.Err() // set before Terminated is sent
			}
			f.cfg.report(e)
		}
	}
}

// connector starts the context of target, named after it.
func connector(target string, opts []actors.ConnectOption) actors.Connector {
	return func(ctx context.Context, r *actors.Router) (*actors.Context, error) {
		opts := append([]actors.ConnectOption{actors.Name(target)}, opts...)
		if target == "local" {
			return r.Local(ctx, opts...)
		}
		return r.SSH(ctx, target, opts...)
	}
}
