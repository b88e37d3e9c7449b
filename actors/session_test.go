package actors_test

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mitogo/mitogo/actors"
	"github.com/mitogo/mitogo/builtins"
)

// spawnSleep starts `sleep 1000` and leaves it running, as a function that
// forgets what it started would.
var spawnSleep = actors.Register("test.spawnSleep", func(ctx context.Context, _ struct{}) (int, error) {
	cmd := exec.Command("sleep", "1000")
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	go cmd.Wait()
	return cmd.Process.Pid, nil
})

// sleeps starts two sleeps in c that outlive the calls that started them:
// one with os/exec in a function, one with proc.run (in a process group of
// its own). It returns their pids and a function that waits for proc.run's
// caller to return.
func sleeps(t *testing.T, r *actors.Router, c *actors.Context) (pids []int, wait func()) {
	t.Helper()
	pid, err := spawnSleep.Call(ctxT(t), c, struct{}{})
	if err != nil {
		t.Fatal(err)
	}
	pids = append(pids, pid)
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer pw.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		builtins.Run(ctx, r, c, builtins.RunRequest{Argv: []string{"sh", "-c", "echo $$; exec sleep 1000"}}, nil, pw, io.Discard)
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	pid, perr := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || perr != nil {
		t.Fatalf("proc.run's pid: %q %v %v", line, err, perr)
	}
	go io.Copy(io.Discard, pr)
	pids = append(pids, pid)
	for _, pid := range pids {
		if !alive(pid) {
			t.Fatalf("sleep %d is not running", pid)
		}
	}
	return pids, func() { <-done }
}

// alive reports whether process pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

// waitGone waits until none of pids is alive, failing after a generous
// deadline; it kills what is left then.
func waitGone(t *testing.T, pids []int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for _, pid := range pids {
		for alive(pid) {
			if time.Now().After(deadline) {
				t.Errorf("process %d, started by a function, survived", pid)
				syscall.Kill(pid, syscall.SIGKILL)
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// childFor starts the child of a lifecycle test: local, or through sudo.
func childFor(t *testing.T, r *actors.Router, method string) *actors.Context {
	t.Helper()
	if method == "local" {
		return local(t, r)
	}
	needSudo(t)
	c, err := r.Sudo(ctxT(t), actors.User("mitogo-test"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// What functions started in a child ends with the child's Shutdown.
func TestShutdownEndsWhatFunctionsStarted(t *testing.T) {
	for _, method := range []string{"local", "sudo"} {
		t.Run(method, func(t *testing.T) {
			r, err := actors.NewRouter(actors.WithLogger(discard()))
			if err != nil {
				t.Fatal(err)
			}
			c := childFor(t, r, method)
			pids, wait := sleeps(t, r, c)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := r.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			wait()
			waitGone(t, pids)
		})
	}
}

// What functions started in a child that was killed is ended by its
// parent when it reaps the child.
func TestKilledChildsProcessesEnd(t *testing.T) {
	for _, method := range []string{"local", "sudo"} {
		t.Run(method, func(t *testing.T) {
			r := newRouter(t)
			c := childFor(t, r, method)
			pids, wait := sleeps(t, r, c)
			if err := syscall.Kill(c.ProcessID(), syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			wait()
			waitGone(t, pids)
		})
	}
}
