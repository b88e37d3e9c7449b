package fakessh

import (
	"encoding/binary"
	"fmt"
	"io"
)

// The socket between the stand-in and the Server carries frames: a type
// byte, a 4-byte big-endian length and that many bytes.
const (
	frameRequest  = 'r' // stand-in → server: JSON request
	frameStdin    = 'i' // stand-in → server: bytes for the command's stdin
	frameStdinEOF = 'I' // stand-in → server: stdin ended
	frameStdout   = 'o' // server → stand-in: the command's stdout
	frameStderr   = 'e' // server → stand-in: the command's stderr
	frameExit     = 'x' // server → stand-in: 4-byte exit status; the end
	frameError    = 'E' // server → stand-in: why the command could not run; the end
	frameCredit   = 'c' // server → stand-in: 4 bytes: it may send that many more bytes of stdin
)

// maxFrame bounds a frame's length.
const maxFrame = 1 << 20

func writeFrame(w io.Writer, typ byte, data []byte) error {
	var hdr [5]byte
	hdr[0] = typ
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(data)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := w.Write(data)
	return err
}

// readFrame reads one frame; buf is reused when it is large enough.
func readFrame(r io.Reader, buf []byte) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > maxFrame {
		return 0, nil, fmt.Errorf("fakessh: frame of %d bytes (at most %d)", n, maxFrame)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		return 0, nil, err
	}
	return hdr[0], buf, nil
}
