package actors_test

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/mitogo/mitogo/actors"
	"go.uber.org/goleak"
)

func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func TestShutdownLeavesNothing(t *testing.T) {
	fds := openFDs(t)
	goroutines := goleak.IgnoreCurrent()
	r, err := actors.NewRouter(actors.WithLogger(discard()))
	if err != nil {
		t.Fatal(err)
	}
	c1 := local(t, r)
	c2 := local(t, r, actors.Via(c1))
	c3 := local(t, r)
	c4 := local(t, r, actors.Via(c3), actors.Supervise(actors.Restart(time.Millisecond, time.Second, 3, time.Minute)))
	p := sleepy.Go(ctxT(t), c2, time.Hour) // a call in flight during shutdown
	waitRunning(t, c2)
	var pids []int
	for _, c := range []*actors.Context{c1, c2, c3, c4} {
		pids = append(pids, c.ProcessID())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := r.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Wait(); err == nil {
		t.Fatal("call in flight survived shutdown")
	}
	for i, pid := range pids {
		if err := syscall.Kill(pid, 0); err != syscall.ESRCH {
			t.Errorf("child %d (pid %d) still exists after Shutdown: %v", i+1, pid, err)
		}
	}
	for _, c := range []*actors.Context{c1, c2, c3, c4} {
		select {
		case <-c.Done():
		default:
			t.Errorf("%s not Done after Shutdown", c.Name())
		}
	}
	if n := openFDs(t); n > fds {
		t.Errorf("%d file descriptors open after Shutdown, %d before", n, fds)
	}
	goleak.VerifyNone(t, goroutines, goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"))
	if _, err := r.Local(ctx); err == nil {
		t.Fatal("Local after Shutdown succeeded")
	}
}

// Shutdown ends a first connect in flight at once: the connect fails with
// ErrShutdown, not at its own (hour-long) timeout, and Shutdown returns
// within its ctx, leaving no goroutine behind.
func TestShutdownCancelsConnectInFlight(t *testing.T) {
	t.Run("local", func(t *testing.T) {
		// A program that starts and never answers the handshake; it
		// says so through a fifo, so the test knows the connect is in
		// the handshake.
		fifo := filepath.Join(t.TempDir(), "up")
		if err := syscall.Mkfifo(fifo, 0o600); err != nil {
			t.Fatal(err)
		}
		shutdownDuringConnect(t, func() {
			f, err := os.Open(fifo) // returns once the child opened it to write
			if err != nil {
				t.Error(err)
				return
			}
			f.Close()
		}, func(r *actors.Router) error {
			_, err := r.Local(context.Background(), actors.Executable("/bin/sh", "-c", `echo up >"$0"; exec sleep 3600`, fifo),
				actors.ConnectTimeout(time.Hour))
			return err
		})
	})
	t.Run("ssh", func(t *testing.T) {
		// A listener that accepts and never answers: the SSH handshake
		// hangs.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		accepted := make(chan net.Conn, 1)
		go func() {
			c, err := l.Accept()
			if err == nil {
				accepted <- c
			}
			close(accepted)
		}()
		shutdownDuringConnect(t, func() {
			if c, ok := <-accepted; ok {
				t.Cleanup(func() { c.Close() })
			}
		}, func(r *actors.Router) error {
			_, err := r.SSH(context.Background(), l.Addr().String(), actors.SSHConfig("none"), actors.ConnectTimeout(time.Hour))
			return err
		})
	})
}

// shutdownDuringConnect starts connect, waits until inFlight returns, and
// shuts the router down.
func shutdownDuringConnect(t *testing.T, inFlight func(), connect func(*actors.Router) error) {
	goroutines := goleak.IgnoreCurrent()
	r, err := actors.NewRouter(actors.WithLogger(discard()))
	if err != nil {
		t.Fatal(err)
	}
	connectErr := make(chan error, 1)
	go func() { connectErr <- connect(r) }()
	inFlight()
	shutdownErr := make(chan error, 1)
	go func() {
		// The ctx is long, so that Shutdown ends on its own account; the
		// guard below only catches a hang.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		shutdownErr <- r.Shutdown(ctx)
	}()
	guard := time.NewTimer(time.Minute)
	defer guard.Stop()
	select {
	case err := <-shutdownErr:
		if err != nil {
			t.Errorf("Shutdown: %v (it waited for the connect to its deadline)", err)
		}
	case <-guard.C:
		t.Fatal("Shutdown did not return while a connect was in flight")
	}
	err = <-connectErr
	var se *actors.StreamError
	if !errors.As(err, &se) || !errors.Is(err, actors.ErrShutdown) {
		t.Fatalf("connect during Shutdown: want a *StreamError matching ErrShutdown, got %T %v", err, err)
	}
	goleak.VerifyNone(t, goroutines, goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"))
}

// spawnStubborn starts a process that ignores SIGTERM and leaves it
// running in the child's session.
var spawnStubborn = actors.Register("test.spawnStubborn", func(ctx context.Context, _ struct{}) (int, error) {
	cmd := exec.Command("sh", "-c", `trap "" TERM; exec sleep 1000`)
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	go cmd.Wait()
	return cmd.Process.Pid, nil
})

// Shutdown returns soon after its ctx ends, whatever its children do: here
// a child that is stopped (it never answers the shutdown request) and
// leaves a process that ignores SIGTERM in its session, whose grace period
// is an hour. Shutdown kills both rather than wait for the grace period.
func TestShutdownNeverOutlivesItsCtx(t *testing.T) {
	r, err := actors.NewRouter(actors.WithLogger(discard()))
	if err != nil {
		t.Fatal(err)
	}
	actors.SetReapGrace(r, time.Hour)
	c := local(t, r)
	stubborn, err := spawnStubborn.Call(ctxT(t), c, struct{}{})
	if err != nil {
		t.Fatal(err)
	}
	pid := c.ProcessID()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Shutdown(ctx) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Shutdown = %v, want its ctx's error", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Shutdown still running 20 s after its ctx ended")
	}
	if err := syscall.Kill(pid, 0); err != syscall.ESRCH {
		t.Errorf("the stopped child (pid %d) still exists after Shutdown: %v", pid, err)
	}
	waitGone(t, []int{stubborn})
	// What Shutdown left to its goroutines, a second Shutdown joins.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel2()
	if err := r.Shutdown(ctx2); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
}
