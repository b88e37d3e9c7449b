package messages

import (
	"errors"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

func TestChooseVersion(t *testing.T) {
	for _, tc := range []struct {
		name   string
		lo, hi int
		want   int // 0: refused
	}{
		{"a version-1 parent", 1, 1, 1},
		{"this package's range", MinProtocolVersion, ProtocolVersion, ProtocolVersion},
		{"a newer parent that still speaks this version", 1, ProtocolVersion + 3, ProtocolVersion},
		{"a newer parent that no longer does", ProtocolVersion + 1, ProtocolVersion + 2, 0},
		{"an older parent below the minimum", 0, MinProtocolVersion - 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ChooseVersion(tc.lo, tc.hi)
			if tc.want == 0 {
				var ve *VersionError
				if !errors.As(err, &ve) || !errors.Is(err, ErrVersion) || ve.PeerMin != tc.lo || ve.PeerMax != tc.hi {
					t.Fatalf("ChooseVersion(%d, %d) = %d, %v; want a *VersionError", tc.lo, tc.hi, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ChooseVersion(%d, %d) = %d, %v; want %d", tc.lo, tc.hi, got, err, tc.want)
			}
		})
	}
}

// A Hello from a version-1 parent has no max_version: it speaks 1 only. A
// version-1 child decodes the Hello of this package and sees version 1,
// which it requires.
func TestHelloVersionsAcrossVersions(t *testing.T) {
	old, _ := msgpack.Marshal(map[string]any{"version": 1, "id": 3, "name": "x"})
	var h Hello
	if err := Unmarshal(old, &h); err != nil {
		t.Fatal(err)
	}
	if lo, hi := h.Versions(); lo != 1 || hi != 1 {
		t.Fatalf("a version-1 Hello speaks %d to %d, want 1 to 1", lo, hi)
	}
	b, _ := msgpack.Marshal(&Hello{Version: MinProtocolVersion, MaxVersion: ProtocolVersion, ID: 3, HeartbeatMS: 10000, HeartbeatMisses: 3})
	var v1 struct {
		Version int    `msgpack:"version"`
		ID      uint32 `msgpack:"id"`
	}
	if err := Unmarshal(b, &v1); err != nil || v1.Version != 1 || v1.ID != 3 {
		t.Fatalf("a version-1 reader sees %+v, %v; want version 1, id 3", v1, err)
	}
}
