package transport

import (
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Processes that run hold no OS thread of their parent while it waits for
// them: 40 of them do not add 40 threads.
func TestWaitingForProcessesHoldsNoThread(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("pidfds are Linux's")
	}
	const n = 40
	before := threads(t)
	children := make([]*Child, 0, n)
	defer func() {
		for _, c := range children {
			c.Proc.Kill()
			c.Proc.Wait()
			c.Conn.Close()
			c.Output.Close()
		}
	}()
	for range n {
		c, err := StartCommand([]string{"sleep", "600"}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		children = append(children, c)
	}
	// Once every waiter is waiting, count the threads.
	for deadline := time.Now().Add(30 * time.Second); waiting() < n; {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d processes waited for after 30s", waiting(), n)
		}
		runtime.Gosched()
	}
	if got := threads(t); got-before >= n/2 {
		t.Fatalf("%d threads while waiting for %d processes, %d before: a thread per process", got, n, before)
	}
	for _, c := range children[:1] {
		c.Proc.Kill()
		if err := c.Proc.Wait(); err == nil || !strings.Contains(c.Proc.Status(), "killed") {
			t.Fatalf("killed process: Wait %v, status %q; want an error and \"signal: killed\"", err, c.Proc.Status())
		}
	}
}

// waiting counts the goroutines blocked waiting for a process
// (execProcess): in the poller or in a system call.
func waiting() int {
	buf := make([]byte, 1<<20)
	n := 0
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		header, _, _ := strings.Cut(g, "\n")
		if strings.Contains(g, "transport.execProcess.func1(") && (strings.Contains(header, "[IO wait") || strings.Contains(header, "[syscall")) {
			n++
		}
	}
	return n
}

func threads(t *testing.T) int {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	return len(tasks)
}
