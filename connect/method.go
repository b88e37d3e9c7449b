package connect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"syscall"

	"github.com/mitogo/mitogo/bootstrap"
	"github.com/mitogo/mitogo/transport"
)

// The registered methods' names (Spec.Method).
const (
	Local   = "local"
	Sudo    = "sudo"
	Su      = "su"
	Doas    = "doas"
	SSH     = "ssh"
	OpenSSH = "openssh"
)

// PasswordWay says how a method takes a password.
type PasswordWay int

const (
	NoPassword      PasswordWay = iota // the method takes none
	PasswordAskpass                    // an askpass helper the tool runs (sudo -A, SSH_ASKPASS)
	PasswordPty                        // the tool's prompt on a pseudo-terminal, recognised by shape (su, doas)
	PasswordSSH                        // SSH password and keyboard-interactive authentication
)

// Method is one connection method. The registry holds one per name.
type Method struct {
	Name        string      // as in Spec.Method: "sudo"
	Shell       bool        // ends in a shell that runs stage 1
	Password    PasswordWay // how a password is given
	DefaultUser string      // the target user when none is given ("" for none)
	Options     Option      // the options that apply
	SSHLogin    bool        // the user is the SSH login (Spec.SSH.User), not an account to become
	// Target names what the method enters (Spec.Target), for usage
	// text: "CONTAINER", "PID|KIND:NAME"; "" for a method that takes none.
	Target string
	// Remote: the child runs on another machine, or in another PID
	// namespace (a container). Its stream gets heartbeats by default (a
	// process stopped behind a live sshd, or in a paused container, is
	// otherwise never noticed), and its processes cannot be signalled from
	// here; a child on this machine is ended with its session when reaped.
	Remote bool

	hints   map[Option]string                                          // what to use instead of an option that does not apply
	check   func(Spec) error                                           // options that contradict each other
	name    func(Spec) string                                          // the default name; nil: Name.<id>
	subject func(Spec) string                                          // what a refusal is about: "sudo to root"
	start   func(context.Context, Spec, Env) (*transport.Child, error) // starts the process
	explain func(s Spec, output string) (reason string, cause error)   // reads a refusal in what the tool printed
}

// Env is what a method may need from the router that starts it.
type Env struct {
	Pacer *transport.Pacer // paces SSH handshakes per host
	// Phase, when not nil, is called as each step of starting completes,
	// for the methods that tell (ssh: tcp, ssh_handshake, auth, session).
	Phase func(transport.Phase)
	// Direct is the process's bound on FDConn streams (see
	// transport.DirectLimit); nil: the runtime poller watches them all.
	Direct *transport.DirectLimit
}

var registry = map[string]*Method{}

// order is the registry's names in registration order.
var order []string

func register(m *Method) {
	if _, dup := registry[m.Name]; dup {
		panic("connect: method " + m.Name + " registered twice")
	}
	registry[m.Name] = m
	order = append(order, m.Name)
}

// Lookup returns the method called name.
func Lookup(name string) (*Method, bool) {
	m, ok := registry[name]
	return m, ok
}

// Methods returns every method, in a stable order.
func Methods() []*Method {
	ms := make([]*Method, len(order))
	for i, n := range order {
		ms[i] = registry[n]
	}
	return ms
}

// SetAccount puts user and password where the method reads them, the
// method's default user when user is "".
func (m *Method) SetAccount(s *Spec, user, password string) {
	if m.SSHLogin {
		if user != "" {
			s.SSH.User = user
		}
	} else {
		s.User = user
		if s.User == "" {
			s.User = m.DefaultUser
		}
	}
	switch m.Password {
	case PasswordSSH:
		s.SSH.Password = password
	case PasswordAskpass, PasswordPty:
		s.Secret = password
	}
}

// DefaultName is the name of the context when none is given: "sudo:root",
// "ssh:deploy@web1:2222", "local.3".
func (m *Method) DefaultName(s Spec, id uint32) string {
	if m.name != nil {
		return m.name(s)
	}
	return fmt.Sprintf("%s.%d", m.Name, id)
}

// Start starts the process the child context will run in. It runs nothing
// of stage 1: that is for the caller, when the method is a Shell.
func (m *Method) Start(ctx context.Context, s Spec, env Env) (*transport.Child, error) {
	if err := m.Validate(s, 0); err != nil {
		return nil, err
	}
	return m.start(ctx, s, env)
}

// Attempt is what is known of a started connection that failed.
type Attempt struct {
	Err       error  // what failed on this side: reading the handshake, stage 1
	Status    string // how the process ended ("exit status 1"), "" when unknown
	Refusal   error  // a refusal seen (transport.Child.Refusal)
	Suspicion error  // a likely cause (transport.Child.Suspicion)
	Output    string // the last lines the far side printed
}

// Explain returns the cause and the reason of a failed connection, from
// the weakest evidence to the strongest: what failed here, a suspicion (a
// password taken, then the tool ended), what the far side printed, a
// refusal seen. cause is nil when none is known.
func (m *Method) Explain(s Spec, a Attempt) (reason string, cause error) {
	reason = a.Err.Error()
	switch {
	case errors.Is(a.Err, io.EOF), errors.Is(a.Err, io.ErrUnexpectedEOF), errors.Is(a.Err, syscall.EPIPE), errors.Is(a.Err, syscall.ECONNRESET):
		cause, reason = ErrHandshake, "EOF during bootstrap: it exited before its handshake"
		if a.Status != "" {
			reason = "EOF during bootstrap: it (" + a.Status + ") exited before its handshake"
		}
		if !m.Shell {
			reason += " (does its main call actors.Main first?)"
		}
	case errors.Is(a.Err, ErrBootstrap), errors.Is(a.Err, ErrHandshake):
		cause = a.Err
	default:
		cause = FromCode(Code(a.Err)) // a cause the method's start found (ErrToolMissing, ...)
	}
	if a.Suspicion != nil {
		cause, reason = a.Suspicion, m.Refused(s, a.Suspicion)
	}
	if m.explain != nil {
		why, c := m.explain(s, a.Output)
		if why == "" && m.Target != "" && a.Err != nil {
			// A container tool may print its refusal on the stdout it
			// shares with stage 1 (docker exec does); stage 1 quotes
			// what it read there in its error.
			why, c = m.explain(s, a.Err.Error())
		}
		if why != "" {
			cause, reason = c, why
		}
	}
	if a.Refusal != nil {
		cause, reason = a.Refusal, m.Refused(s, a.Refusal)
	}
	return Elide(reason), cause
}

// Elide replaces the stage 1 program in s, as a shell that refused it
// prints it back, and as %q quotes it, with "<stage 1>": an error says what
// went wrong, not a page of shell.
func Elide(s string) string {
	for _, p := range []string{bootstrap.Stage1Plain(), bootstrap.Stage1()} {
		q := strconv.Quote(p)
		s = strings.ReplaceAll(s, p, "<stage 1>")
		s = strings.ReplaceAll(s, q[1:len(q)-1], "<stage 1>")
	}
	return s
}

// Refused is the reason for a refusal with cause: "sudo to root: password
// incorrect".
func (m *Method) Refused(s Spec, cause error) string {
	if m.subject == nil {
		return m.Name + ": " + cause.Error()
	}
	return m.subject(s) + ": " + cause.Error()
}
