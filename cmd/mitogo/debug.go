package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/mitogo/mitogo/actors"
)

var debugCommand = &command{
	name:    "debug",
	summary: "show a context's goroutines, table, streams and calls; take CPU and heap profiles",
	usage:   "[-t CHAIN | --socket PATH [-t CONTEXT]] [--goroutines] [--table] [--streams] [--calls] [--heap FILE] [--cpu FILE [--cpu-time D]] [--json]",
	help: `Asks one context for what explains its state, without restarting it:
its goroutines' stacks (a context whose functions are stuck answers too),
its routing table, its streams with their frame and byte counters, the
calls in flight both ways with their age, and CPU and heap profiles in
pprof format (for 'go tool pprof FILE'). Without a part flag it prints the
goroutines, table, streams and calls.

The context is the end of -t CHAIN, started for the occasion as by 'mitogo
run', or, with --socket, a context of a running program's tree that
mitogo attaches to (see 'mitogo attach'): -t then names it by id or full
name (default: the listener). Dumps and profiles can hold secrets: the
listener must allow mitogo.debug (ListenAllow for itself,
ListenDescendants below it), and a context refuses it from below unless
allowed upward.

Examples:
  mitogo debug --socket /run/user/1000/app/mitogo.sock -t ssh:web1 --goroutines
  mitogo debug --socket /run/user/1000/app/mitogo.sock --cpu cpu.pb.gz --cpu-time 10s
  mitogo debug -t local,local --json --table --streams
`,
	flags: func(fs *flag.FlagSet, e *env, o *options) {
		o.connectFlags(fs, e, false)
		fs.StringVar(&o.attach.socket, "socket", "", "attach to the tree listening at this Unix socket `PATH`; -t names a context of it")
		fs.BoolVar(&o.attach.goroutines, "goroutines", false, "print every goroutine's stack")
		fs.BoolVar(&o.attach.table, "table", false, "print the routing table")
		fs.BoolVar(&o.attach.streams, "streams", false, "print the streams and their counters")
		fs.BoolVar(&o.attach.calls, "calls", false, "print the calls in flight")
		fs.StringVar(&o.attach.heap, "heap", "", "write a heap profile (pprof) to `FILE`")
		fs.StringVar(&o.attach.cpu, "cpu", "", "write a CPU profile (pprof) of --cpu-time to `FILE`")
		fs.DurationVar(&o.attach.cpuTime, "cpu-time", 5*time.Second, "how long the CPU profile runs")
		fs.BoolVar(&o.attach.json, "json", false, "print the report as JSON (profiles still go to their files)")
	},
	run: debugMain,
}

func debugMain(ctx context.Context, e *env, o *options, args []string) error {
	if len(args) > 0 {
		return usagef("unexpected argument %q", args[0])
	}
	f := &o.attach
	req := actors.DebugRequest{Goroutines: f.goroutines, Table: f.table, Streams: f.streams, Calls: f.calls, Heap: f.heap != ""}
	if f.cpu != "" {
		if f.cpuTime <= 0 {
			return usagef("--cpu-time %v: want a positive duration", f.cpuTime)
		}
		req.CPU = f.cpuTime
	}
	if req == (actors.DebugRequest{}) {
		req.Goroutines, req.Table, req.Streams, req.Calls = true, true, true, true
	}
	var target *actors.Context
	if f.socket != "" {
		a, err := attach(ctx, e, o)
		if err != nil {
			return err
		}
		defer leave(a)
		if target, err = attachedTarget(ctx, a, o); err != nil {
			return err
		}
	} else {
		s, err := connect(ctx, e, o)
		if err != nil {
			return err
		}
		defer s.close()
		target = s.target
	}
	dctx, cancel := context.WithTimeout(ctx, req.CPU+time.Minute)
	defer cancel()
	rep, err := actors.Debug(dctx, target, req)
	if err != nil {
		return err
	}
	for _, p := range []struct {
		file string
		b    []byte
	}{{f.heap, rep.Heap}, {f.cpu, rep.CPU}} {
		if p.file == "" {
			continue
		}
		if err := os.WriteFile(p.file, p.b, 0o600); err != nil {
			return fmt.Errorf("writing the profile: %w", err)
		}
	}
	if f.json {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return fmt.Errorf("printing the report: %w", err)
		}
		fmt.Fprintf(e.stdout, "%s\n", b)
		return nil
	}
	printReport(e.stdout, rep, req)
	return nil
}

// printReport prints a debug report for people.
func printReport(w io.Writer, rep *actors.DebugReport, req actors.DebugRequest) {
	fmt.Fprintf(w, "context %s (id %d", rep.Context, rep.ID)
	if !rep.Master {
		fmt.Fprintf(w, ", parent %d", rep.ParentID)
	}
	fmt.Fprintf(w, "), pid %d, %s %s, %d goroutines\n", rep.PID, rep.GoVersion, rep.Platform, rep.NumGo)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if req.Table {
		fmt.Fprintf(tw, "\nroutes (others go to the parent):\n  ID\tNAME\tVIA\n")
		for _, r := range rep.Routes {
			fmt.Fprintf(tw, "  %d\t%s\t%d %s\n", r.ID, r.Name, r.Via, r.ViaName)
		}
	}
	if req.Streams {
		fmt.Fprintf(tw, "\nstreams:\n  PEER\tNAME\tKIND\tFRAMES IN\tBYTES IN\tFRAMES OUT\tBYTES OUT\tWAITING\n")
		for _, s := range rep.Streams {
			kind := "child"
			switch {
			case s.Up:
				kind = "parent"
			case s.Attached:
				kind = "attached"
			}
			if s.Heartbeat {
				kind += "+heartbeat"
			}
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%d\t%d\t%d\t%d\t%d\n", s.Peer, s.Name, kind, s.FramesIn, s.BytesIn, s.FramesOut, s.BytesOut, s.Waiting)
		}
	}
	if req.Calls {
		fmt.Fprintf(tw, "\ncalls in flight:\n  DIR\tFUNCTION\tCONTEXT\tAGE\n")
		for _, c := range rep.Calls {
			dir := "out to"
			if c.Dir == "in" {
				dir = "in from"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%d %s\t%v\n", dir, c.Function, c.Context, c.Name, c.Age.Round(time.Millisecond))
		}
	}
	tw.Flush()
	if rep.Goroutines != "" {
		fmt.Fprintf(w, "\ngoroutines:\n%s", rep.Goroutines)
	}
}
