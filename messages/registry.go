package messages

import (
	"fmt"
	"reflect"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// The type registry maps payload type names to Go types, so that both ends
// of a stream decode a message into the same type. Every process runs the
// same binary, so registering at package init makes a name known everywhere.
var registry = struct {
	sync.RWMutex
	byName map[string]reflect.Type
	byType map[reflect.Type]string
}{byName: map[string]reflect.Type{}, byType: map[reflect.Type]string{}}

// Register makes T known on the wire under name. T may be a struct or a
// pointer to one; a message of type T decodes as a T again. Registering one
// name twice for different types panics: it is a programming error found at
// init.
func Register[T any](name string) {
	t := reflect.TypeFor[T]()
	registry.Lock()
	defer registry.Unlock()
	if old, ok := registry.byName[name]; ok && old != t {
		panic(fmt.Sprintf("messages: type name %q registered for both %v and %v", name, old, t))
	}
	registry.byName[name] = t
	registry.byType[t] = name
}

// TypeName returns the registered name of v's dynamic type.
func TypeName(v any) (string, bool) {
	registry.RLock()
	defer registry.RUnlock()
	name, ok := registry.byType[reflect.TypeOf(v)]
	return name, ok
}

// UnknownTypeError reports a payload type name that no Register call made
// known in this binary.
type UnknownTypeError struct{ Name string }

func (e *UnknownTypeError) Error() string {
	return fmt.Sprintf("unknown message type %q (not registered with messages.Register)", e.Name)
}

// EncodeTyped encodes v with its registered name.
func EncodeTyped(v any) (name string, payload []byte, err error) {
	name, ok := TypeName(v)
	if !ok {
		return "", nil, fmt.Errorf("message type %T is not registered with messages.Register", v)
	}
	payload, err = msgpack.Marshal(v)
	if err != nil {
		return "", nil, fmt.Errorf("encoding %s: %w", name, err)
	}
	return name, payload, nil
}

// DecodeTyped decodes payload into a new value of the type registered as
// name. An unknown name is an *UnknownTypeError, never a panic. The payload
// is checked with CheckValue first (see Unmarshal).
func DecodeTyped(name string, payload []byte) (any, error) {
	registry.RLock()
	t, ok := registry.byName[name]
	registry.RUnlock()
	if !ok {
		return nil, &UnknownTypeError{Name: name}
	}
	if t.Kind() == reflect.Pointer {
		p := reflect.New(t.Elem())
		if err := Unmarshal(payload, p.Interface()); err != nil {
			return nil, fmt.Errorf("decoding %s: %w", name, err)
		}
		return p.Interface(), nil
	}
	p := reflect.New(t)
	if err := Unmarshal(payload, p.Interface()); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", name, err)
	}
	return p.Elem().Interface(), nil
}
