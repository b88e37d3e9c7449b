package files

import (
	"errors"
	"fmt"
	"io/fs"
)

// Causes of a failed transfer, matched with errors.Is. They come wrapped
// in an *Error, whose text says "files:" once.
var (
	// ErrHashMismatch: the data written does not have the sender's sha256.
	// The partial file is removed.
	ErrHashMismatch = errors.New("sha256 of the data received differs from the sender's")
	// ErrAborted: the sender could not read its source while sending.
	ErrAborted = errors.New("the sender gave up")
	// ErrProtocol: the other side sent something out of order.
	ErrProtocol = errors.New("protocol error")
	// ErrIsDirectory: a directory was given without Recursive.
	ErrIsDirectory = errors.New("is a directory (copy it with Recursive)")
	// ErrUnsafePath: the sender named a path outside the destination.
	ErrUnsafePath = errors.New("path leaves the destination")
)

// Error is why a transfer failed for one target: a Result's Err, and the
// error of Push and Pull. Its text names the operation, the source and
// the target once: "files: push ./conf to ssh:web1: " and the cause.
type Error struct {
	Op     string // "push" or "pull"
	Src    string // the source's path, as given
	Target string // the context's name
	Err    error  // the cause
}

func (e *Error) Error() string {
	dir := "to"
	if e.Op == "pull" {
		dir = "from"
	}
	return fmt.Sprintf("files: %s %s %s %s: %v", e.Op, e.Src, dir, e.Target, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// errSenderStopped ends a pull's receive when its sender has failed.
var errSenderStopped = errors.New("the sender stopped")

// codes name the sentinels across contexts: a relay reports a target's
// failure as text with the sentinel's code.
var codes = map[string]error{
	"hash": ErrHashMismatch, "aborted": ErrAborted, "protocol": ErrProtocol,
	"isdir": ErrIsDirectory, "unsafe": ErrUnsafePath,
	"notexist": fs.ErrNotExist, "permission": fs.ErrPermission, "exist": fs.ErrExist,
}

// failed reports err for the targets ids, as files.receive returns it:
// as data, so that its cause survives the trip (a call's error keeps only
// its text).
func failed(ids []int, err error) []targetResult {
	var out []targetResult
	for _, id := range ids {
		out = append(out, targetResult{ID: id, Err: err.Error(), Code: codeOf(err)})
	}
	return out
}

// decodeErr rebuilds an error reported by another context.
func decodeErr(msg, code string) error {
	if msg == "" {
		return nil
	}
	return &remoteError{msg: msg, cause: codes[code]}
}

func codeOf(err error) string {
	for c, s := range codes {
		if errors.Is(err, s) {
			return c
		}
	}
	return ""
}

// remoteError is a target's failure reported by the context that relayed
// to it.
type remoteError struct {
	msg   string
	cause error // a sentinel, or nil
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.cause }

func protocolf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrProtocol}, args...)...)
}
