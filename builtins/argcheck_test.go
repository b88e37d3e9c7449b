package builtins

import (
	"encoding/json"
	"errors"
	"testing"
)

// Every example in the catalog passes; a field of the wrong type is named
// with what it takes.
func TestCheckArgs(t *testing.T) {
	decode := func(s string) map[string]any {
		var m map[string]any
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		return intsOf(m).(map[string]any)
	}
	for _, e := range Catalog() {
		if err := e.CheckArgs(decode(e.Example)); err != nil {
			t.Errorf("%s's example %s: %v", e.Name, e.Example, err)
		}
	}
	for _, c := range []struct {
		fn, args, field, want string
	}{
		{"file.stat", `{"path":5}`, "path", "a string"},
		{"file.read", `{"path":"/x","max_bytes":"all"}`, "max_bytes", "an integer"},
		{"file.write", `{"path":"/x","mode":"rw"}`, "mode", `an octal mode such as "0644"`},
		{"proc.exec", `{"argv":["ls",1]}`, "argv", "an array of strings"},
		{"proc.exec", `{"argv":["ls"],"timeout":true}`, "timeout", `a duration such as "10s"`},
		{"proc.exec", `{"argv":["ls"],"timeout":10}`, "timeout", `a duration such as "10s"`}, // 10 ns, else
		{"proc.exec", `{"argv":"ls","timeout":true}`, "argv", "an array of strings"},         // the first by name
	} {
		e, _ := Lookup(c.fn)
		var ae *ArgError
		if err := e.CheckArgs(decode(c.args)); !errors.As(err, &ae) || ae.Field != c.field || ae.Want != c.want {
			t.Errorf("%s %s: %v; want an *ArgError for %q, which takes %s", c.fn, c.args, err, c.field, c.want)
		}
	}
}

// intsOf turns the whole numbers encoding/json gives as float64 into
// int64, as the mitogo command sends them.
func intsOf(v any) any {
	switch v := v.(type) {
	case float64:
		if v == float64(int64(v)) {
			return int64(v)
		}
	case map[string]any:
		for k, x := range v {
			v[k] = intsOf(x)
		}
	case []any:
		for i, x := range v {
			v[i] = intsOf(x)
		}
	}
	return v
}
