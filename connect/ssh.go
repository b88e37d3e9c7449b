package connect

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/mitogo/mitogo/bootstrap"
	"github.com/mitogo/mitogo/transport"
)

func init() {
	common := OptUser | OptPassword | OptIdentityFile | OptKnownHosts | OptHostKeyPolicy | OptSSHConfig | OptNoCache | OptBinaries
	register(&Method{Name: SSH, Shell: true, SSHLogin: true, Remote: true, Password: PasswordSSH, Options: common | OptKeepalive,
		hints: map[Option]string{
			OptTool:    "the ssh method is the native client; use OpenSSH to run a program",
			OptSSHArgs: "the ssh method is the native client; use OpenSSH for ssh's arguments",
		},
		name: sshName, subject: sshSubject, start: startSSH})
	register(&Method{Name: OpenSSH, Shell: true, SSHLogin: true, Remote: true, Password: PasswordAskpass, Options: common | OptSSHArgs | OptTool,
		hints: map[Option]string{
			OptKeepalive: `the OpenSSH client keeps the connection alive itself: SSHArgs("-o", "ServerAliveInterval=15")`,
		},
		name: sshName, subject: sshSubject, start: startOpenSSH, explain: explainOpenSSH})
}

// SplitTarget splits [user@]host[:port]; IPv6 addresses go in brackets.
func SplitTarget(t string) (user, host string, port int, err error) {
	if i := strings.LastIndex(t, "@"); i >= 0 {
		user, t = t[:i], t[i+1:]
	}
	host = t
	if h, p, e := net.SplitHostPort(t); e == nil {
		host = h
		if port, err = strconv.Atoi(p); err != nil && !isDigits(p) {
			return "", "", 0, fmt.Errorf("port %q in %q is not a number", p, t)
		} else if err != nil || port <= 0 || port > 65535 {
			return "", "", 0, fmt.Errorf("port %s in %q is out of range (1–65535)", p, t)
		}
	} else if strings.HasPrefix(t, "[") && strings.HasSuffix(t, "]") {
		host = t[1 : len(t)-1]
	}
	if host == "" {
		return "", "", 0, fmt.Errorf("no host in %q", t)
	}
	return user, host, port, nil
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// Target is the inverse of SplitTarget: [user@]host[:port], the host in
// brackets when it holds a colon (IPv6), the port only when it is given
// and not 22.
func Target(user, host string, port int) string {
	t := host
	if port != 0 && port != 22 {
		t = net.JoinHostPort(host, strconv.Itoa(port))
	} else if strings.Contains(host, ":") {
		t = "[" + host + "]"
	}
	if user != "" {
		t = user + "@" + t
	}
	return t
}

func sshName(s Spec) string { return "ssh:" + Target(s.SSH.User, s.SSH.Host, s.SSH.Port) }

func sshSubject(s Spec) string { return "ssh to " + Target(s.SSH.User, s.SSH.Host, s.SSH.Port) }

func startSSH(ctx context.Context, s Spec, env Env) (*transport.Child, error) {
	return transport.StartSSH(ctx, s.SSH, "sh -c "+shellQuote(bootstrap.Stage1()), env.Pacer, env.Phase)
}

// OpenSSHArgv is the OpenSSH client's command line: BatchMode without a
// password, so it never prompts.
func OpenSSHArgv(s Spec) []string {
	tool := s.Tool
	if tool == "" {
		tool = "ssh"
	}
	h := s.SSH
	argv := []string{tool, "-T", "-o", "NumberOfPasswordPrompts=1"}
	if h.Port != 0 {
		argv = append(argv, "-p", strconv.Itoa(h.Port))
	}
	if h.User != "" {
		argv = append(argv, "-l", h.User)
	}
	for _, id := range h.IdentityFiles {
		argv = append(argv, "-i", id)
	}
	if h.KnownHosts != "" {
		argv = append(argv, "-o", "UserKnownHostsFile="+h.KnownHosts)
	}
	switch h.HostKeyPolicy {
	case transport.HostKeyAcceptNew:
		argv = append(argv, "-o", "StrictHostKeyChecking=accept-new")
	case transport.HostKeyIgnore:
		argv = append(argv, "-o", "StrictHostKeyChecking=no")
	case "", transport.HostKeyStrict:
		argv = append(argv, "-o", "StrictHostKeyChecking=yes")
	}
	if h.ConfigFile != "" {
		cfg := h.ConfigFile
		if cfg == "none" {
			cfg = "/dev/null"
		}
		argv = append(argv, "-F", cfg)
	}
	if s.Secret == "" {
		argv = append(argv, "-o", "BatchMode=yes")
	}
	argv = append(argv, s.SSHArgs...)
	return append(argv, "--", h.Host, "sh -c "+shellQuote(bootstrap.Stage1()))
}

// startOpenSSH runs the OpenSSH client, so that everything in the user's
// ~/.ssh/config applies (ProxyJump, ControlMaster, certificates). A
// password is given through SSH_ASKPASS, as for sudo.
func startOpenSSH(_ context.Context, s Spec, e Env) (*transport.Child, error) {
	argv := OpenSSHArgv(s)
	var child *transport.Child
	var err error
	if s.Secret == "" {
		child, err = transport.StartCommand(argv, nil, e.Direct)
	} else {
		child, err = startWithAskpass(argv, s.Secret, e.Direct, (*transport.Askpass).AskpassEnv)
	}
	if err == nil && requestsTTY(s.SSHArgs) {
		// The far shell's input is a terminal, cooked until stage 1
		// makes it raw: nothing may go before stage 1 speaks.
		child.Terminal = true
	}
	return child, err
}

// sshArgLetters are the OpenSSH client's options that take an argument.
const sshArgLetters = "BbcDEeFIiJLlmOoPpQRSWw"

// requestsTTY reports whether args, given to the OpenSSH client after
// -T, ask for a terminal on the far side: -t (alone or in a cluster of
// flags) or -o RequestTTY=yes|force.
func requestsTTY(args []string) bool {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return false
		}
		if len(a) < 2 || a[0] != '-' {
			continue
		}
		for j := 1; j < len(a); j++ {
			c := a[j]
			if c == 't' {
				return true
			}
			if !strings.ContainsRune(sshArgLetters, rune(c)) {
				continue
			}
			value := a[j+1:]
			if value == "" && i+1 < len(args) {
				i++
				value = args[i]
			}
			if c == 'o' && requestTTYOption(value) {
				return true
			}
			break
		}
	}
	return false
}

// requestTTYOption reports whether an -o value asks for a terminal.
func requestTTYOption(v string) bool {
	key, val, ok := strings.Cut(strings.TrimSpace(v), "=")
	if !ok {
		key, val, _ = strings.Cut(strings.TrimSpace(v), " ")
	}
	if !strings.EqualFold(strings.TrimSpace(key), "RequestTTY") {
		return false
	}
	val = strings.ToLower(strings.TrimSpace(val))
	return val == "yes" || val == "force"
}

// explainOpenSSH reads the OpenSSH client's refusals (it has no message
// catalogue: they are English everywhere).
func explainOpenSSH(s Spec, output string) (string, error) {
	low := strings.ToLower(output)
	who := sshSubject(s)
	switch {
	case strings.Contains(low, "remote host identification has changed"):
		return who + ": host key verification failed: the host's key has CHANGED (see known_hosts)", ErrChangedHostKey
	case strings.Contains(low, "host key verification failed"):
		return who + ": host key verification failed: the host's key is not known (see known_hosts)", ErrUnknownHostKey
	case strings.Contains(low, "permission denied"):
		why := fmt.Sprintf("%s: authentication failed: %q", who, lastLine(output))
		if ids := identityWarnings(output); len(ids) > 0 {
			why += fmt.Sprintf(" (identity files not used: %q)", strings.Join(ids, " "))
		}
		return why, ErrAuthFailed
	case strings.Contains(low, "connection refused"), strings.Contains(low, "could not resolve"), strings.Contains(low, "timed out"), strings.Contains(low, "no route to host"):
		return fmt.Sprintf("%s: %q", who, lastLine(output)), nil
	}
	return "", nil
}

// identityWarnings are the lines in which the OpenSSH client says it
// could not use an identity file ("Warning: Identity file k not
// accessible: No such file or directory.", "Load key "k": invalid
// format"): it goes on without them, so a refusal that follows is
// explained by them.
func identityWarnings(output string) []string {
	var lines []string
	for _, l := range strings.Split(output, "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "Warning: Identity file ") || strings.HasPrefix(l, "Load key ") {
			lines = append(lines, l)
		}
	}
	return lines
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
