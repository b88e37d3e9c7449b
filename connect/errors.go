package connect

import (
	"errors"

	"github.com/mitogo/mitogo/transport"
)

// Causes of a failed connection, matched with errors.Is on the error that
// reports it.
var (
	// ErrPasswordIncorrect: the password given was refused.
	ErrPasswordIncorrect = transport.ErrPasswordIncorrect
	// ErrPasswordRequired: the tool wants a password and none was given.
	ErrPasswordRequired = transport.ErrPasswordRequired
	// ErrNotAllowed: the account may not become the user (sudoers,
	// doas.conf, PAM).
	ErrNotAllowed = errors.New("not allowed")
	// ErrUnknownUser: the target user does not exist.
	ErrUnknownUser = errors.New("user unknown")
	// ErrUnknownHostKey: the SSH host's key is not known (known_hosts).
	ErrUnknownHostKey = transport.ErrUnknownHostKey
	// ErrChangedHostKey: known_hosts lists another key for the SSH host.
	ErrChangedHostKey = transport.ErrChangedHostKey
	// ErrAuthFailed: the SSH server accepted none of the credentials.
	ErrAuthFailed = transport.ErrAuthFailed
	// ErrIdentityUnusable: an identity file could not be used (not
	// there, unreadable, not a key, encrypted); the connection went on
	// without it, and the ErrAuthFailed error that follows when nothing
	// else is accepted names it and matches this, and its cause
	// (fs.ErrNotExist, ErrNotPrivateKey, ErrKeyEncrypted). These match
	// the error of a connection made from this process; one made by
	// another context (Via) carries only ErrAuthFailed and the text.
	ErrIdentityUnusable = transport.ErrIdentityUnusable
	// ErrNotPrivateKey: an identity file holds no private key.
	ErrNotPrivateKey = transport.ErrNotPrivateKey
	// ErrKeyEncrypted: an identity file's key is encrypted, and the
	// native client takes passphrases from ssh-agent only.
	ErrKeyEncrypted = transport.ErrKeyEncrypted
	// ErrConnectTimeout: the connection did not complete within its
	// ConnectTimeout.
	ErrConnectTimeout = errors.New("connect timed out")
	// ErrBootstrap: stage 1 failed (no binary for the far side's platform,
	// an upload that did not complete, a far side that is not a shell).
	ErrBootstrap = errors.New("bootstrap failed")
	// ErrHandshake: the process started but did not complete the
	// handshake (it exited first, or answered wrongly).
	ErrHandshake = errors.New("handshake failed")
	// ErrMainNotCalled: the program started as a child does not call
	// actors.Main first.
	ErrMainNotCalled = errors.New("the program does not call actors.Main")
	// ErrBadOption: an option does not apply to the method, or options
	// contradict each other; nothing was started.
	ErrBadOption = errors.New("option does not apply")
	// ErrToolMissing: the program a method runs (podman, docker, nsenter,
	// ...) is not installed where the connection is made.
	ErrToolMissing = errors.New("tool not found")
	// ErrNoContainer: no container (or pod, or process) has that name.
	ErrNoContainer = errors.New("no such container")
	// ErrContainerNotRunning: the container exists but is not running.
	ErrContainerNotRunning = errors.New("container not running")
	// ErrNoShell: the container or directory has no /bin/sh to run stage 1.
	ErrNoShell = errors.New("no shell")
	// ErrExecRefused: the tool refused to run a command in the container
	// (its daemon unreachable, permission denied, a runtime error).
	ErrExecRefused = errors.New("exec refused")
)

// causes gives each cause its stable code, most specific first.
var causes = []struct {
	code string
	err  error
}{
	{"password-incorrect", ErrPasswordIncorrect},
	{"password-required", ErrPasswordRequired},
	{"not-allowed", ErrNotAllowed},
	{"unknown-user", ErrUnknownUser},
	{"unknown-host-key", ErrUnknownHostKey},
	{"changed-host-key", ErrChangedHostKey},
	{"auth-failed", ErrAuthFailed},
	{"connect-timeout", ErrConnectTimeout},
	{"main-not-called", ErrMainNotCalled},
	{"bootstrap", ErrBootstrap},
	{"handshake", ErrHandshake},
	{"bad-option", ErrBadOption},
	{"tool-missing", ErrToolMissing},
	{"no-container", ErrNoContainer},
	{"container-not-running", ErrContainerNotRunning},
	{"no-shell", ErrNoShell},
	{"exec-refused", ErrExecRefused},
}

// Code is the stable code of the first cause err matches, or "".
func Code(err error) string {
	if err == nil {
		return ""
	}
	for _, c := range causes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return ""
}

// FromCode is the cause whose code is code, or nil (also for a code this
// version does not know).
func FromCode(code string) error {
	for _, c := range causes {
		if c.code == code {
			return c.err
		}
	}
	return nil
}
