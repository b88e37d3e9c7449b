package actors

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

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
	// ErrSelectEmpty: a Select has nothing left to wait for: every pending
	// call gave its result and every channel receiver reached its end.
	ErrSelectEmpty = errors.New("mitogo: select: nothing left to wait for")
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
	Context string // name of the context that could not be reached
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
type StreamError struct {
	Context string // name the context would have had
	Method  string // connection method: local, ssh, sudo, ...
	Reason  string // what failed
	Output  string // the last lines the far side printed, if any
	Err     error  // the cause, if any
}

func (e *StreamError) Error() string {
	msg := fmt.Sprintf("mitogo: connecting %s (%s): %s", e.Context, e.Method, e.Reason)
	if e.Output != "" {
		msg += "; it printed: " + fmt.Sprintf("%q", e.Output)
	}
	return msg
}

// Unwrap returns the cause.
func (e *StreamError) Unwrap() error { return e.Err }

// Is matches ErrMitogo.
func (e *StreamError) Is(target error) bool { return target == ErrMitogo }

// TimeoutError reports a connect, call or receive that passed its deadline.
// It unwraps to context.DeadlineExceeded.
type TimeoutError struct {
	Context string        // name of the context waited on; "" for a Select
	Op      string        // what was waited for, e.g. "call sys.facts"
	After   time.Duration // how long was waited, when known
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
	if e.After > 0 {
		return fmt.Sprintf("mitogo: %s in %s timed out after %v", e.Op, e.Context, e.After.Round(time.Millisecond))
	}
	return fmt.Sprintf("mitogo: %s in %s timed out", e.Op, e.Context)
}

// Unwrap returns context.DeadlineExceeded.
func (e *TimeoutError) Unwrap() error { return context.DeadlineExceeded }

// Is matches ErrMitogo.
func (e *TimeoutError) Is(target error) bool { return target == ErrMitogo }

// remoteCallError turns a RemoteError payload into a *CallError.
func remoteCallError(ctxName, fn string, re *messages.RemoteError) error {
	if re.Code == messages.CodeNoRoute {
		return &ChannelError{Context: ctxName, Reason: re.Message, Err: ErrNoRoute}
	}
	return &CallError{Context: ctxName, Function: fn, Code: re.Code, Type: re.Type, Message: re.Message, Stack: re.Stack}
}
