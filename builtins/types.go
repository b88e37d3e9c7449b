package builtins

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// Duration is a time.Duration that also decodes from a string such as "5s"
// or "1m30s", so JSON callers need not count nanoseconds. It travels as
// nanoseconds and prints as a string in JSON.
type Duration time.Duration

// EncodeMsgpack writes the duration as an integer of nanoseconds.
func (d Duration) EncodeMsgpack(enc *msgpack.Encoder) error { return enc.EncodeInt(int64(d)) }

// DecodeMsgpack reads nanoseconds, or a string parsed by time.ParseDuration.
func (d *Duration) DecodeMsgpack(dec *msgpack.Decoder) error {
	v, err := dec.DecodeInterface()
	if err != nil {
		return err
	}
	switch v := v.(type) {
	case nil:
		*d = 0
	case string:
		p, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("bad duration %q: %w", v, err)
		}
		*d = Duration(p)
	default:
		n, ok := toInt64(v)
		if !ok {
			return fmt.Errorf("bad duration %v (%T): want a string like \"5s\" or nanoseconds", v, v)
		}
		*d = Duration(n)
	}
	return nil
}

// MarshalJSON prints the duration as a string such as "1.5s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// String formats the duration like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }

// FileMode is permission bits that also decode from an octal string such
// as "0600" or "755". It travels as an integer.
type FileMode uint32

// EncodeMsgpack writes the mode as an integer.
func (m FileMode) EncodeMsgpack(enc *msgpack.Encoder) error { return enc.EncodeUint32(uint32(m)) }

// DecodeMsgpack reads an integer, or an octal string.
func (m *FileMode) DecodeMsgpack(dec *msgpack.Decoder) error {
	c, err := dec.PeekCode()
	if err != nil {
		return err
	}
	if msgpcode.IsString(c) {
		s, err := dec.DecodeString()
		if err != nil {
			return err
		}
		n, err := strconv.ParseUint(s, 8, 32)
		if err != nil {
			return fmt.Errorf("bad mode %q: want octal digits such as \"0644\"", s)
		}
		*m = FileMode(n)
		return nil
	}
	v, err := dec.DecodeInterface()
	if err != nil {
		return err
	}
	if v == nil {
		*m = 0
		return nil
	}
	n, ok := toInt64(v)
	if !ok || n < 0 || n > 0xffffffff {
		return fmt.Errorf("bad mode %v (%T)", v, v)
	}
	*m = FileMode(n)
	return nil
}

// Perm is the mode as an os.FileMode.
func (m FileMode) Perm() os.FileMode { return os.FileMode(m) }

func toInt64(v any) (int64, bool) {
	switch v := v.(type) {
	case int8:
		return int64(v), true
	case int16:
		return int64(v), true
	case int32:
		return int64(v), true
	case int64:
		return v, true
	case uint8:
		return int64(v), true
	case uint16:
		return int64(v), true
	case uint32:
		return int64(v), true
	case uint64:
		return int64(v), true
	case int:
		return int64(v), true
	case float64:
		if v == float64(int64(v)) {
			return int64(v), true
		}
	case float32:
		if v == float32(int64(v)) {
			return int64(v), true
		}
	}
	return 0, false
}
