package bootstrap

import "golang.org/x/sys/unix"

// pipeSize is what a child asks its stream's pipes to hold. sshd feeds a
// session's stdin through a pipe of 64 KiB by default in writes of an SSH
// packet (32 KiB): a bulk transfer then wakes the child twice per 64 KiB
// and stalls sshd whenever the child is a moment late. 1 MiB is the most
// an unprivileged process may ask for (fs.pipe-max-size).
const pipeSize = 1 << 20

// growPipe asks the pipe at fd, if it is one, to hold pipeSize bytes;
// failing (not a pipe, a lower limit) changes nothing.
func growPipe(fd int) {
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		return
	}
	unix.FcntlInt(uintptr(fd), unix.F_SETPIPE_SZ, pipeSize)
}
