package actors_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mitogo/mitogo/actors"
)

// blockForever is a function that never returns until its call is
// cancelled: a context whose only function is stuck.
func blockForever(ctx context.Context, _ struct{}) (struct{}, error) {
	<-ctx.Done()
	return struct{}{}, ctx.Err()
}

var (
	block = actors.Register("test.block", blockForever)
	// debugParent asks the context's parent for a debug report.
	debugParent = actors.Register("test.debugParent", func(ctx context.Context, _ struct{}) (bool, error) {
		_, err := actors.Debug(ctx, actors.RouterFrom(ctx).Parent(), actors.DebugRequest{Goroutines: true})
		if errors.Is(err, actors.ErrRefused) {
			return false, nil
		}
		return err == nil, err
	})
)

// A child stuck in a call still answers a debug request at once, with the
// stuck function in its goroutines and the call among those in flight.
func TestDebugStuckChild(t *testing.T) {
	r := newRouter(t)
	c := local(t, r)
	ctx, cancel := context.WithCancel(ctxT(t))
	stuck := block.Go(ctx, c, struct{}{})
	defer func() {
		cancel()
		stuck.Wait()
	}()
	var rep *actors.DebugReport
	waitFor(t, func() bool {
		var err error
		rep, err = actors.Debug(ctxT(t), c, actors.DebugRequest{Goroutines: true, Calls: true})
		if err != nil {
			t.Fatal(err)
		}
		// The call is listed as it is dispatched, a moment before its
		// function runs: wait for both.
		return slices.ContainsFunc(rep.Calls, func(ci actors.CallInfo) bool { return ci.Dir == "in" && ci.Function == "test.block" }) &&
			strings.Contains(rep.Goroutines, "actors_test.blockForever(")
	})
	if rep.ID != c.ID() || rep.PID != c.ProcessID() || rep.Master {
		t.Fatalf("report from %d (pid %d), want context %d (pid %d)", rep.ID, rep.PID, c.ID(), c.ProcessID())
	}
	in := rep.Calls[slices.IndexFunc(rep.Calls, func(ci actors.CallInfo) bool { return ci.Function == "test.block" })]
	if in.Context != 0 || in.Name != "master" || in.Age <= 0 {
		t.Fatalf("incoming call %+v; want one from the master with an age", in)
	}
	// The master sees the same call waiting, outward.
	self, err := actors.Debug(ctxT(t), r.Self(), actors.DebugRequest{Calls: true, Streams: true})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(self.Calls, func(ci actors.CallInfo) bool {
		return ci.Dir == "out" && ci.Function == "test.block" && ci.Context == c.ID()
	}) {
		t.Fatalf("the master's calls %+v lack the one waiting on %s", self.Calls, c.Name())
	}
	if len(self.Streams) != 1 || self.Streams[0].Peer != c.ID() || self.Streams[0].FramesOut == 0 || self.Streams[0].BytesIn == 0 {
		t.Fatalf("the master's streams: %+v", self.Streams)
	}
}

// A grandchild is debugged through its parent: its table, streams and
// identity come back.
func TestDebugGrandchildThroughVia(t *testing.T) {
	r := newRouter(t)
	c1 := local(t, r)
	c2 := local(t, r, actors.Via(c1))
	rep, err := actors.Debug(ctxT(t), c2, actors.DebugRequest{Table: true, Streams: true, Goroutines: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.ID != c2.ID() || rep.ParentID != c1.ID() || rep.Context != c2.Name() || rep.Goroutines == "" {
		t.Fatalf("report %+v; want %s below %s", rep, c2.Name(), c1.Name())
	}
	if len(rep.Streams) != 1 || !rep.Streams[0].Up || rep.Streams[0].FramesIn == 0 || rep.Streams[0].BytesOut == 0 {
		t.Fatalf("the grandchild's streams: %+v; want its parent's, with traffic", rep.Streams)
	}
	mid, err := actors.Debug(ctxT(t), c1, actors.DebugRequest{Table: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(mid.Routes) != 1 || mid.Routes[0].ID != c2.ID() || mid.Routes[0].Name != c2.Name() || mid.Routes[0].Via != c2.ID() {
		t.Fatalf("the middle context's table: %+v; want the route to %s", mid.Routes, c2.Name())
	}
}

// The CPU and heap profiles are gzip'd protocol buffers, as go tool pprof
// reads them.
func TestDebugProfiles(t *testing.T) {
	r := newRouter(t)
	c := local(t, r)
	rep, err := actors.Debug(ctxT(t), c, actors.DebugRequest{CPU: 200 * time.Millisecond, Heap: true})
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"CPU": rep.CPU, "heap": rep.Heap} {
		if err := checkProfile(b); err != nil {
			t.Errorf("%s profile (%d bytes): %v", name, len(b), err)
		}
	}
}

// checkProfile checks that b is a gzip'd protocol buffer message: every
// field a valid tag and wire type, every length within the message, the
// last field ending at its end, and the fields a pprof Profile always has
// there: sample_type (1), string_table (6) and period_type (11).
func checkProfile(b []byte) error {
	if len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		return errors.New("not gzip")
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return err
	}
	pb, err := io.ReadAll(zr)
	if err != nil {
		return err
	}
	varint := func() (uint64, error) {
		var v uint64
		for shift := 0; shift < 64; shift += 7 {
			if len(pb) == 0 {
				return 0, io.ErrUnexpectedEOF
			}
			c := pb[0]
			pb = pb[1:]
			v |= uint64(c&0x7f) << shift
			if c < 0x80 {
				return v, nil
			}
		}
		return 0, errors.New("varint too long")
	}
	seen := map[uint64]bool{}
	for len(pb) > 0 {
		tag, err := varint()
		if err != nil {
			return err
		}
		seen[tag>>3] = true
		if tag>>3 == 0 {
			return errors.New("field number 0")
		}
		switch tag & 7 {
		case 0:
			_, err = varint()
		case 1:
			if len(pb) < 8 {
				return io.ErrUnexpectedEOF
			}
			pb = pb[8:]
		case 2:
			var n uint64
			n, err = varint()
			if err == nil && n > uint64(len(pb)) {
				return fmt.Errorf("field %d: length %d past the end", tag>>3, n)
			}
			pb = pb[n:]
		case 5:
			if len(pb) < 4 {
				return io.ErrUnexpectedEOF
			}
			pb = pb[4:]
		default:
			return fmt.Errorf("field %d: wire type %d", tag>>3, tag&7)
		}
		if err != nil {
			return err
		}
	}
	for _, f := range []uint64{1, 6, 11} {
		if !seen[f] {
			return fmt.Errorf("no field %d", f)
		}
	}
	return nil
}

// A child may not ask its parent for a debug report unless the parent
// allows it upward.
func TestDebugRefusedFromChild(t *testing.T) {
	r := newRouter(t)
	c := local(t, r)
	ok, err := debugParent.Call(ctxT(t), c, struct{}{})
	if err != nil || ok {
		t.Fatalf("a child's debug request to the master: %v, %v; want refused by policy", ok, err)
	}
	r2 := newRouter(t, actors.AllowUpward(actors.DebugFunction))
	c2 := local(t, r2)
	ok, err = debugParent.Call(ctxT(t), c2, struct{}{})
	if err != nil || !ok {
		t.Fatalf("with AllowUpward(DebugFunction): %v, %v; want the report", ok, err)
	}
}
