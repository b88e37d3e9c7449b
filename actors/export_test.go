package actors

import (
	"context"

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
