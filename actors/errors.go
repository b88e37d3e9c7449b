package actors

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mitogo/mitogo/connect"
	"github.com/mitogo/mitogo/messages"
)

// ErrMitogo is matched by every error this package returns about a remote
// context: errors.Is(err, ErrMitogo) tells mitogo's errors from the rest,
// like Mitogen's mitogen.core.Error base class.
var ErrMitogo = errors.New("mitogo")

// Sentinels matched with errors.Is on the errors below.
var (
	// ErrRefused: the policy refused a call or message (children may not call
	// upward or sideways unless the master allows it).
	ErrRefused = errors.New("refused by policy")
	// ErrUnknownFunction: no function of that name is registered there.
	ErrUnknownFunction = errors.New("unknown function")
	// ErrNoRoute: no router on the way knows the destination; it is gone.
	ErrNoRoute = errors.New("no route to context")
	// ErrTooLarge: a message is over the maximum frame size.
	ErrTooLarge = messages.ErrFrameTooLarge
	// ErrShutdown: the router or context is shutting down.
	ErrShutdown = errors.New("shut down")
	// ErrHeartbeat: the process at the other end of a stream answered none
	// of its last heartbeats (see Heartbeat) and was declared dead, though
	// the connection itself (an SSH server, say) may still be up.
	ErrHeartbeat = errors.New("no answer to heartbeats")
	// ErrChannelClosed: the other end of a channel is gone: it was
	// released (Channel.Release, a stream end's Close, the return of the
	// call it was passed in) while this end still sent to it or waited for
	// values it had not closed; or this end itself was released.
	ErrChannelClosed = errors.New("channel end released")
	// ErrSelectEmpty: a Select has nothing left to wait for: every pending
	// call gave its result and every channel receiver reached its end.
	ErrSelectEmpty = errors.New("mitogo: select: nothing left to wait for")
)

// Causes of a failed connection (see package connect), matched with
// errors.Is on the *StreamError or *TimeoutError that reports it, also when
// another context made the connection (Via).
var (
	ErrPasswordIncorrect = connect.ErrPasswordIncorrect // the password given was refused
	ErrPasswordRequired  = connect.ErrPasswordRequired  // a password is wanted and none was given
	ErrNotAllowed        = connect.ErrNotAllowed        // sudoers, doas.conf or PAM refuse the account change
	ErrUnknownUser       = connect.ErrUnknownUser       // the target user does not exist
	ErrUnknownHostKey    = connect.ErrUnknownHostKey    // the SSH host's key is not in known_hosts
	ErrChangedHostKey    = connect.ErrChangedHostKey    // known_hosts lists another key for the SSH host
	ErrAuthFailed        = connect.ErrAuthFailed        // the SSH server accepted none of the credentials
	ErrIdentityUnusable  = connect.ErrIdentityUnusable  // an identity file was not used (see connect.ErrIdentityUnusable)
	ErrNotPrivateKey     = connect.ErrNotPrivateKey     // an identity file holds no private key
	ErrKeyEncrypted      = connect.ErrKeyEncrypted      // an identity file's key is encrypted, and not in ssh-agent
	ErrConnectTimeout    = connect.ErrConnectTimeout    // the connection passed its ConnectTimeout (a *TimeoutError)
	ErrBootstrap         = connect.ErrBootstrap         // stage 1 failed on the far side
	ErrHandshake         = connect.ErrHandshake         // the process did not complete the handshake
	// ErrMainNotCalled: a process started as a child context did not call
	// Main first in its main function, and went on to make a Router. Its
	// NewRouter returns it, and the parent's connect fails with a
	// *StreamError that matches it.
	ErrMainNotCalled = connect.ErrMainNotCalled
	ErrBadOption     = connect.ErrBadOption // an option does not apply to the method; nothing was started

	ErrToolMissing         = connect.ErrToolMissing         // podman, docker, nsenter, ... is not installed where the connection is made
	ErrNoContainer         = connect.ErrNoContainer         // no container, pod, process or directory of that name
	ErrContainerNotRunning = connect.ErrContainerNotRunning // the container exists but is not running
	ErrNoShell             = connect.ErrNoShell             // the container or directory has no /bin/sh for stage 1
	ErrExecRefused         = connect.ErrExecRefused         // the tool refused to run a command in it (daemon, permissions, runtime)
)

// CallError reports a remote function that returned an error or panicked,
// or a call the far side refused (unknown function, bad arguments, policy).
type CallError struct {
	Context  string // name of the context that ran (or refused) the call
	Function string // the function's registered name
	Code     string // messages.Code*: error, panic, unknown, args, refused
	Type     string // Go type of the remote error, or "panic"
	Message  string // the remote error's text
	Stack    string // the remote goroutine's stack, for panics
}

func (e *CallError) Error() string {
	switch e.Code {
	case messages.CodePanic:
		return fmt.Sprintf("mitogo: %s in %s panicked: %s", e.Function, e.Context, e.Message)
	case messages.CodeError:
		return fmt.Sprintf("mitogo: %s in %s failed: %s (%s)", e.Function, e.Context, e.Message, e.Type)
	}
	return fmt.Sprintf("mitogo: call %s in %s: %s", e.Function, e.Context, e.Message)
}

// Is matches ErrMitogo, and ErrRefused, ErrUnknownFunction or ErrNoRoute by code.
func (e *CallError) Is(target error) bool {
	switch target {
	case ErrMitogo:
		return true
	case ErrRefused:
		return e.Code == messages.CodeRefused
	case ErrUnknownFunction:
		return e.Code == messages.CodeUnknown
	case ErrNoRoute:
		return e.Code == messages.CodeNoRoute
	case ErrShutdown:
		return e.Code == messages.CodeShutdown
	}
	return false
}

// ChannelError reports that the peer, or a hop on the way to it, died or
// closed while something was pending, or that there is no route to it.
type ChannelError struct {
	Context string // name of the context that could not be reached (unique among live contexts: see Name)
	Reason  string // what happened, e.g. "stream closed: EOF"
	Err     error  // the cause, if any
}

func (e *ChannelError) Error() string {
	return fmt.Sprintf("mitogo: context %s is gone: %s", e.Context, e.Reason)
}

// Unwrap returns the cause.
func (e *ChannelError) Unwrap() error { return e.Err }

// Is matches ErrMitogo.
func (e *ChannelError) Is(target error) bool { return target == ErrMitogo }

// StreamError reports a connection that could not be established: the
// program did not start, the handshake failed, authentication was refused.
// Match its cause with errors.Is (ErrPasswordIncorrect, ErrUnknownHostKey,
// ...); Reason is a sentence for people. Context is the name the context
// would have had, "#<id>" appended when a live context has it (see Name).
type StreamError struct {
	Context string // name the context would have had
	Method  string // connection method: local, ssh, sudo, ...
	Reason  string // what failed, as a sentence
	Output  string // the last lines the far side printed, if any
	Cause   error  // the cause as a sentinel (ErrPasswordIncorrect, ...), nil when unknown
	Err     error  // the underlying error, if any
}

func (e *StreamError) Error() string {
	msg := fmt.Sprintf("mitogo: connecting %s (%s): %s", e.Context, e.Method, e.Reason)
	// What it printed, unless the reason quotes all of it already.
	if out := strings.TrimSpace(e.Output); out != "" && !strings.Contains(e.Reason, fmt.Sprintf("%q", out)) {
		msg += "; it printed: " + fmt.Sprintf("%q", e.Output)
	}
	return msg
}

// Unwrap returns the underlying error.
func (e *StreamError) Unwrap() error { return e.Err }

// Is matches ErrMitogo and the cause.
func (e *StreamError) Is(target error) bool {
	return target == ErrMitogo || (e.Cause != nil && errors.Is(e.Cause, target))
}

// TimeoutError reports a connect, call or receive that passed its deadline.
// It unwraps to context.DeadlineExceeded.
type TimeoutError struct {
	Context string        // name of the context waited on; "" for a Select
	Op      string        // what was waited for, e.g. "call sys.facts", "connect"
	After   time.Duration // how long was waited, when known
	Cause   error         // ErrConnectTimeout for a connect, else nil
	// Phase says how far a connect had come when its deadline passed, in
	// words that follow "timed out after 2s: " ("TCP connected, no SSH
	// banner", "during authentication", "in stage 1 (the far shell did not
	// answer)", "uploading the binary (N of M bytes sent)"); "" when
	// unknown or not a connect.
	Phase string
	// Outstanding names what a Select still waited for when its deadline
	// passed: the target of each pending call, the peer of each receiver.
	Outstanding []string
}

func (e *TimeoutError) Error() string {
	if e.Context == "" && e.Outstanding != nil {
		msg := fmt.Sprintf("mitogo: %s timed out", e.Op)
		if e.After > 0 {
			msg += fmt.Sprintf(" after %v", e.After.Round(time.Millisecond))
		}
		return msg + fmt.Sprintf(" with %d outstanding: %s", len(e.Outstanding), strings.Join(e.Outstanding, ", "))
	}
	msg := fmt.Sprintf("mitogo: %s in %s timed out", e.Op, e.Context)
	if e.After > 0 {
		msg += fmt.Sprintf(" after %v", e.After.Round(time.Millisecond))
	}
	if e.Phase != "" {
		msg += ": " + e.Phase
	}
	return msg
}

// Unwrap returns context.DeadlineExceeded.
func (e *TimeoutError) Unwrap() error { return context.DeadlineExceeded }

// Is matches ErrMitogo and the cause.
func (e *TimeoutError) Is(target error) bool {
	return target == ErrMitogo || (e.Cause != nil && target == e.Cause)
}

// otherError is an error about another context that is none of the kinds
// above: an oversize argument, a result that does not decode, a call its
// caller cancelled. It matches ErrMitogo and unwraps to its cause.
type otherError struct {
	msg string
	err error
}

func (e *otherError) Error() string { return e.msg }

// Unwrap returns the cause.
func (e *otherError) Unwrap() error { return e.err }

// Is matches ErrMitogo.
func (e *otherError) Is(target error) bool { return target == ErrMitogo }

// errorf is fmt.Errorf (with at most one %w) for an otherError.
func errorf(format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return &otherError{msg: err.Error(), err: errors.Unwrap(err)}
}

// remoteCallError turns a RemoteError payload into a *CallError.
func remoteCallError(ctxName, fn string, re *messages.RemoteError) error {
	if re.Code == messages.CodeNoRoute {
		return &ChannelError{Context: ctxName, Reason: re.Message, Err: ErrNoRoute}
	}
	return &CallError{Context: ctxName, Function: fn, Code: re.Code, Type: re.Type, Message: re.Message, Stack: re.Stack}
}
