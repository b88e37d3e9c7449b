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
