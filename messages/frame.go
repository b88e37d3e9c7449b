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
	var f FrameReader
	return f.Read(r, max)
}

// FrameReader reads frames one after another, as ReadFrame does, and keeps
// a frame whose read failed part-way (a read deadline that passed): the
// next Read goes on with the same frame, so the stream stays whole. After a
// *FrameSizeError or the end of the input nothing more can be read.
type FrameReader struct {
	hdr    [FrameHeaderLen]byte
	hdrN   int    // bytes of hdr read
	body   []byte // the body being read, once hdr is whole
	bodyN  int    // bytes of body read
	inBody bool   // hdr is whole and body is allocated
}

// Read returns the next frame body read from r, refusing one over max.
func (f *FrameReader) Read(r io.Reader, max int) ([]byte, error) {
	if !f.inBody {
		n, err := io.ReadFull(r, f.hdr[f.hdrN:])
		f.hdrN += n
		if err != nil {
			if err == io.EOF && f.hdrN > 0 {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		size := binary.BigEndian.Uint32(f.hdr[:])
		if int64(size) > int64(max) {
			return nil, &FrameSizeError{Size: int64(size), Max: int64(max)}
		}
		f.body, f.bodyN, f.inBody = make([]byte, size), 0, true
	}
	n, err := io.ReadFull(r, f.body[f.bodyN:])
	f.bodyN += n
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("reading a %d-byte frame body: %w", len(f.body), err)
	}
	body := f.body
	f.body, f.hdrN, f.inBody = nil, 0, false
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
