package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/mitogo/mitogo/builtins"
)

var listCommand = &command{
	name:    "list",
	aliases: []string{"functions"},
	summary: "list the built-in functions 'mitogo call' can call",
	usage:   "[-l]",
	help: `Lists the functions built into mitogo, one line each. With -l, also their
arguments and an example call.

Example:
  mitogo list -l
`,
	flags: func(fs *flag.FlagSet, e *env, o *options) {
		fs.BoolVar(&o.long, "l", false, "show each function's arguments and an example")
	},
	run: listMain,
}

func listMain(ctx context.Context, e *env, o *options, args []string) error {
	if len(args) > 0 {
		return usagef("unexpected argument %q", args[0])
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	for _, entry := range builtins.Catalog() {
		fmt.Fprintf(tw, "%s\t%s\n", entry.Name, entry.Summary)
		if o.long {
			args := strings.Join(entry.Args, ", ")
			if args == "" {
				args = "(none)"
			}
			fmt.Fprintf(tw, "\targuments: %s\n", args)
			fmt.Fprintf(tw, "\texample: mitogo call %s '%s'\n", entry.Name, entry.Example)
		}
	}
	return tw.Flush()
}
