package actors_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/mitogo/mitogo/actors"
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

// A program that forgets actors.Main is refused by its first child at
// once, and no chain of processes follows.
func TestForgottenMainIsRefused(t *testing.T) {
	t.Run("local", func(t *testing.T) { forgottenMain(t, false) })
	t.Run("sudo", func(t *testing.T) {
		needSudo(t)
		forgottenMain(t, true)
	})
}

func forgottenMain(t *testing.T, sudo bool) {
	token := strconv.FormatInt(time.Now().UnixNano(), 36)
	t.Setenv(envForgetMain, token)
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
	var err error
	if sudo {
		_, err = r.Sudo(ctxT(t), actors.User("mitogo-test"), actors.PreserveEnv(), actors.ConnectTimeout(time.Minute))
	} else {
		_, err = r.Local(ctxT(t), actors.ConnectTimeout(time.Minute))
	}
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
