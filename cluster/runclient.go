package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/mitogo/mitogo/builtins"
	"github.com/mitogo/mitogo/messages"
	"github.com/nats-io/nats.go"
	"github.com/vmihailenco/msgpack/v5"
)

// Run runs req's command on host, through the controller that owns it, as
// builtins.Run does in a context: the command's output is copied to stdout
// and stderr as it is written; stdin, when not nil, is forwarded to the
// command until it ends, then the command's stdin is closed (when nil, the
// command reads /dev/null). Run returns the command's exit status (128+n
// when signal n killed it).
//
// When ctx ends, the command is killed with its process group, and Run
// returns ctx's error once the owner has confirmed that the command is
// gone (or after a few seconds if it does not). A caller that goes away
// without a word (its process killed) has its command killed too, once
// it has been silent for a few seconds. An error writing to stdout or
// stderr also kills the command, and is returned.
//
// Errors are *HostError naming the host and its controller, as for Call;
// a command that does not exist on the host gives one matching
// builtins.ErrCommandNotFound. A run sent while the host is between
// owners waits for one, as a Call does; nothing else is retried.
func (cl *Client) Run(ctx context.Context, host string, req builtins.RunRequest, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	herr := func(controller string, err error) error {
		return &HostError{Host: host, Controller: controller, Err: err}
	}
	if len(req.Argv) == 0 {
		return -1, herr("", fmt.Errorf("no command: %w", ErrConfig))
	}
	args, err := msgpack.Marshal(builtins.RunRequest{Argv: req.Argv, Dir: req.Dir, Env: req.Env})
	if err != nil {
		return -1, herr("", fmt.Errorf("encoding the command: %w", err))
	}
	rq := request{V: ProtocolVersion, Fn: builtins.ProcRun.Name(), Args: args, From: cl.from, Stream: &streamSpec{Stdin: stdin != nil}}
	if dl, ok := ctx.Deadline(); ok {
		rq.Deadline = dl.UnixNano()
	}
	data, err := msgpack.Marshal(&rq)
	if err != nil {
		return -1, herr("", fmt.Errorf("encoding the run: %w", err))
	}
	inbox := cl.nc.NewRespInbox()
	sub, err := cl.nc.SubscribeSync(inbox)
	if err != nil {
		return -1, herr("", fmt.Errorf("subscribing to the reply inbox: %w", err))
	}
	defer sub.Unsubscribe()
	send := func() error {
		if err := cl.nc.PublishRequest(hostSubject(cl.cluster, host), inbox, data); err != nil {
			return herr("", fmt.Errorf("sending the run: %w", err))
		}
		return nil
	}
	if err := send(); err != nil {
		return -1, err
	}
	owner := ownerWait{cl: cl, host: host}

	rc := &runCaller{cl: cl, stdout: stdout, stderr: stderr, next: 1}
	defer rc.finish()
	for {
		wait := acceptWait
		if rc.controller != "" {
			wait = silentAfter
		}
		wctx, cancel := context.WithTimeout(ctx, wait)
		if rc.stopped {
			// ctx has ended: wait for the owner to say the command is gone.
			wctx, cancel = context.WithDeadline(context.Background(), rc.graceEnd)
		}
		m, err := sub.NextMsgWithContext(wctx)
		cancel()
		if errors.Is(err, nats.ErrNoResponders) { // delivered to no one: sent again once a member owns the host
			if err := owner.missed(ctx); err != nil {
				return -1, herr("", err)
			}
			if err := send(); err != nil {
				return -1, err
			}
			continue
		}
		if err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) && !errors.Is(err, nats.ErrTimeout) {
			return -1, herr(rc.controller, fmt.Errorf("%w: waiting for the reply: %w", ErrOutcomeUnknown, err))
		}
		if err != nil {
			switch {
			case rc.stopped:
				return -1, herr(rc.controller, fmt.Errorf("%w (the owner did not confirm the command's end within %v)", ctx.Err(), cancelGrace))
			case ctx.Err() != nil && rc.controller == "":
				return -1, herr("", fmt.Errorf("%w: no controller took the run before %w", ErrOutcomeUnknown, ctx.Err()))
			case ctx.Err() != nil:
				rc.stop(nil) // kill the command; wait for the owner to confirm
				continue
			case rc.controller == "":
				return -1, herr("", fmt.Errorf("%w: no controller took the run within %v", ErrOutcomeUnknown, acceptWait))
			default:
				return -1, herr(rc.controller, fmt.Errorf("%w: silent for %v while the command ran", ErrOutcomeUnknown, silentAfter))
			}
		}
		var r reply
		if err := messages.Unmarshal(m.Data, &r); err != nil {
			return -1, herr(rc.controller, fmt.Errorf("%w: unreadable reply: %v", ErrVersion, err))
		}
		if rc.controller != "" && r.Controller != rc.controller {
			continue // the run is the first accepter's
		}
		switch r.Kind {
		case replyAccept:
			if rc.controller == "" {
				rc.accepted(r, stdin)
			}
		case replyOutput:
			rc.output(r)
		case replyInAck:
			if rc.in != nil {
				rc.in.ack(r.Seq)
			}
		case replyFinal:
			rc.controller = r.Controller
			switch {
			case rc.stopped && rc.err == nil:
				return -1, herr(rc.controller, ctx.Err())
			case rc.err != nil:
				return -1, herr(rc.controller, rc.err)
			case r.Code != "" && ctx.Err() != nil:
				return -1, herr(rc.controller, ctx.Err()) // the owner saw the same deadline first
			case r.Seq != rc.next-1:
				return -1, herr(rc.controller, fmt.Errorf("%w: the command's output ended at item %d of %d", ErrOutcomeUnknown, rc.next-1, r.Seq))
			case r.Code != "":
				return -1, herr(rc.controller, &remoteError{code: r.Code, msg: r.Msg})
			}
			var res builtins.RunResult
			if err := messages.Unmarshal(r.Result, &res); err != nil {
				return -1, herr(rc.controller, fmt.Errorf("%w: unreadable result: %v", ErrVersion, err))
			}
			return res.ExitCode, nil
		}
	}
}

// runCaller is the caller's side of one streamed run.
type runCaller struct {
	cl             *Client
	stdout, stderr io.Writer
	controller     string // the owner that accepted the run
	ctl            string // its control subject

	next  uint64 // the output item expected next
	acked uint64 // the last output item acknowledged

	stopped  bool      // a cancel was sent
	graceEnd time.Time // when to stop waiting for the owner's confirmation
	err      error     // why the run was stopped from this side, when not ctx

	in    *inputFeed
	beats chan struct{} // closed to stop the beats
	wg    sync.WaitGroup
}

// accepted starts the beats and the stdin feed.
func (rc *runCaller) accepted(r reply, stdin io.Reader) {
	rc.controller, rc.ctl = r.Controller, r.Ctl
	rc.beats = make(chan struct{})
	rc.wg.Go(func() {
		t := time.NewTicker(beatInterval)
		defer t.Stop()
		for {
			select {
			case <-rc.beats:
				return
			case <-t.C:
				rc.send(control{Kind: ctlBeat})
			}
		}
	})
	if stdin != nil {
		rc.in = startInput(rc, stdin)
	}
}

// output writes one output item and acknowledges a batch of them.
func (rc *runCaller) output(r reply) {
	if r.Seq != rc.next {
		rc.stop(fmt.Errorf("%w: output item %d came when %d was due (lost on the way); the command was killed", ErrOutcomeUnknown, r.Seq, rc.next))
		return
	}
	rc.next++
	if rc.err == nil && !rc.stopped {
		w := rc.stdout
		if r.Stream == 2 {
			w = rc.stderr
		}
		if _, err := w.Write(r.Data); err != nil {
			rc.stop(fmt.Errorf("writing the command's output: %w", err))
		}
	}
	// Acknowledged also once stopped: the owner may be blocked on the
	// window with the command's last words.
	if r.Seq-rc.acked >= ackEvery {
		rc.acked = r.Seq
		rc.send(control{Kind: ctlAck, Seq: r.Seq})
	}
}

// stop asks the owner to kill the command, and waits a while for it to
// confirm; err is why, nil when ctx ended.
func (rc *runCaller) stop(err error) {
	if rc.stopped {
		return
	}
	rc.stopped, rc.err, rc.graceEnd = true, err, time.Now().Add(cancelGrace)
	rc.send(control{Kind: ctlCancel})
}

func (rc *runCaller) send(c control) {
	if rc.ctl == "" {
		return
	}
	b, err := msgpack.Marshal(&c)
	if err == nil {
		_ = rc.cl.nc.Publish(rc.ctl, b) // a lost one shows up on the owner's side as silence
	}
}

// finish stops the beats and the stdin feed.
func (rc *runCaller) finish() {
	if rc.beats != nil {
		close(rc.beats)
	}
	if rc.in != nil {
		rc.in.finish()
	}
	rc.wg.Wait()
}

// inputFeed sends the caller's stdin to the command, at most a window of
// items ahead of the owner's acknowledgements.
type inputFeed struct {
	rc    *runCaller
	stdin io.Reader
	stop  context.CancelFunc
	done  chan struct{}

	mu    sync.Mutex
	acked uint64
	more  chan struct{}
}

func startInput(rc *runCaller, stdin io.Reader) *inputFeed {
	ctx, stop := context.WithCancel(context.Background())
	f := &inputFeed{rc: rc, stdin: stdin, stop: stop, done: make(chan struct{}), more: make(chan struct{}, 1)}
	go func() {
		defer close(f.done)
		f.feed(ctx)
	}()
	return f
}

func (f *inputFeed) ack(seq uint64) {
	f.mu.Lock()
	f.acked = max(f.acked, seq)
	f.mu.Unlock()
	select {
	case f.more <- struct{}{}:
	default:
	}
}

// feed reads stdin and sends it in items; its end becomes an end item.
func (f *inputFeed) feed(ctx context.Context) {
	buf := make([]byte, streamChunk)
	var seq uint64
	send := func(c control) bool {
		seq++
		c.Seq = seq
		for {
			f.mu.Lock()
			room := seq-f.acked <= streamWindow
			f.mu.Unlock()
			if room {
				f.rc.send(c)
				return true
			}
			select {
			case <-f.more:
			case <-ctx.Done():
				return false
			}
		}
	}
	for {
		n, err := f.stdin.Read(buf)
		if ctx.Err() != nil {
			return
		}
		if n > 0 && !send(control{Kind: ctlIn, Data: buf[:n]}) {
			return
		}
		if err != nil {
			send(control{Kind: ctlInEOF})
			return
		}
	}
}

// finish ends the feed once the run has ended, as builtins.Run ends its
// own: a Read still blocked is interrupted where stdin allows it (a read
// deadline, cleared again afterwards, or a Close), and abandoned after
// builtins.StdinGrace where it does not.
func (f *inputFeed) finish() {
	f.stop()
	select {
	case <-f.done:
		return
	default:
	}
	type deadliner interface{ SetReadDeadline(time.Time) error }
	if d, ok := f.stdin.(deadliner); ok && d.SetReadDeadline(time.Unix(1, 0)) == nil {
		defer d.SetReadDeadline(time.Time{})
	} else if c, ok := f.stdin.(io.Closer); ok {
		c.Close()
	}
	t := time.NewTimer(builtins.StdinGrace)
	defer t.Stop()
	select {
	case <-f.done:
	case <-t.C:
	}
}
