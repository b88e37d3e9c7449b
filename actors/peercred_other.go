//go:build !linux

package actors

import (
	"errors"
	"net"
)

// peerCred is only known on Linux (SO_PEERCRED); elsewhere attaching is
// refused rather than allowed unchecked.
func peerCred(*net.UnixConn) (uid, pid int, err error) {
	return -1, 0, errors.New("the peer's user cannot be checked on this system (SO_PEERCRED is Linux's)")
}
