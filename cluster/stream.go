package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mitogo/mitogo/builtins"
	"github.com/nats-io/nats.go"
	"github.com/vmihailenco/msgpack/v5"
)

// A streamed run is a command (proc.run) whose output travels back to the
// caller while it runs, and whose stdin the caller may feed.
//
//	caller ── request{Stream} ──────────────▶ host subject (owner)
//	caller ◀── accept{Ctl} ─────────────────  owner: Ctl is the run's own
//	caller ◀── output{Seq, Stream, Data} ───  control subject
//	caller ── ack{Seq}, in{Seq, Data}, ─────▶ Ctl
//	          inEOF, beat, cancel
//	caller ◀── inAck{Seq}, beat ────────────
//	caller ◀── final{Seq: last output} ─────
//
// Both directions are ordered (one publisher, one subscriber) and
// numbered from 1, so that a lost item is seen; and bounded: at most
// streamWindow items are unacknowledged each way, so a slow reader slows
// the command down (its pipe fills) instead of filling memory. A caller
// that goes silent for callerSilentAfter, or sends cancel, has its
// command killed with its process group.

// streamSpec asks for a streamed run: the request's Args are a
// builtins.RunRequest's Argv, Dir and Env.
type streamSpec struct {
	Stdin bool `msgpack:"stdin,omitempty"` // the caller sends stdin; else the command reads /dev/null
}

// control is a message from a streamed run's caller to its owner.
type control struct {
	Kind int    `msgpack:"kind"`
	Seq  uint64 `msgpack:"seq,omitempty"`
	Data []byte `msgpack:"data,omitempty"`
}

// control kinds.
const (
	ctlBeat   = 1 // the caller is still there
	ctlAck    = 2 // output consumed up to Seq
	ctlIn     = 3 // stdin item Seq: Data
	ctlInEOF  = 4 // stdin item Seq: the end of stdin
	ctlCancel = 5 // the caller gave up: kill the command
)

const (
	// streamWindow is how many items may be unacknowledged in each
	// direction; acknowledgements come every ackEvery items.
	streamWindow = 64
	ackEvery     = streamWindow / 4
	// streamChunk is the largest output or stdin item.
	streamChunk = 32 << 10
	// callerSilentAfter without a word from a streamed run's caller and
	// its owner takes it for gone and kills the command.
	callerSilentAfter = 2 * silentAfter
	// cancelGrace bounds how long a caller that gave up waits for the
	// owner to confirm that the command is gone.
	cancelGrace = 5 * time.Second
)

// runStream is the owner's side of one streamed run.
type runStream struct {
	hr     *hostRun
	to     string // the caller's inbox
	cancel context.CancelFunc
	heard  atomic.Int64 // unix ns of the caller's last message

	mu    sync.Mutex
	sent  uint64        // the last output item sent
	acked uint64        // the last output item the caller consumed
	more  chan struct{} // an acknowledgement came
	why   string        // why the run was stopped from this side

	inNext uint64       // the stdin item expected next
	in     chan control // stdin items, at most a window of them
}

// acceptRun takes a streamed run: it subscribes to a control subject of
// the run's own before it names it to the caller in its accept, then
// serves the run.
func (hr *hostRun) acceptRun(to string, req *request, tok fenceToken) {
	c := hr.c
	ctx, cancel := callContext(hr.callCtx, req)
	st := &runStream{hr: hr, to: to, cancel: cancel, more: make(chan struct{}, 1), inNext: 1,
		in: make(chan control, streamWindow)}
	st.heard.Store(time.Now().UnixNano())
	ctl := c.nc.NewInbox()
	sub, err := c.nc.Subscribe(ctl, st.onControl)
	if err != nil {
		cancel()
		hr.finish()
		hr.respond(to, reply{Kind: replyFinal, Code: codeUnavailable, Msg: "subscribing to the run's control subject: " + err.Error()})
		return
	}
	hr.respond(to, reply{Kind: replyAccept, Epoch: tok.Epoch, Gen: tok.Gen, Ctl: ctl})
	c.calls.Go(func() {
		defer hr.finish()
		defer cancel()
		defer sub.Unsubscribe()
		hr.serveRun(ctx, st, req)
	})
}

// serveRun runs the command and sends its output as it comes, then its
// outcome.
func (hr *hostRun) serveRun(ctx context.Context, st *runStream, req *request) {
	c := hr.c
	final := reply{Kind: replyFinal}
	defer func() {
		st.mu.Lock()
		final.Seq = st.sent
		st.mu.Unlock()
		hr.respond(st.to, final)
	}()
	fail := func(code, msg string) { final.Code, final.Msg = code, msg }

	hctx, tok, code, msg := hr.ready(ctx)
	if code != "" {
		fail(code, msg)
		return
	}
	var rr builtins.RunRequest
	if err := msgpack.Unmarshal(req.Args, &rr); err != nil {
		fail(codeCall, "decoding the command: "+err.Error())
		return
	}
	fa := fenceArgs{Cluster: c.cfg.Cluster, Host: hr.host.Name, fenceToken: tok}
	held, err := checkFence.Call(ctx, hctx, fa)
	switch {
	case err != nil:
		fail(codeUnavailable, "checking the host's token: "+err.Error())
		return
	case held != tok:
		fail(codeFenced, fmt.Sprintf("host %s holds epoch %v, the run came with %v", hr.host.Name, held, tok))
		return
	}

	// Beats tell the caller the run goes on; the same loop ends the run
	// when the caller went silent.
	stopBeats := hr.beat(st.to, func() {
		if time.Since(time.Unix(0, st.heard.Load())) > callerSilentAfter {
			st.stop(fmt.Sprintf("the caller was silent for %v", callerSilentAfter))
		}
	})
	var stdin io.Reader
	if req.Stream.Stdin {
		stdin = &runInput{st: st, closed: make(chan struct{})}
	}
	exit, err := builtins.Run(ctx, c.cfg.Router, hctx, builtins.RunRequest{Argv: rr.Argv, Dir: rr.Dir, Env: rr.Env},
		stdin, runOutput{st: st, ctx: ctx, stream: 1}, runOutput{st: st, ctx: ctx, stream: 2})
	stopBeats()
	st.mu.Lock()
	why := st.why
	st.mu.Unlock()
	switch {
	case err == nil:
		final.Result, _ = msgpack.Marshal(builtins.RunResult{ExitCode: exit})
	case errors.Is(err, builtins.ErrCommandNotFound):
		fail(codeNotFound, err.Error())
	case why != "":
		fail(codeCall, "the command was killed: "+why)
	case hr.cutShort(ctx, hctx, err):
		fail(codeUnknown, err.Error())
	default:
		fail(codeCall, err.Error())
	}
}

// stop kills the run's command from this side, saying why.
func (st *runStream) stop(why string) {
	st.mu.Lock()
	if st.why == "" {
		st.why = why
	}
	st.mu.Unlock()
	st.hr.c.log.Debug("streamed run stopped", "host", st.hr.host.Name, "why", why)
	st.cancel()
}

// onControl takes the caller's messages, one at a time in order; it never
// blocks, so that acknowledgements and cancels are never held up.
func (st *runStream) onControl(m *nats.Msg) {
	var ctl control
	if err := msgpack.Unmarshal(m.Data, &ctl); err != nil {
		st.stop("an unreadable control message: " + err.Error())
		return
	}
	st.heard.Store(time.Now().UnixNano())
	switch ctl.Kind {
	case ctlAck:
		st.mu.Lock()
		st.acked = max(st.acked, ctl.Seq)
		st.mu.Unlock()
		select {
		case st.more <- struct{}{}:
		default:
		}
	case ctlIn, ctlInEOF:
		st.mu.Lock()
		next := st.inNext
		st.inNext++
		st.mu.Unlock()
		if ctl.Seq != next {
			st.stop(fmt.Sprintf("stdin item %d came when %d was due", ctl.Seq, next))
			return
		}
		select {
		case st.in <- ctl:
		default:
			st.stop(fmt.Sprintf("stdin item %d overran the window of %d", ctl.Seq, streamWindow))
		}
	case ctlCancel:
		st.stop("the caller cancelled it")
	}
}

// runOutput is one of the command's streams: each write becomes output
// items, sent once the window has room.
type runOutput struct {
	st     *runStream
	ctx    context.Context
	stream int
}

// Write sends b; builtins.Run writes from one goroutine, so the items of
// both streams are numbered in the order they were written.
func (w runOutput) Write(b []byte) (int, error) {
	st := w.st
	for off := 0; off < len(b); {
		n := min(len(b)-off, streamChunk)
		for {
			st.mu.Lock()
			room := st.sent-st.acked < streamWindow
			if room {
				st.sent++
			}
			seq := st.sent
			st.mu.Unlock()
			if room {
				r := reply{Kind: replyOutput, Controller: st.hr.c.id, Seq: seq, Stream: w.stream, Data: b[off : off+n]}
				data, err := msgpack.Marshal(&r)
				if err == nil {
					err = st.hr.c.nc.Publish(st.to, data)
				}
				if err != nil {
					return off, fmt.Errorf("sending output to the caller: %w", err)
				}
				break
			}
			select {
			case <-st.more:
			case <-w.ctx.Done():
				return off, w.ctx.Err()
			}
		}
		off += n
	}
	return len(b), nil
}

// runInput is the command's stdin as the caller sends it. Each item it
// hands on is acknowledged, which lets the caller send one more.
type runInput struct {
	st     *runStream
	buf    []byte
	eof    bool
	closed chan struct{}
	once   sync.Once
}

func (in *runInput) Read(p []byte) (int, error) {
	for len(in.buf) == 0 {
		if in.eof {
			return 0, io.EOF
		}
		select {
		case ctl := <-in.st.in:
			in.st.hr.respond(in.st.to, reply{Kind: replyInAck, Seq: ctl.Seq})
			in.buf, in.eof = ctl.Data, ctl.Kind == ctlInEOF
		case <-in.closed:
			return 0, io.EOF
		}
	}
	n := copy(p, in.buf)
	in.buf = in.buf[n:]
	return n, nil
}

// Close ends a Read waiting for the caller (builtins.Run closes its stdin
// once the command has ended).
func (in *runInput) Close() error {
	in.once.Do(func() { close(in.closed) })
	return nil
}
