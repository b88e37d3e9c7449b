package connect

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/mitogo/mitogo/bootstrap"
	"github.com/mitogo/mitogo/transport"
)

// The methods that change account on the same machine: sudo, su and doas.
// Their refusals are read from what they print, so they run with LC_ALL=C
// (English messages whatever the caller's locale); stage 1 puts the
// caller's LC_ALL back before it starts the child, so the child's
// environment is what it would have been without it.

func init() {
	account := OptUser | OptPassword | OptTool | OptNoCache | OptBinaries
	register(&Method{Name: Sudo, Shell: true, Password: PasswordAskpass, DefaultUser: "root",
		Options: account | OptPreserveEnv | OptLoginShell,
		check: func(s Spec) error {
			if s.PreserveEnv && s.Login {
				return fmt.Errorf("sudo cannot both preserve the environment (-E) and start a login shell (-i)")
			}
			return nil
		},
		name: accountName(Sudo), subject: accountSubject(Sudo), start: startSudo, explain: explainSudo})
	register(&Method{Name: Su, Shell: true, Password: PasswordPty, DefaultUser: "root",
		Options: account | OptPreserveEnv | OptLoginShell,
		name:    accountName(Su), subject: accountSubject(Su), start: startSu, explain: explainSu})
	register(&Method{Name: Doas, Shell: true, Password: PasswordPty, DefaultUser: "root",
		Options: account,
		hints: map[Option]string{
			OptPreserveEnv: "doas has no options to preserve the environment or start a login shell; use keepenv in doas.conf",
			OptLoginShell:  "doas has no options to preserve the environment or start a login shell; use keepenv in doas.conf",
		},
		name: accountName(Doas), subject: accountSubject(Doas), start: startSu, explain: explainDoas})
}

func accountName(method string) func(Spec) string {
	return func(s Spec) string { return method + ":" + s.User }
}

func accountSubject(method string) func(Spec) string {
	return func(s Spec) string { return method + " to " + s.User }
}

// cLocale is the environment that makes the tools speak English.
var cLocale = []string{"LC_ALL=C"}

// isLocaleName reports whether v is a plain locale name: letters, digits
// and "_.@-" only, nothing a shell would read otherwise. (A function, not a
// regexp compiled at package init, which every child pays for at start.)
func isLocaleName(v string) bool {
	if v == "" {
		return false
	}
	for _, c := range []byte(v) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '_' || c == '.' || c == '@' || c == '-':
		default:
			return false
		}
	}
	return true
}

// restoreLocale prefixes program with what puts the caller's LC_ALL back
// (unsets it when the caller had none). The value is written unquoted, so
// that sudo -i's escaping leaves it intact; a value that is not a plain
// locale name is not restored.
func restoreLocale(program string) string {
	if v := os.Getenv("LC_ALL"); v != "" && isLocaleName(v) {
		return "LC_ALL=" + v + "; export LC_ALL; " + program
	}
	return "unset LC_ALL; " + program
}

// SudoArgv is the command line for sudo: with -n without a password, with
// -k -A (askpass) with one.
func SudoArgv(s Spec) []string {
	tool := s.Tool
	if tool == "" {
		tool = "sudo"
	}
	// -H: the target user's home, so the cache is theirs.
	argv := []string{tool}
	if s.Secret == "" {
		// -n: never prompt; a sudoers entry that wants a password fails
		// at once, saying so.
		argv = append(argv, "-n")
	} else {
		// -k: the password given is checked, not a cached credential;
		// -A: sudo asks our helper, whatever its prompt or language.
		argv = append(argv, "-k", "-A")
	}
	argv = append(argv, "-H", "-u", s.User)
	if s.PreserveEnv {
		argv = append(argv, "-E")
	}
	program := restoreLocale(bootstrap.Stage1())
	if s.Login {
		argv = append(argv, "-i")
		program = restoreLocale(bootstrap.Stage1Plain()) // -i expands "$" in the command
	}
	return append(argv, "--", "/bin/sh", "-c", program)
}

func startSudo(_ context.Context, s Spec, e Env) (*transport.Child, error) {
	argv := SudoArgv(s)
	if s.Secret == "" {
		return transport.StartCommand(argv, cLocale, e.Direct)
	}
	return startWithAskpass(argv, s.Secret, e.Direct, func(a *transport.Askpass) []string { return append(a.Env(), cLocale...) })
}

// SuArgv is the command line for su or doas. Without a password doas gets
// -n, so it never prompts.
func SuArgv(s Spec) []string {
	tool := s.Tool
	if tool == "" {
		tool = s.Method
	}
	program := restoreLocale(bootstrap.Stage1())
	if s.Method == Su {
		argv := []string{tool}
		if s.PreserveEnv {
			argv = append(argv, "-m")
		}
		if s.Login {
			argv = append(argv, "-l")
		}
		return append(argv, "-s", "/bin/sh", "-c", program, s.User)
	}
	argv := []string{tool}
	if s.Secret == "" {
		argv = append(argv, "-n")
	}
	return append(argv, "-u", s.User, "/bin/sh", "-c", program)
}

func startSu(_ context.Context, s Spec, e Env) (*transport.Child, error) {
	argv := SuArgv(s)
	if s.Secret != "" || s.Method == Su {
		// su and doas read a password only from a terminal; su with no
		// terminal would wait on its stdin for one, so it always gets
		// one, and a prompt without a password to give is refused.
		return transport.StartPty(argv, cLocale, s.Secret)
	}
	return transport.StartCommand(argv, cLocale, e.Direct)
}

// startWithAskpass runs argv with an askpass helper that answers secret;
// env says how the tool finds the helper. A second ask means the secret
// was wrong: the child is killed and refused with ErrPasswordIncorrect.
func startWithAskpass(argv []string, secret string, direct *transport.DirectLimit, env func(*transport.Askpass) []string) (*transport.Child, error) {
	ap, err := transport.NewAskpass(secret)
	if err != nil {
		return nil, err
	}
	child, err := transport.StartCommand(argv, env(ap), direct)
	if err != nil {
		ap.Close()
		return nil, err
	}
	child.Output = ap.Watch(child.Output, func() {
		child.Refuse(ErrPasswordIncorrect)
		child.Proc.Kill()
	})
	child.Cleanup = ap.Close
	return child, nil
}

// The explain functions read what the tools print under LC_ALL=C.

func explainSudo(s Spec, output string) (string, error) {
	low := strings.ToLower(output)
	var cause error
	switch {
	case strings.Contains(low, "a password is required"):
		cause = ErrPasswordRequired
	case strings.Contains(low, "unknown user"):
		cause = ErrUnknownUser
	case strings.Contains(low, "not allowed"), strings.Contains(low, "not in the sudoers"):
		return fmt.Sprintf("sudo to %s: not allowed by sudoers", s.User), ErrNotAllowed
	default:
		return "", nil
	}
	return accountSubject(Sudo)(s) + ": " + cause.Error(), cause
}

func explainSu(s Spec, output string) (string, error) {
	low := strings.ToLower(output)
	switch {
	case strings.Contains(low, "does not exist"), strings.Contains(low, "unknown"):
		return fmt.Sprintf("su to %s: user unknown", s.User), ErrUnknownUser
	case s.Secret != "" && strings.Contains(low, "authentication failure"):
		return fmt.Sprintf("su to %s: password incorrect", s.User), ErrPasswordIncorrect
	case strings.Contains(low, "permission denied"):
		return fmt.Sprintf("su to %s: not allowed: %q", s.User, lastLine(output)), ErrNotAllowed
	case strings.Contains(low, "must be run from a terminal"), strings.Contains(low, "authentication failure"):
		return fmt.Sprintf("su to %s: a password is required (give one with Password)", s.User), ErrPasswordRequired
	}
	return "", nil
}

func explainDoas(s Spec, output string) (string, error) {
	low := strings.ToLower(output)
	switch {
	case s.Secret != "" && strings.Contains(low, "authentication failed"):
		return fmt.Sprintf("doas to %s: password incorrect", s.User), ErrPasswordIncorrect
	case strings.Contains(low, "authorization required"), strings.Contains(low, "authentication required"), strings.Contains(low, "a password is required"):
		return fmt.Sprintf("doas to %s: a password is required", s.User), ErrPasswordRequired
	case strings.Contains(low, "not permitted"):
		return fmt.Sprintf("doas to %s: not allowed by doas.conf", s.User), ErrNotAllowed
	case strings.Contains(low, "unknown user"), strings.Contains(low, "no passwd entry"):
		return fmt.Sprintf("doas to %s: user unknown", s.User), ErrUnknownUser
	}
	return "", nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
