//go:build !linux

package transport

import (
	"errors"
	"io"
	"time"
)

// FDConn is Linux's (ppoll, eventfd): elsewhere a stream's descriptors go
// through the runtime's poller, and NewFDConn always fails.
type FDConn struct {
	io.ReadWriteCloser
	release func()
}

// SetDeadline is never reached: NewFDConn makes no FDConn here.
func (*FDConn) SetDeadline(time.Time) error { return errNoFDConn }

// SetReadDeadline is never reached: NewFDConn makes no FDConn here.
func (*FDConn) SetReadDeadline(time.Time) error { return errNoFDConn }

var errNoFDConn = errors.New("FDConn needs Linux")

const fdConnSupported = false

// NewFDConn fails outside Linux; callers use the runtime's poller instead.
func NewFDConn(rfd, wfd int, name string) (*FDConn, error) { return nil, errNoFDConn }
