package actors

import (
	"context"
	"time"

	"github.com/mitogo/mitogo/messages"
)

// Test hooks, compiled into the test binary only (which is also the child
// the tests start): they make a child misbehave on its parent stream.

// RawFrame writes body as one frame straight onto the child's parent stream.
var RawFrame = Register("test.rawframe", func(ctx context.Context, body []byte) (bool, error) {
	r := RouterFrom(ctx)
	return true, r.parent.s.Forward(body)
})

// RawLength writes a bare 4-byte length prefix announcing n bytes.
var RawLength = Register("test.rawlength", func(ctx context.Context, n uint32) (bool, error) {
	r := RouterFrom(ctx)
	return true, r.parent.s.WriteRaw(messages.AppendFrameHeader(nil, int(n)))
})

// ForgedCall sends a call envelope claiming to come from context src.
var ForgedCall = Register("test.forge", func(ctx context.Context, src uint32) (bool, error) {
	r := RouterFrom(ctx)
	h := messages.Header{Kind: messages.KindCall, Dst: 0, Src: src, ReqID: 1, Target: "test.echo", Flags: messages.FlagNoReply}
	payload, _ := encode("forged")
	return true, r.parent.s.Send(&h, payload)
})

// EncodeEnvelope builds an envelope body, for tests that write raw frames.
func EncodeEnvelope(h messages.Header, payload []byte) []byte {
	return append(messages.AppendHeader(nil, &h), payload...)
}

// LogAs sends a log record naming the context name, whatever this one is,
// and one naming it in a "context" attribute, as slog.Info(msg, "context",
// name) would.
var LogAs = Register("test.logas", func(ctx context.Context, name string) (bool, error) {
	r := RouterFrom(ctx)
	r.emit(&messages.LogRecord{Level: 0, Message: "record claiming " + name, Context: name})
	r.logger.Info("attribute claiming "+name, "context", name)
	return true, nil
})

// ForgeRefusals sends "refused" error replies to context dst for request
// ids 1..n, as a router on the way would refuse a call.
var ForgeRefusals = Register("test.forgeRefusals", func(ctx context.Context, n uint64) (bool, error) {
	r := RouterFrom(ctx)
	payload, _ := encode(&messages.RemoteError{Code: messages.CodeRefused, Type: "mitogo.Refused", Message: "forged refusal"})
	for id := uint64(1); id <= n; id++ {
		h := messages.Header{Kind: messages.KindReply, Flags: messages.FlagError, Dst: 0, Src: r.id, ReqID: id}
		if err := r.send(&h, payload); err != nil {
			return false, err
		}
	}
	return true, nil
})

// ClaimRoute announces to the parent a new context, with an id the master
// hands out, under the given name.
var ClaimRoute = Register("test.claimRoute", func(ctx context.Context, name string) (bool, error) {
	r := RouterFrom(ctx)
	id, err := r.allocateID(ctx, r.id)
	if err != nil {
		return false, err
	}
	payload, _ := encode(&messages.Routes{IDs: []uint32{id}, Names: []string{name}})
	return true, r.parent.s.Send(&messages.Header{Kind: messages.KindControl, Dst: r.parentID, Src: r.id, Type: messages.ControlAddRoute}, payload)
})

// LastRequestID is the id of the last call r made.
func LastRequestID(r *Router) uint64 { return r.pending.next.Load() }

// SetReapGrace sets how long the processes left in a reaped child's
// session get between SIGTERM and SIGKILL; call it before any connect.
func SetReapGrace(r *Router, d time.Duration) { r.reapGrace = d }

// WatchCounts is the number of watches r's actors hold on actors in other
// contexts, and of proxies in r watching local actors for other contexts.
func WatchCounts(r *Router) (watching, proxies int) { return r.watches.count() }

// ChildWatchCounts is WatchCounts of the context it runs in.
var ChildWatchCounts = Register("test.watchCounts", func(ctx context.Context, _ struct{}) ([2]int, error) {
	w, p := RouterFrom(ctx).watches.count()
	return [2]int{w, p}, nil
})

// SystemBuilt reports whether r has built its actor system (and with it
// the router actor and the broker).
func SystemBuilt(r *Router) bool { return r.sysBuilt.Load() }
