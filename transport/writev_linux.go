package transport

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// WritevRaw writes all of bufs to the descriptor of rc in as few writev(2)
// calls as it can, waiting in the runtime poller if the descriptor is one
// it polls and is full. It is for a stream's writer on a file the runtime
// does not write vectors to (os.File: one write(2) per buffer, so a
// frame's header and payload left apart, and an SSH session's peer sent
// each in a packet of its own). It may change the slices in bufs.
func WritevRaw(rc syscall.RawConn, bufs [][]byte) (int64, error) {
	var total int64
	var werr error
	iov := consumed(bufs, 0)
	err := rc.Write(func(fd uintptr) bool {
		for len(iov) > 0 {
			n, err := unix.Writev(int(fd), iovBatch(iov))
			switch {
			case err == unix.EINTR:
				continue
			case err == unix.EAGAIN:
				return false // the poller waits for room
			case err != nil:
				werr = err
				return true
			}
			total += int64(n)
			iov = consumed(iov, n)
		}
		return true
	})
	if err == nil {
		err = werr
	}
	return total, err
}

// iovBatch is the most of iov one writev(2) takes (IOV_MAX).
func iovBatch(iov [][]byte) [][]byte {
	if len(iov) > 1024 {
		return iov[:1024]
	}
	return iov
}

// consumed drops the first n bytes written from iov, and the empty
// buffers that lead what is left (so a loop until it is empty ends), by
// changing iov's slices in place.
func consumed(iov [][]byte, n int) [][]byte {
	for len(iov) > 0 && n >= len(iov[0]) {
		n -= len(iov[0])
		iov = iov[1:]
	}
	if n > 0 {
		iov[0] = iov[0][n:]
	}
	return iov
}
