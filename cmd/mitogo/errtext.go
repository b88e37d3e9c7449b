package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/mitogo/mitogo/actors"
	"github.com/mitogo/mitogo/messages"
	"github.com/mitogo/mitogo/transport"
)

// userLine is err on one line, as oneLine puts it, in the command line's
// terms: a function's error without the Go type it had on the far side
// ("(*fs.PathError)", which --json keeps), and an unknown host key's hint
// naming the flag that accepts it.
func userLine(err error) string {
	s := withFlagHint(err, err.Error())
	var ce *actors.CallError
	if errors.As(err, &ce) && ce.Code == messages.CodeError {
		s = strings.Replace(s, ce.Error(), fmt.Sprintf("mitogo: %s in %s failed: %s", ce.Function, ce.Context, ce.Message), 1)
	}
	return oneLine(errors.New(s))
}

// jsonLine is err on one line for --json: as userLine, but with the Go
// type of a function's error, for scripts that tell errors apart by it.
func jsonLine(err error) string {
	return oneLine(errors.New(withFlagHint(err, err.Error())))
}

// withFlagHint is s, err's text, with the hint of an unknown host key in
// err naming --host-key-policy: package transport's hint speaks of the
// policy, as a program sets it.
func withFlagHint(err error, s string) string {
	var hk *transport.HostKeyError
	if !errors.As(err, &hk) || hk.Changed {
		return s
	}
	return strings.Replace(s, hk.Error(), fmt.Sprintf("host key for %s is not known (%s %s); add it to %s, or connect with --host-key-policy accept-new",
		hk.Host, hk.KeyType, hk.Fingerprint, hk.KnownHosts), 1)
}
