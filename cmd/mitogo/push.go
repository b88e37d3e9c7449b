package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/mitogo/mitogo/actors"
	"github.com/mitogo/mitogo/files"
)

// copyFlags are push's and pull's own flags.
type copyFlags struct {
	recursive bool
	owner     string
}

// copyConnectFlags registers the connect flags, -i for push, and -r.
func copyConnectFlags(fs *flag.FlagSet, e *env, o *options, many bool) {
	o.connectFlags(fs, e, true)
	if many {
		fs.StringVar(&o.fleet.inventory, "i", "", "read the targets from this inventory `FILE`; -t then picks names or groups in it (default: all of them)")
	}
	fs.BoolVar(&o.copy.recursive, "r", false, "copy directories with everything in them")
	fs.StringVar(&o.copy.owner, "owner", "auto", "keep the source's owner and group (by name): auto (when the receiving side is root), yes or no")
}

var pushCommand = &command{
	name:    "push",
	summary: "copy local files to one or more contexts",
	usage:   "[-t CHAIN]... [-i INVENTORY] [-r] [--owner auto|yes|no] [--timeout D] [connect flags] LOCAL_SRC REMOTE_DST",
	help: `Copies LOCAL_SRC to REMOTE_DST in the context at the end of each CHAIN
(default: local; targets and inventories as for run), in chunks with
back-pressure, checked by sha256, written to a temporary file beside the
destination and renamed into place. A file already there
with the same size and hash is not sent again; an interrupted copy is
continued where it stopped. Modes, times and symbolic links are kept,
and owners by name when the far side runs as root (see --owner).

REMOTE_DST ending in "/" is a directory to copy into. A file copied to an
existing directory goes into it, as with cp. Otherwise REMOTE_DST is the
copy's own path: with -r, a directory already there is updated in place
(its mode and times become the source's), so pushing again sends
nothing; to copy a directory into an existing one, as cp -r does, end
REMOTE_DST with "/".

Chains sharing their first hops share those contexts, and a context that
leads to several targets receives the data once and passes it on.

Progress is shown on a terminal. --timeout bounds the whole run. Exit
status: 0 when every copy succeeded; else 255 when a target could not be
reached, else 124 when --timeout passed, else 1; 2 for usage errors.

Examples:
  mitogo push -t ssh://web1,sudo://root ./nginx.conf /etc/nginx/nginx.conf
  mitogo push -r -t web1 -t web2 ./site/ /var/www/site
  mitogo push -i hosts.txt -t @web ./motd /etc/motd
`,
	flags: func(fs *flag.FlagSet, e *env, o *options) { copyConnectFlags(fs, e, o, true) },
	run:   pushMain,
}

var pullCommand = &command{
	name:    "pull",
	summary: "copy files from a context to this machine",
	usage:   "[-t CHAIN] [-r] [--owner auto|yes|no] [--timeout D] [connect flags] REMOTE_SRC LOCAL_DST",
	help: `Copies REMOTE_SRC in the context at the end of CHAIN (default: local) to
LOCAL_DST here, as push does the other way: LOCAL_DST ending in "/", or
".", is a directory to copy into, and so is an existing directory for a
file; with -r, a directory's copy is LOCAL_DST itself.

Exit status: 0 when the copy succeeded, 255 when the target could not be
reached, 124 when --timeout passed, 1 for other failures, 2 for usage
errors.

Examples:
  mitogo pull -t ssh://web1,sudo://root /etc/nginx/nginx.conf ./nginx.conf
  mitogo pull -r -t sudo://postgres backups/ .
`,
	flags: func(fs *flag.FlagSet, e *env, o *options) { copyConnectFlags(fs, e, o, false) },
	run:   pullMain,
}

func (o *options) copyOptions(e *env) ([]files.Option, error) {
	var opts []files.Option
	if o.copy.recursive {
		opts = append(opts, files.Recursive())
	}
	switch o.copy.owner {
	case "auto":
	case "yes":
		opts = append(opts, files.PreserveOwner(true))
	case "no":
		opts = append(opts, files.PreserveOwner(false))
	default:
		return nil, usagef("--owner %q: want auto, yes or no", o.copy.owner)
	}
	if w, ok := e.stderr.(*os.File); ok && isTerminal(w) {
		opts = append(opts, files.Progress(progressLine(w)))
	}
	return opts, nil
}

// progressLine draws "done / total (percent)" on one terminal line, at
// most ten times a second.
func progressLine(w io.Writer) func(done, total int64) {
	var last time.Time
	return func(done, total int64) {
		if now := time.Now(); now.Sub(last) >= 100*time.Millisecond || done == total {
			last = now
			pct := 100.0
			if total > 0 {
				pct = 100 * float64(done) / float64(total)
			}
			fmt.Fprintf(w, "\r\033[K%s / %s (%.0f%%)", size(done), size(total), pct)
			if done == total {
				fmt.Fprint(w, "\r\033[K")
			}
		}
	}
}

func size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func pushMain(ctx context.Context, e *env, o *options, args []string) error {
	if len(args) != 2 {
		return usagef("want LOCAL_SRC REMOTE_DST, got %s", plural(len(args), "argument"))
	}
	opts, err := o.copyOptions(e)
	if err != nil {
		return err
	}
	ts, err := resolveTargets(o.targets, o.fleet.inventory)
	if err != nil {
		return err
	}
	// The source is this side's: what is wrong with it is said once, not
	// once per target.
	if fi, err := os.Stat(args[0]); err != nil || fi.IsDir() && !o.copy.recursive {
		why := "is a directory (copy it with -r)"
		var pe *fs.PathError
		switch {
		case errors.As(err, &pe):
			why = "cannot be read: " + oneLine(pe.Err)
		case err != nil:
			why = "cannot be read: " + userLine(err)
		}
		fmt.Fprintf(e.stderr, "mitogo push: %s %s\n", args[0], why)
		return exitStatus(exitError)
	}
	cr, cancel := newCopyRun(ctx, e, o, "push", args[0])
	defer cancel()
	r, targets, err := connectTargets(cr.runCtx, e, o, ts)
	if r != nil {
		defer shutdownRouter(r)
	}
	if err != nil {
		return err
	}
	var contexts []*actors.Context
	var names []string
	for _, ct := range targets {
		if ct.c == nil {
			cr.fail(ct.t.name, ct.err, exitUnreachable)
			continue
		}
		contexts, names = append(contexts, ct.c), append(names, ct.t.name)
	}
	for i, res := range files.PushMany(cr.runCtx, contexts, args[0], args[1], opts...) {
		switch {
		case res.Err != nil:
			cr.fail(names[i], res.Err, exitError)
		case len(ts) > 1 || e.verbose > 0:
			fmt.Fprintf(e.stdout, "%s: %s\n", names[i], describe(res))
		}
	}
	return cr.end()
}

func pullMain(ctx context.Context, e *env, o *options, args []string) error {
	if len(args) != 2 {
		return usagef("want REMOTE_SRC LOCAL_DST, got %s", plural(len(args), "argument"))
	}
	opts, err := o.copyOptions(e)
	if err != nil {
		return err
	}
	if len(o.targets) > 1 {
		return usagef("-t: pull takes one target, got %d", len(o.targets))
	}
	ts, err := resolveTargets(o.targets, "")
	if err != nil {
		return err
	}
	cr, cancel := newCopyRun(ctx, e, o, "pull", args[0])
	defer cancel()
	r, targets, err := connectTargets(cr.runCtx, e, o, ts)
	if r != nil {
		defer shutdownRouter(r)
	}
	if err != nil {
		return err
	}
	t := targets[0]
	if t.c == nil {
		cr.fail(t.t.name, t.err, exitUnreachable)
		return cr.end()
	}
	res, err := files.Pull(cr.runCtx, t.c, args[0], args[1], opts...)
	switch {
	case err != nil:
		cr.fail(t.t.name, err, exitError)
	case e.verbose > 0:
		fmt.Fprintf(e.stdout, "%s: %s\n", t.t.name, describe(res))
	}
	return cr.end()
}

// copyRun is one push or pull: ctx ends on an interrupt, runCtx also when
// --timeout passes; status is the worst exit status so far.
type copyRun struct {
	e       *env
	cmd     string // "push" or "pull"
	src     string
	ctx     context.Context
	runCtx  context.Context
	timeout time.Duration
	status  int
}

func newCopyRun(ctx context.Context, e *env, o *options, cmd, src string) (*copyRun, context.CancelFunc) {
	cr := &copyRun{e: e, cmd: cmd, src: src, ctx: ctx, runCtx: ctx, timeout: o.timeout}
	cancel := func() {}
	if o.timeout > 0 {
		cr.runCtx, cancel = context.WithTimeout(ctx, o.timeout)
	}
	return cr, cancel
}

// fail reports the failure of the target called name and records its
// exit status: 124 once --timeout has passed (as run), else status. After
// an interrupt nothing is reported: the run ends with 130.
func (cr *copyRun) fail(name string, err error, status int) {
	switch {
	case cr.ctx.Err() != nil:
		return
	case cr.runCtx.Err() != nil:
		fmt.Fprintf(cr.e.stderr, "mitogo %s: %s: --timeout %s passed\n", cr.cmd, name, cr.timeout)
		status = exitTimeout
	default:
		fmt.Fprintf(cr.e.stderr, "mitogo %s: %s: %s\n", cr.cmd, name, cr.cause(err))
	}
	cr.status = worseStatus(cr.status, status)
}

// cause is why a copy failed, without what the line says already (the
// operation and the target, which a *files.Error repeats), in the CLI's
// terms.
func (cr *copyRun) cause(err error) string {
	var fe *files.Error
	if errors.As(err, &fe) {
		err = fe.Err
	}
	if errors.Is(err, files.ErrIsDirectory) {
		return cr.src + " is a directory (copy it with -r)"
	}
	return userLine(err)
}

// end returns how the run ends: interrupted, or with its worst status.
func (cr *copyRun) end() error {
	if err := cr.ctx.Err(); err != nil {
		return err
	}
	if cr.status != 0 {
		return exitStatus(cr.status)
	}
	return nil
}

// worseStatus is the status of two targets together, as run's exitFor
// gives it: 255 if either was unreachable, else 124 if either timed out,
// else the higher.
func worseStatus(a, b int) int {
	for _, s := range []int{exitUnreachable, exitTimeout} {
		if a == s || b == s {
			return s
		}
	}
	return max(a, b)
}

func describe(res files.Result) string {
	if !res.Changed {
		return "unchanged"
	}
	return fmt.Sprintf("changed (%s, %s sent)", plural(res.Files, "file"), size(res.Bytes))
}

// connected is a target and its context, or why it has none.
type connected struct {
	t   *target
	c   *actors.Context
	err error // why c is nil: it could not be reached, or ctx ended first
}

// connectTargets connects every target, sharing the contexts of common
// first hops, so that a context that leads to several targets receives the
// data once. It returns every target, connected or with the reason it is
// not; once ctx has ended, the targets not yet connected have its error.
func connectTargets(ctx context.Context, e *env, o *options, ts []*target) (*actors.Router, []connected, error) {
	plans, err := o.plan(ts)
	if err != nil {
		return nil, nil, err
	}
	r, err := newRouter(e)
	if err != nil {
		return nil, nil, err
	}
	byPrefix := map[string]*actors.Context{}
	var targets []connected
	for _, p := range plans {
		if err := ctx.Err(); err != nil {
			targets = append(targets, connected{t: p.t, err: err})
			continue
		}
		var c *actors.Context
		// Hops are shared by what they are and the target's settings,
		// which give their options.
		var key string
		for _, k := range sortedKeysOf(p.t.settings) {
			key += k + "=" + p.t.settings[k] + " "
		}
		var cerr error
		for i, h := range p.hops {
			key += fmt.Sprintf("\x00%s|%s|%s", h.kind, h.user, h.target)
			if known, ok := byPrefix[key]; ok {
				c = known
				continue
			}
			opts := p.opts[i]
			if c != nil {
				opts = append(opts[:len(opts):len(opts)], actors.Via(c))
			}
			next, err := h.connect(ctx, r, opts...)
			if err != nil {
				c, cerr = nil, err
				break
			}
			byPrefix[key], c = next, next
		}
		targets = append(targets, connected{t: p.t, c: c, err: cerr})
	}
	return r, targets, nil
}

// shutdownRouter stops the tree, killing what does not stop within a few
// seconds.
func shutdownRouter(r *actors.Router) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r.Shutdown(ctx)
}
