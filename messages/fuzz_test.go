package messages

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/vmihailenco/msgpack/v5"
)

// Run one target at a time, e.g.
//
//	go test -run='^$' -fuzz='^FuzzDecodeHeader$' -fuzztime=30s ./messages/

func FuzzDecodeHeader(f *testing.F) {
	for _, h := range sampleHeaders()[:10] {
		f.Add(AppendHeader(nil, &h))
		f.Add(append(AppendHeader(nil, &h), 0x93, 0x01, 0xa1, 'x', 0xc0))
	}
	for _, fields := range [][]any{
		{int8(1), int16(2), int32(3), int64(4), uint64(5), "t", "s", "y"},
		{1, 2, 3, 4, 5, "t", "s", "y", -1, []any{1, "x"}, map[string]any{"k": 1.5}, []byte("bin"), nil, true},
		{-1, 0, 0, 0, 0, "", "", ""},
	} {
		b, err := msgpack.Marshal(fields)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		h, payload, err := DecodeHeader(body)
		if err != nil {
			return
		}
		if len(payload) > len(body) || (len(payload) > 0 && &payload[len(payload)-1] != &body[len(body)-1]) {
			t.Fatalf("payload is not the tail of the body")
		}
		again := append(AppendHeader(nil, &h), payload...)
		h2, payload2, err := DecodeHeader(again)
		if err != nil {
			t.Fatalf("re-encoded header %x does not decode: %v", again, err)
		}
		if h2 != h || !bytes.Equal(payload, payload2) {
			t.Fatalf("round trip changed the header: %+v -> %+v", h, h2)
		}
	})
}

// fuzzMax is the frame limit FuzzReadFrame reads with: small, so oversize
// frames are common and inputs at the limit stay quick to mutate.
const fuzzMax = 1 << 12

type frameResult struct {
	bodies [][]byte
	end    string // how the stream ended
}

func readAll(t *testing.T, r io.Reader) frameResult {
	var res frameResult
	for {
		body, err := ReadFrame(r, fuzzMax)
		if err != nil {
			var fse *FrameSizeError
			switch {
			case err == io.EOF:
				res.end = "eof"
			case errors.As(err, &fse):
				if fse.Size <= fuzzMax || fse.Max != fuzzMax {
					t.Fatalf("bad FrameSizeError %+v", fse)
				}
				res.end = "too large"
			case errors.Is(err, io.ErrUnexpectedEOF):
				res.end = "truncated"
			default:
				t.Fatalf("unexpected error %v", err)
			}
			return res
		}
		if len(body) > fuzzMax || cap(body) > fuzzMax {
			t.Fatalf("a frame of %d bytes (capacity %d) passed the %d-byte limit", len(body), cap(body), fuzzMax)
		}
		res.bodies = append(res.bodies, body)
	}
}

func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{})
	f.Add(frame(nil))
	f.Add(frame([]byte("hello")))
	f.Add(append(frame([]byte("a")), frame(AppendHeader(nil, &Header{Kind: KindCall, Target: "f"}))...))
	f.Add(frame(make([]byte, fuzzMax)))
	f.Add([]byte{0, 0, 0x10, 1})          // max + 1
	f.Add([]byte{0xff, 0xff, 0xff, 0xff}) // 4 GiB - 1
	f.Add([]byte{0, 0, 0, 9, 1, 2})       // truncated body
	f.Add([]byte{0, 0})                   // truncated length
	f.Fuzz(func(t *testing.T, stream []byte) {
		want := readAll(t, bytes.NewReader(stream))
		half := len(stream) / 2
		for name, r := range map[string]io.Reader{
			"one byte": iotest.OneByteReader(bytes.NewReader(stream)),
			"halves":   io.MultiReader(bytes.NewReader(stream[:half]), bytes.NewReader(stream[half:])),
		} {
			got := readAll(t, r)
			if got.end != want.end || len(got.bodies) != len(want.bodies) {
				t.Fatalf("%s: %d frames then %s; whole: %d frames then %s", name, len(got.bodies), got.end, len(want.bodies), want.end)
			}
			for i := range got.bodies {
				if !bytes.Equal(got.bodies[i], want.bodies[i]) {
					t.Fatalf("%s: frame %d differs", name, i)
				}
			}
		}
	})
}

// FuzzHello decodes handshake maps as the transport does before a stream
// carries envelopes (Unmarshal): it must never panic nor run out of memory.
func FuzzHello(f *testing.F) {
	for _, v := range []any{
		&Hello{Version: ProtocolVersion, ID: 1, Name: "local.1", MaxFrame: DefaultMaxFrame, Upward: []string{"f", "actor:x"}, Sideways: true},
		&Hello{Version: MinProtocolVersion, MaxVersion: ProtocolVersion, ID: 2, HeartbeatMS: 10000, HeartbeatMisses: 3},
		map[string]any{"version": 3, "max_version": -1, "heartbeat_ms": -5, "heartbeat_misses": 1 << 40},
		&HelloReply{Version: ProtocolVersion, ID: 1, PID: 1234, Platform: "linux/amd64", Hash: "abc", Error: "no"},
		map[string]any{"version": 2, "id": -1, "extra": []any{1, 2}, "upward": "x"},
	} {
		b, err := msgpack.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	// Decoded as the handshake is (transport.Stream.ReadValue): through
	// Unmarshal, whose CheckValue refuses lengths the data does not hold.
	// Plain msgpack.Unmarshal ran a worker out of memory on a bin32 that
	// claimed 3.9 GB (testdata/fuzz/FuzzHello/33ce4fccd925c660).
	f.Fuzz(func(t *testing.T, b []byte) {
		var h Hello
		if Unmarshal(b, &h) == nil {
			// Whatever the peer announced, the choice is in both ranges or refused.
			lo, hi := h.Versions()
			if v, err := ChooseVersion(lo, hi); err == nil && (v < lo || v > hi || v < MinProtocolVersion || v > ProtocolVersion) {
				t.Fatalf("ChooseVersion(%d, %d) = %d", lo, hi, v)
			}
		}
		var hr HelloReply
		_ = Unmarshal(b, &hr)
	})
}

// FuzzUnmarshal checks that what CheckValue accepts, the msgpack library
// decodes without dying, into the payload types and into an any; and that
// Unmarshal never panics. (Plain msgpack.Unmarshal into these types can
// run out of memory: see Unmarshal.)
func FuzzUnmarshal(f *testing.F) {
	for _, v := range []any{
		&Routes{IDs: []uint32{1, 2}, Names: []string{"a", "b"}, Err: "gone"},
		&RemoteError{Code: CodePanic, Message: "m", Stack: "s"},
		&LogRecord{Level: 4, Message: "m", Context: "c", Attrs: []Attr{{"k", "v"}, {"n", -1}, {"f", 1.5}, {"t", true}}},
		[]any{1, "a", map[string]any{"x": []byte("y")}, nil},
	} {
		b, err := msgpack.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x81, 0xa5, 'a', 't', 't', 'r', 's', 0xdd, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := CheckValue(b)
		if err != nil {
			return
		}
		if n <= 0 || n > len(b) {
			t.Fatalf("CheckValue length %d of %d bytes", n, len(b))
		}
		var rs Routes
		_ = Unmarshal(b, &rs)
		var re RemoteError
		_ = Unmarshal(b, &re)
		var lr LogRecord
		_ = Unmarshal(b, &lr)
		var v any
		if err := Unmarshal(b, &v); err != nil {
			return
		}
	})
}
