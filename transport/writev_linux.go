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
// each in a packet of its own).
func WritevRaw(rc syscall.RawConn, bufs [][]byte) (int64, error) {
	var total int64
	var werr error
	iov := nonEmpty(bufs)
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

// nonEmpty returns the non-empty buffers of bufs, in a slice of its own.
func nonEmpty(bufs [][]byte) [][]byte {
	iov := make([][]byte, 0, len(bufs))
	for _, b := range bufs {
		if len(b) > 0 {
			iov = append(iov, b)
		}
	}
	return iov
}

// iovBatch is the most of iov one writev(2) takes (IOV_MAX).
func iovBatch(iov [][]byte) [][]byte {
	if len(iov) > 1024 {
		return iov[:1024]
	}
	return iov
}

// consumed drops the first n bytes written from iov.
func consumed(iov [][]byte, n int) [][]byte {
	for n > 0 && len(iov) > 0 {
		if n >= len(iov[0]) {
			n -= len(iov[0])
			iov = iov[1:]
		} else {
			iov[0] = iov[0][n:]
			n = 0
		}
	}
	return iov
}
