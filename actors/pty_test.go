package actors_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mitogo/mitogo/actors"
)

// fakeTool writes an executable sh script standing in for su.
func fakeTool(t *testing.T, script string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "su")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// A second prompt from something su left running on the terminal (in a
// session of its own) is refused at once, not at the connect timeout: the
// failure is the refusal closing the terminal, not a deadline.
func TestPtySecondPromptFromADetachedChild(t *testing.T) {
	tool := fakeTool(t, `printf 'Password: '; read pw
setsid sh -c 'printf "Password: "; sleep 5' &
wait
`)
	r := newRouter(t)
	_, err := r.Su(ctxT(t), actors.Tool(tool), actors.User("nobody"), actors.Password("pw"), actors.ConnectTimeout(time.Minute))
	var se *actors.StreamError
	if !errors.As(err, &se) || !errors.Is(err, actors.ErrPasswordIncorrect) || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("want *StreamError password incorrect, not a deadline, got %T %v", err, err)
	}
}

// A tool that takes the password and then says why it will not go on is
// reported by what it said, not as a wrong password.
func TestPtyRefusalAfterPasswordIsExplained(t *testing.T) {
	tool := fakeTool(t, `printf 'Password: '; read pw
echo 'su: Permission denied' >&2
exit 1
`)
	r := newRouter(t)
	_, err := r.Su(ctxT(t), actors.Tool(tool), actors.User("nobody"), actors.Password("pw"))
	var se *actors.StreamError
	if !errors.As(err, &se) || !errors.Is(err, actors.ErrNotAllowed) || errors.Is(err, actors.ErrPasswordIncorrect) {
		t.Fatalf("want not allowed, got %T %v", err, err)
	}
	// Nothing of stage 1's first line leaks into what the tool printed.
	if strings.Contains(se.Output, "MITOGO") {
		t.Fatalf("output %q", se.Output)
	}
	// A password with a newline in it could answer more than the prompt.
	_, err = r.Su(ctxT(t), actors.Tool(tool), actors.User("nobody"), actors.Password("pw\nexit"))
	if !errors.As(err, &se) || !errors.Is(err, actors.ErrBadOption) {
		t.Fatalf("password with a newline: %T %v", err, err)
	}
}

// The prompt is recognised by its shape, in any language: a German su
// asks "Passwort: ", refuses with its own words and asks again.
func TestPtyPromptInAnotherLanguage(t *testing.T) {
	tool := fakeTool(t, `printf 'Passwort: '; read pw
echo 'su: Fehler bei der Authentifizierung'
printf 'Passwort: '; read pw
exit 1
`)
	r := newRouter(t)
	_, err := r.Su(ctxT(t), actors.Tool(tool), actors.User("nobody"), actors.Password("pw"), actors.ConnectTimeout(time.Minute))
	if !errors.Is(err, actors.ErrPasswordIncorrect) || strings.Contains(err.Error(), "MITOGO") {
		t.Fatalf("want password incorrect, got %T %v", err, err)
	}
	_, err = r.Su(ctxT(t), actors.Tool(tool), actors.User("nobody"), actors.ConnectTimeout(time.Minute))
	if !errors.Is(err, actors.ErrPasswordRequired) {
		t.Fatalf("want password required, got %T %v", err, err)
	}
}
