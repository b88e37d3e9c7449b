package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mitogo/mitogo/actors"
	"github.com/mitogo/mitogo/builtins"
	"github.com/mitogo/mitogo/cluster"
	"github.com/mitogo/mitogo/messages"
	"github.com/vmihailenco/msgpack/v5"
)

// clusterJob is the work done on one host of a cluster, through its
// owner: it writes the output to out and returns the remote exit status
// (0 for a call that succeeded).
type clusterJob func(ctx context.Context, cl *cluster.Client, host string, out *targetOutput) (int, error)

// clusterFleet is runFleet through a cluster: it does the job on every
// host -t names, at most --forks at once, with the same output modes,
// summary and exit statuses as runFleet (see exitFor; a host without an
// owner, or whose owner went away, counts as unreachable).
func clusterFleet(ctx context.Context, e *env, o *options, do clusterJob) error {
	hosts, err := clusterTargets(o)
	if err != nil {
		return err
	}
	if err := checkFleetFlags(o); err != nil {
		return err
	}
	if o.fleet.retryFile != "" {
		return usagef("--retry-file makes an inventory, which --nats does not take: without --nats, use -i with it")
	}
	ts := make([]*target, len(hosts))
	for i, h := range hosts {
		ts[i] = &target{name: h}
	}
	tok, err := o.nats.token()
	if err != nil {
		return err
	}
	cl, err := cluster.Dial(o.nats.url, tok, o.nats.cluster)
	if errors.Is(err, cluster.ErrConfig) {
		return err
	}
	if err != nil {
		// NATS could not be reached or refused the token: no host could
		// be, and each says so, as a target that could not be connected.
		err = o.nats.refused(err)
		return fanOut(ctx, e, o, ts, func(ctx, runCtx context.Context, i int, out *targetOutput) outcome {
			return outcome{t: ts[i], state: stateUnreachable, exit: exitUnreachable, err: err, began: true}
		}, nil)
	}
	defer cl.Close()
	return fanOut(ctx, e, o, ts, func(ctx, runCtx context.Context, i int, out *targetOutput) outcome {
		return clusterOne(ctx, runCtx, o.timeout, cl, ts[i], out, do)
	}, nil)
}

// clusterOne does the job on one host and says how it ended, as runOne
// does for a target it connects itself (timeout is --timeout).
func clusterOne(ctx, runCtx context.Context, timeout time.Duration, cl *cluster.Client, t *target, out *targetOutput, do clusterJob) (res outcome) {
	res.t = t
	if res.endedByRun(ctx, runCtx, timeout, phaseBefore, nil) {
		return res
	}
	res.began, res.started = true, true
	start := time.Now()
	defer func() { res.dur = time.Since(start) }()
	exit, err := do(runCtx, cl, t.name, out)
	switch {
	case err == nil && exit == 0:
		res.state = stateOK
	case err == nil:
		res.state, res.exit = stateFailed, exit
	case errors.Is(err, builtins.ErrCommandNotFound), errors.Is(err, actors.ErrUnknownFunction):
		res.state, res.exit, res.err = stateNotFound, exitNotFound, err
	case res.endedByRun(ctx, runCtx, timeout, phaseRunning, err):
	case errors.Is(err, cluster.ErrNoOwner), errors.Is(err, cluster.ErrNotOwner), errors.Is(err, cluster.ErrFenced),
		errors.Is(err, cluster.ErrUnavailable), errors.Is(err, cluster.ErrOutcomeUnknown):
		res.state, res.exit, res.err = stateUnreachable, exitUnreachable, err
	default:
		res.state, res.exit, res.err = stateFailed, exitError, err
	}
	return res
}

// clusterRun is run --nats: the command runs on each host through its
// owner, its output streamed back as it is written.
func clusterRun(ctx context.Context, e *env, o *options, argv []string) error {
	hosts, err := clusterTargets(o)
	if err != nil {
		return err
	}
	stdin, err := stdinFor(e, o, len(hosts))
	if err != nil {
		return err
	}
	return clusterFleet(ctx, e, o, func(ctx context.Context, cl *cluster.Client, host string, out *targetOutput) (int, error) {
		return cl.Run(ctx, host, builtins.RunRequest{Argv: argv}, stdin(), out.stdout, out.stderr)
	})
}

// clusterCall is call --nats: each host's result printed as call prints
// it.
func clusterCall(ctx context.Context, e *env, o *options, fn string, args any) error {
	payload, err := msgpack.Marshal(args)
	if err != nil {
		return fmt.Errorf("encoding the arguments of %s: %w", fn, err)
	}
	return clusterFleet(ctx, e, o, func(ctx context.Context, cl *cluster.Client, host string, out *targetOutput) (int, error) {
		b, err := cl.Call(ctx, host, fn, payload)
		if err != nil {
			return 0, err
		}
		var v any
		if err := messages.Unmarshal(b, &v); err != nil {
			return 0, fmt.Errorf("%s: decoding the result of %s: %w", host, fn, err)
		}
		return 0, out.result(jsonable(v))
	})
}
