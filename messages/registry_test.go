package messages

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

type regPoint struct {
	X, Y int
	Tags []string
}

type regNode struct {
	Name     string
	Children []*regNode
	When     time.Time
}

type regOther struct{ Z int }

func init() {
	Register[regPoint]("messages_test.point")
	Register[*regNode]("messages_test.node")
}

func TestRegistryRoundTrip(t *testing.T) {
	when := time.Date(2024, 5, 6, 7, 8, 9, 10, time.UTC)
	cases := []struct {
		name string
		v    any
	}{
		{"messages_test.point", regPoint{X: 1, Y: -2, Tags: []string{"a", "b"}}},
		{"messages_test.point", regPoint{}},
		{"messages_test.node", &regNode{Name: "root", Children: []*regNode{{Name: "leaf"}}, When: when}},
		{"messages_test.node", &regNode{}},
	}
	for _, c := range cases {
		name, payload, err := EncodeTyped(c.v)
		if err != nil {
			t.Fatal(err)
		}
		if name != c.name {
			t.Fatalf("%T encoded as %q, want %q", c.v, name, c.name)
		}
		got, err := DecodeTyped(name, payload)
		if err != nil {
			t.Fatal(err)
		}
		if reflect.TypeOf(got) != reflect.TypeOf(c.v) {
			t.Fatalf("decoded a %T, want a %T", got, c.v)
		}
		// Normalise what msgpack cannot tell apart (nil vs empty slice).
		if !equalish(got, c.v) {
			t.Fatalf("got %+v, want %+v", got, c.v)
		}
	}
}

func equalish(a, b any) bool {
	switch a := a.(type) {
	case regPoint:
		b := b.(regPoint)
		return a.X == b.X && a.Y == b.Y && strings.Join(a.Tags, ",") == strings.Join(b.Tags, ",")
	case *regNode:
		b := b.(*regNode)
		if a.Name != b.Name || !a.When.Equal(b.When) || len(a.Children) != len(b.Children) {
			return false
		}
		for i := range a.Children {
			if !equalish(a.Children[i], b.Children[i]) {
				return false
			}
		}
		return true
	}
	return false
}

func TestTypeName(t *testing.T) {
	if n, ok := TypeName(regPoint{}); !ok || n != "messages_test.point" {
		t.Fatalf("TypeName(regPoint) = %q, %v", n, ok)
	}
	if n, ok := TypeName(&regNode{}); !ok || n != "messages_test.node" {
		t.Fatalf("TypeName(*regNode) = %q, %v", n, ok)
	}
	for _, v := range []any{&regPoint{}, regNode{}, regOther{}, nil, 5} {
		if n, ok := TypeName(v); ok {
			t.Fatalf("TypeName(%T) = %q, want unregistered", v, n)
		}
	}
}

func TestDecodeTypedUnknown(t *testing.T) {
	_, err := DecodeTyped("messages_test.nobody", []byte{0x80})
	var ute *UnknownTypeError
	if !errors.As(err, &ute) || ute.Name != "messages_test.nobody" {
		t.Fatalf("got %v, want *UnknownTypeError", err)
	}
	if !strings.Contains(err.Error(), `"messages_test.nobody"`) {
		t.Fatalf("error does not quote the name: %v", err)
	}
}

func TestDecodeTypedMalformed(t *testing.T) {
	for _, payload := range [][]byte{nil, {0xc1}, {0x92, 0x01}, {0xdd, 0xff, 0xff, 0xff, 0xff}} {
		for _, name := range []string{"messages_test.point", "messages_test.node"} {
			if v, err := DecodeTyped(name, payload); err == nil {
				t.Errorf("%s from %x decoded as %+v", name, payload, v)
			} else if !strings.Contains(err.Error(), name) {
				t.Errorf("error does not name the type: %v", err)
			}
		}
	}
}

func TestEncodeTypedUnregistered(t *testing.T) {
	if _, _, err := EncodeTyped(regOther{}); err == nil || !strings.Contains(err.Error(), "regOther") {
		t.Fatalf("got %v, want an error naming the type", err)
	}
	if _, _, err := EncodeTyped(&regPoint{}); err == nil {
		t.Fatal("*regPoint is not registered (regPoint is), but it encoded")
	}
}

func TestRegisterTwice(t *testing.T) {
	Register[regPoint]("messages_test.point") // same type again: allowed
	defer func() {
		p := recover()
		if p == nil {
			t.Fatal("registering a name for a second type did not panic")
		}
		if s, _ := p.(string); !strings.Contains(s, "messages_test.point") {
			t.Fatalf("panic does not name the type name: %v", p)
		}
		if _, ok := TypeName(regOther{}); ok {
			t.Fatal("the refused registration took effect")
		}
	}()
	Register[regOther]("messages_test.point")
}

func TestRegistryBuiltins(t *testing.T) {
	// The messages package's own payload types round-trip through msgpack.
	lr := &LogRecord{Time: time.Unix(1700000000, 5).UTC(), Level: 4, Message: "m", Context: "local.1",
		Attrs: []Attr{{Key: "s", Value: "v"}, {Key: "n", Value: int64(-3)}, {Key: "b", Value: true}}}
	name := "messages_test.logrecord"
	Register[*LogRecord](name)
	n, p, err := EncodeTyped(lr)
	if err != nil || n != name {
		t.Fatal(n, err)
	}
	v, err := DecodeTyped(n, p)
	if err != nil {
		t.Fatal(err)
	}
	got := v.(*LogRecord)
	if !got.Time.Equal(lr.Time) || got.Message != "m" || len(got.Attrs) != 3 || got.Attrs[1].Value != int64(-3) || got.Attrs[2].Value != true {
		t.Fatalf("got %+v", got)
	}
}
