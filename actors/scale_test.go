package actors_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mitogo/mitogo/actors"
	"github.com/mitogo/mitogo/test/sshtest"
)

// Two hundred targets in one run: 178 local children, 20 contexts through
// a real sshd, one host that refuses connections and one whose mitogo
// process is stopped (SIGSTOP) behind the live sshd. ConnectAll reports
// the refused one and starts the rest; a Fan over those gives a result
// for every one of them, the stopped one's a *ChannelError matching
// ErrHeartbeat (its stream's heartbeat, not a deadline, ends its call),
// and nothing waits for the bad ones.
func TestFleetOfTwoHundred(t *testing.T) {
	if testing.Short() {
		t.Skip("200 processes")
	}
	const locals, sshs = 178, 20
	s := sshtest.Start(t)
	r := newRouter(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute) // guards against a hang only
	defer cancel()

	var targets []actors.ConnectTarget
	for i := range locals {
		name := fmt.Sprintf("local%03d", i)
		targets = append(targets, actors.ConnectTarget{Name: name, Connect: func(ctx context.Context, r *actors.Router) (*actors.Context, error) {
			return r.Local(ctx, actors.Name(name))
		}})
	}
	for i := range sshs {
		name := fmt.Sprintf("ssh%02d", i)
		targets = append(targets, actors.ConnectTarget{Name: name, Connect: func(ctx context.Context, r *actors.Router) (*actors.Context, error) {
			return r.SSH(ctx, s.Addr, sshTo(s, actors.Name(name), actors.Heartbeat(200*time.Millisecond, 3))...)
		}})
	}
	closed := sshtest.ClosedPort(t)
	targets = append(targets, actors.ConnectTarget{Name: "refusing", Connect: func(ctx context.Context, r *actors.Router) (*actors.Context, error) {
		return r.SSH(ctx, closed, actors.SSHConfig("none"), actors.Name("refusing"))
	}})
	if len(targets) != 199 {
		t.Fatalf("%d targets to connect", len(targets))
	}

	conns := r.ConnectAll(ctx, targets, actors.Limit(16), actors.TargetTimeout(time.Minute))
	failed := conns.Failed()
	if len(failed) != 1 || failed[0].Name != "refusing" || !errors.Is(failed[0].Err, syscall.ECONNREFUSED) {
		t.Fatalf("failed to connect: %v; want only the refusing host, with ECONNREFUSED", conns.Err())
	}
	contexts := conns.Contexts()
	if len(contexts) != locals+sshs {
		t.Fatalf("%d contexts started", len(contexts))
	}

	// The 200th target: an SSH context whose process is then stopped.
	hung, err := r.SSH(ctx, s.Addr, sshTo(s, actors.Name("hang"), actors.Heartbeat(200*time.Millisecond, 3))...)
	if err != nil {
		t.Fatal(err)
	}
	id, err := whoami.Call(ctx, hung, struct{}{})
	if err != nil {
		t.Fatal(err)
	}
	stop(t, id.PID)
	contexts = append(contexts, hung)

	seen := make([]bool, len(contexts))
	ok := 0
	for res := range fanName.Fan(ctx, contexts, struct{}{}, actors.Limit(64), actors.TargetTimeout(time.Minute)) {
		if seen[res.Index] {
			t.Fatalf("a second result for %s", res.Target)
		}
		seen[res.Index] = true
		if res.Target == hung {
			var ce *actors.ChannelError
			if !errors.As(res.Err, &ce) || !errors.Is(res.Err, actors.ErrHeartbeat) || ce.Context != hung.Name() {
				t.Errorf("the stopped context: %T %v; want a *ChannelError matching ErrHeartbeat", res.Err, res.Err)
			}
			continue
		}
		if res.Err != nil || res.Value != res.Target.Name() {
			t.Errorf("%s: %q, %v", res.Target, res.Value, res.Err)
			continue
		}
		ok++
	}
	for i, s := range seen {
		if !s {
			t.Errorf("no result for %s", contexts[i])
		}
	}
	if ok != locals+sshs {
		t.Fatalf("%d targets answered, want %d", ok, locals+sshs)
	}
	if n := len(contexts) + len(failed); n != 200 || !strings.HasPrefix(hung.Name(), "hang") {
		t.Fatalf("%d targets in all", n)
	}
}
