package cluster

import (
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// ProtocolVersion is the version of the messages members and clients
// exchange. Members of one cluster must speak the same: a controller of
// another version refuses to join (ErrVersion), and a request of another
// version is refused.
//
// 2: streamed runs, handover requests, outcome-unknown and not-found codes;
// 3: leases and fencing tokens carry the lease bucket's generation.
const ProtocolVersion = 3

// beatInterval is how often an owner tells a caller that a call is still
// running; silentAfter without a word and the caller takes the owner for
// gone (ErrOutcomeUnknown).
const (
	beatInterval = 500 * time.Millisecond
	silentAfter  = 4 * beatInterval
	acceptWait   = 3 * time.Second // how long a caller waits for an owner to take a call
)

// request is a call to a host, sent to the host's subject.
type request struct {
	V        int                `msgpack:"v"`
	Fn       string             `msgpack:"fn"`
	Args     msgpack.RawMessage `msgpack:"args"`
	Deadline int64              `msgpack:"deadline,omitempty"` // unix ns; 0: none
	From     string             `msgpack:"from,omitempty"`
	Stream   *streamSpec        `msgpack:"stream,omitempty"` // a streamed run: Fn is proc.run
}

// reply kinds: an owner answers a request with replyAccept at once,
// replyBeat while the call runs, and one replyFinal.
const (
	replyAccept = 1
	replyBeat   = 2
	replyFinal  = 3
	replyOutput = 4 // a streamed run's output item (Seq, Stream, Data)
	replyInAck  = 5 // a streamed run's stdin consumed up to Seq
)

type reply struct {
	Kind       int                `msgpack:"kind"`
	Controller string             `msgpack:"controller"`
	Epoch      uint64             `msgpack:"epoch,omitempty"`
	Gen        uint64             `msgpack:"gen,omitempty"` // the epoch's generation
	Result     msgpack.RawMessage `msgpack:"result,omitempty"`
	Code       string             `msgpack:"code,omitempty"` // "" when the call succeeded
	Msg        string             `msgpack:"msg,omitempty"`

	// A streamed run's: the owner's control subject (in the accept),
	// an output item's or acknowledgement's sequence number (in the
	// final reply: the last output item's), its stream and bytes.
	Ctl    string `msgpack:"ctl,omitempty"`
	Seq    uint64 `msgpack:"seq,omitempty"`
	Stream int    `msgpack:"stream,omitempty"`
	Data   []byte `msgpack:"data,omitempty"`
}

// lease is a host lease's value in the lease bucket.
type lease struct {
	Owner string    `json:"owner"`
	Epoch uint64    `json:"epoch"`         // the revision that created the lease (kept when its owner claims it again after it lapsed): the host's fencing token
	Gen   uint64    `json:"gen,omitempty"` // the generation of the bucket Epoch was taken in (bucket.go): the token's first half
	Since time.Time `json:"since"`
	Ready bool      `json:"ready,omitempty"` // connected, fenced and serving calls
	// Handover is written by an owner that releases the lease on
	// purpose (Why*) just before it deletes it.
	Handover string `json:"handover,omitempty"`
}

// token is the lease's fencing token.
func (l lease) token() fenceToken { return fenceToken{Gen: l.Gen, Epoch: l.Epoch} }

// Member is a live controller as it advertises itself in the member
// bucket (see Client.Status).
type Member struct {
	ID           string    `json:"id"`
	Hostname     string    `json:"hostname"`
	PID          int       `json:"pid"`
	Version      int       `json:"version"`
	Started      time.Time `json:"started"`
	Hosts        int       `json:"hosts"`                   // hosts it drives now
	Takeovers    int       `json:"takeovers"`               // hosts it took over after another owner
	LastTakeover time.Time `json:"last_takeover"`           // when it last did
	LastMove     *Move     `json:"last_move,omitempty"`     // the last host it took from another member
	LastFailover *Move     `json:"last_failover,omitempty"` // the last one it took after a failure
	Build        string    `json:"build,omitempty"`         // its build (Config.Build)
	Draining     bool      `json:"draining,omitempty"`      // drained: it claims no host
	// ConnectErrors are the hosts whose last connect from this member
	// failed, sorted by host; a connect that works clears its host's.
	ConnectErrors []ConnectError `json:"connect_errors,omitempty"`
}

// ConnectError is a host's last failed connect from a member.
type ConnectError struct {
	Host   string    `json:"host"`
	Member string    `json:"member,omitempty"` // who tried (in Status.ConnectErrors; "" in a member's own entry)
	Error  string    `json:"error"`
	At     time.Time `json:"at"` // when the connect gave up
}

// Move is a host passing from one member to another.
type Move struct {
	Host string    `json:"host"`
	From string    `json:"from"`
	To   string    `json:"to"`
	Why  string    `json:"why"` // Why*
	At   time.Time `json:"at"`
}
