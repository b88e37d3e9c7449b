package builtins

import (
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/vmihailenco/msgpack/v5"
)

// ArgError is an argument field whose value does not decode into the
// field's type: the far side would refuse the call.
type ArgError struct {
	Field string // the field's name, as msgpack and JSON spell it
	Want  string // what the field takes, in words: "a string", "an array of strings"
	Err   error  // the decoder's error
}

func (e *ArgError) Error() string {
	return fmt.Sprintf("argument %q takes %s: %v", e.Field, e.Want, e.Err)
}

// Unwrap returns the decoder's error.
func (e *ArgError) Unwrap() error { return e.Err }

// CheckArgs decodes each field of args (values as JSON gives them: maps,
// slices, strings, integers, floats, booleans, nil) into the field of the
// function's argument type that has its name, as the far side decodes
// them, and returns an *ArgError for the first field, by name, that does
// not decode. Keys the type has no field for are left to the caller.
func (e Entry) CheckArgs(args map[string]any) error {
	if e.arg == nil {
		return nil
	}
	keys := make([]string, 0, len(args))
	for k := range args {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		f, ok := fieldByName(e.arg, k)
		if !ok {
			continue
		}
		if f.Type == reflect.TypeFor[Duration]() {
			switch args[k].(type) {
			case int64, float64, int:
				// Nanoseconds to the decoder: {"timeout":10} would be
				// 10 ns, never what a person means.
				return &ArgError{Field: k, Want: describeType(f.Type), Err: fmt.Errorf("a bare number (%v) would be nanoseconds", args[k])}
			}
		}
		b, err := msgpack.Marshal(args[k])
		if err == nil {
			err = msgpack.Unmarshal(b, reflect.New(f.Type).Interface())
		}
		if err != nil {
			return &ArgError{Field: k, Want: describeType(f.Type), Err: err}
		}
	}
	return nil
}

// fieldByName returns the exported field of struct type t that msgpack
// names name.
func fieldByName(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		n, _, _ := strings.Cut(f.Tag.Get("msgpack"), ",")
		if n == "" {
			n = f.Name
		}
		if n == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// describeType says what a value of type t is written as in JSON.
func describeType(t reflect.Type) string {
	switch t {
	case reflect.TypeFor[Duration]():
		return `a duration such as "10s"`
	case reflect.TypeFor[FileMode]():
		return `an octal mode such as "0644"`
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		switch e := t.Elem(); e.Kind() {
		case reflect.Uint8:
			return "a string"
		case reflect.String:
			return "an array of strings"
		}
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Pointer:
		return describeType(t.Elem())
	}
	return "a value of another kind"
}
