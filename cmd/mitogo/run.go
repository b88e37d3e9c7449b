package main

import (
	"context"
	"flag"
	"io"

	"github.com/mitogo/mitogo/builtins"
)

var runCommand = &command{
	name:    "run",
	summary: "run a command in a context, streaming its output live",
	usage:   "[-t CHAIN] [--timeout D] [-i | -n] [--] CMD [ARG...]",
	help: `Runs CMD in the context at the end of CHAIN (default: one local child) and
copies its stdout and stderr here as they are written. mitogo exits with
CMD's exit status, or 128+n when signal n killed it; its own errors exit 1.

Standard input is forwarded when it is not a terminal (a pipe or a file),
and CMD's stdin is closed at its end. From a terminal CMD reads /dev/null
instead: without a terminal on the far side, a prompt would wait unseen
for keystrokes this side would have to guess were meant for it. -i forwards
a terminal anyway (line by line, ended by ^D); -n never forwards.

Ctrl-C kills CMD with its process group, stops the contexts in order and
exits 130.

Examples:
  mitogo run -- uname -a
  mitogo run -t local,local,local -- sh -c 'echo $PPID'
  echo abc | mitogo run -- tr a-z A-Z
`,
	flags: func(fs *flag.FlagSet, e *env, o *options) {
		o.connectFlags(fs, e, true)
		fs.BoolVar(&o.stdinForce, "i", false, "forward stdin even when it is a terminal")
		fs.BoolVar(&o.stdinNever, "n", false, "never forward stdin: CMD reads /dev/null")
	},
	run: runMain,
}

func runMain(ctx context.Context, e *env, o *options, argv []string) error {
	if len(argv) == 0 {
		return usagef("no command given")
	}
	if o.stdinForce && o.stdinNever {
		return usagef("-i and -n exclude each other")
	}
	s, err := connect(ctx, e, o)
	if err != nil {
		return err
	}
	defer s.close()
	var stdin io.Reader
	if !o.stdinNever && e.stdin != nil && (o.stdinForce || !isTerminal(e.stdin)) {
		stdin = e.stdin
	}
	if o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.timeout)
		defer cancel()
	}
	exit, err := builtins.Run(ctx, s.r, s.target, builtins.RunRequest{Argv: argv}, stdin, e.stdout, e.stderr)
	if err != nil {
		return err
	}
	return exitStatus(exit)
}
