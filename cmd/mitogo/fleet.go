package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mitogo/mitogo/actors"
	"github.com/mitogo/mitogo/builtins"
)

// Exit statuses of run and call beyond the command's own.
const (
	exitTimeout     = 124 // --timeout passed, as timeout(1)
	exitNotFound    = 127 // the command (or called function) does not exist, as a shell
	exitUnreachable = 255 // a target could not be reached, as ssh
)

// fleetOptions are run's and call's flags for many targets.
type fleetOptions struct {
	inventory string
	forks     int
	group     bool
	json      bool
	summary   bool
	retryFile string
}

// fleetFlags registers the flags of the commands that run in many targets.
func (o *options) fleetFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.fleet.inventory, "i", "", "read the targets from this inventory `FILE`; -t then picks names or groups in it (default: all of them)")
	fs.IntVar(&o.fleet.forks, "forks", 20, "work in at most `N` targets at once")
	fs.BoolVar(&o.fleet.group, "group", false, "print each target's output whole when it finishes, under a header, stdout and stderr in the order they arrived, instead of line by line")
	fs.BoolVar(&o.fleet.json, "json", false, "print one JSON object per line, for scripts: output lines, results and each target's status")
	fs.BoolVar(&o.fleet.summary, "summary", false, "print the per-target summary at the end also when stderr is not a terminal")
	fs.StringVar(&o.fleet.retryFile, "retry-file", "", "write the targets that did not succeed to `FILE`, an inventory: -i FILE runs again in them only")
}

// state is how one target's work ended.
type state int

const (
	stateOK          state = iota
	stateFailed            // it ran and exited non-zero, or the call returned an error
	stateNotFound          // the command does not exist there
	stateTimedOut          // --timeout passed while it ran or before it started
	stateUnreachable       // it could not be reached, or the connection was lost
	stateInterrupted       // Ctrl-C (SIGINT) or SIGTERM
)

func (s state) String() string {
	return [...]string{"ok", "failed", "not found", "timed out", "unreachable", "interrupted"}[s]
}

// outcome is one target's result.
type outcome struct {
	t       *target
	state   state
	exit    int           // the exit status this target alone gives
	err     error         // why it did not succeed, when not a plain exit status
	began   bool          // false: the run ended before its turn came
	started bool          // the command or call began: the target was reached
	dur     time.Duration // from its turn to its end, when it began
}

// job is the work done in one connected target: it writes the output to
// out and returns the remote exit status (0 for a call that succeeded).
type job func(ctx context.Context, r *actors.Router, c *actors.Context, out *targetOutput) (int, error)

// runFleet connects every target, at most --forks at once, runs do in
// each, prints as the output mode says, and returns the exit status the
// outcomes give together (see exitFor).
func runFleet(ctx context.Context, e *env, o *options, ts []*target, do job) error {
	if err := checkFleetFlags(o); err != nil {
		return err
	}
	plans, err := o.plan(ts)
	if err != nil {
		return err
	}
	keys := snapshotKnownHosts(plans)
	r, err := newRouter(e)
	if err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r.Shutdown(ctx)
	}()
	return fanOut(ctx, e, o, ts, func(ctx, runCtx context.Context, i int, out *targetOutput) outcome {
		return runOne(ctx, runCtx, o.timeout, r, plans[i], out, do)
	}, func() []addedKey { return keys.added(plans) })
}

// checkFleetFlags refuses fleet flags that exclude each other.
func checkFleetFlags(o *options) error {
	if o.fleet.forks < 1 {
		return usagef("--forks %d: want at least 1", o.fleet.forks)
	}
	if o.fleet.group && o.fleet.json {
		return usagef("--group and --json exclude each other")
	}
	return nil
}

// fanOut does one for every target, at most --forks at once (ctx ends on
// an interrupt, runCtx also at --timeout), prints as the output mode says,
// and returns the exit status the outcomes give together (see exitFor).
// keysAdded, when not nil, reports the host keys recorded meanwhile.
func fanOut(ctx context.Context, e *env, o *options, ts []*target, one func(ctx, runCtx context.Context, i int, out *targetOutput) outcome, keysAdded func() []addedKey) error {
	runCtx := ctx
	if o.timeout > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, o.timeout)
		defer cancel()
	}

	began := time.Now()
	pr := newPrinter(e, o, ts)
	if pr.tty && e.uploads != nil {
		e.uploads.setFleet(pr.upload)
	}
	outcomes := make([]outcome, len(ts))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(o.fleet.forks, len(ts)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(ts) {
					return
				}
				outcomes[i] = one(ctx, runCtx, i, pr.target(i))
				pr.done(i, &outcomes[i])
			}
		})
	}
	wg.Wait()
	pr.close()
	var added []addedKey
	if keysAdded != nil {
		added = keysAdded()
	}
	pr.hostKeys(added)
	if pr.tty || o.fleet.summary {
		pr.summary(outcomes, added, time.Since(began))
	}
	if o.fleet.retryFile != "" {
		if err := writeRetryFile(o.fleet.retryFile, outcomes, flagSettings(o)); err != nil {
			fmt.Fprintf(e.stderr, "mitogo: %v\n", err)
			return exitStatus(exitError)
		}
	}
	if st := exitFor(outcomes); st != 0 {
		return exitStatus(st)
	}
	return nil
}

// runOne connects one target and does the job there. ctx ends on an
// interrupt, runCtx also at --timeout (which is timeout).
func runOne(ctx, runCtx context.Context, timeout time.Duration, r *actors.Router, p *planned, out *targetOutput, do job) (res outcome) {
	res.t = p.t
	if res.endedByRun(ctx, runCtx, timeout, phaseBefore, nil) {
		return res
	}
	res.began = true
	start := time.Now()
	defer func() { res.dur = time.Since(start) }()
	first, last, err := p.connect(runCtx, r)
	if err != nil {
		if !res.endedByRun(ctx, runCtx, timeout, phaseConnecting, err) {
			res.state, res.exit, res.err = stateUnreachable, exitUnreachable, err
		}
		return res
	}
	defer shutdown(first)
	res.started = true
	exit, err := do(runCtx, r, last, out)
	var lost *actors.ChannelError
	switch {
	case err == nil && exit == 0:
		res.state = stateOK
	case err == nil:
		res.state, res.exit = stateFailed, exit
	case errors.Is(err, builtins.ErrCommandNotFound), errors.Is(err, actors.ErrUnknownFunction):
		res.state, res.exit, res.err = stateNotFound, exitNotFound, err
	case res.endedByRun(ctx, runCtx, timeout, phaseRunning, err):
	case errors.As(err, &lost):
		res.state, res.exit, res.err = stateUnreachable, exitUnreachable, err
	default:
		res.state, res.exit, res.err = stateFailed, exitError, err
	}
	return res
}

// exitFor is the exit status of a run: 130 when interrupted (143 on
// SIGTERM); else 255 if any target was unreachable, else 124 if any timed
// out, else 127 if any lacked the command, else the highest status; 0 only
// when all succeeded.
func exitFor(outcomes []outcome) int {
	first := map[state]int{} // the exit status of the first outcome in each state
	highest := 0
	for _, o := range outcomes {
		if _, ok := first[o.state]; !ok {
			first[o.state] = o.exit
		}
		highest = max(highest, o.exit)
	}
	for _, s := range []state{stateInterrupted, stateUnreachable, stateTimedOut, stateNotFound} {
		if exit, ok := first[s]; ok {
			return exit
		}
	}
	return highest
}

// writeRetryFile writes the targets that did not succeed as an inventory,
// each with the settings the command line gave (flags, unless the target
// has its own), so that -i FILE alone reaches them as this run did.
func writeRetryFile(path string, outcomes []outcome, flags map[string]string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# mitogo retry file, %s: the targets that did not succeed (run again with -i %s)\n", time.Now().Format(time.RFC3339), path)
	for _, o := range outcomes {
		if o.state != stateOK {
			t := *o.t
			t.settings = maps.Clone(t.settings)
			if t.settings == nil {
				t.settings = map[string]string{}
			}
			for k, v := range flags {
				if _, own := t.settings[k]; !own {
					t.settings[k] = v
				}
			}
			fmt.Fprintf(&b, "%s  # %s\n", t.line(), o.state)
		}
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("--retry-file: %w", err)
	}
	return nil
}

// flagSettings are the inventory settings the command line's connection
// flags amount to, those that differ from the defaults.
func flagSettings(o *options) map[string]string {
	m := map[string]string{}
	for k, v := range map[string]string{"identity": o.identity, "known-hosts": o.knownHosts,
		"password-env": o.passwordEnv, "sudo-password-env": o.sudoPasswordEnv} {
		if v != "" {
			m[k] = v
		}
	}
	if o.hostKeyPolicy != "" && o.hostKeyPolicy != "strict" {
		m["host-key-policy"] = o.hostKeyPolicy
	}
	if o.connectTimeout != defaultConnectTimeout {
		m["connect-timeout"] = o.connectTimeout.String()
	}
	return m
}

// stdinFor returns how each target gets stdin: one target reads it as it
// comes, as run always did (when forwarded at all); many targets get it
// only with --stdin, read here once and given whole to each. Without it,
// a pipe or a file given as stdin to many targets is left unread with a
// warning: it was likely meant for them.
func stdinFor(e *env, o *options, n int) (func() io.Reader, error) {
	forward := !o.stdinNever && e.stdin != nil && (o.stdinForce || n == 1 && !isTerminal(e.stdin))
	if !forward && !o.stdinNever && n > 1 && e.stdin != nil && isPipeOrFile(e.stdin) {
		fmt.Fprintf(e.stderr, "mitogo: warning: stdin is not forwarded to %d targets; --stdin gives all of it to each, -n none without this warning\n", n)
	}
	switch {
	case !forward:
		return func() io.Reader { return nil }, nil
	case n == 1:
		return func() io.Reader { return e.stdin }, nil
	}
	data, err := io.ReadAll(e.stdin)
	if err != nil {
		return nil, fmt.Errorf("reading stdin: %w", err)
	}
	return func() io.Reader { return strings.NewReader(string(data)) }, nil
}

// isPipeOrFile reports whether f is a pipe, a socket or a regular file:
// not a terminal, nor a device such as /dev/null.
func isPipeOrFile(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && (fi.Mode().IsRegular() || fi.Mode()&(os.ModeNamedPipe|os.ModeSocket) != 0)
}
