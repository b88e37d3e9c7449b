package actors

import (
	"errors"
	"io"
)

// Causes of a lost context travel up (route deletions) and down (gone
// notices) as stable codes, not as errors, so that a caller any number of
// hops away gets a *ChannelError matching the same sentinel as a caller
// next to the loss. A cause without a code travels as the deletion's
// reason text alone.

// channelCauses gives each cause its code, most specific first. Codes are
// part of the protocol: never reuse or rename one.
var channelCauses = []struct {
	code string
	err  error
}{
	{"heartbeat", ErrHeartbeat},
	{"shutdown", ErrShutdown},
	{"too-large", ErrTooLarge},
	{"unexpected-eof", io.ErrUnexpectedEOF},
	{"eof", io.EOF},
}

// causeCode is the code of the first cause err matches, or "".
func causeCode(err error) string {
	if err == nil {
		return ""
	}
	for _, c := range channelCauses {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return ""
}

// causeFromCode is the cause whose code is code, or nil (also for a code
// this version does not know).
func causeFromCode(code string) error {
	for _, c := range channelCauses {
		if c.code == code {
			return c.err
		}
	}
	return nil
}
