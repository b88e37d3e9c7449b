package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mitogo/mitogo/actors"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/vmihailenco/msgpack/v5"
)

// onRequest takes a call to the host: it accepts it at once, so that the
// caller knows which controller has it, and serves it in a goroutine of
// its own (NATS delivers one subscription's messages one at a time).
func (hr *hostRun) onRequest(m *nats.Msg) {
	c := hr.c
	if m.Reply == "" {
		return
	}
	var req request
	if err := msgpack.Unmarshal(m.Data, &req); err != nil || req.V != ProtocolVersion {
		hr.respond(m.Reply, reply{Kind: replyFinal, Code: codeVersion,
			Msg: fmt.Sprintf("controller %s speaks cluster protocol %d (request: %d)", c.id, ProtocolVersion, req.V)})
		return
	}
	if c.ctx.Err() != nil {
		hr.respond(m.Reply, reply{Kind: replyFinal, Code: codeNotOwner, Msg: "controller " + c.id + " is leaving"})
		return
	}
	// A runner that may have lost the lease stays silent rather than
	// refuse: the host's new owner, subscribed too, answers. (A woken or
	// reconnected controller gets the host's calls until its runner ends;
	// a refusal that reached the caller first would tell it the call did
	// not run while the new owner runs it.)
	_, epoch, code, err := hr.dispatchable()
	if code == codeNotOwner {
		c.log.Debug("call not taken", "host", hr.host.Name, "error", err)
		return
	}
	if !hr.begin() {
		// Being handed over: its lease is still this member's, so no
		// other member runs the call; it did not run here either.
		hr.respond(m.Reply, reply{Kind: replyFinal, Code: codeNotOwner, Msg: "controller " + c.id + " is handing host " + hr.host.Name + " over"})
		return
	}
	hr.respond(m.Reply, reply{Kind: replyAccept, Epoch: epoch})
	c.calls.Go(func() {
		defer hr.finish()
		hr.serve(m.Reply, &req)
	})
}

// serve runs one accepted call and sends its outcome; beats tell the
// caller it still runs.
func (hr *hostRun) serve(to string, req *request) {
	c := hr.c
	final := reply{Kind: replyFinal}
	defer func() { hr.respond(to, final) }()
	fail := func(code, msg string) { final.Code, final.Msg = code, msg }

	ctx, cancel := context.WithCancel(hr.callCtx)
	defer cancel()
	if req.Deadline != 0 {
		dl := time.Unix(0, req.Deadline)
		if time.Now().After(dl) {
			fail(codeExpired, "")
			return
		}
		ctx, cancel = context.WithDeadline(ctx, dl)
		defer cancel()
	}
	hctx, epoch, code, err := hr.dispatchable()
	if err != nil {
		fail(code, err.Error())
		return
	}
	// Fencing on this side: the lease in the bucket must still be the one
	// this runner holds.
	key := token(hr.host.Name)
	e, err := c.leases.Get(ctx, key)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			fail(codeNotOwner, "the lease of host "+hr.host.Name+" lapsed")
		} else {
			fail(codeNotOwner, "checking the lease: "+err.Error())
		}
		return
	}
	var l lease
	if err := jsonUnmarshal(e.Value(), &l); err != nil || l.Owner != c.id || l.Epoch != epoch {
		fail(codeNotOwner, fmt.Sprintf("host %s is now held by %s (epoch %d)", hr.host.Name, l.Owner, l.Epoch))
		return
	}

	done := make(chan struct{})
	beats := make(chan struct{})
	go func() { // joined below before the final reply
		defer close(beats)
		t := time.NewTicker(beatInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				hr.respond(to, reply{Kind: replyBeat})
			}
		}
	}()
	res, err := runFenced.Call(ctx, hctx, runArgs{fenceArgs: fenceArgs{Cluster: c.cfg.Cluster, Host: hr.host.Name, Epoch: epoch}, Fn: req.Fn, Args: req.Args})
	close(done)
	<-beats
	switch {
	case err != nil:
		var ce *actors.ChannelError
		if errors.As(err, &ce) || errors.Is(err, actors.ErrShutdown) || ctx.Err() != nil {
			// The context died or shut down under the call, or the
			// call was cut short here (its runner ended, a handover's
			// grace ran out, its deadline passed): it may have run.
			fail(codeOutcome, err.Error())
			return
		}
		fail(codeCall, err.Error())
	case res.Code != "":
		fail(res.Code, res.Msg)
	default:
		final.Result = res.Result
	}
}

// respond sends one reply message to a caller; a lost one shows up on the
// caller's side as silence.
func (hr *hostRun) respond(to string, r reply) {
	r.Controller = hr.c.id
	b, err := msgpack.Marshal(&r)
	if err == nil {
		err = hr.c.nc.Publish(to, b)
	}
	if err != nil {
		hr.c.log.Debug("reply not sent", "host", hr.host.Name, "error", err)
	}
}
