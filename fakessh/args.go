package fakessh

import (
	"errors"
	"fmt"
	"strings"
)

// invocation is what a tool asked of ssh: the host, and the command or
// subsystem to run there.
type invocation struct {
	Host      string
	Command   string // the remote command, its words joined by spaces as ssh does
	Subsystem bool   // -s: Command names a subsystem (sftp)
}

// sshArgOptions are ssh's options that take an argument.
const sshArgOptions = "BbcDEeFIiJLlmOoPpQRSWw"

// sshFlags are ssh's options that take none.
const sshFlags = "46AaCfGgKkMNnqsTtVvXxYy"

// parseArgs reads an ssh command line (without argv[0]) as getopt does.
// Options are accepted and ignored, except -s; the login user is the
// context's, whatever -l or user@ say.
func parseArgs(args []string) (invocation, error) {
	var inv invocation
	i := 0
options:
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			i++
			break
		}
		if len(a) < 2 || a[0] != '-' {
			break
		}
		for j := 1; j < len(a); j++ {
			c := a[j]
			switch {
			case strings.IndexByte(sshArgOptions, c) >= 0:
				if j+1 == len(a) {
					i++ // the argument is the next word
					if i == len(args) {
						return inv, fmt.Errorf("ssh option -%c needs an argument", c)
					}
				}
				continue options
			case strings.IndexByte(sshFlags, c) >= 0:
				if c == 's' {
					inv.Subsystem = true
				}
			default:
				return inv, fmt.Errorf("unknown ssh option -%c", c)
			}
		}
	}
	if i == len(args) {
		return inv, errors.New("no host given")
	}
	inv.Host = hostOf(args[i])
	if inv.Host == "" {
		return inv, fmt.Errorf("no host in %q", args[i])
	}
	inv.Command = strings.Join(args[i+1:], " ")
	if inv.Command == "" {
		return inv, errors.New("no remote command given (an interactive shell is not supported)")
	}
	return inv, nil
}

// hostOf strips ssh://, user@ and :port from a destination.
func hostOf(dest string) string {
	dest = strings.TrimPrefix(dest, "ssh://")
	if i := strings.LastIndexByte(dest, '@'); i >= 0 {
		dest = dest[i+1:]
	}
	if strings.HasPrefix(dest, "[") {
		if i := strings.IndexByte(dest, ']'); i > 0 {
			return dest[1:i]
		}
	}
	if i := strings.IndexByte(dest, ':'); i >= 0 && strings.Count(dest, ":") == 1 {
		dest = dest[:i]
	}
	return dest
}

// sftpServers are where OpenSSH's sftp-server is found on common systems.
var sftpServers = []string{
	"/usr/lib/openssh/sftp-server",
	"/usr/libexec/openssh/sftp-server",
	"/usr/lib/ssh/sftp-server",
	"/usr/libexec/sftp-server",
	"/usr/lib/sftp-server",
}

// script is the /bin/sh program that runs inv where it lands: in the
// account's home, as ssh does.
func (inv invocation) script() (string, error) {
	if !inv.Subsystem {
		return "cd 2>/dev/null; " + inv.Command, nil
	}
	if inv.Command != "sftp" {
		return "", fmt.Errorf("subsystem %q is not supported (only sftp)", inv.Command)
	}
	var b strings.Builder
	b.WriteString("cd 2>/dev/null; for p in")
	for _, p := range sftpServers {
		b.WriteString(" " + p)
	}
	b.WriteString(`; do [ -x "$p" ] && exec "$p"; done; echo "no sftp-server on this host (install openssh-sftp-server)" >&2; exit 127`)
	return b.String(), nil
}
