package actors_test

import (
	"context"
	"os"
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
