package main

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mitogo/mitogo/test/sshtest"
)

func TestHeartbeatFlag(t *testing.T) {
	for _, tc := range []struct {
		in     string
		want   heartbeatFlag
		errors bool
	}{
		{in: "5s", want: heartbeatFlag{set: true, interval: 5 * time.Second}},
		{in: "200ms,4", want: heartbeatFlag{set: true, interval: 200 * time.Millisecond, misses: 4}},
		{in: "off", want: heartbeatFlag{set: true, interval: -1}},
		{in: "0s", errors: true},
		{in: "-1s", errors: true},
		{in: "5", errors: true},
		{in: "5s,0", errors: true},
		{in: "5s,x", errors: true},
		{in: "", errors: true},
	} {
		var h heartbeatFlag
		err := h.Set(tc.in)
		if tc.errors {
			if err == nil {
				t.Errorf("--heartbeat %q accepted as %+v", tc.in, h)
			}
			continue
		}
		if err != nil || h != tc.want || len(h.options()) != 1 {
			t.Errorf("--heartbeat %q: %+v, %v; want %+v", tc.in, h, err, tc.want)
		}
		var again heartbeatFlag
		if err := again.Set(h.String()); err != nil || again != h {
			t.Errorf("--heartbeat %q prints as %q, which reads back as %+v, %v", tc.in, h.String(), again, err)
		}
	}
	var unset heartbeatFlag
	if unset.options() != nil {
		t.Error("no --heartbeat: want the methods' defaults, got an option")
	}
}

// A context that its parent took for dead (it was stopped past its
// heartbeats) and that wakes up after the parent left still ends what it
// was running: the command does not outlive it, re-parented to init. Over
// ssh, where the context's stdout and stderr are pipes that sshd closed,
// and locally.
func TestRunDisownedContextEndsItsCommand(t *testing.T) {
	s := sshtest.Start(t)
	for _, target := range []string{"local", "ssh://" + s.User + "@" + s.Addr} {
		t.Run(strings.Split(target, ":")[0], func(t *testing.T) {
			disownedContextEndsItsCommand(t, "-t", target, "--identity", s.ClientKey, "--known-hosts", s.KnownHosts)
		})
	}
}

func disownedContextEndsItsCommand(t *testing.T, flags ...string) {
	args := append(append([]string{"run", "--heartbeat", "200ms,3"}, flags...), "--", "sh", "-c", "echo $$; exec sleep 300")
	cmd, line, stderr := startReading(t, args...)
	sleepPID, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("pid line %q", line)
	}
	defer syscall.Kill(sleepPID, syscall.SIGKILL)
	far := parentOf(t, sleepPID) // the context that runs the command
	if err := syscall.Kill(far, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(far, syscall.SIGKILL)
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 255 {
		t.Errorf("exit %d, stderr %q; want 255 (the context is gone)", code, stderr.String())
	}
	syscall.Kill(far, syscall.SIGCONT)
	waitGone(t, sleepPID)
}

// parentOf returns the parent pid of process pid, from /proc.
func parentOf(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		t.Fatalf("/proc/%d/stat: %q", pid, s)
	}
	return ppid
}
