//go:build linux

package transport

import (
	"os"

	"golang.org/x/sys/unix"
)

// awaitExit returns once the process pid, a child of this process, has
// exited, and leaves it unreaped for exec.Cmd.Wait. It waits in Go's
// network poller on a pidfd, as a read of a socket waits, so that a
// context's process costs no OS thread while it runs: exec.Cmd.Wait alone
// blocks a thread in waitid for the child's whole life, one thread per
// connected context. Where a pidfd cannot be had or polled (a kernel before
// 5.10), it returns at once and the caller's Wait blocks as before.
func awaitExit(pid int) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	// A pidfd reads as readable once its process has exited.
	_ = rc.Read(func(fd uintptr) bool {
		p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(p, 0)
		return err != nil || (n > 0 && p[0].Revents != 0)
	})
}
