package messages

import "time"

// The protocol versions this package speaks: every version from
// MinProtocolVersion to ProtocolVersion. The handshake picks the highest
// one both ends speak (see ChooseVersion); version 2 added heartbeats
// (ControlPing, ControlPong and the Hello's heartbeat fields).
const (
	ProtocolVersion    = 2
	MinProtocolVersion = 1
)

// Hello is the first frame a parent sends on a new stream. It is a msgpack
// map, so fields can be added without breaking older peers: unknown keys are
// ignored and missing ones read as zero.
type Hello struct {
	Version  int      `msgpack:"version"`   // the lowest protocol version the parent speaks
	ID       uint32   `msgpack:"id"`        // the child's context id
	ParentID uint32   `msgpack:"parent_id"` // the context that started it
	Name     string   `msgpack:"name"`      // the child's full name, e.g. local.1/local.2
	MaxFrame int      `msgpack:"max_frame"` // largest frame body, inherited by every descendant
	LogLevel int      `msgpack:"log_level"` // slog level below which the child drops records
	Upward   []string `msgpack:"upward"`    // functions descendants may call in their ancestors
	Sideways bool     `msgpack:"sideways"`  // whether routers forward between sibling subtrees

	// MaxVersion is the highest protocol version the parent speaks (0: the
	// same as Version). A version-1 child knows only Version and requires
	// it to be 1, so Version stays the lowest.
	MaxVersion int `msgpack:"max_version"`
	// HeartbeatMS is how often, in milliseconds, each end pings a silent
	// stream (0: never), and HeartbeatMisses how many pings in a row may go
	// unanswered before the peer is declared dead. Version 2 and later.
	HeartbeatMS     int `msgpack:"heartbeat_ms"`
	HeartbeatMisses int `msgpack:"heartbeat_misses"`
	// Ancestors are the ids of the parent's own ancestors, the master
	// first (empty when the parent is the master); with ParentID, the
	// child's whole parent chain, which has authority over its services.
	Ancestors []uint32 `msgpack:"ancestors"`
}

// Versions returns the range of protocol versions the sender of h speaks.
func (h *Hello) Versions() (lo, hi int) {
	return h.Version, max(h.Version, h.MaxVersion)
}

// HelloReply is the child's answer to Hello.
type HelloReply struct {
	Version  int    `msgpack:"version"` // the version chosen (ChooseVersion), which both ends now speak
	ID       uint32 `msgpack:"id"`
	PID      int    `msgpack:"pid"`      // the child's OS process id
	Platform string `msgpack:"platform"` // GOOS/GOARCH
	Hash     string `msgpack:"hash"`     // sha256 of the child's executable, if known
	Error    string `msgpack:"error"`    // non-empty when the child refuses the stream
	Refusal  string `msgpack:"refusal"`  // why it refuses, as a Refusal* constant, when it says
}

// Refusals in a HelloReply.
const (
	// RefusalNoMain: the child program did not call actors.Main first; it
	// must not serve, nor start children of its own.
	RefusalNoMain = "no-main"
)

// RemoteError is the payload of a reply with FlagError.
type RemoteError struct {
	Code    string `msgpack:"code"`    // one of the Code* constants
	Type    string `msgpack:"type"`    // Go type of the remote error, or "panic"
	Message string `msgpack:"message"` // the error's text
	Stack   string `msgpack:"stack"`   // goroutine stack for panics
}

// Codes of a RemoteError.
const (
	CodeError    = "error"    // the function returned an error
	CodePanic    = "panic"    // the function panicked
	CodeUnknown  = "unknown"  // no function of that name is registered
	CodeArgs     = "args"     // the argument did not decode into the function's type
	CodeRefused  = "refused"  // the policy refused the call
	CodeNoRoute  = "no-route" // a router on the way had no route to the destination
	CodeShutdown = "shutdown" // the destination is shutting down
)

// LogRecord is one slog record or one line of output forwarded to the master.
type LogRecord struct {
	Time    time.Time `msgpack:"time"`
	Level   int       `msgpack:"level"`
	Message string    `msgpack:"msg"`
	Context string    `msgpack:"context"` // name of the context that made it
	Attrs   []Attr    `msgpack:"attrs"`
}

// Attr is one key/value pair of a LogRecord; Value is a string, number,
// bool or time.
type Attr struct {
	Key   string `msgpack:"k"`
	Value any    `msgpack:"v"`
}

// Control types (Header.Type of a KindControl envelope).
const (
	ControlAddRoute = "route.add"  // payload Routes: contexts now reachable through the sender
	ControlDelRoute = "route.del"  // payload Routes: contexts no longer reachable
	ControlGone     = "route.gone" // payload Routes, from the parent: contexts elsewhere in the tree are gone; fail what waits on them
	ControlShutdown = "shutdown"   // no payload: shut down descendants, then exit
	ControlPing     = "ping"       // no payload: answer with ControlPong, same ReqID (version 2)
	ControlPong     = "pong"       // no payload: the answer to ControlPing (version 2)
)

// Routes is the payload of route updates.
type Routes struct {
	IDs   []uint32 `msgpack:"ids"`
	Names []string `msgpack:"names"` // the contexts' names, parallel to IDs
	Err   string   `msgpack:"err"`   // why they went away, for ControlDelRoute
	// Cause is the stable code of the error that made them go away
	// (heartbeat, shutdown, eof...), for ControlDelRoute and ControlGone;
	// empty when there is none or it has no code. A receiver that does not
	// know a code keeps Err alone.
	Cause string `msgpack:"cause,omitempty"`
}
