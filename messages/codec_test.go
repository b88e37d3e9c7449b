package messages

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

func TestCheckValueAcceptsWhatTheLibraryWrites(t *testing.T) {
	values := []any{
		nil, true, false, 0, -1, -33, 127, 128, math.MaxInt64, math.MinInt64, uint64(math.MaxUint64),
		float32(1.5), 2.5, "", "x", strings.Repeat("s", 40), strings.Repeat("s", 300), strings.Repeat("s", 70000),
		[]byte{}, []byte("b"), make([]byte, 300), make([]byte, 70000),
		[]any{}, []any{1, "a", nil}, make([]int, 20), make([]int, 70000),
		map[string]any{}, map[string]any{"k": []any{map[string]int{"x": 1}}},
		time.Unix(1, 0), time.Unix(1700000000, 123456789), time.Unix(1<<40, 1),
		&Hello{Version: 1, Upward: []string{"f"}}, &LogRecord{Time: time.Now(), Attrs: []Attr{{"k", 1.5}}},
		&Routes{IDs: make([]uint32, 1000)}, msgpack.RawMessage{0xd4, 1, 2}, msgpack.RawMessage{0xd8, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		msgpack.RawMessage{0xc8, 0, 3, 5, 1, 2, 3}, msgpack.RawMessage{0xc9, 0, 0, 0, 1, 5, 1},
	}
	for _, v := range values {
		b, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		n, err := CheckValue(append(b, 0xc1, 0xff)) // trailing bytes are not part of it
		if err != nil || n != len(b) {
			t.Fatalf("%T %x: CheckValue = %d, %v; want %d", v, head(b), n, err, len(b))
		}
	}
}

func TestCheckValueRefuses(t *testing.T) {
	nested := func(depth int) []byte { return append(bytes.Repeat([]byte{0x91}, depth), 0xc0) }
	if _, err := CheckValue(nested(MaxDepth)); err != nil {
		t.Fatalf("%d levels: %v", MaxDepth, err)
	}
	cases := map[string][]byte{
		"empty":                 nil,
		"never used":            {0xc1},
		"truncated int":         {0xcd, 1},
		"truncated str":         {0xa5, 'a'},
		"array32 of 2^32-1":     {0xdd, 0xff, 0xff, 0xff, 0xff},
		"map32 of 2^32-1":       {0xdf, 0xff, 0xff, 0xff, 0xff},
		"map of 3, one pair":    {0x83, 1, 2},
		"str32 of 2^32-1":       {0xdb, 0xff, 0xff, 0xff, 0xff, 'x'},
		"bin32 of 2^32-1":       {0xc6, 0xff, 0xff, 0xff, 0xff},
		"ext32 of 2^32-1":       {0xc9, 0xff, 0xff, 0xff, 0xff, 1},
		"fixext16 short":        {0xd8, 1, 1},
		"too deep":              nested(MaxDepth + 1),
		"deep in a map":         append([]byte{0x81, 0xa1, 'k'}, nested(MaxDepth)...),
		"slice bomb in a field": {0x81, 0xa5, 'a', 't', 't', 'r', 's', 0xdd, 0xff, 0xff, 0xff, 0xff},
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			if n, err := CheckValue(b); err == nil {
				t.Fatalf("accepted %x (%d bytes)", head(b), n)
			}
		})
	}
}

// TestUnmarshalBombs feeds the inputs that make msgpack.Unmarshal itself
// die (out of memory, stack overflow); Unmarshal must refuse them.
func TestUnmarshalBombs(t *testing.T) {
	var lr LogRecord
	if err := Unmarshal([]byte{0x81, 0xa5, 'a', 't', 't', 'r', 's', 0xdd, 0xff, 0xff, 0xff, 0xff}, &lr); err == nil {
		t.Fatal("LogRecord with 2^32-1 attrs accepted")
	}
	var rs Routes
	if err := Unmarshal([]byte{0x81, 0xa3, 'i', 'd', 's', 0xdd, 0xff, 0xff, 0xff, 0xff}, &rs); err == nil {
		t.Fatal("Routes with 2^32-1 ids accepted")
	}
	var v any
	if err := Unmarshal(append(bytes.Repeat([]byte{0x91}, 8<<20), 0xc0), &v); err == nil {
		t.Fatal("8M nested arrays accepted")
	}
	// The library panics here (reflect.Value.IsNil on a struct).
	for _, b := range [][]byte{{0x81, 0xa4, 't', 'i', 'm', 'e', 0xc0}, []byte("\x95\xc00000")} {
		if err := Unmarshal(b, &lr); err == nil {
			t.Fatalf("%x: a nil time accepted", b)
		}
	}
}

func TestUnmarshal(t *testing.T) {
	in := Routes{IDs: []uint32{1, 2, 3}, Names: []string{"a", "b", "c"}, Err: "e", Cause: "heartbeat"}
	b, err := msgpack.Marshal(&in)
	if err != nil {
		t.Fatal(err)
	}
	var out Routes
	if err := Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if len(out.IDs) != 3 || out.IDs[2] != 3 || out.Names[1] != "b" || out.Err != "e" || out.Cause != "heartbeat" {
		t.Fatalf("got %+v", out)
	}
	if err := Unmarshal([]byte{0xa1, 'x'}, &out); err == nil {
		t.Fatal("a string decoded into Routes")
	}
}
