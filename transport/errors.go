package transport

import "errors"

// Causes of a refused connection that this package detects, matched with
// errors.Is on the errors it returns and on what Child.Refusal and
// Child.Suspicion hold.
var (
	// ErrPasswordIncorrect: the tool asked for the password a second time,
	// or took it and ended without starting the program.
	ErrPasswordIncorrect = errors.New("password incorrect")
	// ErrPasswordRequired: the tool asked for a password and none was given.
	ErrPasswordRequired = errors.New("a password is required")
	// ErrUnknownHostKey: the SSH server's host key is not in known_hosts.
	ErrUnknownHostKey = errors.New("host key unknown")
	// ErrChangedHostKey: known_hosts lists another key for the SSH server.
	ErrChangedHostKey = errors.New("host key changed")
	// ErrAuthFailed: the SSH server accepted none of the credentials.
	ErrAuthFailed = errors.New("authentication failed")
)
