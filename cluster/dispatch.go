package cluster

import (
	"cmp"
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
	_, tok, code, err := hr.dispatchable()
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
	if req.Stream != nil {
		hr.acceptRun(m.Reply, &req, tok) // counts the run out (finish) as it ends
		return
	}
	hr.respond(m.Reply, reply{Kind: replyAccept, Epoch: tok.Epoch, Gen: tok.Gen})
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

	ctx, cancel := callContext(hr.callCtx, req)
	defer cancel()
	hctx, tok, code, msg := hr.ready(ctx)
	if code != "" {
		fail(code, msg)
		return
	}

	stopBeats := hr.beat(to, nil)
	res, err := runFenced.Call(ctx, hctx, runArgs{fenceArgs: fenceArgs{Cluster: c.cfg.Cluster, Host: hr.host.Name, fenceToken: tok}, Fn: req.Fn, Args: req.Args})
	stopBeats()
	switch {
	case (err != nil || res.Code == codeCall) && hr.cutShort(ctx, hctx, err):
		fail(codeUnknown, cmp.Or(res.Msg, fmt.Sprint(err)))
	case err != nil:
		fail(codeCall, err.Error())
	case res.Code != "":
		fail(res.Code, res.Msg)
	default:
		final.Result = res.Result
	}
}

// cutShort reports whether a call that failed (with err, nil when the
// function returned an error) may have been cut short by the end or
// shutdown of the host's context, its runner's (a lease lost, a
// handover's grace ran out), the controller's, or its own context's
// (ctx: its deadline passed), rather than failed on its own: its outcome
// is unknown then.
func (hr *hostRun) cutShort(ctx context.Context, hctx *actors.Context, err error) bool {
	var ce *actors.ChannelError
	return errors.As(err, &ce) || errors.Is(err, actors.ErrShutdown) || !hr.active() || hctx.Err() != nil ||
		ctx.Err() != nil || hr.c.ctx.Err() != nil
}

// callContext is an accepted call's context: it ends at the caller's
// deadline, or when parent does. A call whose deadline has passed is
// refused by ready.
func callContext(parent context.Context, req *request) (context.Context, context.CancelFunc) {
	if req.Deadline == 0 {
		return context.WithCancel(parent)
	}
	return context.WithDeadline(parent, time.Unix(0, req.Deadline))
}

// ready returns the host's context and the lease's token when an
// accepted call may start now, else the code and message of its refusal.
func (hr *hostRun) ready(ctx context.Context) (*actors.Context, fenceToken, string, string) {
	switch {
	case hr.c.ctx.Err() != nil:
		return nil, fenceToken{}, codeNotOwner, "controller " + hr.c.id + " is leaving"
	case ctx.Err() != nil:
		return nil, fenceToken{}, codeExpired, ""
	}
	hctx, tok, code, err := hr.dispatchable()
	if err != nil {
		return nil, fenceToken{}, code, err.Error()
	}
	if code, msg := hr.leaseHeld(ctx, tok); code != "" {
		return nil, fenceToken{}, code, msg
	}
	return hctx, tok, "", ""
}

// leaseHeld is fencing on this side: the lease in the bucket must still be
// the one this runner holds, with its token. It returns the code and
// message of a refusal, "" when the lease is held.
func (hr *hostRun) leaseHeld(ctx context.Context, tok fenceToken) (code, msg string) {
	c := hr.c
	e, err := c.leases.Get(ctx, token(hr.host.Name))
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return codeNotOwner, "the lease of host " + hr.host.Name + " lapsed"
		}
		return codeNotOwner, "checking the lease: " + err.Error()
	}
	var l lease
	if err := jsonUnmarshal(e.Value(), &l); err != nil || l.Owner != c.id || l.token() != tok {
		return codeNotOwner, fmt.Sprintf("host %s is now held by %s (epoch %v)", hr.host.Name, l.Owner, l.token())
	}
	return "", ""
}

// respond sends one reply message to a caller; a lost one shows up on the
// caller's side as silence.
// beat tells the caller at to, every beatInterval, that its call goes on,
// after running check (nil for none) at each tick; the returned stop ends
// the beats and waits for them, before the final reply is sent.
func (hr *hostRun) beat(to string, check func()) (stop func()) {
	done := make(chan struct{})
	beats := make(chan struct{})
	go func() { // joined by stop
		defer close(beats)
		t := time.NewTicker(beatInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			if check != nil {
				check()
			}
			hr.respond(to, reply{Kind: replyBeat})
		}
	}()
	return func() {
		close(done)
		<-beats
	}
}

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
