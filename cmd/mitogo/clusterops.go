package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/mitogo/mitogo/cluster"
)

var clusterCommand = &command{
	name:    "cluster",
	summary: "operate a cluster: status, drain, resume, rebalance",
	usage:   "status [--json] | drain MEMBER | resume MEMBER | rebalance [--batch N]",
	help: `status     prints the cluster's members (build, hosts driven, takeovers, draining),
           the hosts per owner, every host's lease (owner, epoch, age, last
           renewal, ready or connecting), the hosts whose last connect failed
           (when, by which member, and why), the last failover (which host
           moved from which member to which, when) and the last move of any
           kind.
drain      makes MEMBER hand all its hosts over to the other members on
           purpose: each host first refuses new calls (they fail with "no
           longer owns the host": they did not run), its calls in flight finish
           (those still running after --grace are cancelled and fail to their
           callers), then its context is shut down and its lease released, and
           the others claim and reconnect it. No call runs on two controllers.
           It prints where each host went, and fails when one was not held
           by another member within --settle; the member stays in the cluster
           owning nothing (e.g. to be upgraded and restarted) until it stops
           or 'resume'. It refuses to drain the last active member (no other
           would take its hosts) unless --force.
resume     ends MEMBER's drain: it claims hosts that have no owner again.

A member must acknowledge a drain, resume or rebalance request within
--answer (30s); one that does not (stopped, frozen, cut off from NATS) is
named in the error, and ignores the request if it gets it later: the
request carries its deadline.
rebalance  moves hosts from members that own more than their share to those
           that own less, each to its preferred member (the hash that places
           hosts at start), --batch hosts at a time, each batch held again
           before the next: a member that joined gets a share without a
           reconnect storm. Members never take a host that has an owner on
           their own (ownership is sticky): a member that joins gets hosts
           only when they have no owner (a failover, a drain, an inventory
           change) or from a rebalance.

Members on different builds work together as long as they speak the same
cluster protocol (status shows each member's build and protocol); a
controller of another protocol refuses to join, naming the member it
disagrees with.

Examples:
  mitogo cluster status --cluster ops
  mitogo cluster drain --cluster ops a
  mitogo cluster rebalance --cluster ops --batch 2
` + natsEnvHelp,
	flags: clusterFlags,
	run:   clusterMain,
}

func clusterFlags(fs *flag.FlagSet, e *env, o *options) {
	o.nats.flags(fs, "the NATS server URLs, comma-separated (default nats://127.0.0.1:4222)")
	fs.BoolVar(&o.json, "json", false, "print JSON")
	fs.DurationVar(&o.nats.handover.Grace, "grace", 30*time.Second, "drain, rebalance: how long calls in flight on a host being handed over may run on")
	fs.DurationVar(&o.nats.handover.Settle, "settle", 30*time.Second, "drain, rebalance: how long to wait for other members to hold a released host")
	fs.IntVar(&o.nats.handover.Batch, "batch", 4, "rebalance: hosts moved at a time")
	fs.BoolVar(&o.nats.handover.Force, "force", false, "drain: drain the member even when no other active member would take its hosts")
	fs.DurationVar(&o.nats.handover.Answer, "answer", 30*time.Second, "drain, resume, rebalance: how long a member has to acknowledge the request; one that gets it later (stopped, frozen, cut off from NATS) ignores it")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "give up after this long")
}

func clusterMain(ctx context.Context, e *env, o *options, args []string) error {
	if len(args) == 0 {
		return usagef("want: mitogo cluster status|drain MEMBER|resume MEMBER|rebalance")
	}
	sub, rest := args[0], args[1:]
	if len(rest) > 0 { // flags after the subcommand, over those before it
		var scratch options
		fs := flag.NewFlagSet("cluster "+sub, flag.ContinueOnError)
		fs.SetOutput(io.Discard) // the error is printed once, on one line, as usage errors are
		clusterFlags(fs, e, &scratch)
		if err := fs.Parse(rest); err != nil {
			return usagef("%v", err)
		}
		if err := checkDurations(fs); err != nil {
			return err
		}
		rest = fs.Args()
		before := *o
		into := flag.NewFlagSet("cluster", flag.ContinueOnError)
		clusterFlags(into, e, o) // resets o's flags to their defaults...
		*o = before              // ...so put back those given before the subcommand
		var err error
		fs.Visit(func(f *flag.Flag) {
			err = cmpErr(err, into.Set(f.Name, f.Value.String()))
		})
		if err != nil {
			return usagef("%v", err)
		}
	}
	wantArgs := 0
	if sub == "drain" || sub == "resume" {
		wantArgs = 1
	}
	switch sub {
	case "status", "drain", "resume", "rebalance":
	default:
		return usagef("unknown cluster subcommand %q: want status, drain, resume or rebalance", sub)
	}
	if len(rest) != wantArgs {
		return usagef("cluster %s takes %d argument(s), got %q", sub, wantArgs, rest)
	}
	o.nats.url = cmpOr(o.nats.url, defaultNATS)
	cl, err := o.nats.dial()
	if err != nil {
		return err
	}
	defer cl.Close()
	if o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.timeout)
		defer cancel()
	}
	switch sub {
	case "drain":
		moves, err := cl.Drain(ctx, rest[0], o.nats.handover)
		if errors.Is(err, cluster.ErrLastMember) {
			return fmt.Errorf("%w (--force drains it anyway, leaving its hosts without a controller)", err)
		}
		printMoves(e, o, moves)
		if err != nil {
			return err
		}
		for _, mv := range moves {
			if mv.To == "" {
				return fmt.Errorf("drain of %s: host %s was released but no other member held it within --settle %v", rest[0], mv.Host, o.nats.handover.Settle)
			}
		}
		return nil
	case "resume":
		if a := o.nats.handover.Answer; a > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, a)
			defer cancel()
		}
		return cl.Resume(ctx, rest[0])
	case "rebalance":
		moves, err := cl.Rebalance(ctx, o.nats.handover)
		printMoves(e, o, moves)
		return err
	}
	st, err := cl.Status(ctx)
	if err != nil {
		return err
	}
	if o.json {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	printStatus(e, st, time.Now())
	return nil
}

// printMoves prints the hosts a drain or rebalance moved, one a line.
func printMoves(e *env, o *options, moves []cluster.Move) {
	if o.json {
		enc := json.NewEncoder(e.stdout)
		for _, mv := range moves {
			enc.Encode(mv)
		}
		return
	}
	for _, mv := range moves {
		to := mv.To
		if to == "" {
			to = "(no member took it yet)"
		}
		fmt.Fprintf(e.stdout, "%s: %s -> %s\n", mv.Host, mv.From, to)
	}
	if len(moves) == 0 {
		fmt.Fprintln(e.stdout, "no host moved")
	}
}

func printStatus(e *env, st *cluster.Status, now time.Time) {
	age := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return now.Sub(t).Round(100*time.Millisecond).String() + " ago"
	}
	perOwner := map[string]int{}
	for _, l := range st.Leases {
		perOwner[l.Owner]++
	}
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "cluster %s: %s, %s\n", st.Cluster, plural(len(st.Members), "member"), plural(len(st.Leases), "lease"))
	builds := map[string]bool{}
	for _, m := range st.Members {
		builds[fmt.Sprintf("%d %s", m.Version, m.Build)] = true
	}
	if len(builds) > 1 {
		fmt.Fprintf(w, "members run %d different builds\n", len(builds))
	}
	fmt.Fprintf(w, "\nMEMBER\tHOST\tPID\tLEASES\tDRIVES\tTAKEOVERS\tSTATE\tUP\tBUILD (PROTOCOL)\n")
	for _, m := range st.Members {
		state := "active"
		if m.Draining {
			state = "draining"
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s (%d)\n", m.ID, m.Hostname, m.PID, perOwner[m.ID], m.Hosts, m.Takeovers, state, age(m.Started), m.Build, m.Version)
	}
	var gone []string
	for o := range perOwner {
		if !hasMember(st, o) {
			gone = append(gone, o)
		}
	}
	sort.Strings(gone)
	for _, o := range gone {
		fmt.Fprintf(w, "%s\t(not a live member)\t\t%d\t\t\t\t\t\n", o, perOwner[o])
	}
	move := func(what string, mv *cluster.Move) {
		if mv == nil {
			fmt.Fprintf(w, "%s: none\n", what)
			return
		}
		fmt.Fprintf(w, "%s: host %s from %s to %s (%s), %s (%s)\n", what, mv.Host, mv.From, mv.To, mv.Why, mv.At.Format(time.RFC3339), age(mv.At))
	}
	fmt.Fprintln(w)
	move("last failover", st.LastFailover)
	move("last move", st.LastMove)
	fmt.Fprintf(w, "\nHOST\tOWNER\tEPOCH\tAGE\tRENEWED\tSTATE\n")
	for _, l := range st.Leases {
		state := "connecting"
		if l.Ready {
			state = "ready"
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\n", l.Host, l.Owner, l.Epoch, age(l.Since), age(l.Renewed), state)
	}
	if len(st.ConnectErrors) > 0 {
		fmt.Fprintf(w, "\nHOST\tLAST CONNECT FAILED\tBY\tERROR\n")
		for _, ce := range st.ConnectErrors {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", ce.Host, age(ce.At), ce.Member, ce.Error)
		}
	}
	w.Flush()
}

func hasMember(st *cluster.Status, id string) bool {
	for _, m := range st.Members {
		if m.ID == id {
			return true
		}
	}
	return false
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
