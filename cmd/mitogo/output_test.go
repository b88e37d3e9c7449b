package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/mitogo/mitogo/actors"
)

// Messages name contexts without the "#ID" the router appends to a name
// another live context has (two targets through the same first hop).
func TestOneLineDropsContextIDs(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{&actors.StreamError{Context: "sudo:mitogo-test#5/sudo:mitogo-test2", Method: "sudo", Reason: "sudo to mitogo-test2: a password is required"},
			"connecting sudo:mitogo-test/sudo:mitogo-test2 (sudo): sudo to mitogo-test2: a password is required"},
		{&actors.TimeoutError{Context: "ssh:web1#12", Op: "call proc.run", After: time.Second},
			"call proc.run in ssh:web1 timed out after 1s"},
		{fmt.Errorf("local: %w", &actors.ChannelError{Context: "local.1/sudo:root#3/local.7#9", Reason: "stream closed: EOF"}),
			"local: mitogo: context local.1/sudo:root/local.7 is gone: stream closed: EOF"},
		{fmt.Errorf("see issue #12"), "see issue #12"},
	} {
		if got := oneLine(c.err); got != c.want {
			t.Errorf("oneLine(%q) = %q; want %q", c.err, got, c.want)
		}
	}
}
