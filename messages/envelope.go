package messages

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Kind says what an envelope is for; it decides how the destination
// context handles the payload.
type Kind uint8

const (
	// KindCall asks the destination to run the function named by Target;
	// the payload is the msgpack-encoded argument and ReqID names the call.
	KindCall Kind = 1
	// KindReply answers the call with the same ReqID; with FlagError set the
	// payload is a RemoteError, otherwise the function's result.
	KindReply Kind = 2
	// KindCancel tells the destination that the caller of ReqID gave up; the
	// running function's context.Context is cancelled.
	KindCancel Kind = 3
	// KindActor carries a protoactor message to the actor whose id is
	// Target; Sender is the full address of the sending actor ("" if none)
	// and Type names the payload's registered type.
	KindActor Kind = 4
	// KindLog carries a LogRecord towards the master.
	KindLog Kind = 5
	// KindControl carries a message for the router itself; Type names it
	// (see the Control* constants).
	KindControl Kind = 6
	// KindChannel carries one item of a channel; Target is the channel id at
	// the destination.
	KindChannel Kind = 7
)

func (k Kind) String() string {
	switch k {
	case KindCall:
		return "call"
	case KindReply:
		return "reply"
	case KindCancel:
		return "cancel"
	case KindActor:
		return "actor"
	case KindLog:
		return "log"
	case KindControl:
		return "control"
	case KindChannel:
		return "channel"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Flags qualify an envelope.
const (
	// FlagError marks a reply whose payload is a RemoteError.
	FlagError uint8 = 1 << 0
	// FlagNoReply marks a call whose caller does not want a reply.
	FlagNoReply uint8 = 1 << 1
	// FlagSystem marks an actor envelope carrying a system message: stop,
	// or a remote watch's Watch, Unwatch or Terminated (spec.md §5.5.1).
	FlagSystem uint8 = 1 << 2
	// FlagClose marks the last item of a channel.
	FlagClose uint8 = 1 << 3
	// FlagCredit marks a channel envelope that grants send credit instead of
	// carrying an item; ReqID holds the number of items granted.
	FlagCredit uint8 = 1 << 4
	// FlagRelease marks a channel envelope telling the receiver that the
	// sender's end is gone: it neither sends nor receives any more. Its
	// payload, if any, is a MessagePack string naming the cause.
	FlagRelease uint8 = 1 << 5
)

// Header is the routing part of every envelope. Routers read only this.
type Header struct {
	Kind   Kind
	Flags  uint8
	Dst    uint32 // destination context id
	Src    uint32 // source context id, checked by every hop it crosses upwards
	ReqID  uint64 // call id, or channel credit
	Target string // function name, actor id, control type or channel id
	Sender string // sending actor's address, for KindActor
	Type   string // payload type name, for KindActor and KindControl
}

const headerFields = 8

// AppendHeader appends the msgpack encoding of h (a fixed array of 8
// elements) to b.
func AppendHeader(b []byte, h *Header) []byte {
	b = append(b, 0x90|headerFields)
	b = appendUint(b, uint64(h.Kind))
	b = appendUint(b, uint64(h.Flags))
	b = appendUint(b, uint64(h.Dst))
	b = appendUint(b, uint64(h.Src))
	b = appendUint(b, h.ReqID)
	b = appendStr(b, h.Target)
	b = appendStr(b, h.Sender)
	b = appendStr(b, h.Type)
	return b
}

// DecodeHeader decodes the header at the start of an envelope body and
// returns it with the payload (the rest of the body, possibly empty). The
// payload aliases body.
func DecodeHeader(body []byte) (Header, []byte, error) {
	var h Header
	d := decoder{b: body}
	n, err := d.arrayLen()
	if err != nil {
		return h, nil, err
	}
	if n < headerFields {
		return h, nil, fmt.Errorf("envelope header has %d fields, want at least %d", n, headerFields)
	}
	var v [5]uint64
	for i := range v {
		if v[i], err = d.uint(); err != nil {
			return h, nil, err
		}
	}
	if v[0] > math.MaxUint8 || v[1] > math.MaxUint8 || v[2] > math.MaxUint32 || v[3] > math.MaxUint32 {
		return h, nil, fmt.Errorf("envelope header field out of range at offset %d", d.off)
	}
	h.Kind, h.Flags, h.Dst, h.Src, h.ReqID = Kind(v[0]), uint8(v[1]), uint32(v[2]), uint32(v[3]), v[4]
	if h.Target, err = d.str(); err != nil {
		return h, nil, err
	}
	if h.Sender, err = d.str(); err != nil {
		return h, nil, err
	}
	if h.Type, err = d.str(); err != nil {
		return h, nil, err
	}
	// Fields added by later versions are skipped, so the header can grow.
	if err := d.skip(n - headerFields); err != nil {
		return h, nil, err
	}
	return h, body[d.off:], nil
}

func appendUint(b []byte, v uint64) []byte {
	switch {
	case v < 0x80:
		return append(b, byte(v))
	case v <= math.MaxUint8:
		return append(b, 0xcc, byte(v))
	case v <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xcd), uint16(v))
	case v <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, 0xce), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xcf), v)
}

func appendStr(b []byte, s string) []byte {
	n := len(s)
	switch {
	case n < 32:
		b = append(b, 0xa0|byte(n))
	case n <= math.MaxUint8:
		b = append(b, 0xd9, byte(n))
	case n <= math.MaxUint16:
		b = binary.BigEndian.AppendUint16(append(b, 0xda), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, 0xdb), uint32(n))
	}
	return append(b, s...)
}

// decoder reads the few msgpack forms a header uses. Every error names the
// offset where decoding stopped.
type decoder struct {
	b    []byte
	off  int
	what string // what is decoded, for errors; "" is the envelope header
}

func (d *decoder) errorf(format string, args ...any) error {
	what := d.what
	if what == "" {
		what = "envelope header"
	}
	return fmt.Errorf("%s: "+format+" at offset %d", append([]any{what}, append(args, d.off)...)...)
}

func (d *decoder) need(n int) ([]byte, error) {
	if n < 0 || len(d.b)-d.off < n {
		return nil, d.errorf("truncated (need %d bytes, have %d)", n, len(d.b)-d.off)
	}
	p := d.b[d.off : d.off+n]
	d.off += n
	return p, nil
}

func (d *decoder) byte() (byte, error) {
	p, err := d.need(1)
	if err != nil {
		return 0, err
	}
	return p[0], nil
}

func (d *decoder) arrayLen() (int, error) {
	c, err := d.byte()
	if err != nil {
		return 0, err
	}
	switch {
	case c&0xf0 == 0x90:
		return int(c & 0x0f), nil
	case c == 0xdc:
		p, err := d.need(2)
		if err != nil {
			return 0, err
		}
		return int(binary.BigEndian.Uint16(p)), nil
	case c == 0xdd:
		p, err := d.need(4)
		if err != nil {
			return 0, err
		}
		return int(binary.BigEndian.Uint32(p)), nil
	}
	d.off--
	return 0, d.errorf("want an array, found byte 0x%02x", c)
}

func (d *decoder) uint() (uint64, error) {
	c, err := d.byte()
	if err != nil {
		return 0, err
	}
	if c < 0x80 {
		return uint64(c), nil
	}
	var size int
	switch c {
	case 0xcc, 0xd0:
		size = 1
	case 0xcd, 0xd1:
		size = 2
	case 0xce, 0xd2:
		size = 4
	case 0xcf, 0xd3:
		size = 8
	default:
		d.off--
		return 0, d.errorf("want an unsigned integer, found byte 0x%02x", c)
	}
	p, err := d.need(size)
	if err != nil {
		return 0, err
	}
	var v uint64
	for _, x := range p {
		v = v<<8 | uint64(x)
	}
	if c >= 0xd0 && p[0]&0x80 != 0 { // a negative signed integer
		d.off -= size + 1
		return 0, d.errorf("want an unsigned integer, found a negative one")
	}
	return v, nil
}

func (d *decoder) str() (string, error) {
	c, err := d.byte()
	if err != nil {
		return "", err
	}
	var n int
	switch {
	case c&0xe0 == 0xa0:
		n = int(c & 0x1f)
	case c == 0xc0: // nil reads as ""
		return "", nil
	case c == 0xd9 || c == 0xda || c == 0xdb:
		size := 1 << (c - 0xd9)
		p, err := d.need(size)
		if err != nil {
			return "", err
		}
		for _, x := range p {
			n = n<<8 | int(x)
		}
	default:
		d.off--
		return "", d.errorf("want a string, found byte 0x%02x", c)
	}
	p, err := d.need(n)
	if err != nil {
		return "", err
	}
	return string(p), nil
}

// skip skips n msgpack values of any type, so a later version may append
// header fields of any form. It does not recurse: containers add their
// elements to the count of values still to skip, and since every value
// takes at least one byte, a count beyond the bytes left is truncation.
func (d *decoder) skip(n int) error {
	for ; n > 0; n-- {
		if n > len(d.b)-d.off {
			return d.errorf("truncated (%d more values announced, %d bytes left)", n, len(d.b)-d.off)
		}
		k, err := d.value()
		if err != nil {
			return err
		}
		n += k
	}
	return nil
}

// value consumes the head of one msgpack value of any type, with the data
// of a scalar, and returns how many values a container holds (its
// elements, or keys and values), which follow it.
func (d *decoder) value() (children int, err error) {
	c, err := d.byte()
	if err != nil {
		return 0, err
	}
	var size int // bytes of data after c, once lengths are read
	switch {
	case c < 0x80 || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
		// fixint, nil, bool
	case c&0xf0 == 0x80: // fixmap
		return 2 * int(c&0x0f), nil
	case c&0xf0 == 0x90: // fixarray
		return int(c & 0x0f), nil
	case c&0xe0 == 0xa0: // fixstr
		size = int(c & 0x1f)
	case c == 0xca:
		size = 4
	case c == 0xcb:
		size = 8
	case c >= 0xcc && c <= 0xd3: // uint8..uint64, int8..int64
		size = 1 << ((c - 0xcc) & 3)
	case c >= 0xd4 && c <= 0xd8: // fixext: type byte and 1..16 bytes
		size = 1 + 1<<(c-0xd4)
	default:
		var lenSize int
		switch c {
		case 0xc4, 0xd9: // bin8, str8
			lenSize = 1
		case 0xc5, 0xda, 0xdc, 0xde: // bin16, str16, array16, map16
			lenSize = 2
		case 0xc6, 0xdb, 0xdd, 0xdf: // bin32, str32, array32, map32
			lenSize = 4
		case 0xc7, 0xc8, 0xc9: // ext8, ext16, ext32
			lenSize = 1 << (c - 0xc7)
		default: // 0xc1 is never used
			d.off--
			return 0, d.errorf("invalid msgpack byte 0x%02x", c)
		}
		p, err := d.need(lenSize)
		if err != nil {
			return 0, err
		}
		var l uint64
		for _, x := range p {
			l = l<<8 | uint64(x)
		}
		if l > uint64(len(d.b)-d.off) {
			return 0, d.errorf("truncated (length %d, %d bytes left)", l, len(d.b)-d.off)
		}
		switch c {
		case 0xdc, 0xdd:
			return int(l), nil
		case 0xde, 0xdf:
			return 2 * int(l), nil
		case 0xc7, 0xc8, 0xc9:
			size = int(l) + 1 // and the type byte
		default:
			size = int(l)
		}
	}
	_, err = d.need(size)
	return 0, err
}
