package connect

import (
	"fmt"
	"strings"

	"github.com/mitogo/mitogo/transport"
)

// Spec says how to start a child; it is plain data, so a context asked to
// start a child for another (Via) receives it in the request.
type Spec struct {
	Method string   `msgpack:"method"` // a registered method's name: local, sudo, su, doas, ssh, openssh, podman, ...
	Path   string   `msgpack:"path"`   // local: the executable
	Args   []string `msgpack:"args"`   // local: its arguments
	User   string   `msgpack:"user"`   // sudo, su, doas: the target user
	Tool   string   `msgpack:"tool"`   // every method but local and ssh: the path of the tool
	Secret string   `msgpack:"secret"` // sudo, su, doas, openssh: the password to answer with
	// PreserveEnv keeps the caller's environment (sudo -E, su -m).
	PreserveEnv bool `msgpack:"preserve_env"`
	// Login runs the target user's login shell first (sudo -i, su -l).
	Login bool `msgpack:"login"`

	SSH     transport.SSHSpec `msgpack:"ssh"`      // ssh, openssh: how to reach the host
	SSHArgs []string          `msgpack:"ssh_args"` // openssh: extra arguments for ssh
	NoCache bool              `msgpack:"no_cache"` // shell methods: run from a temporary file, cache nothing

	// Target is what a container or namespace method enters: podman,
	// docker, lxc: the container; kubectl: POD or POD/CONTAINER; nsenter:
	// a PID, or KIND:NAME (podman:web) for a container's; chroot: the
	// directory.
	Target string `msgpack:"target"`
	// ToolEnv is added to the environment of the tool (DOCKER_HOST=...,
	// CONTAINER_HOST=..., KUBECONFIG=...), in the context that runs it.
	ToolEnv []string `msgpack:"tool_env"`
	// Namespace and KubeContext are kubectl's --namespace and --context.
	Namespace   string `msgpack:"namespace"`
	KubeContext string `msgpack:"kube_context"`
	// BinaryOwner is the context that made the connection and serves
	// binaries for far sides of other platforms; BinaryToken names what it
	// was given for this connection.
	BinaryOwner uint32 `msgpack:"binary_owner"`
	BinaryToken string `msgpack:"binary_token"`
}

// Option names a connection option whose use depends on the method (the
// options every method takes, such as Via, Name, ConnectTimeout and
// Supervise, are not listed). Several or-ed together are a set.
type Option uint32

// Connection options, named after the actors functions that set them.
const (
	OptUser Option = 1 << iota
	OptPassword
	OptTool
	OptPreserveEnv
	OptLoginShell
	OptExecutable
	OptNoCache
	OptBinaries // Binaries and BinaryFunc
	OptIdentityFile
	OptKnownHosts
	OptHostKeyPolicy
	OptSSHConfig
	OptKeepalive
	OptSSHArgs
	OptToolEnv
	OptNamespace
	OptKubeContext
	optEnd
)

var optionNames = map[Option]string{
	OptUser: "User", OptPassword: "Password", OptTool: "Tool", OptPreserveEnv: "PreserveEnv",
	OptLoginShell: "LoginShell", OptExecutable: "Executable", OptNoCache: "NoCache", OptBinaries: "Binaries",
	OptIdentityFile: "IdentityFile", OptKnownHosts: "KnownHosts", OptHostKeyPolicy: "HostKeyPolicy",
	OptSSHConfig: "SSHConfig", OptKeepalive: "Keepalive", OptSSHArgs: "SSHArgs",
	OptToolEnv: "ToolEnv", OptNamespace: "Namespace", OptKubeContext: "KubeContext",
}

// String names the options in o, e.g. "Tool, Keepalive".
func (o Option) String() string {
	var names []string
	for b := Option(1); b < optEnd; b <<= 1 {
		if o&b != 0 {
			names = append(names, optionNames[b])
		}
	}
	return strings.Join(names, ", ")
}

// Validate refuses, before anything starts, a spec that cannot work: an
// option in given that does not apply to the method, options that
// contradict each other, a password with a newline. The error matches
// ErrBadOption.
func (m *Method) Validate(s Spec, given Option) error {
	if extra := given &^ m.Options; extra != 0 {
		for b := Option(1); b < optEnd; b <<= 1 {
			if extra&b == 0 {
				continue
			}
			msg := fmt.Sprintf("%s does not apply to the %s method", b, m.Name)
			if hint := m.hints[b]; hint != "" {
				msg += " (" + hint + ")"
			}
			return fmt.Errorf("%w: %s", ErrBadOption, msg)
		}
	}
	if strings.ContainsAny(s.Secret, "\r\n") || strings.ContainsAny(s.SSH.Password, "\r\n") {
		return fmt.Errorf("%w: a password cannot contain a newline", ErrBadOption)
	}
	if m.check != nil {
		if err := m.check(s); err != nil {
			return fmt.Errorf("%w: %v", ErrBadOption, err)
		}
	}
	return nil
}
