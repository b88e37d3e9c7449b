package messages

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/quick"

	"github.com/vmihailenco/msgpack/v5"
)

// sampleHeaders are headers that exercise every encoding boundary of every
// field: fixint/uint8/16/32/64 and fixstr/str8/str16/str32.
func sampleHeaders() []Header {
	return []Header{
		{},
		{Kind: KindCall, Dst: 1, Src: 0, ReqID: 1, Target: "mitogo.allocate_id"},
		{Kind: KindReply, Flags: FlagError, Dst: 0, Src: 7, ReqID: 42},
		{Kind: KindActor, Dst: 3, Src: 2, Target: "$1/child", Sender: "ctx:2/future$7", Type: "protoactor.DeadLetterResponse"},
		{Kind: KindChannel, Flags: FlagCredit, Dst: 5, Src: 6, ReqID: 32, Target: "ch1"},
		{Kind: KindControl, Dst: 0, Src: 1, Type: ControlAddRoute},
		{Kind: Kind(255), Flags: 255, Dst: math.MaxUint32, Src: math.MaxUint32, ReqID: math.MaxUint64},
		{Kind: 0x7f, Flags: 0x80, Dst: 0x80, Src: 0xff, ReqID: 0x100},
		{Dst: 0xffff, Src: 0x10000, ReqID: 0xffffffff},
		{ReqID: 0x100000000, Target: strings.Repeat("t", 31), Sender: strings.Repeat("s", 32), Type: strings.Repeat("y", 255)},
		{Target: strings.Repeat("t", 256), Sender: strings.Repeat("s", 65535), Type: strings.Repeat("y", 65536)},
		{Target: "ünïcødé ✓", Sender: "\x00\xff", Type: "a\nb"},
	}
}

func TestHeaderRoundTrip(t *testing.T) {
	for i, h := range sampleHeaders() {
		for _, payload := range [][]byte{nil, {0xc0}, []byte("\x92\x01\xa1x")} {
			body := append(AppendHeader(nil, &h), payload...)
			got, rest, err := DecodeHeader(body)
			if err != nil {
				t.Fatalf("header %d: %v", i, err)
			}
			if got != h {
				t.Fatalf("header %d: got %+v, want %+v", i, abbrev(got), abbrev(h))
			}
			if !bytes.Equal(rest, payload) {
				t.Fatalf("header %d: payload %x, want %x", i, rest, payload)
			}
		}
	}
}

func TestHeaderRoundTripRandom(t *testing.T) {
	f := func(kind, flags uint8, dst, src uint32, req uint64, target, sender, typ string, payload []byte) bool {
		h := Header{Kind: Kind(kind), Flags: flags, Dst: dst, Src: src, ReqID: req, Target: target, Sender: sender, Type: typ}
		got, rest, err := DecodeHeader(append(AppendHeader(nil, &h), payload...))
		return err == nil && got == h && bytes.Equal(rest, payload)
	}
	if err := quick.Check(f, &quick.Config{MaxCount: 2000}); err != nil {
		t.Fatal(err)
	}
}

// randomHeader draws each field from a distribution that lands on every
// encoding size, long strings included.
func randomHeader(r *rand.Rand) Header {
	num := func(max uint64) uint64 {
		bits := r.IntN(65)
		var v uint64
		if bits > 0 {
			v = r.Uint64() >> (64 - bits)
		}
		return min(v, max)
	}
	str := func() string {
		var n int
		switch r.IntN(6) {
		case 0:
			n = 0
		case 1, 2:
			n = r.IntN(32)
		case 3:
			n = 32 + r.IntN(300)
		case 4:
			n = 250 + r.IntN(65536-250+10)
		case 5:
			n = 65536 + r.IntN(1000)
		}
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return string(b)
	}
	return Header{Kind: Kind(num(255)), Flags: uint8(num(255)), Dst: uint32(num(math.MaxUint32)), Src: uint32(num(math.MaxUint32)),
		ReqID: num(math.MaxUint64), Target: str(), Sender: str(), Type: str()}
}

func TestHeaderRoundTripRandomSizes(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 300; i++ {
		h := randomHeader(r)
		got, rest, err := DecodeHeader(AppendHeader(nil, &h))
		if err != nil || got != h || len(rest) != 0 {
			t.Fatalf("round %d: got %+v, %d rest bytes, %v; want %+v", i, abbrev(got), len(rest), err, abbrev(h))
		}
	}
}

// wireHeader is the header as another implementation would declare it with
// a generic msgpack library: an 8-element array.
type wireHeader struct {
	//lint:ignore U1000 read by msgpack's reflection: the struct encodes as an array
	_msgpack struct{} `msgpack:",as_array"`
	Kind     uint8
	Flags    uint8
	Dst      uint32
	Src      uint32
	ReqID    uint64
	Target   string
	Sender   string
	Type     string
}

// TestHeaderFromMsgpackLibrary checks that headers encoded by
// github.com/vmihailenco/msgpack/v5, with any integer width or signedness
// the library may choose, decode to the same header.
func TestHeaderFromMsgpackLibrary(t *testing.T) {
	encoders := map[string]func(h Header) []any{
		"uint8/32/64": func(h Header) []any {
			return []any{uint8(h.Kind), h.Flags, h.Dst, h.Src, h.ReqID, h.Target, h.Sender, h.Type}
		},
		"int64": func(h Header) []any {
			return []any{int64(h.Kind), int64(h.Flags), int64(h.Dst), int64(h.Src), h.ReqID, h.Target, h.Sender, h.Type}
		},
		"int": func(h Header) []any {
			return []any{int(h.Kind), int(h.Flags), int(h.Dst), int(h.Src), h.ReqID, h.Target, h.Sender, h.Type}
		},
		"int16/int32 where they fit": func(h Header) []any {
			return []any{int16(h.Kind), int16(h.Flags), int64(h.Dst), int64(h.Src), h.ReqID, h.Target, h.Sender, h.Type}
		},
	}
	hs := sampleHeaders()
	r := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		hs = append(hs, randomHeader(r))
	}
	for name, enc := range encoders {
		for _, compact := range []bool{false, true} {
			for i, h := range hs {
				var buf bytes.Buffer
				e := msgpack.NewEncoder(&buf)
				e.UseCompactInts(compact)
				if err := e.Encode(enc(h)); err != nil {
					t.Fatal(err)
				}
				got, rest, err := DecodeHeader(buf.Bytes())
				if err != nil || got != h || len(rest) != 0 {
					t.Fatalf("%s compact=%v header %d: got %+v, %v; want %+v (bytes %x)", name, compact, i, abbrev(got), err, abbrev(h), head(buf.Bytes()))
				}
			}
		}
	}
	// Small values as the narrowest signed types, which compact encoding
	// never picks but another library might.
	h := Header{Kind: 3, Flags: 1, Dst: 100, Src: 30000, ReqID: 1 << 40, Target: "f"}
	b, err := msgpack.Marshal([]any{int8(3), int8(1), int8(100), int16(30000), int64(1 << 40), "f", "", ""})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte{0xd0, 0x03}) || !bytes.Contains(b, []byte{0xd1, 0x75, 0x30}) {
		t.Fatalf("the library did not use int8/int16: %x", b)
	}
	if got, _, err := DecodeHeader(b); err != nil || got != h {
		t.Fatalf("int8/int16 header: got %+v, %v; want %+v", got, err, h)
	}
	// A struct declared with as_array, as a Go peer would.
	w := wireHeader{Kind: 6, Flags: 2, Dst: 9, Src: 70000, ReqID: 5, Target: "t", Sender: "s", Type: "route.add"}
	b, err = msgpack.Marshal(&w)
	if err != nil {
		t.Fatal(err)
	}
	want := Header{Kind: 6, Flags: 2, Dst: 9, Src: 70000, ReqID: 5, Target: "t", Sender: "s", Type: "route.add"}
	if got, _, err := DecodeHeader(b); err != nil || got != want {
		t.Fatalf("as_array struct: got %+v, %v; want %+v", got, err, want)
	}
	// Our encoding is what the library decodes, too.
	var back wireHeader
	if err := msgpack.Unmarshal(AppendHeader(nil, &want), &back); err != nil {
		t.Fatal(err)
	}
	if back.Kind != 6 || back.Dst != 9 || back.Src != 70000 || back.Type != "route.add" {
		t.Fatalf("library decoded our header as %+v", back)
	}
}

func TestHeaderNilStringsReadEmpty(t *testing.T) {
	b, err := msgpack.Marshal([]any{1, 0, 2, 0, 9, nil, nil, nil})
	if err != nil {
		t.Fatal(err)
	}
	want := Header{Kind: 1, Dst: 2, ReqID: 9}
	if got, _, err := DecodeHeader(b); err != nil || got != want {
		t.Fatalf("got %+v, %v; want %+v", got, err, want)
	}
}

// TestHeaderExtraFields checks that a later version's longer header is
// accepted: its extra fields, of any msgpack type, are skipped and the
// payload is still found.
func TestHeaderExtraFields(t *testing.T) {
	h := Header{Kind: KindCall, Dst: 1, Src: 2, ReqID: 3, Target: "fn"}
	extras := []struct {
		name   string
		fields []any
	}{
		{"none", nil},
		{"uint", []any{uint64(1 << 60)}},
		{"negative int", []any{-1, int64(-1 << 40), int8(-100)}},
		{"strings", []any{"x", strings.Repeat("y", 300), strings.Repeat("z", 70000)}},
		{"nil and bools", []any{nil, true, false}},
		{"floats", []any{float32(1.5), 2.5}},
		{"binary", []any{[]byte{1, 2, 3}, make([]byte, 300), make([]byte, 70000)}},
		{"array and map", []any{[]any{1, "a", []any{nil}}, map[string]any{"k": []int{1, 2}, "m": map[string]int{"x": 1}}}},
		{"time (ext)", []any{msgpack.RawMessage{0xd6, 0xff, 0, 0, 0, 1}, msgpack.RawMessage{0xc7, 0x0c, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}}},
		{"many", func() []any {
			var f []any
			for i := range 20 {
				f = append(f, i)
			}
			return f
		}()},
	}
	payload := []byte("\x93\x01\x02\xa3abc")
	for _, x := range extras {
		t.Run(x.name, func(t *testing.T) {
			arr := []any{uint8(h.Kind), h.Flags, h.Dst, h.Src, h.ReqID, h.Target, h.Sender, h.Type}
			b, err := msgpack.Marshal(append(arr, x.fields...))
			if err != nil {
				t.Fatal(err)
			}
			b = append(b, payload...)
			got, rest, err := DecodeHeader(b)
			if err != nil {
				t.Fatalf("decoding: %v (bytes %x)", err, head(b))
			}
			if got != h || !bytes.Equal(rest, payload) {
				t.Fatalf("got %+v payload %x; want %+v payload %x", got, rest, h, payload)
			}
		})
	}
	// array32 header, which no encoder picks for 9 elements but is legal.
	b := []byte{0xdd, 0, 0, 0, 9}
	b = append(b, AppendHeader(nil, &h)[1:]...)
	b = append(b, 0xc0)
	b = append(b, payload...)
	if got, rest, err := DecodeHeader(b); err != nil || got != h || !bytes.Equal(rest, payload) {
		t.Fatalf("array32 header: got %+v payload %x, %v", got, rest, err)
	}
}

func TestHeaderRefused(t *testing.T) {
	valid := AppendHeader(nil, &Header{Kind: 1, Dst: 2, Src: 3, ReqID: 4, Target: "t"})
	mk := func(fields ...any) []byte {
		b, err := msgpack.Marshal(fields)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := []struct {
		name string
		body []byte
	}{
		{"empty", nil},
		{"not an array", []byte{0x81, 0xa1, 'k', 0x01}},
		{"seven fields", mk(1, 0, 0, 0, 0, "", "")},
		{"negative kind", mk(-1, 0, 0, 0, 0, "", "", "")},
		{"negative kind int8", mk(int8(-100), 0, 0, 0, 0, "", "", "")},
		{"negative dst", mk(1, 0, int32(-5), 0, 0, "", "", "")},
		{"negative src int16", mk(1, 0, 0, int16(-300), 0, "", "", "")},
		{"negative req id", mk(1, 0, 0, 0, int64(math.MinInt64), "", "", "")},
		{"kind too big", mk(256, 0, 0, 0, 0, "", "", "")},
		{"flags too big", mk(1, 1000, 0, 0, 0, "", "", "")},
		{"dst too big", mk(1, 0, uint64(1)<<32, 0, 0, "", "", "")},
		{"src too big", mk(1, 0, 0, uint64(1)<<40, 0, "", "", "")},
		{"float kind", mk(1.0, 0, 0, 0, 0, "", "", "")},
		{"string kind", mk("1", 0, 0, 0, 0, "", "", "")},
		{"int target", mk(1, 0, 0, 0, 0, 5, "", "")},
		{"binary target", mk(1, 0, 0, 0, 0, []byte("t"), "", "")},
		{"bad extra field", append(append([]byte{0x99}, valid[1:]...), 0xc1)},
		{"huge extra field count", append([]byte{0xdd, 0xff, 0xff, 0xff, 0xff}, valid[1:]...)},
		{"huge extra array", append(append([]byte{0x99}, valid[1:]...), 0xdd, 0xff, 0xff, 0xff, 0xff)},
		{"huge extra string", append(append([]byte{0x99}, valid[1:]...), 0xdb, 0xff, 0xff, 0xff, 0xff)},
		{"huge target", append(valid[:6:6], 0xdb, 0x7f, 0xff, 0xff, 0xff)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, rest, err := DecodeHeader(c.body)
			if err == nil {
				t.Fatalf("accepted %x as %+v with payload %x", c.body, h, rest)
			}
		})
	}
}

// TestHeaderTruncated cuts encodings at every length: each cut is an
// error, never a panic.
func TestHeaderTruncated(t *testing.T) {
	var bodies [][]byte
	for _, h := range sampleHeaders()[:10] {
		bodies = append(bodies, AppendHeader(nil, &h))
	}
	ext, err := msgpack.Marshal([]any{1, 2, 3, 4, 5, "a", "b", "c", -1, []any{1, "x", map[string]any{"k": 1.5}}, []byte("bin")})
	if err != nil {
		t.Fatal(err)
	}
	bodies = append(bodies, ext)
	for _, body := range bodies {
		if _, _, err := DecodeHeader(body); err != nil {
			t.Fatalf("full body %x: %v", body, err)
		}
		for i := range len(body) {
			if h, _, err := DecodeHeader(body[:i:i]); err == nil {
				t.Fatalf("prefix %x of %x accepted as %+v", body[:i], body, h)
			}
		}
	}
}

// TestHeaderPayloadAliases pins that the payload is the rest of the body,
// not a copy, and that decoding reads nothing beyond the header.
func TestHeaderPayloadAliases(t *testing.T) {
	body := append(AppendHeader(nil, &Header{Kind: KindLog}), 1, 2, 3)
	_, p, err := DecodeHeader(body)
	if err != nil {
		t.Fatal(err)
	}
	if &p[0] != &body[len(body)-3] {
		t.Fatal("payload does not alias the body")
	}
}

func TestAppendHeaderEncodingIsMinimal(t *testing.T) {
	b := AppendHeader(nil, &Header{Kind: 1, Dst: 2, Src: 3, ReqID: 4, Target: "ab"})
	want := []byte{0x98, 1, 0, 2, 3, 4, 0xa2, 'a', 'b', 0xa0, 0xa0}
	if !bytes.Equal(b, want) {
		t.Fatalf("got %x, want %x", b, want)
	}
	b = AppendHeader([]byte("prefix"), &Header{ReqID: math.MaxUint64})
	if !bytes.HasPrefix(b, []byte("prefix")) || b[6+5] != 0xcf || binary.BigEndian.Uint64(b[12:]) != math.MaxUint64 {
		t.Fatalf("got %x", b)
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{KindCall: "call", KindReply: "reply", KindCancel: "cancel", KindActor: "actor",
		KindLog: "log", KindControl: "control", KindChannel: "channel", 0: "kind(0)", 200: "kind(200)"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", uint8(k), got, want)
		}
	}
}

func TestFlagsDistinct(t *testing.T) {
	flags := []uint8{FlagError, FlagNoReply, FlagSystem, FlagClose, FlagCredit}
	var seen uint8
	for _, f := range flags {
		if f == 0 || f&(f-1) != 0 || seen&f != 0 {
			t.Fatalf("flag %#x is not a fresh single bit", f)
		}
		seen |= f
	}
}

// abbrev shortens long strings in a header for failure messages.
func abbrev(h Header) Header {
	cut := func(s string) string {
		if len(s) > 40 {
			return fmt.Sprintf("%.40q…(%d bytes)", s, len(s))
		}
		return s
	}
	h.Target, h.Sender, h.Type = cut(h.Target), cut(h.Sender), cut(h.Type)
	return h
}

func head(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}
