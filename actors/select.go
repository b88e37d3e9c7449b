package actors

import (
	"context"
	"fmt"
	"io"
	"iter"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Source is something a Select waits on: a *Pending call (one result) or
// a channel *Receiver (one item at a time until its sender closes). Only
// this package's types are sources.
type Source interface {
	attach(s *Select)
	describe() string
}

// Selected is one result taken from a Select: where it came from, and the
// value or the error.
type Selected struct {
	Source Source   // the *Pending or *Receiver it came from: compare with ==
	Target *Context // the context that produced it (nil if unknown)
	Value  any      // the call's result or the item received; nil when Err is set
	Err    error    // the call's error, or why the receiver ended
}

// As returns s's value as a T, or s.Err. It is the typed view of a result
// from a Select over sources of mixed types.
func As[T any](s Selected) (T, error) {
	var zero T
	if s.Err != nil {
		return zero, s.Err
	}
	v, ok := s.Value.(T)
	if !ok && s.Value != nil {
		return zero, errorf("mitogo: select: the value from %s is a %T, not a %v", s.Source.describe(), s.Value, reflect.TypeFor[T]())
	}
	return v, nil
}

// Select waits on many pending calls and channel receivers at once and
// gives their results in the order they arrive, each with its source and
// target (Mitogen's mitogen.select.Select). A pending call gives one result
// and leaves the select; a receiver gives each item its channel receives,
// and leaves when its sender closes (quietly) or it fails (with the error).
// A receiver holds at most one item the select has not given yet, so a
// channel's flow control still holds a fast sender back.
//
// A select that holds receivers owns a goroutine for each: Close it when
// done. Close is safe to call always, and a select of pending calls only
// needs none. Sources may be added while results are being taken.
type Select struct {
	ctx    context.Context // ends the receivers' goroutines
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	members map[Source]struct{} // sources that may still give a result
	added   map[Source]struct{} // every source ever added, finished or not
	ready   []selected
	closed  bool
	wake    chan struct{} // a result is ready, or nothing is left
}

type selected struct {
	Selected
	taken chan struct{} // told when a receiver's item is taken
}

// NewSelect returns a select over sources.
func NewSelect(sources ...Source) *Select {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Select{ctx: ctx, cancel: cancel, members: map[Source]struct{}{}, added: map[Source]struct{}{}, wake: make(chan struct{}, 1)}
	s.Add(sources...)
	return s
}

// Add adds sources to the select. Adding a source twice, a receiver that
// is in another select, a nil source, or adding to a closed select panics:
// each is a mistake that would lose or duplicate results.
func (s *Select) Add(sources ...Source) {
	for _, src := range sources {
		if src == nil || reflect.ValueOf(src).IsNil() {
			panic("mitogo: select: nil source")
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			panic("mitogo: select: Add after Close")
		}
		// A source that already gave its result is a duplicate too: whether
		// it finished before the second Add must not change the outcome.
		if _, dup := s.added[src]; dup {
			s.mu.Unlock()
			panic(fmt.Sprintf("mitogo: select: %s added twice", src.describe()))
		}
		s.members[src] = struct{}{}
		s.added[src] = struct{}{}
		s.mu.Unlock()
		src.attach(s)
	}
}

// deliver queues a result from src; final takes src out of the select.
func (s *Select) deliver(src Source, res Selected, final bool, taken chan struct{}) {
	s.mu.Lock()
	if _, ok := s.members[src]; !ok || s.closed {
		s.mu.Unlock()
		return
	}
	if final {
		delete(s.members, src)
	}
	res.Source = src
	s.ready = append(s.ready, selected{Selected: res, taken: taken})
	s.mu.Unlock()
	wake(s.wake)
}

// leave takes src out of the select without a result.
func (s *Select) leave(src Source) {
	s.mu.Lock()
	delete(s.members, src)
	s.mu.Unlock()
	wake(s.wake)
}

// Next waits for the next result. It returns ErrSelectEmpty when nothing
// is left to wait for, a *TimeoutError naming every outstanding source's
// target when ctx's deadline passes first, and ctx's error when ctx is
// cancelled. Neither ends the calls: Next may be called again.
func (s *Select) Next(ctx context.Context) (Selected, error) {
	var start time.Time
	if _, ok := ctx.Deadline(); ok {
		start = time.Now()
	}
	for {
		s.mu.Lock()
		if len(s.ready) > 0 {
			r := s.ready[0]
			s.ready[0] = selected{}
			s.ready = s.ready[1:]
			more := len(s.ready) > 0
			s.mu.Unlock()
			if more {
				wake(s.wake) // for another goroutine in Next
			}
			if r.taken != nil {
				wake(r.taken)
			}
			return r.Selected, nil
		}
		if len(s.members) == 0 {
			s.mu.Unlock()
			wake(s.wake)
			return Selected{}, ErrSelectEmpty
		}
		s.mu.Unlock()
		select {
		case <-s.wake:
		case <-ctx.Done():
			if ctx.Err() == context.DeadlineExceeded {
				return Selected{}, &TimeoutError{Op: "select", After: time.Since(start), Outstanding: s.outstanding()}
			}
			return Selected{}, errorf("mitogo: select: %w", ctx.Err())
		}
	}
}

// outstanding names the sources still waited for.
func (s *Select) outstanding() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.members))
	for src := range s.members {
		names = append(names, src.describe())
	}
	slices.Sort(names)
	return names
}

// All iterates over the results as they arrive until nothing is left.
// When Next fails (a deadline, a cancellation) the iteration yields that
// error once and ends.
func (s *Select) All(ctx context.Context) iter.Seq2[Selected, error] {
	return func(yield func(Selected, error) bool) {
		for {
			r, err := s.Next(ctx)
			if err == ErrSelectEmpty {
				return
			}
			if !yield(r, err) || err != nil {
				return
			}
		}
	}
}

// Close takes every source out of the select, drops results not taken,
// and stops the receivers' goroutines. Pending calls go on; a receiver's
// channel keeps the items it has not given. Close is idempotent.
func (s *Select) Close() {
	s.mu.Lock()
	s.closed = true
	clear(s.members)
	s.ready = nil
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	wake(s.wake)
}

// attach makes the select take p's result when the call completes.
func (p *Pending[R]) attach(s *Select) {
	p.onDone(func() {
		res := Selected{Target: p.target, Err: p.err}
		if p.err == nil {
			res.Value = p.res
		}
		s.deliver(p, res, true, nil)
	})
}

func (p *Pending[R]) describe() string {
	if p.target == nil {
		return p.fn
	}
	return p.target.Name()
}

// Receiver is a channel's receiving end for a Select: each item the
// channel receives is decoded into a T and given as a Selected value. A
// receiver belongs to one select; while it is there, do not call Recv on
// its channel.
type Receiver[T any] struct {
	ch       *Channel
	s        *stream // a typed stream's end (NewStream); nil from Receive
	attached atomic.Bool
}

// Receive returns a receiver that gives ch's items as T values.
func Receive[T any](ch *Channel) *Receiver[T] { return &Receiver[T]{ch: ch} }

// attach starts the goroutine that receives for the select: one item at a
// time, the next only once the select has given the last one.
func (rc *Receiver[T]) attach(s *Select) {
	if !rc.attached.CompareAndSwap(false, true) {
		s.leave(rc)
		panic(fmt.Sprintf("mitogo: select: %s is already in a select", rc.describe()))
	}
	taken := make(chan struct{}, 1)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			var v T
			err := rc.ch.Recv(s.ctx, &v)
			if s.ctx.Err() != nil {
				return
			}
			if err == io.EOF {
				s.leave(rc)
				return
			}
			res := Selected{Target: rc.peer(), Value: v, Err: err}
			if err != nil {
				res.Value = nil
				s.deliver(rc, res, true, nil)
				return
			}
			s.deliver(rc, res, false, taken)
			select {
			case <-taken:
			case <-s.ctx.Done():
				return
			}
		}
	}()
}

// peer is a handle on the context at the channel's other end, if known.
func (rc *Receiver[T]) peer() *Context {
	ch := rc.ch
	ch.mu.Lock()
	peer, connected := ch.peer, ch.connected
	ch.mu.Unlock()
	if !connected {
		return nil
	}
	return ch.r.Context(int(peer.Context))
}

func (rc *Receiver[T]) describe() string {
	ch := rc.ch
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.peerName != "" {
		return "channel " + ch.id + " from " + ch.peerName
	}
	return "channel " + ch.id
}
