package actors

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"time"

	"github.com/mitogo/mitogo/transport"
)

// Debugging a running context: Debug asks any context of the tree, through
// the routers on the way, for what a person needs to see why it is stuck
// or slow, without restarting it.
//
// The request is the system function "mitogo.debug". Unlike other calls it
// never runs on a stream's reader (see dispatch): a context whose
// functions are stuck still answers it at once. Its answer can hold
// secrets (a goroutine's arguments, a heap's contents), so it is policed
// as any call: from above always, from below only when the context allows
// it upward (AllowUpward("mitogo.debug")), from an attached process when
// its listener allows it (ListenAllow, ListenDescendants), sideways only
// with AllowSideways.

// DebugRequest says what Debug collects. Every part is optional; an empty
// request returns the context's identity only.
type DebugRequest struct {
	Goroutines bool          `msgpack:"goroutines"` // every goroutine's stack, as a panic prints them
	Heap       bool          `msgpack:"heap"`       // a heap profile, in pprof format
	CPU        time.Duration `msgpack:"cpu"`        // > 0: a CPU profile of that long, in pprof format
	Table      bool          `msgpack:"table"`      // the routing table
	Streams    bool          `msgpack:"streams"`    // the streams and their counters
	Calls      bool          `msgpack:"calls"`      // the calls in flight, both ways
}

// DebugReport is what Debug collected in one context. Heap and CPU are
// gzip'd protocol buffers for `go tool pprof`.
type DebugReport struct {
	Context   string `msgpack:"context" json:"context"`
	ID        int    `msgpack:"id" json:"id"`
	ParentID  int    `msgpack:"parent_id" json:"parent_id"`
	Master    bool   `msgpack:"master" json:"master"`
	PID       int    `msgpack:"pid" json:"pid"`
	GoVersion string `msgpack:"go_version" json:"go_version"`
	Platform  string `msgpack:"platform" json:"platform"`
	NumGo     int    `msgpack:"goroutine_count" json:"goroutine_count"`

	Goroutines string       `msgpack:"goroutines,omitempty" json:"goroutines,omitempty"`
	Heap       []byte       `msgpack:"heap,omitempty" json:"-"`
	CPU        []byte       `msgpack:"cpu,omitempty" json:"-"`
	Routes     []RouteInfo  `msgpack:"routes,omitempty" json:"routes,omitempty"`
	Streams    []StreamInfo `msgpack:"streams,omitempty" json:"streams,omitempty"`
	Calls      []CallInfo   `msgpack:"calls,omitempty" json:"calls,omitempty"`
}

// RouteInfo is one entry of a routing table: context ID, named Name, is
// reached through the stream to context Via (its child, or the child whose
// subtree holds it). Contexts that are not in the table go to the parent.
type RouteInfo struct {
	ID      int    `msgpack:"id" json:"id"`
	Name    string `msgpack:"name" json:"name"`
	Via     int    `msgpack:"via" json:"via"`
	ViaName string `msgpack:"via_name" json:"via_name"`
}

// StreamInfo is one stream of a context: to its parent (Up) or to a child
// or attached process, with its counters.
type StreamInfo struct {
	Peer      int    `msgpack:"peer" json:"peer"`
	Name      string `msgpack:"name" json:"name"`
	Up        bool   `msgpack:"up" json:"up"`
	Attached  bool   `msgpack:"attached" json:"attached"`   // a process attached through a Listener
	Heartbeat bool   `msgpack:"heartbeat" json:"heartbeat"` // watched by heartbeats
	Waiting   int    `msgpack:"waiting" json:"waiting"`     // calls waiting for a reply on it

	transport.Stats `msgpack:"stats" json:"stats"`
}

// CallInfo is one call in flight: Dir "out", a call this context made and
// waits for, to Context; Dir "in", a call Context made that runs here.
type CallInfo struct {
	Dir      string        `msgpack:"dir" json:"dir"`
	Context  int           `msgpack:"context" json:"context"`
	Name     string        `msgpack:"name" json:"name"`
	Function string        `msgpack:"function" json:"function"`
	Request  uint64        `msgpack:"request" json:"request"`
	Age      time.Duration `msgpack:"age" json:"age"`
}

// Debug collects what req asks for in context c (any context of the tree,
// this one too: Router.Self) and returns it. ctx must outlast req.CPU. The
// context's policy decides whether the caller may ask: see "mitogo.debug".
func Debug(ctx context.Context, c *Context, req DebugRequest) (*DebugReport, error) {
	rep, err := debugFunc.Call(ctx, c, req)
	if err != nil {
		return nil, err
	}
	return &rep, nil
}

// Contexts returns the routing table of context c: the contexts below it
// and how each is reached (the "mitogo.contexts" function, policed as a
// call; the listener allows it to processes attached with
// ListenDescendants).
func Contexts(ctx context.Context, c *Context) ([]RouteInfo, error) {
	return contextsFunc.Call(ctx, c, struct{}{})
}

// Names of the debugging system functions, for AllowUpward and ListenAllow.
const (
	DebugFunction    = "mitogo.debug"    // Debug
	ContextsFunction = "mitogo.contexts" // Contexts
)

var (
	debugFunc = Register(DebugFunction, func(ctx context.Context, req DebugRequest) (DebugReport, error) {
		return RouterFrom(ctx).debug(ctx, req)
	})
	contextsFunc = Register(ContextsFunction, func(ctx context.Context, _ struct{}) ([]RouteInfo, error) {
		return RouterFrom(ctx).routes(), nil
	})
)

// offReader reports whether fn runs on a goroutine of its own rather than
// on the reader of the stream it came on: a debug request must be
// answered while the stream's reader is stuck in a call (before the
// watchdog hands the stream over, or if it cannot).
func offReader(fn string) bool { return fn == DebugFunction }

func (r *Router) debug(ctx context.Context, req DebugRequest) (DebugReport, error) {
	rep := DebugReport{Context: r.Name(), ID: int(r.id), ParentID: int(r.parentID), Master: r.IsMaster(), PID: os.Getpid(),
		GoVersion: runtime.Version(), Platform: platform(), NumGo: runtime.NumGoroutine()}
	if req.CPU > 0 {
		// First, while the rest has not run yet: the profile is of the
		// process, not of this function collecting the rest.
		b, err := cpuProfile(ctx, req.CPU)
		if err != nil {
			return rep, err
		}
		rep.CPU = b
	}
	if req.Goroutines {
		var b bytes.Buffer
		if err := pprof.Lookup("goroutine").WriteTo(&b, 2); err != nil {
			return rep, fmt.Errorf("goroutine dump: %w", err)
		}
		rep.Goroutines = b.String()
	}
	if req.Heap {
		runtime.GC() // the profile's in-use figures are as of the last GC
		var b bytes.Buffer
		if err := pprof.Lookup("heap").WriteTo(&b, 0); err != nil {
			return rep, fmt.Errorf("heap profile: %w", err)
		}
		rep.Heap = b.Bytes()
	}
	if req.Table {
		rep.Routes = r.routes()
	}
	if req.Streams {
		rep.Streams = r.streams()
	}
	if req.Calls {
		now := monoNow()
		rep.Calls = append(r.pending.list(now), r.incoming.list(now, r.table.Load())...)
		sort.Slice(rep.Calls, func(i, j int) bool { return rep.Calls[i].Age > rep.Calls[j].Age })
	}
	return rep, nil
}

// cpuProfile profiles the process for d, or until ctx ends.
func cpuProfile(ctx context.Context, d time.Duration) ([]byte, error) {
	var b bytes.Buffer
	if err := pprof.StartCPUProfile(&b); err != nil {
		return nil, fmt.Errorf("CPU profile: %w", err) // one is running already
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	pprof.StopCPUProfile()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("CPU profile: %w", err)
	}
	return b.Bytes(), nil
}

// routes lists the routing table, by id.
func (r *Router) routes() []RouteInfo {
	t := r.table.Load()
	out := make([]RouteInfo, 0, len(t.routes))
	for id, c := range t.routes {
		out = append(out, RouteInfo{ID: int(id), Name: t.name(id), Via: int(c.peer), ViaName: c.name})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// streams lists the streams, the parent's first.
func (r *Router) streams() []StreamInfo {
	var out []StreamInfo
	info := func(c *conn) StreamInfo {
		return StreamInfo{Peer: int(c.peer), Name: c.name, Up: c.up, Attached: c.attach != nil, Heartbeat: c.hb != nil,
			Waiting: int(c.calls.Load()), Stats: c.s.Stats()}
	}
	if r.parent != nil {
		out = append(out, info(r.parent))
	}
	conns := r.connList(nil)
	sort.Slice(conns, func(i, j int) bool { return conns[i].peer < conns[j].peer })
	for _, c := range conns {
		out = append(out, info(c))
	}
	return out
}
