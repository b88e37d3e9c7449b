package cluster

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Each member advertises the hosts whose last connect from it failed, and
// why (Member.ConnectErrors): Status gathers them, and a call that found
// no owner names the last failure instead of only saying that nobody
// took the host.

// NoConnectError is the ErrNoOwner of a call to a host that no member
// could connect to: it carries the last connect failure a member
// advertised for the host.
type NoConnectError struct {
	Last ConnectError
	now  time.Time // when the error was made, for the "ago"
}

func (e *NoConnectError) Error() string {
	return fmt.Sprintf("no controller could connect to it: %s (last tried %s ago by member %s)",
		e.Last.Error, e.now.Sub(e.Last.At).Round(100*time.Millisecond), e.Last.Member)
}

// Is makes a NoConnectError match ErrNoOwner: the call did not run.
func (e *NoConnectError) Is(target error) bool { return target == ErrNoOwner }

// connectErrors returns, for each host, the latest connect failure the
// members advertise, sorted by host.
func connectErrors(members []Member) []ConnectError {
	last := map[string]ConnectError{}
	for _, m := range members {
		for _, ce := range m.ConnectErrors {
			if cur, ok := last[ce.Host]; !ok || ce.At.After(cur.At) {
				ce.Member = m.ID
				last[ce.Host] = ce
			}
		}
	}
	out := make([]ConnectError, 0, len(last))
	for _, ce := range last {
		out = append(out, ce)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Host < out[j].Host })
	return out
}

// noConnect returns the NoConnectError of host when a member advertises
// a failed connect to it, else err unchanged.
func (cl *Client) noConnect(ctx context.Context, host string, err error) error {
	js, jerr := jetstream.New(cl.nc)
	if jerr != nil {
		return err
	}
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), acceptWait)
	defer cancel()
	kv, kerr := js.KeyValue(lctx, memberBucket(cl.cluster))
	if kerr != nil {
		return err
	}
	members, lerr := listMembers(lctx, kv)
	if lerr != nil {
		return err
	}
	for _, ce := range connectErrors(members) {
		if ce.Host == host {
			return &NoConnectError{Last: ce, now: time.Now()}
		}
	}
	return err
}
