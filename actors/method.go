package actors

import (
	"fmt"
	"os"
	"strings"

	"github.com/mitogo/mitogo/bootstrap"
	"github.com/mitogo/mitogo/transport"
)

// methodSpec says how to start a child; it is plain data, so a context
// asked to start a child for another (Via) receives it in the request.
type methodSpec struct {
	Method string   `msgpack:"method"` // local, sudo
	Path   string   `msgpack:"path"`   // local: the executable
	Args   []string `msgpack:"args"`   // local: its arguments
	User   string   `msgpack:"user"`   // sudo: the target user
	Tool   string   `msgpack:"tool"`   // sudo: the path of the tool
}

func (m methodSpec) defaultName(id uint32) string {
	switch m.Method {
	case "sudo":
		return "sudo:" + m.User
	}
	return m.Method + "." + itoa(id)
}

// shell reports whether the method ends in a shell that runs stage 1.
func (m methodSpec) shell() bool { return m.Method != "local" }

func (m methodSpec) start() (*transport.Child, error) {
	switch m.Method {
	case "local":
		return transport.StartLocal(transport.LocalSpec{Path: m.Path, Args: m.Args})
	case "sudo":
		tool := m.Tool
		if tool == "" {
			tool = "sudo"
		}
		// -n: never prompt (a password comes with the pty support);
		// -H: the target user's home, so the cache is theirs.
		return transport.StartCommand([]string{tool, "-n", "-H", "-u", m.User, "--", "/bin/sh", "-c", bootstrap.Stage1()}, nil)
	}
	return nil, fmt.Errorf("unknown connection method %q", m.Method)
}

// explain turns what a failed method printed into a reason, when it is a
// known refusal.
func (m methodSpec) explain(output string) string {
	if m.Method != "sudo" {
		return ""
	}
	low := strings.ToLower(output)
	switch {
	case strings.Contains(low, "a password is required"):
		return fmt.Sprintf("sudo to %s: a password is required", m.User)
	case strings.Contains(low, "unknown user"):
		return fmt.Sprintf("sudo to %s: user unknown", m.User)
	case strings.Contains(low, "not allowed") || strings.Contains(low, "not in the sudoers"):
		return fmt.Sprintf("sudo to %s: not allowed by sudoers", m.User)
	}
	return ""
}

// User sets the account a sudo (later su, doas, ssh) connection logs into.
func User(name string) ConnectOption { return func(c *connectConfig) { c.user = name } }

// Tool sets the path of the program a method runs (sudo, su, doas).
func Tool(path string) ConnectOption { return func(c *connectConfig) { c.tool = path } }

// selfBinary is this program's executable, hashed once, for stage 1.
func (r *Router) selfBinary() *bootstrap.Binary {
	r.binOnce.Do(func() {
		exe, err := os.Executable()
		if err == nil {
			r.bin, err = bootstrap.NewBinary(exe)
		}
		if err != nil {
			r.bin = &bootstrap.Binary{Path: "/nonexistent", Hash: "0"}
		}
	})
	return r.bin
}
