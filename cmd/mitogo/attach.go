package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mitogo/mitogo/actors"
	"github.com/mitogo/mitogo/builtins"
)

// attachFlags are the flags of attach and debug.
type attachFlags struct {
	socket string // attach to the tree listening there

	goroutines, table, streams, calls bool
	heap, cpu                         string // files
	cpuTime                           time.Duration
	json                              bool
}

var attachCommand = &command{
	name:    "attach",
	summary: "join a running mitogo program's tree through its socket; call, run or list there",
	usage:   "--socket PATH [-t CONTEXT] [--timeout D] call FUNCTION [JSON-ARGS] | run [--] CMD [ARG...] | contexts",
	help: `Attaches to a mitogo program that listens on a Unix socket (actors'
Router.Listen), as a context of its tree, and works in one of its contexts:
the listener itself (default), or -t CONTEXT, a context id or full name
('mitogo attach ... contexts' lists them). What an attached process may
call is the listener's policy: ListenAllow(functions...) for functions of
the listener, ListenDescendants() for every context below it (and for the
list of contexts); beyond that, the tree's AllowUpward and AllowSideways.

  call FUNCTION [JSON-ARGS]   call a function, print its JSON result (as 'mitogo call')
  run [--] CMD [ARG...]       run a command there, its output here, its exit status
                              (as 'mitogo run'; stdin is not forwarded)
  contexts                    list the contexts below the listener

The socket must be in a directory of this user with mode 0700, and the
listener a process of this user.

Examples:
  mitogo attach --socket ~/.cache/app/run/mitogo.sock contexts
  mitogo attach --socket ~/.cache/app/run/mitogo.sock -t ssh:web1 run -- uptime
  mitogo attach --socket ~/.cache/app/run/mitogo.sock call sys.facts
`,
	flags: func(fs *flag.FlagSet, e *env, o *options) {
		fs.StringVar(&o.attach.socket, "socket", "", "the listener's Unix socket `PATH`")
		fs.Var(&o.targets, "t", "the `CONTEXT` of the attached tree to work in: its id or full name (default: the listener)")
		fs.DurationVar(&o.timeout, "timeout", 0, "give up (and kill what runs) after this long, e.g. 30s; 0: no limit")
		fs.Var((*verbosity)(&e.verbose), "v", "log more: -v info, -v -v debug")
	},
	run: attachMain,
}

func attachMain(ctx context.Context, e *env, o *options, args []string) error {
	if len(args) == 0 {
		return usagef("no action given: call, run or contexts")
	}
	action, args := args[0], args[1:]
	var fnArgs any
	switch action {
	case "call":
		if len(args) == 0 || len(args) > 2 {
			return usagef("call takes FUNCTION [JSON-ARGS]")
		}
		if len(args) == 2 {
			var err error
			if fnArgs, err = parseJSON([]byte(args[1])); err != nil {
				return usagef("arguments of %s: %v", args[0], err)
			}
			if err := checkArgs(args[0], fnArgs); err != nil {
				return err
			}
		}
	case "run":
		if len(args) > 0 && args[0] == "--" {
			args = args[1:]
		}
		if len(args) == 0 {
			return usagef("run: no command given")
		}
	case "contexts":
		if len(args) > 0 {
			return usagef("contexts takes no arguments")
		}
	default:
		return usagef("unknown action %q: want call, run or contexts", action)
	}
	if o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.timeout)
		defer cancel()
	}
	a, err := attach(ctx, e, o)
	if err != nil {
		return err
	}
	defer leave(a)
	if action == "contexts" {
		return printContexts(ctx, e, a)
	}
	c, err := attachedTarget(ctx, a, o)
	if err != nil {
		return err
	}
	switch action {
	case "call":
		res, err := actors.Function[any, any](args[0]).Call(ctx, c, fnArgs)
		if err != nil {
			return err
		}
		b, err := json.MarshalIndent(jsonable(res), "", "  ")
		if err != nil {
			return fmt.Errorf("printing the result: %w", err)
		}
		fmt.Fprintf(e.stdout, "%s\n", b)
		return nil
	default: // run
		exit, err := builtins.Run(ctx, a, c, builtins.RunRequest{Argv: args}, nil, e.stdout, e.stderr)
		if err != nil {
			return err
		}
		if exit != 0 {
			return exitStatus(exit)
		}
		return nil
	}
}

// attach joins the tree at --socket.
func attach(ctx context.Context, e *env, o *options) (*actors.Router, error) {
	if o.attach.socket == "" {
		return nil, usagef("--socket PATH is required")
	}
	if len(o.targets) > 1 {
		return nil, usagef("-t: one context, got %d", len(o.targets))
	}
	logger := e.logger()
	slog.SetDefault(logger)
	actx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return actors.Attach(actx, expandTilde(o.attach.socket), actors.WithLogger(logger))
}

// leave leaves the attached tree.
func leave(a *actors.Router) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a.Shutdown(ctx)
}

// attachedTarget resolves -t in the attached tree: an id, "master", a full
// name (from the listener's table), or the listener by default.
func attachedTarget(ctx context.Context, a *actors.Router, o *options) (*actors.Context, error) {
	if len(o.targets) == 0 || o.targets[0] == "" {
		return a.Parent(), nil
	}
	name := o.targets[0]
	if name == "master" {
		return a.Context(0), nil
	}
	if id, err := strconv.ParseUint(name, 10, 32); err == nil {
		return a.Context(int(id)), nil
	}
	routes, err := actors.Contexts(ctx, a.Parent())
	if err != nil {
		return nil, fmt.Errorf("finding context %q: listing the listener's contexts: %w (give an id, or let the listener allow %s)", name, err, actors.ContextsFunction)
	}
	for _, ri := range routes {
		if ri.Name == name {
			return a.Context(ri.ID), nil
		}
	}
	return nil, fmt.Errorf("no context named %q below the listener (see mitogo attach --socket %s contexts)", name, o.attach.socket)
}

func printContexts(ctx context.Context, e *env, a *actors.Router) error {
	routes, err := actors.Contexts(ctx, a.Parent())
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "ID\tNAME\tVIA\n")
	fmt.Fprintf(tw, "%d\t%s\t(the listener)\n", a.ParentID(), listenerName(a))
	for _, ri := range routes {
		via := ri.ViaName
		if ri.Via == ri.ID {
			via = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\n", ri.ID, ri.Name, via)
	}
	return tw.Flush()
}

// listenerName is the listener's full name: the attached router's name
// without its last element.
func listenerName(a *actors.Router) string {
	if i := strings.LastIndex(a.Name(), "/"); i >= 0 {
		return a.Name()[:i]
	}
	return "master"
}
