package main

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/mitogo/mitogo/actors"
)

// oneLine puts an error on one line without the "mitogo: " prefix and
// leaves the rest of its text alone.
func TestOneLine(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{&actors.StreamError{Context: "sudo:mitogo-test/sudo:mitogo-test2", Method: "sudo", Reason: "sudo to mitogo-test2: a password is required"},
			"connecting sudo:mitogo-test/sudo:mitogo-test2 (sudo): sudo to mitogo-test2: a password is required"},
		{fmt.Errorf("local: %w", &actors.ChannelError{Context: "local.1", Reason: "stream closed:\n  EOF"}),
			"local: mitogo: context local.1 is gone: stream closed: EOF"},
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

// The progress line counts the targets that ended as the summary does:
// the unreachable ones apart from those that failed.
func TestProgressCounts(t *testing.T) {
	var stderr bytes.Buffer
	ts := []*target{{name: "web1"}, {name: "web2"}, {name: "web3"}, {name: "web4"}}
	p := newPrinter(&env{stdout: io.Discard, stderr: &stderr}, &options{}, ts)
	for i, o := range []outcome{{state: stateFailed, exit: 3}, {state: stateUnreachable, exit: exitUnreachable}, {state: stateUnreachable, exit: exitUnreachable}} {
		o.t, o.began = ts[i], true
		p.done(i, &o)
	}
	stderr.Reset()
	p.mu.Lock()
	p.drawProgress()
	p.mu.Unlock()
	p.close()
	want := "[3/4] 1 failed, 2 unreachable;"
	if got := stderr.String(); !strings.Contains(got, want) {
		t.Errorf("progress line %q; want it to say %q", got, want)
	}
}
