package transport

import "sync/atomic"

// DirectLimit bounds how many streams of a process are FDConns (see
// fdconn_linux.go): each has a thread waiting on it while its reader
// waits, where the runtime poller would wait for all of them on one. The
// first streams, a chain's hops and a handful of children, get the faster
// wake-ups; the rest of a large fleet of local children goes through the
// poller, which also wakes one thread for many replies at once (200 local
// children answering a fan-out took twice as long with a thread each).
// A nil *DirectLimit allows none.
type DirectLimit struct {
	max  int32
	used atomic.Int32
}

// NewDirectLimit allows n FDConns at once.
func NewDirectLimit(n int) *DirectLimit { return &DirectLimit{max: int32(n)} }

// take reserves one FDConn, if one is left: the caller must release it
// when its connection closes.
func (d *DirectLimit) take() bool {
	if d == nil || !fdConnSupported {
		return false
	}
	if d.used.Add(1) > d.max {
		d.used.Add(-1)
		return false
	}
	return true
}

func (d *DirectLimit) release() { d.used.Add(-1) }

// InUse is how many FDConns of d are open.
func (d *DirectLimit) InUse() int {
	if d == nil {
		return 0
	}
	return int(d.used.Load())
}
