package actors

import (
	"bufio"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// sessionMembers lists the processes of a session, the leader and what it
// left running alike, and leaves out a member that died and waits to be
// reaped.
func TestSessionMembers(t *testing.T) {
	// A session of two: sh becomes sleep (the leader), after starting
	// another sleep in the background and printing its pid.
	cmd := exec.Command("sh", "-c", "sleep 1000 & echo $!; exec sleep 1000")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	leader := cmd.Process.Pid
	reaped := false
	defer func() {
		if !reaped {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	other, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("background pid %q: %v", line, err)
	}
	defer syscall.Kill(other, syscall.SIGKILL) // reparented: init reaps it

	pids, ok := sessionMembers(leader)
	if !ok {
		t.Fatal("sessionMembers: /proc cannot tell")
	}
	slices.Sort(pids)
	want := []int{leader, other}
	slices.Sort(want)
	if !slices.Equal(pids, want) {
		t.Fatalf("session %d: members %v, want %v", leader, pids, want)
	}

	// The leader killed and not reaped yet is a zombie: no longer a member.
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	var info unix.Siginfo
	if err := unix.Waitid(unix.P_PID, leader, &info, unix.WEXITED|unix.WNOWAIT, nil); err != nil {
		t.Fatal(err)
	}
	pids, _ = sessionMembers(leader)
	if !slices.Equal(pids, []int{other}) {
		t.Fatalf("session %d with its leader dead, not reaped: members %v, want [%d]", leader, pids, other)
	}
	cmd.Wait()
	reaped = true

	// This process is never listed, though it is in its own session.
	self, err := unix.Getsid(0)
	if err != nil {
		t.Fatal(err)
	}
	pids, _ = sessionMembers(self)
	if slices.Contains(pids, unix.Getpid()) {
		t.Fatalf("sessionMembers(%d) lists this process: %v", self, pids)
	}
}
