package bootstrap

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// guessEarly is what a guessing master sends for the child: binary, with
// newlines and a line stage 1 would take for a hash if it were not drained.
var guessEarly = []byte("\x00\x01hello\n" + strings.Repeat("f", 64) + " nocache\n\xff\xfe")

// runGuess runs stage 1 under shell with env, guessing with opts, and
// returns the result and what the exec'd child (an echo) gave back before
// a "ping" written after Run: the early bytes it read first, if any.
func runGuess(t *testing.T, shell []string, env []string, bin *Binary, opts Options) (Result, []byte) {
	t.Helper()
	p := startStage1(t, append(shell[:len(shell):len(shell)], "-c", Stage1()), env)
	defer p.stop()
	opts.Guess, opts.Early, opts.NoForms = true, guessEarly, true
	res, err := Run(context.Background(), shellConn{p.out, p.in}, bin, nil, opts)
	if err != nil {
		t.Fatalf("%v: %v (stderr %q)", shell, err, p.stderr.String())
	}
	io.WriteString(p.in, "ping\n")
	var got []byte
	b := make([]byte, 1)
	for !bytes.HasSuffix(got, []byte("ping\n")) {
		if _, err := p.out.Read(b); err != nil {
			t.Fatalf("%v: the child echoed %q, then %v (stderr %q)", shell, got, err, p.stderr.String())
		}
		got = append(got, b[0])
	}
	return res, bytes.TrimSuffix(got, []byte("ping\n"))
}

// A master that guesses gets a cached build run without waiting for its
// hash, and the child reads the early bytes first; on first contact (no
// build cached) stage 1 drains them, asks for the hash and uploads, and
// the child never sees them.
func TestStage1GuessRunsACachedBuildAtOnce(t *testing.T) {
	bin := fakeChild(t)
	for _, sh := range shells(t) {
		t.Run(filepath.Base(sh[0]), func(t *testing.T) {
			env := []string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}
			res, early := runGuess(t, sh, env, bin, Options{})
			if res.Guessed || !res.Uploaded || len(early) != 0 {
				t.Fatalf("first contact: %+v, the child read %q first; want an upload, and nothing early", res, early)
			}
			res, early = runGuess(t, sh, env, bin, Options{})
			if !res.Guessed || res.Uploaded || !bytes.Equal(early, guessEarly) {
				t.Fatalf("cached: %+v, the child read %q first; want the guess taken and %q", res, early, guessEarly)
			}
		})
	}
}

// A guess for another platform (another uname) is not taken even when the
// build is cached: stage 1 asks for the hash, which the master sends for
// the platform stage 1 named.
func TestStage1GuessForAnotherPlatformAsksForTheHash(t *testing.T) {
	bin := fakeChild(t)
	env := []string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}
	if res, _ := runGuess(t, []string{"/bin/sh"}, env, bin, Options{}); !res.Uploaded {
		t.Fatalf("first contact: %+v", res)
	}
	res, early := runGuess(t, []string{"/bin/sh"}, env, bin, Options{uname: "Plan9 mips"})
	if res.Guessed || res.Uploaded || len(early) != 0 {
		t.Fatalf("%+v, the child read %q first; want the cached build run after the hash, nothing early", res, early)
	}
}

// busybox's head reads ahead through stdio; draining a wrong guess's early
// bytes with it leaves the hash line that follows for stage 1.
func TestStage1GuessDrainedByBusyboxHead(t *testing.T) {
	env := busyboxHeadEnv(t)
	bin := fakeChild(t)
	if res, early := runGuess(t, []string{"busybox", "ash"}, env, bin, Options{}); !res.Uploaded || len(early) != 0 {
		t.Fatalf("first contact with busybox head: %+v, early %q", res, early)
	}
	if res, early := runGuess(t, []string{"busybox", "ash"}, env, bin, Options{uname: "Plan9 mips"}); res.Guessed || len(early) != 0 {
		t.Fatalf("a wrong guess with busybox head: %+v, early %q", res, early)
	}
}

// brokenPipe is a far side that ended before it read anything.
type brokenPipe struct{}

func (brokenPipe) Write([]byte) (int, error) { return 0, syscall.EPIPE }

// A far side that ended at once (a tool that refused) fails the guess's
// write; the error is still what it printed, not the broken pipe.
func TestGuessToAFarSideThatEnded(t *testing.T) {
	bin := fakeChild(t)
	_, err := Run(context.Background(), shellConn{strings.NewReader("sudo: unknown user nobody-here\n"), brokenPipe{}}, bin, nil, Options{Guess: true, Early: guessEarly})
	if err == nil || !strings.Contains(err.Error(), "unknown user nobody-here") || errors.Is(err, syscall.EPIPE) {
		t.Fatalf("Run: %v; want what the far side printed, not EPIPE", err)
	}
}
