package builtins

import (
	"reflect"
	"slices"
	"strings"
)

// Entry describes one built-in function for people: the command line's
// "mitogo list" prints them.
type Entry struct {
	Name    string   // registered name, e.g. "file.read"
	Summary string   // one line
	Example string   // JSON arguments, as "mitogo call NAME JSON" takes them
	Args    []string // the argument's field names, as JSON and msgpack spell them

	arg reflect.Type // the argument's type, for CheckArgs
}

var catalog = []Entry{
	{Name: Facts.Name(), Summary: "hostname, OS, kernel, uptime, user and pid of the context", Example: `{}`,
		Args: fieldNames[FactsRequest](), arg: reflect.TypeFor[FactsRequest]()},
	{Name: FileRead.Name(), Summary: "read a file: its data (at most max_bytes), mode and size", Example: `{"path":"/etc/hostname"}`,
		Args: fieldNames[ReadRequest](), arg: reflect.TypeFor[ReadRequest]()},
	{Name: FileWrite.Name(), Summary: "write a file, atomically (temp file + rename) when atomic is true", Example: `{"path":"/tmp/x","data":"hello\n","mode":"0600","atomic":true}`,
		Args: fieldNames[WriteRequest](), arg: reflect.TypeFor[WriteRequest]()},
	{Name: FileStat.Name(), Summary: "size, mode, modification time and owner of a file", Example: `{"path":"/etc/hostname"}`,
		Args: fieldNames[StatRequest](), arg: reflect.TypeFor[StatRequest]()},
	{Name: ProcExec.Name(), Summary: "run a command to completion; its exit code, stdout and stderr", Example: `{"argv":["uname","-a"],"timeout":"10s"}`,
		Args: fieldNames[ExecRequest](), arg: reflect.TypeFor[ExecRequest]()},
	{Name: ProcRun.Name(), Summary: "run a command streaming its output over a channel (use \"mitogo run\")", Example: `{"argv":["ls"],"reply":{"context":0,"id":"ch1"}}`,
		Args: fieldNames[RunRequest](), arg: reflect.TypeFor[RunRequest]()},
}

// Catalog lists the built-in functions, sorted by name.
func Catalog() []Entry {
	out := slices.Clone(catalog)
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Lookup returns the catalog entry of the built-in function name.
func Lookup(name string) (Entry, bool) {
	for _, e := range catalog {
		if e.Name == name {
			return e, true
		}
	}
	return Entry{}, false
}

// fieldNames lists the msgpack names of T's exported fields.
func fieldNames[T any]() []string {
	t := reflect.TypeFor[T]()
	var names []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("msgpack"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		names = append(names, name)
	}
	return names
}
