package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/mitogo/mitogo/actors"
	"github.com/mitogo/mitogo/test/sshtest"
	"go.uber.org/goleak"
)

// The test binary is also the program the contexts run.
func TestMain(m *testing.M) {
	actors.Main()
	if os.Getenv("GORACE") == "" {
		os.Setenv("GORACE", "atexit_sleep_ms=0") // children built with -race otherwise sleep 1s at exit
	}
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"))
}

// The fleet keeps two contexts alive through a real sshd: each time the
// remote process of one is killed it is restarted under the same name with
// a new process, and once it has failed more often than the limit within
// the window the fleet escalates: both contexts are shut down and
// Supervise gives up.
func TestSuperviseOverSSH(t *testing.T) {
	s := sshtest.Start(t)
	r, err := actors.NewRouter(actors.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := r.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	}()
	victim, other := s.Addr, s.User+"@"+s.Addr
	events := make(chan Event, 100)
	cfg := Config{
		Targets:  []string{victim, other},
		Options:  []actors.ConnectOption{actors.IdentityFile(s.ClientKey), actors.KnownHosts(s.KnownHosts), actors.SSHConfig("none")},
		Strategy: actors.Restart(10*time.Millisecond, 50*time.Millisecond, 2, time.Minute),
		Logger:   slog.New(slog.DiscardHandler),
		Events:   events,
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Supervise(ctx, r, cfg) }()

	up := map[string]int{}
	for len(up) < 2 {
		e := expect(t, events, "", "up")
		up[e.Target] = e.PID
	}
	pid := up[victim]
	for i := 1; i <= 2; i++ { // two failures within the window: restarted each time
		kill(t, pid)
		if e := expect(t, events, victim, "lost"); !isChannelError(e.Err) {
			t.Fatalf("failure %d: lost with %v, want a *ChannelError", i, e.Err)
		}
		e := expect(t, events, victim, "restarted")
		if e.PID == pid || e.PID == 0 {
			t.Fatalf("failure %d: restarted as pid %d (was %d)", i, e.PID, pid)
		}
		pid = e.PID
	}
	kill(t, pid) // the third, past the limit of 2: the fleet gives up
	expect(t, events, victim, "lost")
	expect(t, events, "", "escalated")
	stopped := map[string]bool{}
	for len(stopped) < 2 {
		stopped[expect(t, events, "", "stopped").Target] = true
	}
	if !stopped[victim] || !stopped[other] {
		t.Fatalf("stopped: %v", stopped)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrGaveUp) || !isChannelError(err) {
			t.Fatalf("Supervise: %v, want ErrGaveUp wrapping a *ChannelError", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Supervise did not return after the escalation")
	}
	// The healthy target's process was shut down with its fleet.
	deadline := time.Now().Add(20 * time.Second)
	for syscall.Kill(up[other], 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("the other target's process %d is still there", up[other])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// expect waits for the next event and checks its state, and its target
// unless target is "".
func expect(t *testing.T, events <-chan Event, target, state string) Event {
	t.Helper()
	select {
	case e := <-events:
		if e.State != state || (target != "" && e.Target != target) {
			for len(events) > 0 {
				t.Logf("then %+v", <-events)
			}
			t.Fatalf("event %+v, want %q of %q", e, state, target)
		}
		return e
	case <-time.After(20 * time.Second):
		t.Fatalf("no %q of %q within 20s", state, target)
	}
	return Event{}
}

func kill(t *testing.T, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill %d: %v", pid, err)
	}
}

func isChannelError(err error) bool {
	var ce *actors.ChannelError
	return errors.As(err, &ce)
}
