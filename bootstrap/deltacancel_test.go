package bootstrap

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A connect that ends while the master's zstd tool makes its delta stops
// the tool, waits for it and returns ctx's error; the next connect that
// needs the same delta computes it. The zstd found first on the PATH is a
// script that, while the file block exists, records its pid and sleeps as
// a long delta would run; else it is the real tool.
func TestDeltaToolStopsWithItsConnect(t *testing.T) {
	needTools(t)
	realZstd, _ := exec.LookPath("zstd")
	fake := t.TempDir()
	block, pidFile := filepath.Join(fake, "block"), filepath.Join(fake, "pid")
	script := "#!/bin/sh\nif [ -e " + shellQuoteTest(block) + " ]; then\n" +
		"  echo $$ >" + shellQuoteTest(pidFile+".tmp") + " && mv " + shellQuoteTest(pidFile+".tmp") + " " + shellQuoteTest(pidFile) + "\n" +
		"  exec sleep 600\nfi\nexec " + shellQuoteTest(realZstd) + " \"$@\"\n"
	if err := os.WriteFile(filepath.Join(fake, "zstd"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(block, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	path := os.Getenv("PATH")
	t.Setenv("PATH", fake+":"+path)                // the master's; stage 1 runs with path
	nonce := strconv.FormatUint(rand.Uint64(), 36) // no delta kept by an earlier run
	v1 := patchingChild(t, "cancel-one-"+nonce, false)
	v2 := patchingChild(t, "cancel-two-"+nonce, false)
	env := []string{"HOME=" + t.TempDir(), "PATH=" + path}
	sh := []string{"/bin/sh"}
	if _, err := runStage1(t, sh, env, v1, nil); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command("/bin/sh", "-c", Stage1())
	cmd.Env = env
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := Run(ctx, shellConn{out, in}, v2, nil, Options{NoForms: true})
		done <- err
	}()
	var pid int
	for guard := time.Now().Add(time.Minute); pid == 0; {
		if b, err := os.ReadFile(pidFile); err == nil {
			pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		} else if time.Now().After(guard) {
			t.Fatal("the zstd tool was not started for the delta")
		} else {
			time.Sleep(10 * time.Millisecond)
		}
	}
	cancel()
	var err error
	select {
	case err = <-done:
	case <-time.After(time.Minute): // only against a hang: the tool sleeps 600 s
		t.Fatal("Run did not return after its ctx was cancelled")
	}
	in.Close()
	cmd.Wait()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v; want context.Canceled", err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("the zstd tool (pid %d) is still there: kill -0 says %v", pid, err)
	}

	// The cancelled computation left nothing behind: the next connect
	// computes the delta, with the real tool.
	if err := os.Remove(block); err != nil {
		t.Fatal(err)
	}
	res, err := runStage1(t, sh, env, v2, nil)
	if err != nil || res.Delta != v1.Hash {
		t.Fatalf("after the cancelled one: %+v %v; want a delta against v1", res, err)
	}
}

// endsAfter is a ctx whose Err is nil for its first n calls and
// context.Canceled after: it ends while makeDelta works.
type endsAfter struct {
	context.Context
	n int
}

func (c *endsAfter) Err() error {
	if c.n > 0 {
		c.n--
		return nil
	}
	return context.Canceled
}

// The in-process encoder looks at its ctx between blocks: cancelled
// before it starts or while it works, it returns ctx's error and no delta.
func TestMakeDeltaStopsWithCtx(t *testing.T) {
	base := make([]byte, 8<<20)
	rand.NewChaCha8([32]byte{5}).Read(base)
	target := append([]byte("a change"), base...)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, c := range []struct {
		name string
		ctx  context.Context
	}{
		{"cancelled before", cancelled},
		{"cancelled while it works", &endsAfter{Context: context.Background(), n: 2}},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, err := makeDelta(c.ctx, base, target)
			if !errors.Is(err, context.Canceled) || d != nil {
				t.Fatalf("makeDelta returned %d bytes, %v; want none and context.Canceled", len(d), err)
			}
		})
	}
}
