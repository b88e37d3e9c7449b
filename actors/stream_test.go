package actors_test

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mitogo/mitogo/actors"
	"github.com/mitogo/mitogo/test/sshtest"
)

// window is the channels' flow-control window: a sender never runs more
// than this many values ahead of what its receiver has read.
const window = 64

type countArgs struct {
	N    int
	Out  *actors.Sender[int]
	Fail bool // return an error after sending, without closing
	Hold bool // after sending, wait for the call's cancellation
}

// streamSent counts, in the process that runs test.streamCount, the values
// its Sends accepted.
var streamSent atomic.Int64

// streamCount sends 1..N on its stream (then fails or holds if asked) and
// returns N.
var streamCount = actors.Register("test.streamCount", func(ctx context.Context, a countArgs) (int, error) {
	for i := 1; i <= a.N; i++ {
		if err := a.Out.Send(ctx, i); err != nil {
			return 0, err
		}
		streamSent.Add(1)
	}
	if a.Fail {
		return 0, errors.New("failed on purpose")
	}
	if a.Hold {
		<-ctx.Done()
		return 0, ctx.Err()
	}
	return a.N, nil
})

var streamSentCount = actors.Register("test.streamSent", func(ctx context.Context, _ struct{}) (int64, error) {
	return streamSent.Load(), nil
})

type sumArgs struct {
	In   *actors.Receiver[int]
	Take int // return after this many values (0: all)
}

// streamSum adds the values it reads until the stream closes (or until it
// has taken Take of them) and returns the sum.
var streamSum = actors.Register("test.streamSum", func(ctx context.Context, a sumArgs) (int, error) {
	sum, n := 0, 0
	for v, err := range a.In.All(ctx) {
		if err != nil {
			return 0, err
		}
		sum += v
		if n++; n == a.Take {
			break
		}
	}
	return sum, nil
})

// A remote function streams values back while the caller reads them: all
// of them, in order, then io.EOF, and the call's result. The sender never
// runs more than a window ahead of the reader.
func TestStreamValuesBack(t *testing.T) {
	r := newRouter(t)
	c := local(t, r)
	const n = 1000
	tx, rx := actors.NewStream[int](r)
	defer rx.Close()
	p := streamCount.Go(ctxT(t), c, countArgs{N: n, Out: tx})
	for i := 1; i <= n; i++ {
		v, err := rx.Recv(ctxT(t))
		if err != nil || v != i {
			t.Fatalf("value %d: %d, %v", i, v, err)
		}
		if i%100 == 0 {
			sent, err := streamSentCount.Call(ctxT(t), c, struct{}{})
			if err != nil {
				t.Fatal(err)
			}
			if sent > int64(i+window) {
				t.Fatalf("the sender sent %d values when %d were read: more than a window ahead", sent, i)
			}
		}
	}
	if _, err := rx.Recv(ctxT(t)); err != io.EOF {
		t.Fatalf("after the last value: %v, want io.EOF", err)
	}
	if got, err := p.Wait(); err != nil || got != n {
		t.Fatalf("call: %d, %v", got, err)
	}
}

// The reverse: the caller passes the Receiver and sends; the function
// reads until the caller closes.
func TestStreamValuesForward(t *testing.T) {
	r := newRouter(t)
	c := local(t, r)
	tx, rx := actors.NewStream[int](r)
	p := streamSum.Go(ctxT(t), c, sumArgs{In: rx})
	want := 0
	for i := 1; i <= 500; i++ {
		if err := tx.Send(ctxT(t), i); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		want += i
	}
	if err := tx.Close(); err != nil {
		t.Fatal(err)
	}
	if got, err := p.Wait(); err != nil || got != want {
		t.Fatalf("sum: %d, %v; want %d", got, err, want)
	}
}

// A function that returns while the caller still sends: the caller's Send
// fails with a *ChannelError matching ErrChannelClosed, never waits.
func TestStreamReceiverReturnsEarly(t *testing.T) {
	r := newRouter(t)
	c := local(t, r)
	tx, rx := actors.NewStream[int](r)
	p := streamSum.Go(ctxT(t), c, sumArgs{In: rx, Take: 2})
	var err error
	for i := 1; err == nil; i++ {
		err = tx.Send(ctxT(t), i)
	}
	var ce *actors.ChannelError
	if !errors.As(err, &ce) || !errors.Is(err, actors.ErrChannelClosed) || ce.Context != c.Name() {
		t.Fatalf("send after the function returned: %T %v; want a *ChannelError from %s matching ErrChannelClosed", err, err, c.Name())
	}
	if got, err := p.Wait(); err != nil || got != 3 {
		t.Fatalf("sum: %d, %v", got, err)
	}
}

// A function that fails without closing its stream: the caller reads the
// values sent, then a *ChannelError matching ErrChannelClosed (not io.EOF:
// the stream did not end as it should), and the call's own error.
func TestStreamSenderFails(t *testing.T) {
	r := newRouter(t)
	c := local(t, r)
	tx, rx := actors.NewStream[int](r)
	p := streamCount.Go(ctxT(t), c, countArgs{N: 3, Out: tx, Fail: true})
	var got []int
	var err error
	for v, e := range rx.All(ctxT(t)) {
		if e != nil {
			err = e
			break
		}
		got = append(got, v)
	}
	if len(got) != 3 || !errors.Is(err, actors.ErrChannelClosed) {
		t.Fatalf("got %v then %v; want 3 values then ErrChannelClosed", got, err)
	}
	var ce *actors.CallError
	if _, err := p.Wait(); !errors.As(err, &ce) {
		t.Fatalf("call: %v", err)
	}
}

// A call that fails before its function runs (an unknown function): the
// caller's end fails with that call's error, instead of waiting for a
// sender that will never exist.
func TestStreamCallNeverRan(t *testing.T) {
	r := newRouter(t)
	c := local(t, r)
	tx, rx := actors.NewStream[int](r)
	missing := actors.Function[countArgs, int]("test.noSuchFunction")
	p := missing.Go(ctxT(t), c, countArgs{N: 3, Out: tx})
	_, err := rx.Recv(ctxT(t))
	var ce *actors.ChannelError
	if !errors.As(err, &ce) || !errors.Is(err, actors.ErrUnknownFunction) {
		t.Fatalf("receive: %T %v; want a *ChannelError matching ErrUnknownFunction", err, err)
	}
	if _, err := p.Wait(); !errors.Is(err, actors.ErrUnknownFunction) {
		t.Fatalf("call: %v", err)
	}
}

// A stream joins two contexts: an end cannot go with Send (no reply says
// when the function is done), to many targets at once (Fan), or twice.
func TestStreamPassingRules(t *testing.T) {
	r := newRouter(t)
	c := local(t, r)
	tx, rx := actors.NewStream[int](r)
	defer rx.Close()
	if err := streamCount.Send(c, countArgs{N: 1, Out: tx}); err == nil {
		t.Fatal("a stream end went with Send")
	}
	for res := range streamCount.Fan(ctxT(t), []*actors.Context{c, c}, countArgs{N: 1, Out: tx}) {
		if res.Err == nil {
			t.Fatal("a stream end went with Fan")
		}
	}
	if _, err := streamCount.Call(ctxT(t), c, countArgs{N: 1, Out: tx}); err != nil {
		t.Fatal(err)
	}
	if _, err := streamCount.Call(ctxT(t), c, countArgs{N: 1, Out: tx}); err == nil {
		t.Fatal("a stream end was passed twice")
	}
	if err := tx.Send(ctxT(t), 1); err == nil {
		t.Fatal("the sender was used here after it was passed")
	}
}

// holdStream starts test.streamCount in c, sending n values and then
// holding, and reads the n values.
func holdStream(t *testing.T, r *actors.Router, c *actors.Context, n int) (*actors.Receiver[int], *actors.Pending[int]) {
	t.Helper()
	tx, rx := actors.NewStream[int](r)
	t.Cleanup(rx.Close)
	p := streamCount.Go(ctxT(t), c, countArgs{N: n, Out: tx, Hold: true})
	for i := 1; i <= n; i++ {
		if v, err := rx.Recv(ctxT(t)); err != nil || v != i {
			t.Fatalf("value %d: %d, %v", i, v, err)
		}
	}
	return rx, p
}

// expectChannelError asserts err is a *ChannelError naming ctxName that
// matches cause (if not nil).
func expectChannelError(t *testing.T, err error, ctxName string, cause error) {
	t.Helper()
	var ce *actors.ChannelError
	if !errors.As(err, &ce) || ce.Context != ctxName || (cause != nil && !errors.Is(err, cause)) || !errors.Is(err, actors.ErrMitogo) {
		t.Fatalf("got %T %v; want a *ChannelError naming %s matching %v", err, err, ctxName, cause)
	}
}

// The far process killed mid-stream: the caller's waiting Recv fails.
func TestStreamSenderKilled(t *testing.T) {
	r := newRouter(t)
	c := local(t, r)
	rx, _ := holdStream(t, r, c, 5)
	if err := syscall.Kill(c.ProcessID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, err := rx.Recv(ctxT(t))
	expectChannelError(t, err, c.Name(), nil)
}

// oneWay sends 1..n to the channel address it is given, without telling
// its own address (a one-way channel), then holds until cancelled.
var oneWay = actors.Register("test.oneWay", func(ctx context.Context, req countRequest) (int, error) {
	ch := actors.RouterFrom(ctx).NewChannel()
	defer ch.Release()
	ch.Connect(req.Reply)
	for i := 1; i <= req.N; i++ {
		if err := ch.Send(ctx, i); err != nil {
			return 0, err
		}
	}
	<-ctx.Done()
	return 0, ctx.Err()
})

// A plain channel used one way (the caller never connects its end): its
// Recv fails when the sender is killed, as the end was bound to the
// context its address was passed to. It used to wait forever.
func TestChannelOneWaySenderKilled(t *testing.T) {
	r := newRouter(t)
	c := local(t, r)
	ch := r.NewChannel()
	defer ch.Release()
	oneWay.Go(ctxT(t), c, countRequest{Reply: ch.Addr(), N: 3})
	for i := 1; i <= 3; i++ {
		var v int
		if err := ch.Recv(ctxT(t), &v); err != nil || v != i {
			t.Fatalf("value %d: %d, %v", i, v, err)
		}
	}
	if err := syscall.Kill(c.ProcessID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var v int
	err := ch.Recv(ctxT(t), &v)
	expectChannelError(t, err, c.Name(), nil)
}

// Route loss two hops down: the sender is a grandchild, stopped (its
// parent declares it dead by heartbeat) or cut off by its parent's death.
func TestStreamRouteLostTwoHopsDown(t *testing.T) {
	r := newRouter(t)
	t.Run("heartbeat", func(t *testing.T) {
		a := local(t, r)
		b := local(t, r, actors.Via(a), actors.Heartbeat(200*time.Millisecond, 3))
		rx, _ := holdStream(t, r, b, 5)
		stop(t, b.ProcessID())
		_, err := rx.Recv(ctxT(t))
		expectChannelError(t, err, b.Name(), actors.ErrHeartbeat)
	})
	t.Run("middle killed", func(t *testing.T) {
		a := local(t, r)
		b := local(t, r, actors.Via(a))
		rx, _ := holdStream(t, r, b, 5)
		if err := syscall.Kill(a.ProcessID(), syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_, err := rx.Recv(ctxT(t))
		expectChannelError(t, err, b.Name(), nil)
	})
}

// Shutdown on either side ends a waiting Recv with ErrShutdown.
func TestStreamShutdown(t *testing.T) {
	t.Run("sender's context", func(t *testing.T) {
		r := newRouter(t)
		c := local(t, r)
		rx, _ := holdStream(t, r, c, 5)
		if err := c.Shutdown(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		_, err := rx.Recv(ctxT(t))
		expectChannelError(t, err, c.Name(), actors.ErrShutdown)
	})
	t.Run("receiver's router", func(t *testing.T) {
		r := newRouter(t)
		c := local(t, r)
		rx, _ := holdStream(t, r, c, 5)
		errs := make(chan error, 1)
		go func() {
			_, err := rx.Recv(ctxT(t))
			errs <- err
		}()
		if err := r.Shutdown(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		// The children stop first: the sender's end is released as its
		// context shuts down, before the router's own ends are failed.
		expectChannelError(t, <-errs, c.Name(), actors.ErrShutdown)
	})
}

// Over a real sshd: values stream back, and a sender killed mid-stream
// ends the Recv.
func TestStreamOverSSH(t *testing.T) {
	s := sshtest.Start(t)
	r := newRouter(t)
	c, err := r.SSH(ctxT(t), s.Addr, sshTo(s)...)
	if err != nil {
		t.Fatal(err)
	}
	rx, _ := holdStream(t, r, c, 200)
	id, err := whoami.Call(ctxT(t), c, struct{}{})
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(id.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, err = rx.Recv(ctxT(t))
	expectChannelError(t, err, c.Name(), nil)
}
