package actors_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mitogo/mitogo/actors"
	"github.com/mitogo/mitogo/test/sshtest"
)

// stepsDone are the steps of connecting that rec logged as done, at Debug
// (-v -v: the "connected" record sums them up at -v).
func (h *recorder) stepsDone(t *testing.T) []string {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	var steps []string
	for _, r := range h.recs {
		if r.Message != "connect step done" {
			continue
		}
		if r.Level != slog.LevelDebug {
			t.Errorf("a step of an ssh connect logged at %v, not at Debug (-v -v)", r.Level)
		}
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "step" {
				steps = append(steps, a.Value.String())
			}
			return true
		})
	}
	return steps
}

// checkConnectTimeout fails t unless err is a connect's timeout that says
// where it stopped, and matches what callers (and the CLI's exit status)
// match it with.
func checkConnectTimeout(t *testing.T, err error, after time.Duration, where string) {
	t.Helper()
	var te *actors.TimeoutError
	if !errors.As(err, &te) || te.Op != "connect" || !errors.Is(err, actors.ErrConnectTimeout) ||
		!errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, actors.ErrMitogo) {
		t.Fatalf("%T %v; want a connect's *TimeoutError", err, err)
	}
	if want := "timed out after " + after.String() + ": " + where; !strings.Contains(err.Error(), want) {
		t.Fatalf("%v; want it to say %q", err, want)
	}
}

// A caller's deadline that comes before the connect's timeout: the error
// names the wait that ended it, not the 30 s ConnectTimeout never reached.
func TestConnectTimeoutNamesTheCallersDeadline(t *testing.T) {
	r := newRouter(t)
	ctx, cancel := context.WithTimeout(ctxT(t), 2*time.Second)
	defer cancel()
	silent := sshtest.Silent(t)
	_, err := r.SSH(ctx, silent, actors.SSHConfig("none"))
	checkCallersDeadline(t, err)
	// The same through a via context, which runs the connect.
	via := local(t, r)
	ctx, cancel = context.WithTimeout(ctxT(t), 2*time.Second)
	defer cancel()
	_, err = r.SSH(ctx, silent, actors.SSHConfig("none"), actors.Via(via))
	checkCallersDeadline(t, err)
}

func checkCallersDeadline(t *testing.T, err error) {
	t.Helper()
	var te *actors.TimeoutError
	if !errors.As(err, &te) || te.After > 2*time.Second || te.After < time.Second || strings.Contains(err.Error(), "30s") {
		t.Fatalf("%T %v; want a *TimeoutError after the caller's 2s", err, err)
	}
}

// A host that accepts the TCP connection and never speaks: the timeout
// says so, and the log (-v) shows the TCP connect done.
func TestConnectTimeoutNoBanner(t *testing.T) {
	rec := &recorder{}
	r := newRouter(t, actors.WithLogger(slog.New(rec)))
	_, err := r.SSH(ctxT(t), sshtest.Silent(t), actors.SSHConfig("none"), actors.ConnectTimeout(2*time.Second))
	checkConnectTimeout(t, err, 2*time.Second, "TCP connected, no SSH banner")
	if steps := rec.stepsDone(t); !slices.Equal(steps, []string{"tcp"}) {
		t.Errorf("steps logged %q, want [tcp]", steps)
	}
}

// forceCommand makes s run command instead of whatever a client asks for
// (stage 1), for its client key.
func forceCommand(t *testing.T, s *sshtest.Server, command string) {
	t.Helper()
	line := `command="` + command + `" ` + s.ClientKeyPub + "\n"
	if err := os.WriteFile(s.AuthorizedKeys, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
}

// The deadline of the two tests below is far beyond what logging in to
// sshd on loopback takes, so that the connect stops where the server does.
const stuckConnectTimeout = 8 * time.Second

// A far shell that never answers stage 1: the timeout says so, and the log
// shows every SSH step done.
func TestConnectTimeoutInStage1(t *testing.T) {
	s := sshtest.Start(t)
	forceCommand(t, s, "cat >/dev/null") // reads until the connection closes, says nothing
	rec := &recorder{}
	r := newRouter(t, actors.WithLogger(slog.New(rec)))
	_, err := r.SSH(ctxT(t), s.Addr, sshTo(s, actors.ConnectTimeout(stuckConnectTimeout))...)
	checkConnectTimeout(t, err, stuckConnectTimeout, "in stage 1 (the far shell did not answer)")
	if steps := rec.stepsDone(t); !slices.Equal(steps, []string{"tcp", "ssh_handshake", "auth", "session"}) {
		t.Errorf("steps logged %q, want tcp, ssh_handshake, auth, session", steps)
	}
}

// A far side that asks for the binary and stops reading it: the timeout
// says how much was sent, and the log shows stage 1 done.
func TestConnectTimeoutUploading(t *testing.T) {
	s := sshtest.Start(t)
	// Stage 1's first lines (it wants the hash the master guessed, then
	// takes the Hello after the guess and the hash as one line), then a
	// far side that never reads what is sent (and ends when the
	// connection does, as its next echo fails).
	forceCommand(t, s, "echo MITOGO1 $(uname -s) $(uname -m) /tmp; echo builds; read h; echo want; read h; echo got; echo need gz whole; while sleep 1; do echo; done")
	rec := &recorder{}
	r := newRouter(t, actors.WithLogger(slog.New(rec)))
	_, err := r.SSH(ctxT(t), s.Addr, sshTo(s, actors.ConnectTimeout(stuckConnectTimeout))...)
	checkConnectTimeout(t, err, stuckConnectTimeout, "uploading the binary (")
	if !strings.Contains(err.Error(), " bytes sent)") {
		t.Errorf("%v: does not say how much was sent", err)
	}
	if steps := rec.stepsDone(t); !slices.Equal(steps, []string{"tcp", "ssh_handshake", "auth", "session", "stage1"}) {
		t.Errorf("steps logged %q, want tcp, ssh_handshake, auth, session, stage1", steps)
	}
}
