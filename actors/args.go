package actors

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"

	"github.com/mitogo/mitogo/messages"
	"github.com/vmihailenco/msgpack/v5"
)

// A call's arguments are encoded into an argWriter and decoded from an
// argReader, which tell the values in them where they go and where they
// came from: a typed stream end (stream.go) is bound to the call's target
// as it is encoded and made in the called context as it is decoded, and a
// Channel's address is bound to the call's target (see Channel).

// argWriter is what a call's arguments are encoded into: it tells the
// stream ends and channel addresses in them where they go.
type argWriter struct {
	bytes.Buffer
	r       *Router
	dst     uint32
	dstName string
	noReply bool      // Func.Send: no reply will tell when the call ended
	ends    []*stream // the stream ends passed, bound to dst
}

// encodeArgs encodes a call's arguments for target. It returns the stream
// ends passed in them, to be told when the call ends (callEnded), also
// when it fails. A []byte is sent uncopied (see encodeValue), except
// without a reply (noReply: Func.Send), which returns before it is sent.
func encodeArgs(target *Context, v any, noReply bool) ([][]byte, *argWriter, error) {
	if b, ok := v.([]byte); ok && b != nil && !noReply {
		return [][]byte{messages.AppendBinHeader(nil, len(b)), b}, nil, nil
	}
	w := &argWriter{r: target.r, dst: target.id, dstName: target.label, noReply: noReply}
	enc := msgpack.GetEncoder()
	enc.Reset(w)
	err := enc.Encode(v)
	msgpack.PutEncoder(enc)
	if err != nil {
		return nil, w, err
	}
	return [][]byte{w.Bytes()}, w, nil
}

// callEnded tells the stream ends passed in a call that it ended, with
// err if it failed. By then the far ends have been released (their
// release travels before the reply), unless the function never got them:
// an end that nothing ended yet fails now.
func (w *argWriter) callEnded(err error) {
	if w == nil {
		return
	}
	for _, st := range w.ends {
		ch := st.ch
		ch.mu.Lock()
		if ch.err == nil && !ch.peerClosed {
			reason, cause := "the call it was passed in returned", ErrChannelClosed
			if err != nil {
				reason, cause = "the call it was passed in failed: "+err.Error(), err
			}
			ch.err = &ChannelError{Context: ch.peerName, Reason: reason, Err: cause}
		}
		ch.mu.Unlock()
		wake(ch.recvWake)
		wake(ch.sendWake)
	}
}

// argReader is what a call's arguments are decoded from: stream ends in
// them are made in the router running the call, and ended with it.
type argReader struct {
	*bytes.Reader
	ci *callInfo
}

// decodeArgs decodes a call's arguments into v; ctx is the call's.
func decodeArgs(ctx context.Context, payload []byte, v any) (err error) {
	ci, _ := ctx.Value(callInfoKey{}).(*callInfo)
	if _, isBytes := v.(*[]byte); isBytes || ci == nil {
		return decodeValue(payload, v)
	}
	if _, err := messages.CheckValue(payload); err != nil {
		return err
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("msgpack: decoding into %v failed: %v", reflect.TypeOf(v), p)
		}
	}()
	dec := msgpack.GetDecoder()
	dec.Reset(&argReader{Reader: bytes.NewReader(payload), ci: ci})
	err = dec.Decode(v)
	msgpack.PutDecoder(dec)
	return err
}

// errPanicked is the error of a function that panicked, for endStreams.
var errPanicked = errors.New("the function panicked")

// endStreams ends the stream ends a call's function was passed, as it
// returns with err: a sender is closed if the function succeeded, and
// every end is released, so that the caller's end learns it at once.
func (ci *callInfo) endStreams(err error) {
	var cause error
	if ci.r.stopping.Err() != nil {
		cause = ErrShutdown
	}
	for _, st := range ci.ends {
		if err == nil && cause == nil && st.dir == dirSender {
			_ = st.ch.Close()
		}
		st.ch.release(cause)
	}
	ci.ends = nil
}

// EncodeMsgpack writes the address as a map of its fields. In a call's
// arguments, the address of a channel end of the calling router that is
// not connected yet binds that end to the call's target: the end fails if
// the target is lost before anyone there sends to it.
func (a ChannelAddr) EncodeMsgpack(enc *msgpack.Encoder) error {
	if w, ok := enc.Writer().(*argWriter); ok && a.Context == w.r.id {
		if ch := w.r.channel(a.ID); ch != nil {
			ch.bindTo(w.dst)
		}
	}
	if err := enc.EncodeMapLen(2); err != nil {
		return err
	}
	if err := enc.EncodeString("context"); err != nil {
		return err
	}
	if err := enc.EncodeUint(uint64(a.Context)); err != nil {
		return err
	}
	if err := enc.EncodeString("id"); err != nil {
		return err
	}
	return enc.EncodeString(a.ID)
}
