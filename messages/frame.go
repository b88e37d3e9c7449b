package messages

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// DefaultMaxFrame is the largest frame body accepted when nothing else is
// configured: 128 MiB, as in Mitogen.
const DefaultMaxFrame = 128 << 20

// FrameHeaderLen is the size of the length prefix in front of every frame body.
const FrameHeaderLen = 4

// ErrFrameTooLarge is matched (with errors.Is) by every *FrameSizeError.
var ErrFrameTooLarge = errors.New("frame too large")

// FrameSizeError reports a frame whose body exceeds the configured maximum,
// either refused before sending or announced by a peer.
type FrameSizeError struct {
	Size int64 // the body length that was refused
	Max  int64 // the configured maximum
}

func (e *FrameSizeError) Error() string {
	return fmt.Sprintf("frame of %d bytes exceeds the maximum of %d bytes", e.Size, e.Max)
}

// Is reports whether target is ErrFrameTooLarge.
func (e *FrameSizeError) Is(target error) bool { return target == ErrFrameTooLarge }

// ReadFrame reads one frame from r and returns its body. The length prefix is
// checked against max before any buffer is allocated, so a peer cannot make
// the reader allocate more than max bytes. The returned slice is freshly
// allocated and owned by the caller.
func ReadFrame(r io.Reader, max int) ([]byte, error) {
	var hdr [FrameHeaderLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if int64(n) > int64(max) {
		return nil, &FrameSizeError{Size: int64(n), Max: int64(max)}
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("reading a %d-byte frame body: %w", n, err)
	}
	return body, nil
}

// AppendFrameHeader appends the 4-byte length prefix for a body of n bytes.
func AppendFrameHeader(b []byte, n int) []byte {
	return binary.BigEndian.AppendUint32(b, uint32(n))
}

// WriteFrame writes body as one frame. It refuses bodies over max.
func WriteFrame(w io.Writer, body []byte, max int) error {
	if len(body) > max {
		return &FrameSizeError{Size: int64(len(body)), Max: int64(max)}
	}
	buf := make([]byte, 0, FrameHeaderLen+len(body))
	buf = AppendFrameHeader(buf, len(body))
	buf = append(buf, body...)
	_, err := w.Write(buf)
	return err
}
