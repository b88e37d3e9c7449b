package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/mitogo/mitogo/actors"
	"github.com/mitogo/mitogo/builtins"
)

var callCommand = &command{
	name:    "call",
	summary: "call a registered function in one context or many; print its JSON result",
	usage:   "[-t TARGET]... [-i INVENTORY] [--timeout D] FUNCTION [JSON-ARGS | -]",
	help: `Calls FUNCTION in the context at the end of each TARGET (default: one local
child) with JSON-ARGS (default: none, the function's zero argument; "-":
read them from stdin) and prints the result as indented JSON; with many
targets, one line of JSON per target prefixed with its name (or --group,
--json). The function decodes the arguments into its own type by field
name, as its msgpack tags spell them; 'mitogo list -l' shows the built-in
functions' arguments. A function that returns an error exits 1. A name
mitogo has no function for (exit 127), and a built-in's argument that is
unknown or of the wrong type (exit 2), are refused before connecting.

Byte fields take a string; in results, bytes print as a string when they are
UTF-8, as base64 otherwise. Durations take a string such as "10s", file
modes an octal string such as "0644".
` + fleetHelp + clusterTargetHelp + `
Examples:
  mitogo call sys.facts
  mitogo call file.stat '{"path":"/etc/hostname"}'
  mitogo call -t local,local proc.exec '{"argv":["id","-un"],"timeout":"5s"}'
  mitogo call -i hosts.txt -t @web --json sys.facts | jq -r '.result.hostname // empty'
`,
	flags: func(fs *flag.FlagSet, e *env, o *options) {
		o.connectFlags(fs, e, true)
		o.fleetFlags(fs)
		o.nats.flags(fs, "call on the hosts of a cluster, through its controllers: -t names their inventory hosts")
	},
	run: callMain,
}

func callMain(ctx context.Context, e *env, o *options, rest []string) error {
	var err error
	switch {
	case len(rest) == 0:
		return usagef("no function given; mitogo list shows them")
	case len(rest) > 2:
		return usagef("too many arguments: give the function's arguments as one JSON value, e.g. '{\"path\":\"/etc/hostname\"}'")
	}
	name := rest[0]
	if !actors.Registered(name) {
		// Every context runs this program: none has the function.
		fmt.Fprintf(e.stderr, "mitogo: no function %q in mitogo (mitogo list shows its functions)\n", name)
		return exitStatus(exitNotFound)
	}
	var fnArgs any
	if len(rest) == 2 {
		text := []byte(rest[1])
		if rest[1] == "-" {
			if text, err = io.ReadAll(e.stdin); err != nil {
				return fmt.Errorf("reading the arguments from stdin: %w", err)
			}
		}
		if fnArgs, err = parseJSON(text); err != nil {
			return usagef("arguments of %s: %v", name, err)
		}
		if err := checkArgs(name, fnArgs); err != nil {
			return err
		}
	}
	if o.nats.use() {
		return clusterCall(ctx, e, o, name, fnArgs)
	}
	ts, err := resolveTargets(o.targets, o.fleet.inventory)
	if err != nil {
		return err
	}
	fn := actors.Function[any, any](name)
	return runFleet(ctx, e, o, ts, func(ctx context.Context, r *actors.Router, c *actors.Context, out *targetOutput) (int, error) {
		res, err := fn.Call(ctx, c, fnArgs)
		if err != nil {
			return 0, err
		}
		return 0, out.result(jsonable(res))
	})
}

// parseJSON decodes one JSON value, with integers as int64 so that they
// decode into the far side's integer fields (msgpack does not turn a float
// into an int).
func parseJSON(text []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("bad JSON: %v", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("bad JSON: more than one value")
	}
	return numbers(v), nil
}

func numbers(v any) any {
	switch v := v.(type) {
	case json.Number:
		if n, err := v.Int64(); err == nil {
			return n
		}
		f, _ := v.Float64()
		return f
	case map[string]any:
		for k, x := range v {
			v[k] = numbers(x)
		}
	case []any:
		for i, x := range v {
			v[i] = numbers(x)
		}
	}
	return v
}

// checkArgs refuses keys a built-in function's argument does not have:
// the far side would ignore them silently.
func checkArgs(name string, args any) error {
	entry, ok := builtins.Lookup(name)
	if !ok {
		return nil
	}
	m, ok := args.(map[string]any)
	if !ok {
		return usagef("arguments of %s: want a JSON object such as %s", name, entry.Example)
	}
	var unknown []string
	for k := range m {
		if !slices.Contains(entry.Args, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return usagef("%s has no argument %s; its arguments: %s", name, strings.Join(quoteAll(unknown), ", "), strings.Join(entry.Args, ", "))
	}
	var ae *builtins.ArgError
	if err := entry.CheckArgs(m); errors.As(err, &ae) {
		return usagef("%s: argument %q takes %s, not %s; e.g. %s", name, ae.Field, ae.Want, describeJSON(m[ae.Field]), entry.Example)
	}
	return nil
}

// describeJSON is v as JSON, cut to a few dozen characters.
func describeJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	if r := []rune(string(b)); len(r) > 40 {
		return string(r[:39]) + "…"
	}
	return string(b)
}

func quoteAll(s []string) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = fmt.Sprintf("%q", x)
	}
	return out
}

// jsonable turns a decoded msgpack value into one encoding/json prints well:
// bytes become text when they are UTF-8, maps get string keys.
func jsonable(v any) any {
	switch v := v.(type) {
	case []byte:
		if utf8.Valid(v) {
			return string(v)
		}
		return base64.StdEncoding.EncodeToString(v)
	case map[string]any:
		for k, x := range v {
			v[k] = jsonable(x)
		}
		return v
	case map[any]any:
		m := make(map[string]any, len(v))
		for k, x := range v {
			m[fmt.Sprint(k)] = jsonable(x)
		}
		return m
	case []any:
		for i, x := range v {
			v[i] = jsonable(x)
		}
		return v
	}
	return v
}
