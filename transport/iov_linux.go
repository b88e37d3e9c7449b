package transport

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
