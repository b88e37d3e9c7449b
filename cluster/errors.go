package cluster

import (
	"errors"
	"fmt"

	"github.com/mitogo/mitogo/actors"
	"github.com/mitogo/mitogo/builtins"
)

// Causes of a failed cluster call or join, matched with errors.Is.
var (
	// ErrOutcomeUnknown: the call was sent, and its controller died,
	// went silent or stayed silent past the caller's deadline before it
	// answered, or the host's context died under it. The function may or
	// may not have run on the host, and nothing retried it.
	ErrOutcomeUnknown = errors.New("outcome unknown: the controller or the host's context went away before it answered")
	// ErrNoOwner: no member of the cluster drove the host while the call
	// waited for one (it is not in any member's inventory, or it stayed
	// between owners until the caller's deadline, or two lease TTLs).
	// The call did not run.
	ErrNoOwner = errors.New("no controller owns the host")
	// ErrNoCluster: the cluster named has no buckets on this NATS: no
	// member has ever joined it (a misspelt name, or another NATS). A call
	// to a host of such a cluster matches ErrNoOwner too: it did not run.
	ErrNoCluster = errors.New("no such cluster")
	// ErrNotOwner: the controller reached no longer holds the host's
	// lease (it expired or passed to another member). The call did not run.
	ErrNotOwner = errors.New("the controller no longer owns the host")
	// ErrFenced: the host refused the call because a newer owner took its
	// token. The call did not run.
	ErrFenced = errors.New("fenced: a newer owner holds the host")
	// ErrUnavailable: the owner has no healthy context to the host. The
	// call did not run.
	ErrUnavailable = errors.New("the host's context is down")
	// ErrExpired: the call's deadline had passed when the owner got to
	// it. The call did not run.
	ErrExpired = errors.New("the call's deadline passed before it started")
	// ErrCallFailed: the function ran on the host, or was refused there,
	// and failed; the message says how.
	ErrCallFailed = errors.New("the call failed on the host")
	// ErrVersion: a member or client speaks another version of the
	// cluster protocol.
	ErrVersion = errors.New("cluster protocol version mismatch")
	// ErrConfig: a controller's or client's configuration is unusable.
	ErrConfig = errors.New("bad cluster configuration")
	// ErrServerTooOld: the NATS server lacks what the cluster needs.
	ErrServerTooOld = errors.New("nats-server too old: a cluster needs 2.11 or later (KV limit markers)")
)

// noClusterError is ErrNoCluster naming the cluster; call: it failed a
// call, which matches ErrNoOwner too.
type noClusterError struct {
	cluster string
	call    bool
}

func (e *noClusterError) Error() string {
	return fmt.Sprintf("no cluster %q (no member has joined it)", e.cluster)
}

func (e *noClusterError) Is(target error) bool {
	return target == ErrNoCluster || (e.call && target == ErrNoOwner)
}

// HostError is a failed call to a host through the cluster: it names the
// host and the controller that owned it ("" when none answered).
type HostError struct {
	Host       string
	Controller string
	Err        error
}

func (e *HostError) Error() string {
	if e.Controller == "" {
		return fmt.Sprintf("host %s: %v", e.Host, e.Err)
	}
	return fmt.Sprintf("host %s (controller %s): %v", e.Host, e.Controller, e.Err)
}

func (e *HostError) Unwrap() error { return e.Err }

// wire error codes, one per sentinel a reply can carry.
const (
	codeNotOwner    = "not-owner"
	codeFenced      = "fenced"
	codeUnavailable = "unavailable"
	codeExpired     = "expired"
	codeCall        = "call"
	codeVersion     = "version"
	codeNotFound    = "not-found"        // a streamed run's command does not exist on the host
	codeUnknownFn   = "unknown-function" // no function of that name is registered on the host (also ErrCallFailed)
	codeUnknown     = "unknown"          // the call may have run: cut short on its controller or host (ErrOutcomeUnknown)
)

var codeErrors = map[string]error{
	codeNotOwner:    ErrNotOwner,
	codeFenced:      ErrFenced,
	codeUnavailable: ErrUnavailable,
	codeExpired:     ErrExpired,
	codeCall:        ErrCallFailed,
	codeVersion:     ErrVersion,
	codeNotFound:    builtins.ErrCommandNotFound,
	codeUnknownFn:   actors.ErrUnknownFunction,
	codeUnknown:     ErrOutcomeUnknown,
}

// remoteError is an error a controller or host reported, rebuilt from its
// code and message: errors.Is matches the code's sentinel.
type remoteError struct {
	code string
	msg  string
}

func (e *remoteError) Error() string {
	if s, ok := codeErrors[e.code]; ok && e.msg == "" {
		return s.Error()
	}
	if s, ok := codeErrors[e.code]; ok {
		return s.Error() + ": " + e.msg
	}
	return e.msg
}

func (e *remoteError) Is(target error) bool {
	if e.code == codeUnknownFn && target == ErrCallFailed {
		return true // refused on the host, as Client.Call says of ErrCallFailed
	}
	return codeErrors[e.code] == target && target != nil
}
