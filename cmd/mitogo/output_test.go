package main

import (
	"bytes"
	"fmt"
	"io"
	"strings"
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

// --group prints a target's stdout and stderr in the order they came, each
// to its own stream, under one header.
func TestGroupKeepsOrder(t *testing.T) {
	var both bytes.Buffer // stdout and stderr, as on a terminal
	o := &options{}
	o.fleet.group = true
	p := newPrinter(&env{stdout: &both, stderr: &both}, o, []*target{{name: "web1"}, {name: "web2"}})
	to := p.target(0)
	for _, w := range []struct {
		w    io.Writer
		text string
	}{{to.stdout, "one\n"}, {to.stderr, "two\n"}, {to.stdout, "thr"}, {to.stdout, "ee\n"}, {to.stderr, "four"}} {
		io.WriteString(w.w, w.text)
	}
	p.done(0, &outcome{t: &target{name: "web1"}, state: stateOK, began: true, started: true})
	p.close()
	want := "one\ntwo\nthree\nfour\n"
	if _, body, _ := strings.Cut(both.String(), "\n"); !strings.HasPrefix(both.String(), "=== web1: ok (") || body != want {
		t.Errorf("--group printed %q; want the header, then %q", both.String(), want)
	}
}
