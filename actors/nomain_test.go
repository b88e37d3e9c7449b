package actors_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mitogo/mitogo/actors"
	"github.com/mitogo/mitogo/test/sshtest"
)

// envForgetMain makes the test binary a program that forgets actors.Main:
// its value marks every process of the experiment, so the test can find
// them in /proc.
const envForgetMain = "MITOGO_TEST_FORGET_MAIN"

// forgetfulMain is the main of a program that does not call actors.Main
// first: it makes a router and starts a local child, which (being the same
// program) does the same.
func forgetfulMain() {
	r, err := actors.NewRouter(actors.WithLogger(discard()))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := r.Local(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(4)
	}
	<-ctx.Done()
	os.Exit(0)
}

// marked lists the processes whose environment holds envForgetMain=token.
func marked(t *testing.T, token string) []int {
	t.Helper()
	want := []byte(envForgetMain + "=" + token + "\x00")
	dirs, _ := filepath.Glob("/proc/[0-9]*/environ")
	var pids []int
	for _, d := range dirs {
		env, err := os.ReadFile(d)
		if err != nil || !bytes.Contains(env, want) {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(d)))
		pids = append(pids, pid)
	}
	return pids
}

// forgetMarker is the file that makes a child started from the cache file
// named hash a program that forgets actors.Main: methods that do not pass
// the environment on (su, doas, ssh) or a Via hop (whose intermediate
// context must stay a proper one) cannot carry envForgetMain, but every
// child from the cache runs a file named after the binary's hash. The file
// holds the token.
func forgetMarker(hash string) string { return "/tmp/mitogo-test-forget-main-" + hash }

// forgetByMarker makes this process the program that forgets actors.Main
// when forgetMarker names its executable: it runs itself again with
// envForgetMain set, so that /proc shows the mark and its children inherit it.
func forgetByMarker() {
	exe, err := os.Executable()
	if err != nil {
		return
	}
	token, err := os.ReadFile(forgetMarker(filepath.Base(exe)))
	if err != nil {
		return
	}
	env := append(os.Environ(), envForgetMain+"="+strings.TrimSpace(string(token)))
	err = syscall.Exec(exe, os.Args, env)
	fmt.Fprintln(os.Stderr, "re-running as a program without actors.Main:", err)
	os.Exit(5)
}

// selfHash is the hex sha256 of the test binary: the name of its copies in
// the accounts' caches.
func selfHash(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// A program that forgets actors.Main is refused by its first child at
// once, and no chain of processes follows. The connect timeout is far
// beyond the test's own deadline: the refusal must come from the child,
// not from waiting.
func TestForgottenMainIsRefused(t *testing.T) {
	long := actors.ConnectTimeout(5 * time.Minute)
	t.Run("local", func(t *testing.T) {
		forgottenMain(t, false, func(r *actors.Router) error {
			_, err := r.Local(ctxT(t), long)
			return err
		})
	})
	t.Run("sudo", func(t *testing.T) {
		needSudo(t)
		forgottenMain(t, false, func(r *actors.Router) error {
			_, err := r.Sudo(ctxT(t), actors.User("mitogo-test"), actors.PreserveEnv(), long)
			return err
		})
	})
	t.Run("su", func(t *testing.T) {
		needSudo(t)
		forgottenMain(t, true, func(r *actors.Router) error {
			_, err := r.Su(ctxT(t), actors.User("mitogo-test"), long)
			return err
		})
	})
	t.Run("doas", func(t *testing.T) {
		needSudo(t)
		needDoas(t)
		forgottenMain(t, true, func(r *actors.Router) error {
			_, err := r.Doas(ctxT(t), actors.User("mitogo-test"), long)
			return err
		})
	})
	t.Run("ssh", func(t *testing.T) {
		s := sshtest.Start(t)
		forgottenMain(t, true, func(r *actors.Router) error {
			_, err := r.SSH(ctxT(t), s.Addr, sshTo(s, long)...)
			return err
		})
	})
	// The refusal crosses the wire: the master, not the local child that
	// ran sudo, gets the cause.
	t.Run("sudo via local", func(t *testing.T) {
		needSudo(t)
		forgottenMain(t, true, func(r *actors.Router) error {
			a := local(t, r)
			_, err := r.Sudo(ctxT(t), actors.Via(a), actors.User("mitogo-test"), long)
			return err
		})
	})
}

// forgottenMain connects to the program that forgets actors.Main and checks
// the refusal and that its processes are gone. byMarker: the program is
// made so by forgetMarker rather than by the environment.
func forgottenMain(t *testing.T, byMarker bool, connect func(*actors.Router) error) {
	token := strconv.FormatInt(time.Now().UnixNano(), 36)
	if byMarker {
		marker := forgetMarker(selfHash(t))
		if err := os.WriteFile(marker, []byte(token), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(marker) })
	} else {
		t.Setenv(envForgetMain, token)
	}
	t.Cleanup(func() {
		// Without the fix the chain forks on: end it whatever it does.
		for range 100 {
			pids := marked(t, token)
			if len(pids) == 0 {
				return
			}
			for _, pid := range pids {
				syscall.Kill(pid, syscall.SIGKILL)
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	r := newRouter(t)
	err := connect(r)
	var se *actors.StreamError
	if !errors.As(err, &se) || !errors.Is(err, actors.ErrMainNotCalled) || !errors.Is(err, actors.ErrMitogo) {
		t.Fatalf("connect to a program without actors.Main: want a *StreamError matching ErrMainNotCalled, got %T %v", err, err)
	}
	t.Logf("error: %v", err)
	deadline := time.Now().Add(20 * time.Second)
	for {
		pids := marked(t, token)
		if len(pids) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes of the program without actors.Main still exist: %v", pids)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
