package messages

import (
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// MaxDepth is the deepest nesting of arrays and maps that Unmarshal accepts.
const MaxDepth = 256

// Unmarshal decodes the msgpack value at the start of data into v, like
// msgpack.Unmarshal, but only after CheckValue has accepted it. Use it, not
// msgpack.Unmarshal, for every payload that came from another process.
//
// Why: github.com/vmihailenco/msgpack/v5 v5.4.x trusts the element count
// of an array decoded into a Go slice and allocates it up front
// (decode_slice.go compares a flag with 1 instead of 0, so its 1e6-element
// cap never applies; upstream issue vmihailenco/msgpack#401). Five bytes
// announcing 2^32-1 elements of a []uint32 or []Attr kill the process with
// an out-of-memory fatal error, which recover cannot catch. It also
// recurses once per nesting level, so a few megabytes of nested arrays
// decoded into an `any` overflow the goroutine stack, fatally too. Checking
// first bounds both: every count fits in the bytes that follow, and the
// nesting is at most MaxDepth. The library also panics on some input (a nil
// where a time.Time is expected: {"time": nil} into a LogRecord); Unmarshal
// turns a panic into an error.
func Unmarshal(data []byte, v any) (err error) {
	if _, err := CheckValue(data); err != nil {
		return err
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("msgpack: decoding into %T failed: %v", v, p)
		}
	}()
	return msgpack.Unmarshal(data, v)
}

// CheckValue walks the msgpack value at the start of data without decoding
// it and returns its length in bytes. It fails when data is empty or
// truncated, holds the never-used byte 0xc1, announces more elements or
// bytes than remain, or nests arrays and maps deeper than MaxDepth. It
// allocates nothing that depends on data.
func CheckValue(data []byte) (int, error) {
	d := decoder{b: data, what: "msgpack value"}
	var stack [MaxDepth + 1]int // values still to read at each open level
	depth := 0
	stack[0] = 1
	for {
		for stack[depth] == 0 {
			if depth == 0 {
				return d.off, nil
			}
			depth--
		}
		stack[depth]--
		k, err := d.value()
		if err != nil {
			return 0, err
		}
		if k == 0 {
			continue
		}
		if depth == MaxDepth {
			return 0, fmt.Errorf("msgpack value nested deeper than %d levels at offset %d", MaxDepth, d.off)
		}
		if k > len(data)-d.off {
			return 0, fmt.Errorf("msgpack value truncated: %d elements announced at offset %d, %d bytes left", k, d.off, len(data)-d.off)
		}
		depth++
		stack[depth] = k
	}
}

// AppendBinHeader appends the msgpack header of a bin value of n bytes.
func AppendBinHeader(b []byte, n int) []byte {
	switch {
	case n <= 0xff:
		return append(b, 0xc4, byte(n))
	case n <= 0xffff:
		return append(b, 0xc5, byte(n>>8), byte(n))
	}
	return append(b, 0xc6, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// Bin returns the bytes of data when data is exactly one msgpack bin
// value (aliasing data), or false.
func Bin(data []byte) ([]byte, bool) {
	if len(data) < 2 {
		return nil, false
	}
	var n, off int
	switch data[0] {
	case 0xc4:
		n, off = int(data[1]), 2
	case 0xc5:
		if len(data) < 3 {
			return nil, false
		}
		n, off = int(data[1])<<8|int(data[2]), 3
	case 0xc6:
		if len(data) < 5 {
			return nil, false
		}
		n, off = int(data[1])<<24|int(data[2])<<16|int(data[3])<<8|int(data[4]), 5
	default:
		return nil, false
	}
	if len(data)-off != n {
		return nil, false
	}
	return data[off:], true
}
