package main

import (
	"context"
	"flag"
	"strings"

	"github.com/mitogo/mitogo/actors"
	"github.com/mitogo/mitogo/builtins"
)

var runCommand = &command{
	name:    "run",
	summary: "run a command in one context or many, streaming its output live",
	usage:   "[-t TARGET]... [-i INVENTORY] [--shell] [--timeout D] [--stdin | -n] [--] CMD [ARG...]",
	help: `Runs CMD in the context at the end of each TARGET (default: one local
child) and copies its stdout and stderr here as they are written. CMD and
its ARGs are run as they are, without a shell, so that
  mitogo run -- '/dir with space/prog'
runs that file. --shell runs one shell command line with /bin/sh -c
instead, as ssh host 'a | b' does: the words are joined with spaces.

With one target, the output is CMD's own and mitogo exits with CMD's
status. With many, each line is prefixed with its target's name, or
--group prints each target's output whole when it finishes, under a
header, its stdout and stderr in the order they arrived (each to its own
stream), or --json prints JSON lines for scripts.

Standard input goes to one target when it is not a terminal (a pipe or a
file), and CMD's stdin is closed at its end; from a terminal CMD reads
/dev/null, since without a terminal on the far side a prompt would wait
unseen. --stdin forwards a terminal anyway (ended by ^D), and is needed to
give stdin to many targets (each gets all of it): without it, a pipe or a
file is left unread, with a warning. -n never forwards.

Ctrl-C kills CMD in every target with its process group, reports what
finished, stops the contexts in order and exits 130; SIGTERM does the same
and exits 143.
` + fleetHelp + clusterTargetHelp + `
Examples:
  mitogo run -- uname -a
  mitogo run -t deploy@web1 -t web2:2222 -- uptime
  mitogo run -t local,local,local -- sh -c 'echo $PPID'
  mitogo run --shell -t web1 'ps aux | grep nginx'
  mitogo run -i hosts.txt -t @web --forks 50 --timeout 2m -- systemctl is-active nginx
  mitogo run -i hosts.txt --retry-file failed.txt -- apt-get -y upgrade
  mitogo run -i failed.txt -- apt-get -y upgrade
  echo abc | mitogo run -- tr a-z A-Z
`,
	flags: func(fs *flag.FlagSet, e *env, o *options) {
		o.connectFlags(fs, e, true)
		o.fleetFlags(fs)
		o.nats.flags(fs, "run on the hosts of a cluster, through its controllers: -t names their inventory hosts")
		fs.BoolVar(&o.shell, "shell", false, "run one shell command line with /bin/sh -c (the words joined with spaces), as ssh does")
		fs.BoolVar(&o.stdinForce, "stdin", false, "forward stdin even when it is a terminal, and to many targets")
		fs.BoolVar(&o.stdinNever, "n", false, "never forward stdin: CMD reads /dev/null")
	},
	run: runMain,
}

func runMain(ctx context.Context, e *env, o *options, argv []string) error {
	if len(argv) == 0 {
		if o.fleet.inventory == "--" {
			return usagef("-i takes an inventory FILE now; to forward stdin from a terminal, use --stdin")
		}
		return usagef("no command given")
	}
	if o.stdinForce && o.stdinNever {
		return usagef("--stdin and -n exclude each other")
	}
	if o.shell {
		argv = []string{"/bin/sh", "-c", strings.Join(argv, " ")}
	}
	if o.nats.use() {
		return clusterRun(ctx, e, o, argv)
	}
	ts, err := resolveTargets(o.targets, o.fleet.inventory)
	if err != nil {
		return err
	}
	stdin, err := stdinFor(e, o, len(ts))
	if err != nil {
		return err
	}
	return runFleet(ctx, e, o, ts, func(ctx context.Context, r *actors.Router, c *actors.Context, out *targetOutput) (int, error) {
		return builtins.Run(ctx, r, c, builtins.RunRequest{Argv: argv}, stdin(), out.stdout, out.stderr)
	})
}
