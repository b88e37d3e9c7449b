package bootstrap

import (
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/mitogo/mitogo/transport"
)

// Detect reports whether this process was started as a child context and
// returns how to find its stream. It removes the marker from the
// environment, so programs the child runs are not mistaken for children.
func Detect() (spec string, ok bool) {
	spec = os.Getenv(transport.EnvChild)
	if spec == "" {
		return "", false
	}
	os.Unsetenv(transport.EnvChild)
	return spec, true
}

// OpenStream opens the stream that spec names: "fd:N" is an inherited
// descriptor holding a socket.
func OpenStream(spec string) (io.ReadWriteCloser, error) {
	fdText, ok := strings.CutPrefix(spec, "fd:")
	if !ok {
		return nil, fmt.Errorf("unsupported %s=%q (want fd:N)", transport.EnvChild, spec)
	}
	fd, err := strconv.Atoi(fdText)
	if err != nil || fd < 3 {
		return nil, fmt.Errorf("bad %s=%q: want a descriptor number of 3 or more", transport.EnvChild, spec)
	}
	f := os.NewFile(uintptr(fd), "mitogo-stream")
	if f == nil {
		return nil, fmt.Errorf("descriptor %d is not open", fd)
	}
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("descriptor %d is not the stream: %w", fd, err)
	}
	return c, nil
}
