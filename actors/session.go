package actors

import (
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A child context leads a session of its own (transport starts a local
// child with setsid; serveChild calls setsid in a child started through a
// shell). What its functions start stays in that session, whatever process
// group it is put in (proc.exec and proc.run give each command its own),
// unless it calls setsid itself. So when the child ends, everything still
// in its session is what its functions left behind: the child ends it
// (endSession), and where the child itself was killed, its parent on the
// same host does, when it reaps it.

// sessionGrace is how long the processes of a session get to exit after
// SIGTERM, before SIGKILL.
const sessionGrace = 2 * time.Second

// leadSession makes this process the leader of a new session, if it is not
// one already; it reports whether it leads its session.
func leadSession() bool {
	pid := os.Getpid()
	if sid, _ := unix.Getsid(0); sid == pid {
		return true
	}
	_, err := syscall.Setsid()
	return err == nil
}

// sessionMembers lists the live processes of session sid, other than this
// process. ok is false where /proc cannot tell.
//
// It lists /proc and asks each process's session with getsid(2), a
// syscall that opens nothing; only the few in the session have their
// /proc/PID/stat read, to leave out the dead waiting to be reaped. Reading
// every process's stat instead costs tens of microseconds each (several
// milliseconds of CPU on a machine running a few hundred processes), which
// every child's stop paid twice: in the child, and in the parent reaping it.
func sessionMembers(sid int) (pids []int, ok bool) {
	d, err := os.Open("/proc")
	if err != nil {
		return nil, false
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, false
	}
	self := os.Getpid()
	listed := false
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil || pid <= 0 {
			continue // not a process
		}
		listed = true
		if pid == self {
			continue
		}
		if s, err := unix.Getsid(pid); err != nil || s != sid {
			continue // gone meanwhile, or in another session
		}
		if alive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids, listed
}

// alive reports whether process pid is still running: not gone, and not
// dead already and waiting to be reaped (Z, X in /proc/PID/stat).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false // gone meanwhile
	}
	// pid (comm) state ...; comm may hold anything.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return false
	}
	f := strings.Fields(s[i+1:])
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

// endSession ends the processes of session sid other than this one: it
// sends SIGTERM, and SIGKILL to those still there after grace, or as soon
// as hurry is closed (nil: never). Where /proc
// cannot list the session, the process group sid (its leader's) gets
// SIGTERM only (this process ignores it from then on, as it is exiting). Signals this process may not send (another user's
// processes) are logged at debug level.
func endSession(sid int, grace time.Duration, hurry <-chan struct{}, logger *slog.Logger) {
	send := func(pid int, sig syscall.Signal) {
		if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			logger.Debug("cannot end a process left in a context's session", "session", sid, "pid", pid, "signal", sig.String(), "error", err)
		}
	}
	pids, ok := sessionMembers(sid)
	if !ok {
		if sid == os.Getpid() {
			signal.Ignore(syscall.SIGTERM) // this process is in the group too
		}
		send(-sid, syscall.SIGTERM)
		return
	}
	if len(pids) == 0 {
		return
	}
	for _, pid := range pids {
		send(pid, syscall.SIGTERM)
	}
	deadline := time.Now().Add(grace)
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
wait:
	for len(pids) > 0 && time.Now().Before(deadline) {
		select {
		case <-poll.C:
		case <-hurry:
			break wait
		}
		pids, _ = sessionMembers(sid)
	}
	for _, pid := range pids {
		send(pid, syscall.SIGKILL)
	}
}
